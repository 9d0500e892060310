"""What other parts are handed to act through the controller, without importing it.

The pool API and its upgrade driver (`poolwatch.api`) change nodes only through the controller,
so its limits and isolation rules hold for them too; the application passes them
`open_controller` (an `api.ports.ControllerFactory`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import PoolController


def open_controller(backend: Any, config: Path | None = None) -> PoolController:
    """A controller over `backend` with the settings in `config` (file, then POOLWATCH_*;
    defaults without a file). ConfigError names the file and field of a bad setting. Imports
    inside: `poolwatch --help` imports this module and must stay fast."""
    from poolwatch.core.config import load

    from .service import PoolController
    from .settings import ControllerSettings

    settings = load(ControllerSettings, config, os.environ, {}) if config else ControllerSettings()
    return PoolController(backend, settings)
