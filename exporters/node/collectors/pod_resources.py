"""pod_resources: which container holds which accelerator (kubelet pod-resources API v1).

On its own interval (never on a scrape) the collector asks the kubelet's `List` over the unix
socket, keeps the devices whose resource name matches `resources`, and replaces the shared
`DeviceOwners` mapping (`attribution.pod_resources.shared_owners()`) that the accelerator collector
reads. It exports one `poolwatch_accelerator_allocation_info` per allocated device and container,
and `poolwatch_attribution_mode` (state set: pod-resources, cgroup, none).

Modes, logged at info when they change (never per run):
- pod-resources: the kubelet answered; the mapping is its answer.
- cgroup: no socket, or nothing listening on it (a node without the kubelet's pod-resources
  endpoint, a kubelet being restarted). Devices cannot be attributed without the kubelet, so the
  device mapping is emptied, but which host pid runs in which container still comes from
  `/proc/<pid>/cgroup` (`attribution.cgroup.PodIndex`).
- none: the kubelet is there but answered late (past the call's deadline) or with something that
  is not a ListPodResourcesResponse. The run is a PartialFailure (collector `up 0`, the error
  counted), and the mapping is *cleared*, not kept: a stale allocation served as fresh would charge
  a finished job's device to it.
The pid map (`DeviceOwners.replace_pids`) is refreshed on every run in every mode; in pod-resources
mode its keys are the mapping's owners, so `pids_of(owner)` finds the processes of a device holder.

training_job. Where a Kubernetes API is configured (`attribution.pod_labels`: a kubeconfig, or
the in-cluster service account), each run also lists this node's pods after the kubelet call, and a
pod's training job is the value of the first of `job_labels` it carries, else the name-based
derivation. The same `TrainingJobs` names the jobs of the mapping (and so of allocation_info and
the accelerator's container views) and of the cgroup fallback's owners. The list's outcome is
`poolwatch_attribution_pod_labels_up` (absent while no API is configured); a failing list drops
the labels (names take over) but is not a failure of the run: devices are still attributed.

The kubelet call's deadline is 80 % of the collector timeout, so a stalled kubelet ends the run
with the collector's own "no answer within" error before the runner gives up on it with a bare
"timed out". The pod list's request timeout is what is left of those 80 % (nearly all of it, the
kubelet answering in milliseconds), so the two calls fit in the run together; with less than
MIN_LIST_TIME left the list is not tried and counts as failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import Metric

from ..attribution.cgroup import PodIndex
from ..attribution.owners import DeviceOwners, Owner
from ..attribution.pod_labels import (
    PodLabels,
    TrainingJobs,
    pod_labels_source,
    shared_pod_labels,
)
from ..attribution.pod_resources import (
    KubeletError,
    KubeletUnavailable,
    allocations,
    device_mapping,
    list_pod_resources,
    shared_owners,
    training_job_of,
)
from ..collector import PartialFailure, families, register
from ..settings import NodeExporterSettings, PodResourcesSettings

log = logging.getLogger(__name__)
MODES = ("pod-resources", "cgroup", "none")
DEADLINE_SHARE = 0.8
MIN_LIST_TIME = 0.05  # below this, the pod list is not tried: it could not come back in time


class PodResourcesCollector:
    name = "pod_resources"

    def __init__(
        self,
        settings: PodResourcesSettings,
        index: PodIndex,
        owners: DeviceOwners | None = None,
        labels: PodLabels | None = None,
    ) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.socket = settings.socket
        self.patterns = tuple(settings.resources)
        self.index = index
        self.owners = owners if owners is not None else shared_owners()
        self.labels = labels if labels is not None else PodLabels()  # default: off
        self.jobs = TrainingJobs(self.labels, settings.job_labels)
        self._mode: str | None = None
        self._node_warned = False

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        problems: list[str] = []
        deadline = time.monotonic() + self.timeout * DEADLINE_SHARE
        response, failure = None, None
        try:
            response = list_pod_resources(self.socket, self.timeout * DEADLINE_SHARE)
        except (KubeletUnavailable, KubeletError) as err:
            failure = err
        self._refresh_labels(deadline, fams)  # first: the jobs of every owner made below
        if isinstance(failure, KubeletUnavailable):
            self.owners.replace({}, mode="cgroup")
            self._pids(problems, {})
            self._set_mode("cgroup", f"kubelet pod-resources unavailable: {failure}", fams)
        elif failure is not None:
            self.owners.replace({}, mode="none")
            self._pids(problems, {})
            self._set_mode("none", f"{failure}; device attribution cleared", fams)
            problems.insert(0, f"{failure}; device attribution cleared")
        elif response is not None:
            self._check_node(len(response.pod_resources))
            self._refresh_index(problems)  # first: the log directories give the pod uids
            allocs = allocations(response, self.patterns, self.index.names.uid_of, self.jobs)
            mapping = device_mapping(allocs)
            self.owners.replace(mapping, mode="pod-resources")
            self._pids(problems, mapping, refresh=False)
            self._set_mode("pod-resources", f"kubelet pod-resources at {self.socket}", fams)
            info = fams["poolwatch_accelerator_allocation_info"]
            for a in allocs:
                o = a.owner
                info.add_metric(
                    [a.resource, a.device_id, o.namespace, o.pod, o.container, o.training_job], 1
                )
        yield from fams.values()
        if problems:
            raise PartialFailure("; ".join(problems))

    def _refresh_labels(self, deadline: float, fams: dict[str, Metric]) -> None:
        """List this node's pods with what is left of the run's deadline (if a source is on)."""
        if not self.labels.enabled:
            return
        left = deadline - time.monotonic()
        if left < MIN_LIST_TIME:
            self.labels.fail(f"no time left in the run for the pod list ({left:.2f}s)")
        else:
            self.labels.refresh(left)
        fams["poolwatch_attribution_pod_labels_up"].add_metric([], 1 if self.labels.up else 0)

    def _check_node(self, kubelet_pods: int) -> None:
        """Say once when the API lists no pod on a node whose kubelet runs some: the likely cause
        is a node name that is not the Kubernetes node name (a hostname, say)."""
        if self.labels.up and kubelet_pods and not self.labels.pods and not self._node_warned:
            log.warning(
                "the Kubernetes API lists no pod on node %r, where the kubelet runs %d: "
                "is that the node's Kubernetes name? (set `node`, or NODE_NAME from spec.nodeName)",
                self.labels.node,
                kubelet_pods,
                extra={"collector": self.name},
            )
            self._node_warned = True

    def _refresh_index(self, problems: list[str]) -> bool:
        try:
            self.index.refresh()
        except OSError as err:
            problems.append(f"cannot list processes in {self.index.procfs}: {err}")
            return False
        return True

    def _pids(
        self, problems: list[str], mapping: dict[str, tuple[Owner, ...]], refresh: bool = True
    ) -> None:
        """Publish the pid map, keyed by the mapping's own Owner objects where the names agree."""
        if refresh and not self._refresh_index(problems):
            self.owners.replace_pids({})
            return
        pids = self.index.pids_by_owner()
        if mapping:
            named = {(o.namespace, o.pod, o.container): o for os_ in mapping.values() for o in os_}
            merged: dict[Owner, frozenset[int]] = {}
            for owner, ps in pids.items():
                key = named.get((owner.namespace, owner.pod, owner.container), owner)
                merged[key] = merged.get(key, frozenset()) | ps
            pids = merged
        self.owners.replace_pids(pids)

    def _set_mode(self, mode: str, why: str, fams: dict[str, Metric]) -> None:
        if mode != self._mode:
            log.info("pod attribution mode %s (%s)", mode, why, extra={"collector": self.name})
            self._mode = mode
        for m in MODES:
            fams["poolwatch_attribution_mode"].add_metric([m], 1 if m == mode else 0)


@register("pod_resources", lambda s: s.collectors.pod_resources)
def _factory(settings: NodeExporterSettings) -> PodResourcesCollector:
    cfg = settings.collectors.pod_resources
    labels = shared_pod_labels()  # shared: the container collector may name jobs from it too
    mode, loader, why = pod_labels_source(cfg.kubeconfig, cfg.job_labels)
    # labels expire after two intervals without a successful list (see attribution.pod_labels)
    labels.configure(settings.node_name(), loader, mode, max_age=2 * cfg.interval, why=why)
    rootfs = settings.roots.rootfs
    index = PodIndex(
        settings.roots.procfs,
        rootfs / "var/log/pods",
        rootfs / "var/log/containers",
        job_of=training_job_of,
        jobs=TrainingJobs(labels, cfg.job_labels),
    )
    return PodResourcesCollector(cfg, index, labels=labels)
