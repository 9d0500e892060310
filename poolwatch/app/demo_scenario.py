"""The demo's story: a fault the rules isolate within the first minute, then others, varied.

Why a script and not only random faults: a newcomer gives a demo five minutes. Random faults
(one every few simulated minutes, anywhere) might first strike an hour in, or hit an idle node, or
heal before a rule confirms them. The scenario strikes a node that runs a job, so one fault shows
every step: the rule fires, the notification reaches the inbox, the controller isolates the node,
swaps in the pool's spare and restarts the job, and the pool records events for each.

Times are simulated seconds since the demo first started (`--speed` compresses them, and the
rules' periods scale with it, see demo_rules). Progress is saved with the simulated pool, so a
restarted demo goes on with the story instead of beginning it again.

After the first fault the scenario strikes a different kind of fault every EVERY seconds,
cycling through FOLLOW_UPS, each on a node where it can strike (preferring a node with a running
job). The simulation repairs each fault REPAIR seconds after it struck (its `repair_seconds`);
the scenario then hands the repaired node back to its pool as the new spare (an operator's
`restore`, which the controller's own rules allow), so later faults still find a spare.

A `hang` strikes a running job on the chosen node instead: nothing repairs it, as nothing repairs
a real hung job. Its I/O stops and its accelerators idle; the hang rule fires once the job's
detection time (the demo's 10 minutes) has passed without I/O, and the controller restarts the
job (the demo's jobs opt in to restart upon suspension), which ends the hang.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from poolwatch.cluster.simulated.spec import DEVICE_FAULTS, vendor_of

log = logging.getLogger(__name__)
FIRST_AT = 40.0  # the first fault: the initial jobs are Running by then (30 s start-up)
FIRST = "gpu_lost"  # isolated (A050203), replaced from the spare, its job restarted
EVERY = 240.0
FOLLOW_UPS = ("hang", "npu_health", "not_ready", "ecc", "kubelet_readonly", "cache_full",
              "gpu_lost")  # fmt: skip


@dataclass
class Progress:
    started: float  # simulated time the story began
    done: int = 0  # faults struck so far


class Scenario:
    """Call `tick()` after every simulation step; it strikes what is due."""

    def __init__(self, cluster: Any, state_path: Path, controller: Any = None) -> None:
        self.cluster, self.state_path, self.controller = cluster, state_path, controller
        self.progress = self._load() or Progress(started=cluster.now)
        self.struck: list[tuple[float, str, str]] = []  # (simulated time, fault, node)

    def _load(self) -> Progress | None:
        try:
            return Progress(**json.loads(self.state_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def save(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self.progress)), encoding="utf-8")
        tmp.replace(self.state_path)

    def due(self) -> float:
        """Simulated time of the next scripted fault."""
        return self.progress.started + FIRST_AT + EVERY * self.progress.done

    def fault(self, n: int) -> str:
        return FIRST if n == 0 else FOLLOW_UPS[(n - 1) % len(FOLLOW_UPS)]

    def tick(self) -> None:
        self._restore_repaired()
        if self.cluster.now < self.due():
            return
        fault = self.fault(self.progress.done)
        self.progress.done += 1
        node = self.target(fault)
        if node is None:
            log.info("scenario: no node where %s can strike now; skipped", fault)
            return
        self.cluster.inject(fault, node)
        self.struck.append((self.cluster.now, fault, node))
        log.info("scenario: %s on %s", fault, node)

    def target(self, fault: str) -> str | None:
        """An Available node `fault` can strike, preferring one that runs a job; first by name,
        so the same seed tells the same story. A node where a job hangs is left alone: a fault
        there would stall or restart that job before the hang rule has found it."""
        vendor = DEVICE_FAULTS.get(fault, "")
        pods = self.cluster.pods()
        busy = {p.node for p in pods if p.job and p.phase == "Running"}
        hung = set(self.cluster.hung_jobs())
        hanging = {p.node for p in pods if p.job and f"{p.namespace}/{p.job}" in hung}
        candidates = []
        for n in sorted(self.cluster.nodes(), key=lambda n: n.name):
            resource = next((r for r, _ in n.capacity if "/" in r), "")
            if str(n.status) != "Available" or (vendor and vendor != vendor_of(resource)):
                continue
            if n.name in hanging:
                continue
            if not self.cluster.can_strike(fault, n.name):
                continue
            candidates.append(n.name)
        for name in candidates:
            if name in busy:
                return name
        return candidates[0] if candidates else None

    def _restore_repaired(self) -> None:
        """A node under repair whose faults the simulation has cleared rejoins as the spare."""
        if self.controller is None:
            return
        for n in self.cluster.nodes():
            if str(n.status) != "Repairing" or self.cluster.node_faults(n.name):
                continue
            key = f"demo-restore:{n.name}:{self.cluster.now:.0f}"
            result = self.controller.restore(n.name, "repaired (demo scenario)", key)
            log.info("scenario: %s repaired: %s", n.name, result.detail or result.outcome)
