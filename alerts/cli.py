"""`poolwatch alerts serve|status|amconfig|import-apulis`: registered by poolwatch/app/cli.py.

Imports stay light at module level (`poolwatch --help` imports this); apprise, jinja2 and the
server load inside the command functions."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from poolwatch.core.cliutil import add_part, add_serving_options
from poolwatch.core.cliutil import config_path as _config_path

log = logging.getLogger("poolwatch.alerts")


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_part(
        sub,
        "alerts",
        "Alertmanager webhook receiver; notifications by email, webhook, chat",
        "Receive Alertmanager webhooks (and the rule engine's alerts in process), "
        "keep every notification in a SQLite outbox, and deliver it through apprise (mailto://, "
        "mailtos://, json://, form://, slack://, ...) exactly once, grouped, most urgent first, "
        "with reminders while an alert still fires. See docs/alerts.md.",
    )
    s = verbs.add_parser("serve", help="run the receiver and the delivery workers")
    add_serving_options(s, "alerts")
    s.add_argument("--outbox", type=Path, metavar="FILE", help="SQLite outbox file")
    s.add_argument("--web-config-file", type=Path, metavar="FILE",
                   help="TLS and basic-auth users (bcrypt), in the Prometheus web-config format "
                   "every poolwatch server takes (default: $POOLWATCH_WEB_CONFIG_FILE); "
                   "combines with the auth settings, refused next to the tls setting")  # fmt: skip
    s.set_defaults(func=_serve)
    st = verbs.add_parser("status", help="what is queued, sent, failing and dead, per target")
    _config_flag(st)
    st.add_argument("--url", help="receiver base URL (default: from the config's listen)")
    _user_flags(st, "ask as this user (default: the receiver's bearer token)")
    st.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help="CA bundle to verify an https receiver (default: the system's)",
    )
    st.add_argument("--json", action="store_true", help="print the raw JSON")
    st.set_defaults(func=_status)
    a = verbs.add_parser(
        "amconfig", help="print an Alertmanager receiver + route for this receiver"
    )
    _config_flag(a)
    a.add_argument(
        "--url",
        help="how Alertmanager reaches the receiver (default: public_url, else from listen)",
    )
    a.add_argument(
        "--inline-credentials",
        action="store_true",
        help="write the secret itself instead of a *_file reference",
    )
    _user_flags(a, "Alertmanager sends this user's basic auth (default: the bearer token)")
    a.set_defaults(func=_amconfig)
    i = verbs.add_parser("import-apulis", help="convert the Apulis repair-manager alert config")
    i.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="config.yaml (repair-manager block), optionally rule-alerts.yaml",
    )
    i.add_argument(
        "--secrets-dir",
        type=Path,
        metavar="DIR",
        help="write the mail URL (it holds the password) to DIR/mail.url, mode 0600",
    )
    i.set_defaults(func=_import_apulis)


def _config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML settings (default: $POOLWATCH_CONFIG, else built-in defaults)",
    )


def _user_flags(p: argparse.ArgumentParser, what: str) -> None:
    """--user and --password-file: a user of the receiver's web config file, whose password
    that file holds only as a bcrypt hash, so the plain one comes from a file."""
    p.add_argument("--user", help=f"{what}; a user of the web config file or of auth.basic_users")
    p.add_argument("--password-file", type=Path, metavar="FILE",
                   help="file holding --user's password (its first line)")  # fmt: skip


def _check_user(args: argparse.Namespace) -> str:
    """'' when --user and --password-file are given together or not at all, else why not."""
    if (args.user is None) != (args.password_file is None):
        return "give --user and --password-file together"
    return ""


def _settings(
    args: argparse.Namespace, flags: dict[tuple[str, ...], tuple[Any, str]] | None = None
):  # type: ignore[no-untyped-def]
    from .settings import load_settings

    return load_settings(_config_path(args), os.environ, flags)


def _serve(args: argparse.Namespace) -> int:
    from poolwatch.core.cliutil import exit_status, flag_settings
    from poolwatch.core.config import dump

    from .messages import TemplateError
    from .server import run

    flags = flag_settings(args, ("listen", "outbox", "web_config_file"))

    def body() -> int:
        settings = _settings(args, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return 0
        return run(settings)

    return exit_status(body, TemplateError)


def _status(args: argparse.Namespace) -> int:
    import json
    import urllib.error

    from poolwatch.core.config import ConfigError

    from .client import fetch_status, format_status

    if _check_user(args):
        log.error("%s", _check_user(args))
        return 2
    try:
        settings = _settings(args)
        doc = fetch_status(settings, args.url, args.user, args.password_file, args.ca_file)
    except ConfigError as err:
        log.error("%s", err)
        return 2
    except urllib.error.HTTPError as err:
        if err.code == 401:
            who = (f"refused the credentials of user {args.user!r}" if args.user is not None
                   else "wants credentials the settings' auth does not give: give --user "
                   "and --password-file (a user of its web config file)")  # fmt: skip
            sys.stderr.write(f"the receiver {who}\n")
        else:
            sys.stderr.write(f"cannot read the receiver's status: {err}\n")
        return 1
    except OSError as err:
        sys.stderr.write(f"cannot reach the receiver: {err}\n")
        return 1
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if args.json else format_status(doc))
    return 1 if doc["total"]["dead"] or doc.get("outbox", {}).get("fault") else 0


def _amconfig(args: argparse.Namespace) -> int:
    from poolwatch.core.config import ConfigError

    from .amconfig import snippet

    if _check_user(args):
        log.error("%s", _check_user(args))
        return 2
    try:
        text = snippet(
            _settings(args), args.url, args.inline_credentials, args.user, args.password_file
        )
    except ConfigError as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        log.error("cannot read the password file %s: %s", args.password_file, err.strerror)
        return 2
    sys.stdout.write(text)
    return 0


def _import_apulis(args: argparse.Namespace) -> int:
    from poolwatch.core.config import ConfigError

    from .apulis import convert

    try:
        text, notes = convert(args.files, args.secrets_dir)
    except ConfigError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    sys.stdout.write(text)
    return 0
