"""`poolwatch controller restore|ha|jobs`: an operator's node controls from the command line.

Registered by `controller/cli.py` (`register`). Each runs the same controller facade as the pool
API, in this process, over the chosen backend, with the controller's settings file (so the
state file, and with it the idempotency keys and the audit trail, are the running controller's
when they share it):
- `restore NODE --reason TEXT`: untaint and uncordon an isolated node (a node under repair
  becomes the pool's new HA spare); audited as `restore`;
- `ha enable|disable NODE`: Enable / Disable HA Redundancy; audited as `enableHaRedundancy` /
  `disableHaRedundancy`;
- `jobs POOL`: the pool's training jobs, one per line (namespace/name, kind, status, workers,
  restarts); audited as `listPoolJobs`.

Exit status: 0 done (or already so), 1 failed, 2 bad arguments or configuration, 3 refused (the
reason is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT = {"done": 0, "already": 0, "deferred": 0, "dry-run": 0, "failed": 1, "refused": 3}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["kubernetes", "simulated"], default="kubernetes",
                   help="where the pool lives (kubernetes)")  # fmt: skip
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the controller's settings (state file); see controller run")  # fmt: skip


def register(verbs: argparse._SubParsersAction) -> None:
    r = verbs.add_parser("restore", help="return an isolated node to service")
    r.add_argument("node", help="the node's name")
    r.add_argument("--reason", required=True, help="what was fixed (kept in the audit record)")
    _common(r)
    r.set_defaults(func=_restore)
    h = verbs.add_parser("ha", help="enable or disable HA redundancy on a node")
    h.add_argument("switch", choices=["enable", "disable"])
    h.add_argument("node", help="the node's name")
    _common(h)
    h.set_defaults(func=_ha)
    j = verbs.add_parser("jobs", help="list the training jobs of a pool")
    j.add_argument("pool", help="the pool's name")
    _common(j)
    j.set_defaults(func=_jobs)


def _with_controller(args: argparse.Namespace, body: Callable[[Any], int]) -> int:
    """Run `body` with a controller over the chosen backend; the backend's informers are
    stopped before the command exits (a watch thread alive at interpreter exit can abort it)."""
    from poolwatch.cluster.factory import open_backend
    from poolwatch.controller.service import PoolController
    from poolwatch.controller.settings import ControllerSettings
    from poolwatch.core.cliutil import config_path, exit_status
    from poolwatch.core.config import load

    def run() -> int:
        settings = load(ControllerSettings, config_path(args), os.environ, {})
        backend, stop = open_backend(args.backend, args.kubeconfig)
        try:
            return body(PoolController(backend, settings))
        finally:
            stop()

    return exit_status(run)


def _key(verb: str, node: str) -> str:
    # one operator request, one key: a repeated command is a new request (the controller's
    # own rules make a repeat harmless: restoring an Available node, enabling a Spare)
    return f"cli:{verb}:{node}:{time.time_ns()}"


def _result(result: Any) -> int:
    out = sys.stdout if result.outcome in ("done", "already") else sys.stderr
    out.write(f"{result.outcome}: {result.detail}\n")
    return EXIT.get(result.outcome, 1)


def _restore(args: argparse.Namespace) -> int:
    key = _key("restore", args.node)
    return _with_controller(args, lambda ctl: _result(ctl.restore(args.node, args.reason, key)))


def _ha(args: argparse.Namespace) -> int:
    enabled, key = args.switch == "enable", _key("ha", args.node)
    return _with_controller(
        args, lambda ctl: _result(ctl.set_ha_redundancy(args.node, enabled, key))
    )


def _jobs(args: argparse.Namespace) -> int:
    def body(ctl: Any) -> int:
        if not any(p.name == args.pool for p in ctl.backend.pools()):
            sys.stderr.write(f"no pool {args.pool!r}\n")
            return 2
        for j in ctl.pool_jobs(args.pool, "command line"):
            sys.stdout.write(f"{j.namespace}/{j.name}\t{j.kind}\t{j.status.value}\t"
                             f"workers={j.workers}\trestarts={j.restarts}\n")  # fmt: skip
        return 0

    return _with_controller(args, body)
