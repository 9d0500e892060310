"""A job's hang detection time: the `MA_HANG_DETECT_TIME` environment variable of its containers.

ModelArts documents it as an environment variable of the training container: minutes of
unchanged process I/O after which a job is considered suspended, 10 to 720, default 30. So it is
read where a user sets it, from the `env` of the containers in the job's pod templates (a plain
pod's own spec); no label or annotation is read, so a job has one place to set it.

Decisions where the source says nothing: a value outside 10-720 is clamped to the nearest bound
(a job asking for 5 minutes gets 10, not the 30 it did not ask for); a value that is not a whole
number of minutes, or that comes from a reference (`valueFrom`: a ConfigMap or Secret the
exporter does not read), is ignored and the job keeps the default. Both are counted as odd
fields, and the first of each is logged with the job's name and the value. When containers
disagree the largest value wins: the job is called hung only once every container would say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from poolwatch.cluster.kubernetes.read import Note, as_list, dig

HANG_ENV = "MA_HANG_DETECT_TIME"
DEFAULT_MINUTES, MIN_MINUTES, MAX_MINUTES = 30, 10, 720


def hang_env_values(spec: Any) -> list[Any]:
    """The raw `MA_HANG_DETECT_TIME` entries (the env items) of a pod spec's containers."""
    return [
        env
        for container in as_list(dig(spec, "containers"))
        for env in as_list(dig(container, "env"))
        if dig(env, "name") == HANG_ENV
    ]


def hang_detect_minutes(entries: Iterable[Any], job: str, note: Note) -> int:
    """The job's detection time in minutes from its env entries; the default when none is usable."""
    found: list[int] = []
    for env in entries:
        raw = dig(env, "value")
        if raw is None:
            note(f"job: {HANG_ENV} from a reference, not read", f"{job}: valueFrom")
            continue
        try:
            minutes = int(str(raw).strip())
        except ValueError:
            note(f"job: {HANG_ENV} is not a whole number of minutes", f"{job}: {raw!r}")
            continue
        if not MIN_MINUTES <= minutes <= MAX_MINUTES:
            clamped = min(max(minutes, MIN_MINUTES), MAX_MINUTES)
            note(
                f"job: {HANG_ENV} outside {MIN_MINUTES}-{MAX_MINUTES} minutes, clamped",
                f"{job}: {minutes} -> {clamped}",
            )
            minutes = clamped
        found.append(minutes)
    return max(found, default=DEFAULT_MINUTES)
