"""Settings of `poolwatch api serve`: one YAML file, then POOLWATCH_* environment variables, then
flags, like every poolwatch server (`poolwatch.core.config.load`). Each flag is the key of the same
name (`--token-file` is `token_file`, `POOLWATCH_TOKEN_FILE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from poolwatch.core.config import Listen
from poolwatch.core.ports import listen as listen_default


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prometheus: str = Field(description="the Prometheus that scrapes poolwatch (http://HOST:9090)")
    token_file: Path = Field(description="file holding the bearer token callers must send")
    listen: Listen = listen_default("api")
    backend: Literal["kubernetes", "simulated"] = "kubernetes"
    kubeconfig: Path | None = None
    upgrade_command: str | None = None
    web_config_file: Path | None = None
