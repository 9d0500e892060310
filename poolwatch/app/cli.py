"""The `poolwatch` command: `poolwatch <part> <verb> [options]`, each part declaring its own verbs.

This module only assembles the parts' commands (each part's `cli.register`); it is the one place
besides the demo that imports every part. Every serving verb takes `--listen`, `--config` and
POOLWATCH_* environment variables, and listens by default on the part's port of the one port
table (poolwatch/core/ports.py) that the demo follows too.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable

from poolwatch import __version__
from poolwatch.alerts import cli as alerts_cli
from poolwatch.api import cli as api_cli
from poolwatch.app import demo_cli
from poolwatch.controller import cli as controller_cli
from poolwatch.controller.facade import open_controller
from poolwatch.core.catalog import cli as catalog_cli
from poolwatch.dashboards import cli as dashboards_cli
from poolwatch.exporters.cluster import cli as cluster_exporter_cli
from poolwatch.exporters.node import cli as node_exporter_cli
from poolwatch.rules import cli as rules_cli

#: each part's `register(subparsers)`, in the order `poolwatch --help` lists them. Each module
#: keeps its imports light (heavy ones inside the command's function) so `--help` stays fast.
#: The pool API acts through the controller without importing it: it is handed the controller's
#: `open_controller` here.
PARTS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    node_exporter_cli.register, cluster_exporter_cli.register, rules_cli.register,
    alerts_cli.register, controller_cli.register,
    functools.partial(api_cli.register, open_controller=open_controller),
    dashboards_cli.register, catalog_cli.register, demo_cli.register,
)  # fmt: skip

EPILOG = """\
Every part takes a verb: `poolwatch <part> --help` lists them (`poolwatch demo` alone runs
the demo). Serving verbs (node-exporter run, cluster-exporter run, rules run, alerts serve,
controller run, api serve) read settings from --config FILE (YAML), then POOLWATCH_*
environment variables (POOLWATCH_COLLECTORS__NFS__TIMEOUT=3s), then flags. Start with
`poolwatch demo`. See README.md.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="poolwatch",
        description="Monitoring, alerting and fault handling for GPU/NPU training pools.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"poolwatch {__version__}")
    sub = p.add_subparsers(dest="part", metavar="<part>")
    for register in PARTS:
        register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return 2
    level = getattr(args, "log_level", "info").upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
