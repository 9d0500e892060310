"""Device allocations from the kubelet's pod-resources API (v1 `List`), and training-job names.

The kubelet answers `List` on a unix socket with every pod's containers and the device ids their
device plugins allocated (`nvidia.com/gpu` -> `GPU-<uuid>`, `<uuid>::<n>` for time-sliced
replicas, `MIG-<uuid>`; `huawei.com/Ascend910` -> `Ascend910-0`). `list_pod_resources` makes one
call with a deadline and turns every failure into one of two typed errors: `KubeletUnavailable`
(no socket, or nobody listening: the caller falls back to cgroup attribution) and `KubeletError`
(the kubelet is there but its answer is late or unusable).

training_job. The pod-resources API carries no pod labels. The job comes from a pod label where
the Kubernetes API is reachable (`attribution.pod_labels`: the first of
`collectors.pod_resources.job_labels` the pod carries), passed to `allocations` as `job_of`. Where
it is not (no API configured, the API failing, a pod not listed yet, a pod without any of those
labels), `training_job_of` derives the job from the pod name by the controllers' naming
conventions, first match:
1. Kubeflow training operator: `<job>-{master,worker,ps,chief,evaluator}-<n>`;
2. MPIJob launcher: `<job>-launcher`, or `<job>-launcher-<5 chars>` when it runs as a batch Job;
3. indexed batch/v1 Job: `<job>-<index>-<5 chars>`;
4. Volcano vcjob: `<job>-<task>-<n>` (a one-segment task name);
5. batch/v1 Job: `<job>-<5 chars>`, unless `<job>` ends in a Deployment's pod-template-hash;
otherwise "". "<5 chars>" is the apiserver's generateName suffix alphabet (no vowels, no 0/1/3),
which is also how a ReplicaSet's pods (`<deployment>-<hash>-<5 chars>`) are told apart and left
out. Known ambiguities of names, accepted: a StatefulSet whose name has a dash (`triton-server-0`)
reads as Volcano job `triton`, and a DaemonSet or bare generateName pod (`kube-proxy-x7k2p`) reads
as Job `kube-proxy`, with or without the API (their pods carry no job label). Such pods seldom hold
accelerators.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poolwatch.core.vocabulary import is_accelerator

from .owners import DeviceOwners, Owner

if TYPE_CHECKING:
    from .podresources import api_pb2

MAX_MESSAGE = 16 * 1024 * 1024  # the kubelet's own pod-resources client allows 16 MiB

_SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]"  # k8s.io/apimachinery util/rand alphabet
_JOB_PATTERNS = [
    re.compile(r"(?P<job>.+)-(?:master|worker|ps|chief|evaluator)-\d+"),
    re.compile(rf"(?P<job>.+)-launcher(?:-{_SUFFIX}{{5}})?"),
    re.compile(rf"(?P<job>.+)-\d+-{_SUFFIX}{{5}}"),
    re.compile(r"(?P<job>.+)-[a-z0-9]+-\d+"),
    re.compile(rf"(?P<job>.+)-{_SUFFIX}{{5}}"),
]
_POD_TEMPLATE_HASH = re.compile(rf".+-{_SUFFIX}{{6,10}}")

_SHARED = DeviceOwners()


def shared_owners() -> DeviceOwners:
    """The process-wide device -> owner mapping: pod_resources writes it, accelerator reads it."""
    return _SHARED


def training_job_of(pod: str) -> str:
    """The training job a pod belongs to, from its name (see the module docstring); "" if none."""
    for pattern in _JOB_PATTERNS:
        m = pattern.fullmatch(pod)
        if m is None:
            continue
        job = m.group("job")
        if pattern is _JOB_PATTERNS[-1] and _POD_TEMPLATE_HASH.fullmatch(job):
            return ""  # <deployment>-<pod-template-hash>-<suffix>: a ReplicaSet's pod
        return job
    return ""


class KubeletUnavailable(Exception):
    """No pod-resources socket, or nothing listening on it."""


class KubeletError(Exception):
    """The kubelet is there, but its answer is late, refused or not a ListPodResourcesResponse."""


def list_pod_resources(socket: Path, deadline: float) -> api_pb2.ListPodResourcesResponse:
    """One `List` call over `unix://<socket>`, abandoned after `deadline` seconds.

    gRPC and the generated messages are imported here, on the first call, not with the module:
    they add about 22 MB to the process, and a node exporter whose pod-resources collector is
    off (a node without accelerators) never needs them."""
    import grpc

    from .podresources import api_pb2, api_pb2_grpc

    if not socket.exists():
        raise KubeletUnavailable(f"{socket} does not exist")
    channel = grpc.insecure_channel(
        f"unix://{socket.absolute()}",
        options=[("grpc.max_receive_message_length", MAX_MESSAGE)],
    )
    try:
        stub = api_pb2_grpc.PodResourcesListerStub(channel)
        return stub.List(api_pb2.ListPodResourcesRequest(), timeout=deadline)
    except grpc.RpcError as err:
        code, details = err.code(), err.details()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.UNAVAILABLE:
            raise KubeletUnavailable(f"{socket}: {details}") from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise KubeletError(
                f"kubelet List on {socket}: no answer within {deadline:g}s"
            ) from None
        raise KubeletError(f"kubelet List on {socket}: {code.name}: {details}") from None
    finally:
        channel.close()


@dataclass(frozen=True)
class Allocation:
    resource: str
    device_id: str  # as the kubelet lists it (DeviceOwners normalises for lookups)
    owner: Owner


def allocations(
    response: api_pb2.ListPodResourcesResponse,
    patterns: tuple[str, ...],
    uid_of: Callable[[str, str], str] = lambda _namespace, _pod: "",
    job_of: Callable[[str, str], str] = lambda _namespace, pod: training_job_of(pod),
) -> list[Allocation]:
    """Allocated devices whose resource name matches one of `patterns` (fnmatch, case-sensitive;
    `vocabulary.is_accelerator`),
    in the kubelet's order, without repeats. `uid_of` fills Owner.pod_uid where known; `job_of`
    (namespace, pod) gives Owner.training_job (by default from the pod name)."""
    out: dict[Allocation, None] = {}
    for pod in response.pod_resources:
        uid = uid_of(pod.namespace, pod.name)
        job = job_of(pod.namespace, pod.name)
        for container in pod.containers:
            owner = Owner(pod.namespace, pod.name, container.name, job, uid)
            for devices in container.devices:
                if not is_accelerator(devices.resource_name, patterns):
                    continue
                for device_id in devices.device_ids:
                    if device_id.strip():
                        out[Allocation(devices.resource_name, device_id, owner)] = None
    return list(out)


def device_mapping(allocs: list[Allocation]) -> dict[str, tuple[Owner, ...]]:
    """device id -> owners, the shape `DeviceOwners.replace` takes."""
    mapping: dict[str, dict[Owner, None]] = {}
    for a in allocs:
        mapping.setdefault(a.device_id, {})[a.owner] = None
    return {device_id: tuple(owners) for device_id, owners in mapping.items()}
