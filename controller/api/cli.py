"""`poolwatch api serve`: the pool REST API over the Kubernetes or the simulated backend.

Imports stay inside the command function: `poolwatch --help` must not pay for FastAPI.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path
from typing import Any

log = logging.getLogger("poolwatch.api")


def register(sub: argparse._SubParsersAction) -> None:
    from poolwatch.core.cliutil import add_log_level  # not poolwatch.cli: it imports every part

    p = sub.add_parser(
        "api",
        help="the pool REST API: pools, nodes, usage, monitoring, driver upgrades",
        description="Serve ModelArts' resource-pool operations as a REST API with an OpenAPI "
        "document at /openapi.json (docs/api.md). Every change goes through the controller.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="<verb>")
    s = verbs.add_parser("serve", help="serve the API (uvicorn)")
    s.add_argument("--listen", default="0.0.0.0:9483", metavar="HOST:PORT",
                   help="address to serve on (0.0.0.0:9483)")  # fmt: skip
    s.add_argument("--backend", choices=["kubernetes", "simulated"], default="kubernetes",
                   help="where pools and nodes live (kubernetes)")  # fmt: skip
    s.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    s.add_argument("--prometheus", required=True, metavar="URL",
                   help="the Prometheus that scrapes poolwatch (http://HOST:9090)")  # fmt: skip
    s.add_argument("--token-file", required=True, type=Path, metavar="FILE",
                   help="file holding the bearer token callers must send")  # fmt: skip
    s.add_argument("--upgrade-command", metavar="CMD",
                   help="run per node for a driver upgrade, with POOLWATCH_NODE, POOLWATCH_POOL "
                   "and POOLWATCH_VERSION set (simulated backend: a simulated step; "
                   "kubernetes without it: upgrades are refused)")  # fmt: skip
    add_log_level(s)
    s.set_defaults(func=serve)


def read_token(path: Path) -> str:
    """The first line of the file; an empty or unreadable file is a configuration error."""
    try:
        token = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as err:
        raise ValueError(f"--token-file {path}: {err.strerror}") from None
    if not token or not token[0].strip():
        raise ValueError(f"--token-file {path}: empty")
    return token[0].strip()


def make_backend(kind: str, kubeconfig: Path | None) -> Any:
    """The cluster backend, as `poolwatch cluster-exporter` makes it: the simulated pool runs in
    real time from a daemon thread."""
    from poolwatch.cluster.factory import open_backend

    return open_backend(kind, kubeconfig)[0]


def make_controller(backend: Any) -> Any:
    from poolwatch.controller.service import PoolController

    return PoolController(backend)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from poolwatch.api.upgrade import CommandStep, SimulatedStep, UpgradeStep
    from poolwatch.core.config import ConfigError, check_listen, split_listen

    from . import guard
    from .app import create_app

    try:
        host, port = split_listen(check_listen(args.listen))
        token = read_token(args.token_file)
    except (ConfigError, ValueError) as err:
        log.error("%s", err)
        return 2
    backend = make_backend(args.backend, args.kubeconfig)
    controller = make_controller(backend)
    step: UpgradeStep | None = None  # a real cluster without a command: upgrades are refused
    if args.upgrade_command:
        step = CommandStep(shlex.split(args.upgrade_command), backend)
    elif args.backend == "simulated":
        step = SimulatedStep(backend)
    try:
        app = create_app(controller, backend, args.prometheus, token, upgrade_step=step)
    except ValueError as err:
        log.error("%s", err)
        return 2
    log.info("pool API on http://%s:%d (OpenAPI at /openapi.json)", host, port)
    uvicorn.run(guard.reject_ambiguous_framing(app), host=host, port=port,
                log_level=args.log_level, access_log=False, **guard.settings())  # fmt: skip
    return 0
