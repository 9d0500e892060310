"""Settings of `poolwatch rules run` (the rule engine): one YAML file, then POOLWATCH_*
environment variables, then flags, like every poolwatch server (`poolwatch.core.config.load`).

Every flag of `rules run` is a key here with the same name (`--notify-url` is `notify_url`,
`POOLWATCH_NOTIFY_URL`); `files` are the rule files (the command's positional arguments) and
`targets` the repeated `--target`. `source` and `state` have no default: the engine must be told
where its samples come from and where it keeps its alert states.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from poolwatch.core.config import Duration, check_listen
from poolwatch.core.ports import listen as listen_default

from .compile import check_runbook_base


class RuleEngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="prometheus=URL, or local (scrape `targets` here)")
    state: Path = Field(description="SQLite file that keeps alert states across restarts")
    files: list[Path] = Field(default_factory=list, description="rule files (default: shipped)")
    overrides: Path | None = None
    runbook_base_url: str = ""
    targets: list[str] = Field(default_factory=list, description="local source: [JOB=]URL")
    scrape_interval: Duration = Field(15.0, gt=0)
    history: Duration = Field(25 * 3600.0, gt=0)
    notify_url: str | None = None
    notify_token_file: Path | None = None
    controller_url: str | None = None
    controller_token_file: Path | None = None
    interval: Duration = Field(30.0, gt=0)
    reminder_wait: Duration = Field(4 * 3600.0, gt=0)
    grace: Duration = Field(300.0, gt=0)
    timeout: Duration = Field(10.0, gt=0)
    listen: str = listen_default("rules")
    web_config_file: Path | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        """HOST:PORT, or `off` (or empty) to serve no pages and no /metrics."""
        return value if value in ("", "off") else check_listen(value)

    @field_validator("runbook_base_url")
    @classmethod
    def _runbook_base(cls, value: str) -> str:
        return check_runbook_base(value)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value != "local" and not value.startswith("prometheus="):
            raise ValueError(f"expected prometheus=URL or local, got {value!r}")
        return value
