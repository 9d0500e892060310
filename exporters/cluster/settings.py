"""The cluster exporter's configuration model (YAML keys, POOLWATCH_* variables and flags).

One name everywhere, as for the node exporter: YAML `events_kept` is `POOLWATCH_EVENTS_KEPT`.
The defaults fit a pool of GPU and Ascend nodes running Kubeflow or Volcano jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from poolwatch.core.config import Duration, Listen, comma_list
from poolwatch.core.ports import port
from poolwatch.core.vocabulary import ACCELERATOR_RESOURCES

from .generators.job import DEFAULT_KINDS

DEFAULT_PORT = port("cluster-exporter")


def _default_resources() -> list[str]:
    return list(ACCELERATOR_RESOURCES)  # the core vocabulary's, the same for every part


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
    health_interval: Duration = Field(1.0, gt=0)
    # longest wait before restarting a failed watch stream (doubling from 0.5 s)
    watch_backoff_max: Duration = Field(30.0, gt=0)

    @field_validator("accelerator_resources", "job_kinds", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return comma_list(value)
