"""`poolwatch controller upgrade`: a rolling driver upgrade of one pool, from the command line.

Registered by `controller/cli.py` (`add_arguments`, `run`). It runs the same `Upgrade` as the
pool API, in this process, through a `PoolController` over the chosen backend, and prints each
change of progress. Ctrl-C aborts cleanly: the current batch's nodes are returned and the pool
is no longer marked upgrading, so running the command again continues where it stopped.

`--abort` recovers a pool whose upgrade process died (its nodes stay isolated with the upgrade
code and the pool stays marked upgrading until then).

Exit status: 0 upgraded (or recovered), 1 a node failed, 2 bad arguments or configuration, 3
refused (the pool is replacing or resetting nodes, has no GPU/NPU, is being upgraded; --abort:
is not being upgraded), 130 aborted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("poolwatch.upgrade")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Upgrade the GPU/NPU driver of a pool in batches. secure (default): isolate a batch "
        "(A200001/A200002), wait for its jobs to finish, upgrade, return the nodes; forcible: "
        "upgrade at once. Refused while the pool is replacing or resetting nodes."
    )
    p.add_argument("--pool", required=True, help="the pool to upgrade")
    p.add_argument("--version", help="the target driver version (required unless --abort)")
    p.add_argument("--abort", action="store_true",
                   help="recover a pool whose upgrade died: return its nodes isolated for the "
                   "upgrade (A200001/A200002) and clear its upgrading mark")  # fmt: skip
    p.add_argument(
        "--mode",
        choices=["secure", "forcible"],
        default="secure",
        help="secure waits for jobs (ModelArts' idle), forcible does not (force)",
    )
    batch = p.add_mutually_exclusive_group()
    batch.add_argument(
        "--batch-percent",
        type=float,
        metavar="P",
        help="nodes per batch as a percentage of the pool (default 25)",
    )
    batch.add_argument("--batch-nodes", type=int, metavar="N", help="nodes per batch")
    p.add_argument(
        "--wait-timeout",
        default="24h",
        help="secure mode: skip a node whose jobs run longer than this (24h)",
    )
    p.add_argument(
        "--step-command",
        metavar="CMD",
        help="run per node with POOLWATCH_NODE, POOLWATCH_POOL, POOLWATCH_VERSION set; "
        "exit 0 = upgraded (required with the kubernetes backend; simulated: a simulated step)",
    )
    p.add_argument(
        "--backend",
        choices=["kubernetes", "simulated"],
        default="kubernetes",
        help="where the pool lives (kubernetes)",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig (default: in-cluster service account)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the controller's settings (state file, limits); see controller run",
    )
    p.add_argument("--poll", default="10s", help="how often to look at the batch (10s)")


def run(args: argparse.Namespace) -> int:
    from poolwatch.api.upgrade import CommandStep, SimulatedStep, Upgrade, UpgradePlan
    from poolwatch.core.config import ConfigError, parse_duration

    if args.abort:
        return _abort(args)
    if not args.version:
        log.error("--version is required (or --abort)")
        return 2
    if not args.step_command and args.backend != "simulated":
        log.error(
            "--step-command is required with the kubernetes backend: say how a driver is "
            "installed (a simulated step would mark nodes upgraded that are not)"
        )
        return 2
    try:
        wait, poll = (float(parse_duration(v)) for v in (args.wait_timeout, args.poll))  # type: ignore[arg-type]
        plan = UpgradePlan(
            args.pool, args.version, args.mode, args.batch_percent, args.batch_nodes, wait
        )
        controller, backend = _controller(args)
    except (ConfigError, ValueError) as err:
        log.error("%s", err)
        return 2
    step = (
        CommandStep(shlex.split(args.step_command), backend)
        if args.step_command
        else SimulatedStep(backend)
    )
    upgrade = Upgrade(controller, backend, plan, step)
    started = upgrade.start()
    _say(f"{started.outcome}: {started.detail}")
    if started.outcome == "refused":
        return 3
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    last: list[Any] = []
    while not upgrade.advance():
        last = _report(upgrade.snapshot(), last)
        if stop.wait(poll):
            upgrade.abort("interrupted")
            _say(upgrade.detail)
            return 130
    _report(upgrade.snapshot(), last)
    _say(f"{upgrade.phase}: {upgrade.detail}")
    return 0 if upgrade.phase == "done" else 1


def _abort(args: argparse.Namespace) -> int:
    from poolwatch.api.upgrade import recover
    from poolwatch.core.config import ConfigError

    try:
        controller, backend = _controller(args)
    except (ConfigError, ValueError) as err:
        log.error("%s", err)
        return 2
    if controller.pool_activity(args.pool) != "upgrading":
        _say(f"pool {args.pool} is not being upgraded: nothing to abort")
        return 3
    nodes = recover(controller, backend, args.pool, "poolwatch controller upgrade --abort")
    _say(f"recovered: {len(nodes)} nodes returned ({', '.join(nodes) or 'none'})")
    return 0


def _controller(args: argparse.Namespace) -> tuple[Any, Any]:
    from poolwatch.api.cli import make_backend
    from poolwatch.controller.service import PoolController
    from poolwatch.controller.settings import ControllerSettings
    from poolwatch.core.cliutil import config_path
    from poolwatch.core.config import load

    settings = load(ControllerSettings, config_path(args), os.environ, {})
    backend = make_backend(args.backend, args.kubeconfig)
    return PoolController(backend, settings), backend


def _report(snapshot: dict[str, Any], last: list[Any]) -> list[Any]:
    """Print the nodes whose state changed since the last report."""
    now = [(n["name"], n["state"], n["detail"]) for n in snapshot["nodes"]]
    for name, state, detail in sorted(set(now) - set(last)):
        _say(f"  batch {snapshot['batch']}: {name} {state}" + (f" ({detail})" if detail else ""))
    return now


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
