"""Pool families: one set of lines per Pool object, and one per pool's totals (nodes by status,
accelerators total/allocated/idle, fragments), which `aggregate.Aggregator` keeps current."""

from __future__ import annotations

from collections.abc import Iterable

from poolwatch.cluster.model import NodeStatus, Pool, PoolStatus

from ..aggregate import PoolTotals
from . import Sample, family, missing, odd_time, state_set

POOL_STATUSES = tuple(s.value for s in PoolStatus)
NODE_STATUSES = tuple(s.value for s in NodeStatus)


def check(pool: object) -> str | None:
    if not isinstance(pool, Pool):
        return "wrong_type"
    reason = missing(name=pool.name, uid=pool.uid)
    if reason:
        return reason
    if pool.status not in POOL_STATUSES:
        return "unknown_status"
    if not isinstance(pool.ha_spares, int) or pool.ha_spares < 0:
        return "negative_quantity"
    return odd_time(pool.created)


def _info(p: Pool) -> Iterable[Sample]:
    yield (
        p.name, p.uid, p.flavor, p.accelerator_resource, p.driver_version, p.workspace,
        ",".join(p.job_types),
    ), 1.0  # fmt: skip


def _created(p: Pool) -> Iterable[Sample]:
    if p.created > 0:
        yield (p.name,), float(p.created)


POOL = [
    family("poolwatch_pool_info", _info),
    family("poolwatch_pool_status", lambda p: state_set(p.status, POOL_STATUSES, (p.name,))),
    family("poolwatch_pool_created_timestamp_seconds", _created),
    family("poolwatch_pool_ha_spare_nodes", lambda p: [((p.name,), float(p.ha_spares))]),
]


def _nodes(t: PoolTotals) -> Iterable[Sample]:
    for status in NODE_STATUSES:
        yield (t.name, status), float(t.nodes.get(status, 0))


def _per_resource(attr: str):
    def samples(t: PoolTotals) -> Iterable[Sample]:
        figures = getattr(t, attr)
        for resource in t.resources():
            yield (t.name, resource), max(0.0, figures.get(resource, 0.0))

    return samples


def _fragments(t: PoolTotals) -> Iterable[Sample]:
    for resource in t.resources():
        for k in t.task_cards:
            yield (t.name, resource, str(k)), t.fragments.get((resource, k), 0.0)


TOTALS = [
    family("poolwatch_pool_nodes", _nodes),
    family("poolwatch_pool_accelerators", _per_resource("accelerators")),
    family("poolwatch_pool_accelerators_allocated", _per_resource("allocated")),
    family("poolwatch_pool_accelerators_idle", _per_resource("idle")),
    family("poolwatch_pool_accelerator_fragments", _fragments),
]
