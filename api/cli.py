"""`poolwatch api serve`: the pool REST API over the Kubernetes or the simulated backend.

Imports stay inside the command function: `poolwatch --help` must not pay for FastAPI.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ports import ControllerFactory

log = logging.getLogger("poolwatch.api")


def register(sub: argparse._SubParsersAction, open_controller: ControllerFactory) -> None:
    """Declare `poolwatch api serve|upgrade`; `open_controller` makes the controller every change
    goes through (the application passes the controller part's)."""
    from poolwatch.core.cliutil import add_part, add_serving_options

    verbs = add_part(
        sub,
        "api",
        "the pool REST API: pools, nodes, usage, monitoring, driver upgrades",
        "Serve ModelArts' resource-pool operations as a REST API with an OpenAPI "
        "document at /openapi.json (docs/api.md). Every change goes through the controller.",
    )
    s = verbs.add_parser("serve", help="serve the API (uvicorn)")
    add_serving_options(s, "api")
    s.add_argument("--backend", choices=["kubernetes", "simulated"],
                   help="where pools and nodes live (kubernetes)")  # fmt: skip
    s.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    s.add_argument("--prometheus", metavar="URL",
                   help="the Prometheus that scrapes poolwatch, http://HOST:9090 "
                   "(required)")  # fmt: skip
    s.add_argument("--token-file", type=Path, metavar="FILE",
                   help="file holding the bearer token callers must send (required)")  # fmt: skip
    s.add_argument("--upgrade-command", metavar="CMD",
                   help="run per node for a driver upgrade, with POOLWATCH_NODE, POOLWATCH_POOL "
                   "and POOLWATCH_VERSION set (simulated backend: a simulated step; "
                   "kubernetes without it: upgrades are refused)")  # fmt: skip
    s.add_argument("--web-config-file", type=Path, metavar="FILE",
                   help="TLS and basic-auth users, in the Prometheus web-config format "
                   "(the exporters' file)")  # fmt: skip
    s.set_defaults(func=serve, open_controller=open_controller)
    from . import upgrade_cli

    u = verbs.add_parser("upgrade", help="rolling driver upgrade of a pool, from the command line")
    upgrade_cli.add_arguments(u)
    u.set_defaults(func=upgrade_cli.run, open_controller=open_controller)


def read_token(path: Path) -> str:
    """The first line of the file; an empty or unreadable file is a configuration error."""
    try:
        token = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as err:
        raise ValueError(f"token file {path}: {err.strerror}") from None
    if not token or not token[0].strip():
        raise ValueError(f"token file {path}: empty")
    return token[0].strip()


def make_backend(kind: str, kubeconfig: Path | None) -> Any:
    """The cluster backend, as `poolwatch cluster-exporter` makes it: the simulated pool runs in
    real time from a daemon thread."""
    from poolwatch.cluster.factory import open_backend

    return open_backend(kind, kubeconfig)[0]


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from poolwatch.api.upgrade import CommandStep, SimulatedStep, UpgradeStep
    from poolwatch.core.cliutil import config_path, flag_settings
    from poolwatch.core.config import ConfigError, dump, load, split_listen
    from poolwatch.core.web import asgi
    from poolwatch.core.web.config import load_web_config

    from .app import create_app
    from .settings import ApiSettings

    flags = flag_settings(args, ("listen", "backend", "kubeconfig", "prometheus", "token_file",
                                 "upgrade_command", "web_config_file"))  # fmt: skip
    try:
        settings = load(ApiSettings, config_path(args), os.environ, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return 0
        host, port = split_listen(settings.listen)
        token = read_token(settings.token_file)
        web = load_web_config(settings.web_config_file)
    except (ConfigError, ValueError) as err:
        log.error("%s", err)
        return 2
    backend = make_backend(settings.backend, settings.kubeconfig)
    controller = args.open_controller(backend)
    step: UpgradeStep | None = None  # a real cluster without a command: upgrades are refused
    if settings.upgrade_command:
        step = CommandStep(shlex.split(settings.upgrade_command), backend)
    elif settings.backend == "simulated":
        step = SimulatedStep(backend)
    try:
        app = create_app(controller, backend, settings.prometheus, token, upgrade_step=step,
                         basic_users=web.basic_auth_users)  # fmt: skip
    except ValueError as err:
        log.error("%s", err)
        return 2
    tls = web.ssl_context()
    log.info("pool API on %s://%s:%d (OpenAPI at /openapi.json)", "https" if tls else "http",
             host, port)  # fmt: skip
    uvicorn.run(asgi.reject_ambiguous_framing(app), host=host, port=port,
                log_level=args.log_level, access_log=False, **asgi.settings(tls))  # fmt: skip
    return 0
