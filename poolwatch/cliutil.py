"""Pieces every part's subcommand shares; kept apart from poolwatch/cli.py so that a part's own
`cli.py` can use them without importing the module that wires all the parts together."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path


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
    except OSError as err:  # the shared server base names the address (httpbase.Server)
        text = str(err)
        log.error("%s", text if "cannot serve on" in text else f"cannot serve: {text}")
        return 1
