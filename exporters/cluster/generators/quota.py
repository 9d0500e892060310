"""Quota and virtual-cluster families: max, min and used per resource, in base units (cores,
bytes, devices), for ResourceQuotas, ElasticQuotaTree nodes and Volcano queues alike. They answer
the ACK "Quota(<resource>)" tables (Max/Min/Used Quota [002:L137-L142]) and the Apulis VC list
(DeviceNumber, MaxAvailable [004:L748-L784])."""

from __future__ import annotations

from collections.abc import Iterable

from poolwatch.cluster.model import Quota

from . import Sample, family, missing, odd_quantities


def key(q: Quota) -> str:
    """Quotas have no uid in the interface: kind, namespace and name identify one."""
    return f"{q.kind}/{q.namespace}/{q.name}"


def check(q: object) -> str | None:
    if not isinstance(q, Quota):
        return "wrong_type"
    reason = missing(name=q.name, kind=q.kind)
    if reason:
        return reason
    if not isinstance(q.namespace, str):
        return "missing_namespace"
    return odd_quantities(q.hard, q.min, q.used)


def _amounts(attr: str):
    def samples(q: Quota) -> Iterable[Sample]:
        for resource, amount in sorted(dict(getattr(q, attr)).items()):
            yield (q.namespace, q.name, q.kind, resource), float(amount)

    return samples


QUOTA = [
    family("poolwatch_quota_max", _amounts("hard")),
    family("poolwatch_quota_min", _amounts("min")),
    family("poolwatch_quota_used", _amounts("used")),
]
