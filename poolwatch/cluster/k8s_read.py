"""Reading raw Kubernetes JSON safely: the readers, identities, times and quantities that every
converter (k8s_convert.py, k8s_jobs.py, k8s_podjobs.py) shares, and poolwatch's own names.

Pure functions over the dicts a list or watch answer holds (the client's generated models are
never built: see kubernetes.py). Whatever is missing or odd is handled the same way everywhere:

- an object without `metadata.name` or `metadata.uid`, or that is not a JSON object, cannot be
  tracked and raises `Odd`: the caller skips it and counts the reason;
- a field that is missing or of the wrong type reads as empty (no labels, no taints, no
  conditions): that is how the API itself omits empty fields, so it is not counted;
- a quantity that is garbage or negative is dropped from its map and counted through
  `Context.note` (reason, detail); the rest of the object is used.

Reasons are short and bounded ("node: unparsable quantity"); the detail names the object and the
value, for the one log line per reason.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from poolwatch.cluster.kubernetes.quantity import QuantityError, parse_quantity
from poolwatch.cluster.workload import ACCELERATOR_PREFIXES, is_accelerator  # noqa: F401 - re-exported

STATUS_LABEL = "poolwatch.io/status"  # the controller's node status (NodeStatus value)
FAULT_TAINT = "poolwatch.io/fault"  # the controller's isolation taint; value = fault code
POOL_LABEL = "poolwatch.io/pool"  # the default node label that names the pool
JOB_LABEL = "poolwatch.io/job"  # the default label that makes a plain pod a training job
OWNER_LABEL = "poolwatch.io/owner"  # the user who owns a job, where the submitter records it
# a pool created through the controller keeps its workspace and job types on its nodes (the
# pool exists through its nodes' labels, so these travel with it); job types joined with "."
WORKSPACE_LABEL = "poolwatch.io/workspace"
JOB_TYPES_LABEL = "poolwatch.io/job-types"
POOL_API_VERSION = "poolwatch.io/v1"  # involvedObject.apiVersion of poolwatch's pool events
# a Kubernetes label value: at most 63 characters, alphanumerics at both ends, "-_." inside
LABEL_VALUE = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

# what training controllers put on their pods, ahead of the configured job label and batch's own
KUBEFLOW_JOB_LABEL = "training.kubeflow.org/job-name"
VOLCANO_JOB_LABEL = "volcano.sh/job-name"
BATCH_JOB_LABELS = ("batch.kubernetes.io/job-name", "job-name")
QUEUE_LABELS = ("volcano.sh/queue-name", "kueue.x-k8s.io/queue-name")
FLAVOR_LABELS = ("nvidia.com/gpu.product", "accelerator", "node.kubernetes.io/instance-type")
_UID_NAMESPACE = uuid.UUID("4f0c1a6e-2d7b-5c3e-9a1f-8b6d0e2c4a57")  # for uids poolwatch derives

Note = Callable[[str, str], None]  # (reason, detail)


class Odd(ValueError):
    """An object that cannot be converted at all; `reason` is bounded, `detail` names it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Context:
    """What conversion needs beyond the object: settings, the counter, lookups in the caches."""

    pool_labels: tuple[str, ...] = (POOL_LABEL,)
    job_label: str = JOB_LABEL
    owner_label: str = OWNER_LABEL
    note: Note = field(default=lambda reason, detail: None)
    pool_of_node: Callable[[str], str] = field(default=lambda name: "")
    pool_of_job: Callable[[str, str], str] = field(default=lambda namespace, name: "")


def derived_uid(*parts: str) -> str:
    """A stable uid for an object poolwatch derives (a pool, a plain-pod job)."""
    return str(uuid.uuid5(_UID_NAMESPACE, "/".join(parts)))


# -- small readers -----------------------------------------------------------------------------
def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]...; None where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def str_map(value: Any) -> dict[str, str]:
    """Labels, annotations, a nodeSelector: string values only."""
    return {k: v for k, v in as_dict(value).items() if isinstance(v, str)}


def identity(raw: Any, what: str) -> tuple[dict[str, Any], str, str, str]:
    """(metadata, name, namespace, uid); raises Odd when the object cannot be tracked."""
    meta = dig(raw, "metadata")
    if not isinstance(meta, dict):
        raise Odd(f"{what}: no metadata", repr(raw)[:80])
    name, uid = meta.get("name"), meta.get("uid")
    if not isinstance(name, str) or not name or not isinstance(uid, str) or not uid:
        raise Odd(f"{what}: no metadata.name or metadata.uid", f"name={name!r} uid={uid!r}")
    return meta, name, as_str(meta.get("namespace")), uid


def timestamp(value: Any) -> float | None:
    """An RFC 3339 time ("2026-11-20T08:14:02Z", with or without fractions) -> unix seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def quantities(value: Any, what: str, note: Note) -> dict[str, float]:
    """A resource map {"cpu": "500m", ...} -> {"cpu": 0.5}; bad entries dropped and noted."""
    out: dict[str, float] = {}
    for resource, raw in as_dict(value).items():
        try:
            number = parse_quantity(raw)
        except QuantityError as err:
            note(f"{what}: unparsable quantity", f"{resource}: {err}")
            continue
        if number < 0:
            note(f"{what}: negative quantity", f"{resource}={raw!r}")
            continue
        out[resource] = number
    return out


def pairs(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(values.items()))


def first_label(labels: Mapping[str, str], keys: Iterable[str]) -> str:
    """The value of the first of `keys` set (non-empty) in `labels`, else ""."""
    return next((labels[k] for k in keys if labels.get(k)), "")


def pod_requests(spec: Any, what: str, note: Note) -> dict[str, float]:
    """What a pod spec asks the scheduler for: max(sum over containers, each init container),
    per resource, plus the pod overhead; a container's limits stand in for requests it does
    not state (the API server's defaulting does the same)."""

    def of(container: Any) -> dict[str, float]:
        res = as_dict(dig(container, "resources"))
        limits = quantities(res.get("limits"), what, note)
        return {**limits, **quantities(res.get("requests"), what, note)}

    total: Counter[str] = Counter()
    for container in as_list(dig(spec, "containers")):
        total.update(of(container))
    for container in as_list(dig(spec, "initContainers")):
        for resource, amount in of(container).items():
            total[resource] = max(total[resource], amount)
    total.update(quantities(dig(spec, "overhead"), what, note))
    return dict(total)
