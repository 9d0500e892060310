"""Pools and nodes as the API shows them: ModelArts v2 `Pool` documents, node lists, pages.

The seed gives parameters, not response bodies (pool-api.md s7); the pool document borrows the
create-pool body's shape (apiVersion v2, kind Pool, metadata.labels `os.modelarts/name` and
`os.modelarts/workspace.id`, spec.type/scope/resources/driver) so what a caller sends to create a
pool and what it reads back have the same field names. poolwatch-only fields say so in their
names (`poolwatch.io/...` labels, `status.activity`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query

from poolwatch.cluster.model import Node, Pool, PoolStatus
from poolwatch.core import vocabulary

from .errors import ApiError

NAME_PATTERN = r"^[a-z]([a-z0-9-]*[a-z0-9])?$"  # seed 000:L166, 001:L1091
NAME_RULE = re.compile(NAME_PATTERN)
NAME_MAX = 63  # not in the seeds: a Kubernetes label value, which is where the name lives
FLAVOR_LABEL = "node.kubernetes.io/instance-type"
LABEL_NAME = "os.modelarts/name"
LABEL_WORKSPACE = "os.modelarts/workspace.id"
DEFAULT_WORKSPACE = "0"
PAGE_DEFAULT, PAGE_MAX = 50, 500  # not in the seeds (pool-api.md s3.2)
T = TypeVar("T")

#: the seed's list filter (`created`, `failed`, `creating`) for each pool status
PHASE = {
    PoolStatus.CREATING: "creating", PoolStatus.CREATION_FAILED: "failed",
    PoolStatus.RUNNING: "created", PoolStatus.ABNORMAL: "created",
    PoolStatus.CHANGE_FAILED: "created", PoolStatus.SUSPENDED: "created",
    PoolStatus.DELETING: "created",
}  # fmt: skip


def check_pool_name(name: str, parameter: str = "pool_name") -> str:
    if len(name) > NAME_MAX or not NAME_RULE.match(name):
        raise ApiError(400, "PW.0101",
                       f"{parameter}: {name[:80]!r} is not a pool name: only lowercase letters, "
                       "digits and hyphens, starting with a letter, not ending with a hyphen, "
                       f"at most {NAME_MAX} characters", parameter)  # fmt: skip
    return name


def workspace_of(pool: Pool) -> str:
    """The simulation and a label-less Kubernetes pool say "default"/"": the seed's default 0."""
    return pool.workspace if pool.workspace not in ("", "default") else DEFAULT_WORKSPACE


def pool_labels(pool: Pool) -> dict[str, str]:
    labels = dict(getattr(pool, "labels", ()) or ())
    labels |= {LABEL_NAME: pool.name, LABEL_WORKSPACE: workspace_of(pool)}
    if vendor := vocabulary.vendor_of(pool.accelerator_resource):
        labels[vocabulary.VENDOR_LABEL] = vendor
    return labels


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def pool_doc(pool: Pool, nodes: list[Node], activity: str | None) -> dict[str, Any]:
    mine = [n for n in nodes if n.pool == pool.name]
    flavors = Counter(dict(n.labels).get(FLAVOR_LABEL, pool.flavor) for n in mine)
    statuses = Counter(n.status.value for n in mine)
    gpu = vocabulary.vendor_of(pool.accelerator_resource) == "nvidia"
    driver_key = "gpuVersion" if gpu else "npuVersion"
    driver = {driver_key: pool.driver_version} if pool.accelerator_resource else {}
    return {
        "apiVersion": "v2",
        "kind": "Pool",
        "metadata": {"name": pool.name, "uid": pool.uid, "creationTimestamp": _iso(pool.created),
                     "labels": pool_labels(pool), "annotations": {}},
        "spec": {"type": "Dedicate", "scope": list(pool.job_types),
                 "resources": [{"flavor": f, "count": c} for f, c in sorted(flavors.items())],
                 "driver": driver, "haSpares": pool.ha_spares,
                 "acceleratorResource": pool.accelerator_resource, "model": pool.flavor},
        "status": {"phase": PHASE.get(pool.status, "created"), "status": pool.status.value,
                   "nodes": dict(sorted(statuses.items())), "activity": activity},
    }  # fmt: skip


def node_doc(node: Node, active_pods: int) -> dict[str, Any]:
    labels = dict(node.labels)
    return {
        "kind": "Node",
        "metadata": {"name": node.name, "uid": node.uid, "labels": labels},
        "spec": {"flavor": labels.get(FLAVOR_LABEL, ""), "unschedulable": node.unschedulable,
                 "taints": [{"key": k, "value": v, "effect": e} for k, v, e in node.taints]},
        "status": {"phase": node.status.value, "faultCode": node.fault_code,
                   "allocatable": dict(node.allocatable), "activePods": active_pods},
    }  # fmt: skip


def encode_continue(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_continue(token: str) -> str:
    """The node name a page ends with. Names, not offsets: a node that joins or leaves between
    two pages shifts nothing (Kubernetes' own continue tokens work the same way)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(400, "PW.0106", "continue: not a token this API handed out; "
                       "start again without it", "continue") from None  # fmt: skip
    if not isinstance(after, str):
        raise ApiError(400, "PW.0106", "continue: not a token this API handed out", "continue")
    return after


@dataclass(frozen=True)
class PageQuery:
    """A list call's page: at most `limit` items after the one the `continue` token names."""

    limit: int
    after: str


def page_query(
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    continue_: Annotated[str, Query(alias="continue", max_length=512)] = "",
) -> PageQuery:
    """The `limit` and `continue` query parameters every list call takes (a FastAPI dependency)."""
    return PageQuery(limit, decode_continue(continue_) if continue_ else "")


def paginate(
    kind: str, items: list[T], key: Callable[[T], str], page: PageQuery,
    doc: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """A Kubernetes-style list document of one page of `items` (sorted here by `key`)."""
    rest = [i for i in sorted(items, key=key) if key(i) > page.after]
    shown, more = rest[: page.limit], len(rest) > page.limit
    return {
        "kind": kind,
        "metadata": {"continue": encode_continue(key(shown[-1])) if more else "",
                     "remainingItemCount": len(rest) - len(shown)},
        "items": [doc(i) for i in shown],
    }  # fmt: skip
