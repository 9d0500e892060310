"""Which pods are work that a node operation must wait for: a pure function of the model.

Why one place: releasing a node, deleting a pool and a secure driver upgrade all ask "does this
node run jobs?", and they must answer alike. Every node also runs DaemonSet pods (the NVIDIA or
Ascend device plugin, the node exporter, the CNI agent): they hold no accelerators and never end,
so counting them would make every real node look busy forever. Work is a live pod (not yet
Succeeded or Failed) bound to a node that belongs to a training job, or that holds accelerators
(an inference service, a notebook).
"""

from __future__ import annotations

from collections.abc import Iterable

from poolwatch.cluster.model import Pod

TERMINAL_PHASES = ("Succeeded", "Failed")
# the extended resources that are accelerators: NVIDIA (gpu, MIG slices), Huawei Ascend, AMD
ACCELERATOR_PREFIXES = (
    "nvidia.com/gpu",
    "nvidia.com/mig-",
    "huawei.com/Ascend",
    "huawei.com/npu",
    "amd.com/gpu",
)


def is_accelerator(resource: str) -> bool:
    return resource.startswith(ACCELERATOR_PREFIXES)


def holds_accelerators(pod: Pod) -> bool:
    return any(q > 0 and is_accelerator(r) for r, q in pod.requests)


def is_work(pod: Pod) -> bool:
    """A live pod on a node that is a training job's or holds accelerators."""
    return (
        bool(pod.node)
        and pod.phase not in TERMINAL_PHASES
        and (bool(pod.job) or holds_accelerators(pod))
    )


def busy_nodes(pods: Iterable[Pod]) -> dict[str, list[str]]:
    """node -> the work on it, as sorted "namespace/job" (the pod's name for a pod of no job)."""
    out: dict[str, set[str]] = {}
    for p in pods:
        if is_work(p):
            out.setdefault(p.node, set()).add(f"{p.namespace}/{p.job or p.name}")
    return {node: sorted(refs) for node, refs in out.items()}
