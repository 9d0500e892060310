"""Isolation: a faulty node tainted with its fault code and cordoned, its jobs restarted and,
where the code or the action asks, a replacement requested; behind a per-pool circuit breaker
that stops isolating once too much of a pool would be out of service.

`Isolation` acts through a `Context` (controller/context.py), restarts the node's jobs through
`JobRestarts` and asks `Replacer` for the replacement; the facade (`PoolController`) calls it for
the rule engine's actions and an operator's isolation, and closes breakers each reconcile.
"""

from __future__ import annotations

from poolwatch.cluster.model import Node, NodeStatus
from poolwatch.core.actions import ActionResult

from . import pools, reasons
from .context import Context
from .pools import FAULT_EFFECT, FAULT_TAINT, STATUS_LABEL
from .replacer import Replacer
from .restarts import JobRestarts


class Isolation:
    """Isolate nodes and keep the pools' circuit breakers (see the module docstring)."""

    def __init__(self, ctx: Context, restarts: JobRestarts, replacer: Replacer) -> None:
        self.ctx, self.restarts, self.replacer = ctx, restarts, replacer
        # the same objects as the context's (none is ever replaced): shorter to read
        self.backend, self.store, self.settings = ctx.backend, ctx.store, ctx.settings
        self.clock = ctx.clock

    def isolate(
        self, name: str, code: str, reason: str, key: str, dry: bool, replace: bool,
        breaker: bool, alert: str = "",
    ) -> ActionResult:  # fmt: skip
        """Taint and cordon `name` with `code` (a dry run only says what it would do), restart
        its jobs unless the code keeps them, and request its replacement when `replace`.
        `breaker`: the rule engine's isolations pass the pool's circuit breaker first; an
        operator's or an upgrade's do not (a person asked for them). `reason`: who asked, in
        words (reasons.asked); `alert`: the rule's alert name, for the notices' label."""
        nodes = self.ctx.nodes()
        node = nodes.get(name)
        if node is None:
            return ActionResult("refused", f"no node {name!r}")
        if node.status in (NodeStatus.REPLACING, NodeStatus.REPAIRING):
            return ActionResult("already", f"node {name} is {node.status.value}")
        pool = node.pool
        members = [n for n in nodes.values() if n.status is not None and n.pool == pool]
        if pool and breaker and not pools.fault_of(node):  # already out: no further harm
            refusal = self.check_breaker(pool, node, members, dry)
            if refusal is not None:
                return refusal
        isolated = pools.fault_of(node) == code and node.unschedulable
        why = reasons.because(code, reason)  # the fault code first, then who asked
        labels = {"node": name, "pool": pool, "fault_code": code, "alert": alert}
        if dry:
            what = "is already isolated" if isolated else f"would be tainted {FAULT_TAINT}={code}"
            extra = ", then replaced from the pool's spares" if replace and pool else ""
            self.ctx.tell("DryRun", key, f"dry run: node {name} {what}{extra}", why, labels,
                          "info")  # fmt: skip
            return ActionResult("dry-run", f"node {name} {what} and cordoned{extra}: {why}")
        if not isolated:
            self.ctx.fence()
            self.backend.taint_node(name, FAULT_TAINT, code, FAULT_EFFECT)
            self.backend.cordon(name, True)
            if dict(node.labels).get(STATUS_LABEL) == NodeStatus.SPARE.value:
                self.backend.label_node(name, {STATUS_LABEL: None})  # a faulty spare is no spare
            self.ctx.node_event(name, pool, "NodeIsolated", "Warning", f"Node isolated, {why}")
        detail = f"node {name} {'was already isolated' if isolated else 'isolated'}: {why}"
        if code not in self.settings.keep_jobs_codes:
            jobs_said = self.restarts.restart_jobs_on(name, key, code, alert)
            if jobs_said:
                detail += f"; {jobs_said}"
        if replace and pool:  # a replacement that failed fails the action: the engine re-sends
            outcome, more = self.replacer.request(key, pool, name, code)
            return ActionResult(outcome, f"{detail}; {more}")
        return ActionResult("done" if not isolated else "already", detail)

    def check_breaker(
        self, pool: str, node: Node, members: list[Node], dry: bool
    ) -> ActionResult | None:
        """The circuit breaker: no isolation that would put more of the pool out of service
        than `breaker_ratio` (at least one node); once it refuses, it stays open (refusing every
        isolation in the pool) until the pool is back under and `breaker_cooldown` has passed."""
        s, now = self.settings, self.clock()
        state = self.store.pool(pool)
        limit = pools.allowed(s.breaker_ratio, len(members), 1)
        out = pools.out_of_service(members) + (node.status not in pools.OUT)
        if state["breaker_open"]:
            return ActionResult("refused", f"circuit breaker open for pool {pool}: "
                                           "no isolation until it closes")  # fmt: skip
        if out <= limit:
            return None
        if dry:  # a dry run changes nothing, not even the breaker
            return ActionResult("refused", f"circuit breaker would open: {out} of "
                                           f"{len(members)} nodes of pool {pool} out")  # fmt: skip
        self.ctx.audit("TripBreaker", pool, ActionResult("done", f"{out - 1} of {len(members)} "
                                                         "nodes out"), "")  # fmt: skip
        # the notice with the state it reports, in one transaction (Notices.queue)
        self.ctx.tell("BreakerOpen", f"{pool}:{now}", f"circuit breaker open in pool {pool}",
                      f"isolating node {node.name} would put {out} of {len(members)} nodes out "
                      f"(limit {limit}); isolation stops in this pool until it closes",
                      {"pool": pool}, "critical",
                      then=lambda: self.store.set_pool(pool, breaker_open=1,
                                                       breaker_since=now))  # fmt: skip
        return ActionResult("refused", f"circuit breaker: {out} of {len(members)} nodes of pool "
                                       f"{pool} would be out (limit {limit})")  # fmt: skip

    def breaker_open(self, pool: str) -> bool:
        """Whether the pool's circuit breaker is open (isolation stopped there)."""
        return bool(self.store.pool(pool)["breaker_open"])

    def close_breakers(self, now: float) -> None:
        """Each reconcile: close an open breaker once its pool is back under the limit and the
        cooldown has passed."""
        nodes = self.ctx.nodes().values()
        for pool in self.store.pool_names():
            state = self.store.pool(pool)
            cooling = now - state["breaker_since"] < self.settings.breaker_cooldown
            if not state["breaker_open"] or cooling:
                continue
            members = [n for n in nodes if n.pool == pool]
            if pools.out_of_service(members) < pools.allowed(self.settings.breaker_ratio,
                                                             len(members), 1):  # fmt: skip
                self.ctx.audit("CloseBreaker", pool, ActionResult("done"), "")
                self.ctx.tell("BreakerClosed", f"{pool}:{now}", f"circuit breaker closed in pool "
                              f"{pool}", "isolation resumes", {"pool": pool}, "info",
                              then=lambda pool=pool: self.store.set_pool(
                                  pool, breaker_open=0))  # fmt: skip
