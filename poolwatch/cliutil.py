"""Pieces every part's subcommand shares; kept apart from poolwatch/cli.py so that a part's own
`cli.py` can use them without importing the module that wires all the parts together."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_log_level(p: argparse.ArgumentParser) -> None:
    """One --log-level for every serving command, defaulting to $POOLWATCH_LOG_LEVEL."""
    p.add_argument("--log-level", default=os.environ.get("POOLWATCH_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"], help="default info")  # fmt: skip


def config_path(args: argparse.Namespace) -> Path | None:
    """--config, else $POOLWATCH_CONFIG, else none (built-in defaults)."""
    env = os.environ.get("POOLWATCH_CONFIG")
    return args.config or (Path(env) if env else None)
