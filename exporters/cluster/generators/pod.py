"""Pods: no families of their own. A pod's accelerator requests, while it is bound and holds them,
feed its node's `..._accelerators_allocated` and its pool's totals (`aggregate.Aggregator`);
job <-> pod <-> device joins go through the node exporter's `poolwatch_accelerator_allocation_info`
(namespace, pod, training_job), which carries the same `namespace` and `training_job` labels as
`poolwatch_training_job_info`."""

from __future__ import annotations

from poolwatch.cluster.model import Pod

from ..aggregate import POD_PHASES
from . import FamilyGen, missing, odd_quantities

POD: list[FamilyGen] = []


def check(pod: object) -> str | None:
    if not isinstance(pod, Pod):
        return "wrong_type"
    reason = missing(name=pod.name, namespace=pod.namespace, uid=pod.uid)
    if reason:
        return reason
    if pod.phase not in POD_PHASES:
        return "unknown_phase"
    return odd_quantities(pod.requests)
