"""Whether a training job may be restarted, from its fault-tolerance settings (MA-J-03..06).

The seed's rules (statuses-and-events.md section 5.4):
- `fault-tolerance/job-retry-num` = 1..128 is the job's restart budget; absent means 0: the job
  is never re-issued (MA-J-06). A job restarts while its restarts are below the budget.
- Without `fault-tolerance/job-unconditional-retry: "true"`, only environmental faults (the node
  under it was isolated, see failures.py) restart it; with it, any failure does, platform or
  the user's own, but at most 3 times in a row (MA-J-04): the seed's cap is on "unconditional
  restarts", and with the option on every restart is one.
- Restart upon suspension (a hung job, MA-J-02) is limited to 3 in a row as well (MA-J-05).
- A re-issued job is queued at the highest priority and gives up after 30 minutes (MA-J-03;
  the re-queue is tracked by the service).
A streak ends when the job has run `streak_reset` seconds since its last restart (the seed does
not say what ends one; a job that fails again within an hour of its restart is taken as the same
trouble).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poolwatch.cluster.model import TrainingJob
from poolwatch.core.vocabulary import RESTARTED_FROM_ANNOTATION

from .settings import ControllerSettings

Cause = Literal["fault", "hang", "requested"]
#: on a re-created job: how many times the controller restarted it, and the uid it replaced
#: replica restart policies under which a job operator re-creates one deleted pod by itself
#: (Kubeflow: OnFailure, Always, ExitCode); Never, or none set, fails the whole job instead
POD_RESTART_POLICIES = ("OnFailure", "Always", "ExitCode")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    detail: str
    total: int = 0  # the counts to record when allowed
    streak: int = 0
    hang_streak: int = 0


def decide(
    job: TrainingJob,
    cause: Cause,
    history: tuple[int, int, int, float],  # (total, streak, hang streak, last restart time)
    now: float,
    s: ControllerSettings,
) -> Decision:
    ann = dict(job.annotations)
    raw = ann.get(s.retry_annotation, "0").strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 128:
        return Decision(False, f"annotation {s.retry_annotation}={raw!r}: expected 1-128")
    budget = int(raw)
    if budget == 0:
        return Decision(False, f"auto restart is off ({s.retry_annotation} absent or 0, MA-J-06)")
    total, streak, hang, last = history
    if total >= budget:
        return Decision(False, f"restart budget used up ({total} of {budget}, MA-J-06)")
    if last and now - last >= s.streak_reset:
        streak = hang = 0
    unconditional = ann.get(s.unconditional_annotation, "").strip().lower() == "true"
    if cause == "fault" and not unconditional:  # environmental: within the budget only
        return Decision(True, f"restart {total + 1} of {budget} (platform fault)", total + 1, 0, 0)
    if cause == "hang":
        if ann.get(s.hang_annotation, "").strip().lower() != "true":
            return Decision(False, f"restart upon suspension is off ({s.hang_annotation} is not "
                                   "true, MA-J-05)")  # fmt: skip
        if hang >= s.hang_cap:
            return Decision(False, f"{hang} restarts upon suspension in a row (cap {s.hang_cap},"
                                   " MA-J-05)")  # fmt: skip
        return Decision(True, f"restart {total + 1} of {budget} (hung job, MA-J-02/05)",
                        total + 1, streak, hang + 1)  # fmt: skip
    if not unconditional:
        return Decision(False, f"not an environmental fault and {s.unconditional_annotation} is "
                               "not true (MA-J-04)")  # fmt: skip
    # unconditional: every failure restarts, platform or not ("regardless of the cause"), and
    # every such restart counts towards the cap of consecutive ones
    if streak >= s.unconditional_cap:
        return Decision(False, f"{streak} unconditional restarts in a row (cap "
                               f"{s.unconditional_cap}, MA-J-04)")  # fmt: skip
    what = "platform fault" if cause == "fault" else "unconditional"
    return Decision(True, f"restart {total + 1} of {budget} ({what}, {streak + 1} of "
                          f"{s.unconditional_cap} in a row, MA-J-04)",
                    total + 1, streak + 1, hang)  # fmt: skip


def copied_from(manifest: str) -> str:
    """The uid a saved job copy was made from (its `poolwatch.io/restarted-from`), or ""."""
    import json

    try:
        meta = json.loads(manifest).get("metadata") or {}
    except (ValueError, AttributeError):
        return ""
    return str((meta.get("annotations") or {}).get(RESTARTED_FROM_ANNOTATION, ""))


def cause_of(alertname: str, labels: dict[str, str]) -> Cause:
    """A restart-job action's cause: 'hang' for a hung-job rule (MA-J-02), else 'requested'."""
    if labels.get("cause") in ("fault", "hang", "requested"):
        return labels["cause"]  # type: ignore[return-value]
    low = alertname.lower()
    return "hang" if "hung" in low or "hang" in low or "suspen" in low else "requested"
