"""The cluster exporter's configuration model (YAML keys, POOLWATCH_* variables and flags).

One name everywhere, as for the node exporter: YAML `events_kept` is `POOLWATCH_EVENTS_KEPT`.
The defaults fit a pool of GPU and Ascend nodes running Kubeflow or Volcano jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from poolwatch.core.config import Listen, parse_duration, split_listen

from .generators.job import DEFAULT_KINDS

PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
DEFAULT_PORT = 9477


def _default_resources() -> list[str]:
    return ["nvidia.com/gpu", "nvidia.com/mig-*", "huawei.com/Ascend*"]


class ClusterExporterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: Listen = f"0.0.0.0:{DEFAULT_PORT}"
    web_config_file: Path | None = None
    backend: Literal["kubernetes", "simulated"] = "kubernetes"
    # the Kubernetes backend's kubeconfig; unset, the in-cluster service account
    kubeconfig: Path | None = None
    # how many recent events /events keeps (the newest by time)
    events_kept: Annotated[int, Field(ge=0, le=100_000)] = 500
    # resource names counted as accelerators (fnmatch patterns), as the node exporter's
    accelerator_resources: list[str] = Field(default_factory=_default_resources, min_length=1)
    # task sizes (cards per task) for which pool fragments are reported; a 1-card task can use
    # any idle card, so sizes start at 2. 8 is a whole node of the seeds' flavors [004:L390].
    fragment_task_cards: list[Annotated[int, Field(ge=2, le=64)]] = Field(
        default_factory=lambda: [2, 4, 8], min_length=1
    )
    # TrainingJob kinds to accept; a job of another kind is skipped and counted
    job_kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_KINDS), min_length=1)
    # backend: PoolStatusChange/PoolResourcesStatusChange are the backend's (the simulated pool
    # emits them, and poolwatch's controller records them as Kubernetes events);
    # derive: the exporter derives them from pool and node changes, for a cluster where nothing
    # records them, and skips the backend's own of those reasons (counted, reason derived_here)
    pool_events: Literal["backend", "derive"] = "backend"
    # how often the backend's health is polled (a scrape never waits for it)
    health_interval: PositiveDuration = 1.0
    # longest wait before restarting a failed watch stream (doubling from 0.5 s)
    watch_backoff_max: PositiveDuration = 30.0

    @field_validator("accelerator_resources", "job_kinds", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def listen_address(self) -> tuple[str, int]:
        return split_listen(self.listen)
