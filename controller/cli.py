"""`poolwatch controller run|audit|restore|ha|jobs`: registered by the `poolwatch` CLI
(`register(sub)`).

Module-level imports stay light (`--help` must be fast); the command functions import the rest.
Driver upgrades are the pool API part's (`poolwatch api upgrade`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

_SETTINGS_FLAGS = ("listen", "backend", "token_file", "web_config_file", "state_path", "kubeconfig",
                   "interval", "notify_url", "notify_token_file")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    from poolwatch.core.cliutil import add_part, add_serving_options

    verbs = add_part(
        sub,
        "controller",
        "isolate faulty nodes, replace them from HA spares, restart their jobs",
        "The thin pool/job controller: takes the rule engine's actions on POST "
        "/actions, isolates nodes (taint + cordon), replaces them from the pool's HA spares "
        "within ModelArts' limits (20 % of the pool a day, 5 % at once), restarts affected jobs, "
        "records pool events. Dry-run by default (Apulis' cordon_dry_run). Details: "
        "docs/controller.md.",
    )
    r = verbs.add_parser("run", help="serve POST /actions and run the control loop")
    remote = "; an address other hosts can reach needs --token-file"
    add_serving_options(r, "controller", host="127.0.0.1", listen_note=remote)
    r.add_argument("--backend", choices=["kubernetes", "simulated"], help="(kubernetes)")
    r.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    r.add_argument("--dry-run", action=argparse.BooleanOptionalAction, default=None,
                   help="log and notify what would be done, change nothing (on)")  # fmt: skip
    r.add_argument("--token-file", type=Path, metavar="FILE",
                   help="bearer token POST /actions must carry")  # fmt: skip
    r.add_argument("--web-config-file", type=Path, metavar="FILE",
                   help="TLS and basic-auth users, Prometheus web-config format")  # fmt: skip
    r.add_argument(
        "--notify-url",
        metavar="URL",
        help="send notices (NoSpare, BreakerOpen, ...) as Alertmanager webhooks to "
        "this URL, e.g. the alerts receiver's http://HOST:9481 (default: log only)",
    )
    r.add_argument("--notify-token-file", type=Path, metavar="FILE",
                   help="bearer token sent with the notices")  # fmt: skip
    r.add_argument("--state", dest="state_path", type=Path, metavar="FILE",
                   help="SQLite state file (default: in memory)")  # fmt: skip
    r.add_argument("--interval", metavar="DURATION", help="control-loop step (10s)")
    r.set_defaults(func=_run)
    a = verbs.add_parser("audit", help="print the audit trail of a state file")
    a.add_argument("--state", required=True, type=Path, metavar="FILE")
    a.add_argument("--limit", type=int, default=100, help="last N records (100)")
    a.set_defaults(func=_audit)
    from . import ops_cli

    ops_cli.register(verbs)


def _run(args: argparse.Namespace) -> int:
    import os
    import sys

    from poolwatch.core.cliutil import config_path, exit_status, flag_settings
    from poolwatch.core.config import dump, load

    from .runner import run
    from .settings import ControllerSettings

    flags = flag_settings(args, _SETTINGS_FLAGS)
    if args.dry_run is not None:
        flags[("dry_run",)] = (args.dry_run, "flag --dry-run/--no-dry-run")
    known = {f"POOLWATCH_{name.upper()}" for name in ControllerSettings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.split("__")[0] in known}

    def body() -> int:
        settings = load(ControllerSettings, config_path(args), env, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return 0
        return run(settings)

    return exit_status(body)


def _audit(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from .store import Store

    if not args.state.exists():
        sys.stderr.write(f"{args.state}: no such state file\n")
        return 2
    store = Store(args.state)
    for rec in store.audit_trail(args.limit):
        when = datetime.fromtimestamp(rec.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sys.stdout.write(f"{when}\t{rec.operation}\t{rec.target}\t{rec.outcome}\t{rec.detail}\n")
    store.close()
    return 0
