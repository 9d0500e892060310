"""Pieces every part's subcommand shares; kept apart from poolwatch/app/cli.py so that a part's own
`cli.py` can use them without importing the module that wires all the parts together."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


def add_log_level(p: argparse.ArgumentParser) -> None:
    """One --log-level for every serving command, defaulting to $POOLWATCH_LOG_LEVEL."""
    p.add_argument("--log-level", default=os.environ.get("POOLWATCH_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"], help="default info")  # fmt: skip


def config_path(args: argparse.Namespace) -> Path | None:
    """--config, else $POOLWATCH_CONFIG, else none (built-in defaults)."""
    env = os.environ.get("POOLWATCH_CONFIG")
    return args.config or (Path(env) if env else None)


def exit_status(body: Callable[[], int | None], *config_errors: type[Exception]) -> int:
    """Run a serving command's `body` and map its failures to the exit statuses every poolwatch
    command documents: 2 for a configuration error (ConfigError, or one of `config_errors`),
    named in one log line; 1 when the address cannot be served; else what `body` returns."""
    from poolwatch.core.config import ConfigError

    log = logging.getLogger("poolwatch")
    try:
        return body() or 0
    except (ConfigError, *config_errors) as err:
        log.error("%s", err)
        return 2
    except OSError as err:  # the shared server base names the address (web.server.Server)
        text = str(err)
        log.error("%s", text if "cannot serve on" in text else f"cannot serve: {text}")
        return 1


def add_serving_options(
    p: argparse.ArgumentParser,
    part: str,
    host: str = "0.0.0.0",
    listen_note: str = "",
) -> None:
    """The options every serving verb has, the same way: --config, --listen (its default from
    the port table), --print-config and --log-level. `host` is the part's default bind address
    (the controller's is 127.0.0.1: it changes the cluster, so it stays local unless told);
    `listen_note` adds what the part's --listen also accepts or needs."""
    from poolwatch.core.ports import listen

    p.add_argument("--config", type=Path, metavar="FILE",
                   help="YAML settings file (default: $POOLWATCH_CONFIG, else built-in "
                   "defaults); each setting is also a POOLWATCH_* environment variable, and "
                   "flags win over both")  # fmt: skip
    p.add_argument("--listen", metavar="HOST:PORT",
                   help=f"address to serve on ({listen(part, host)}){listen_note}")  # fmt: skip
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings as YAML and exit")  # fmt: skip
    add_log_level(p)


def add_part(
    sub: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    run: Callable[[argparse.Namespace], int] | None = None,
) -> argparse._SubParsersAction:
    """Declare `poolwatch NAME` with `summary` in `poolwatch --help` and `description` in its own
    help; returns its verbs (a verb is required: `poolwatch NAME` alone names them). `run`, when
    given, handles every verb that names no function of its own (it dispatches on `args.verb`)."""
    part = sub.add_parser(name, help=summary, description=description)
    if run is not None:
        part.set_defaults(func=run)
    return part.add_subparsers(dest="verb", required=True, metavar="<verb>")


def flag_settings(
    args: argparse.Namespace, keys: Iterable[str], names: Mapping[str, str] | None = None
) -> dict[tuple[str, ...], tuple[Any, str]]:
    """The flags a user gave, as `poolwatch.core.config.load` takes them: setting key ->
    (value, "flag --its-name"), so an error names the flag. A flag not given (None, or an empty
    repeated flag) is left out; values are strings (lists of strings), read like the file's.
    `names` gives the flag of a key whose flag is not `--` + the key with dashes."""
    out: dict[tuple[str, ...], tuple[Any, str]] = {}
    for key in keys:
        value = getattr(args, key, None)
        if value is None or value == []:
            continue
        value = [str(v) for v in value] if isinstance(value, list) else str(value)
        flag = (names or {}).get(key, "--" + key.replace("_", "-"))
        out[(key,)] = (value, f"flag {flag}")
    return out
