"""The controller's settings: the seeds' limits as defaults, every one of them configurable.

Loaded like every poolwatch config (YAML < POOLWATCH_* environment < flags, `poolwatch.config`);
the YAML section is the whole file (`poolwatch controller run --config controller.yaml`).
Seed ids name where each default comes from (`spec/seed-alarms.csv`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from poolwatch.core.config import check_listen, parse_duration
from poolwatch.core.fault_codes import CODE_FORMAT, FAULT_CODES

Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Ratio = Annotated[float, Field(gt=0, le=1)]
_CODE = r"^A\d{6}$"

#: isolation codes (FI-*) whose fault calls for a replacement from the HA spares: hardware that a
#: restart does not fix. Upgrade (A200001/A200002, FI-20/21), admission (A200008, FI-22), standby
#: (A050801, FI-18), unknown taint (A050802, FI-19) and failover (A050933, FI-23) isolate only.
REPLACE_CODES = (
    "A050101", "A050102", "A050103", "A050104", "A050148", "A050109", "A050147", "A050121",
    "A050122", "A050123", "A050129", "A050149", "A050951", "A050203", "A050206", "A050931",
    "A050932",
)  # fmt: skip
#: codes whose isolation leaves running jobs alone: a secure driver upgrade waits for them
KEEP_JOBS_CODES = ("A200001", "A200002", "A200008", "A050801")


def _codes(values: list[str]) -> list[str]:
    import re

    for v in values:
        if not re.match(_CODE, v):
            raise ValueError(f"{v!r} is not an isolation code (A followed by six digits)")
    return values


def _http_url(value: str | None) -> str | None:
    from urllib.parse import urlsplit

    if value is not None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value


class LeaseSettings(BaseModel):
    """Leader election on a coordination.k8s.io/v1 Lease (one active controller)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "poolwatch-controller"
    namespace: str = "default"
    duration: Duration = 15.0  # leaseDurationSeconds: a standby takes over after this
    renew: Duration = 5.0  # the leader renews this often
    identity: str = ""  # "" = hostname + pid


class ControllerSettings(BaseModel):
    """Everything `PoolController` and `poolwatch controller run` read."""

    model_config = ConfigDict(extra="forbid")
    dry_run: bool = True  # the seed's cordon_dry_run: log and notify, change nothing
    backend: Literal["kubernetes", "simulated"] = "kubernetes"
    kubeconfig: Path | None = None  # none: the in-cluster service account
    # loopback by default: the controller acts on nodes, and any other address needs a token
    listen: Annotated[str, AfterValidator(check_listen)] = "127.0.0.1:9482"
    token_file: Path | None = None  # bearer token for POST /actions; none: loopback only
    state_path: Path | None = None  # SQLite state; none: in memory (lost on restart)
    # --- notices and audit --------------------------------------------------------------------
    # the alerts receiver (or any Alertmanager-webhook endpoint) that gets the controller's
    # notices (NoSpare, BreakerOpen, ...); none: they reach the log only
    notify_url: Annotated[str | None, AfterValidator(_http_url)] = None
    notify_token_file: Path | None = None  # bearer token sent to notify_url
    notify_timeout: Duration = 10.0
    audit_retention: Annotated[int, Field(ge=100)] = 10_000  # audit records kept (newest)
    notice_retention: Annotated[int, Field(ge=10)] = 1_000  # delivered notices kept (newest)
    outbox_limit: Annotated[int, Field(ge=100)] = 10_000  # undelivered notices kept (newest)
    interval: Duration = 10.0  # one reconcile step this often
    # read-your-writes: how long a decision waits for the cluster view to show the controller's
    # own writes before it is refused (an action then answers `failed`: the engine re-sends it)
    view_timeout: Duration = 10.0
    # --- replacement limits (POL-01..03) ---------------------------------------------------
    replace_concurrent_ratio: Ratio = 0.05  # POL-02: nodes being replaced <= 5 % of the pool
    replace_daily_ratio: Ratio = 0.20  # POL-01: replacements per 24 h <= 20 % of the pool
    replace_min: Annotated[int, Field(ge=0)] = 1  # a small pool may still replace this many
    replace_timeout: Duration = 24 * 3600.0  # POL-03: not finished in 24 h -> Failed
    replace_codes: Annotated[list[str], AfterValidator(_codes)] = Field(
        default_factory=lambda: list(REPLACE_CODES)
    )
    keep_jobs_codes: Annotated[list[str], AfterValidator(_codes)] = Field(
        default_factory=lambda: list(KEEP_JOBS_CODES)
    )
    # --- circuit breaker --------------------------------------------------------------------
    breaker_ratio: Ratio = 0.20  # no isolation that would put more of a pool out than this
    breaker_cooldown: Duration = 600.0  # an open breaker closes after this, once below again
    # --- jobs (MA-J-03..06) -----------------------------------------------------------------
    retry_annotation: str = "fault-tolerance/job-retry-num"  # MA-J-06: 1-128, absent = 0
    unconditional_annotation: str = "fault-tolerance/job-unconditional-retry"  # MA-J-04
    unconditional_cap: Annotated[int, Field(ge=1)] = 3  # MA-J-04: consecutive restarts
    hang_cap: Annotated[int, Field(ge=1)] = 3  # MA-J-05: consecutive restarts upon suspension
    # MA-J-05 "Restart Upon Suspension" is opt-in per job: "true" on the job enables it
    hang_annotation: str = "fault-tolerance/restart-upon-suspension"
    streak_reset: Duration = 3600.0  # running this long after a restart ends a streak
    requeue_timeout: Duration = 1800.0  # MA-J-03: a re-issued job waiting 30 min gives up
    # MA-J-03 "queued with the highest priority": the PriorityClass a re-issued Kubeflow or
    # Volcano job's pods get on Kubernetes ("": the job is only annotated poolwatch.io/requeued)
    requeue_priority_class: str = ""
    lease: LeaseSettings = Field(default_factory=LeaseSettings)


def code_problem(code: str, settings: ControllerSettings) -> str | None:
    """Why `code` may not be set as an isolation code (None when it may). It becomes a taint
    value, a node event and a notice label, so only the known codes pass: the shared table's
    and any the settings add (replace_codes, keep_jobs_codes)."""
    if not CODE_FORMAT.fullmatch(code):
        return f"fault_code: expected A followed by six digits (A050104), got {code[:40]!r}"
    if code not in FAULT_CODES and code not in settings.replace_codes + settings.keep_jobs_codes:
        return f"fault_code: {code} is not a known isolation code"
    return None
