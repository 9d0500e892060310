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

The call's deadline is 80 % of the collector timeout, so a stalled kubelet ends the run with the
collector's own "no answer within" error before the runner gives up on it with a bare "timed out".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import Metric

from ..attribution.cgroup import PodIndex
from ..attribution.owners import DeviceOwners, Owner
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


class PodResourcesCollector:
    name = "pod_resources"

    def __init__(
        self,
        settings: PodResourcesSettings,
        index: PodIndex,
        owners: DeviceOwners | None = None,
    ) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.socket = settings.socket
        self.patterns = tuple(settings.resources)
        self.index = index
        self.owners = owners if owners is not None else shared_owners()
        self._mode: str | None = None

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        problems: list[str] = []
        try:
            response = list_pod_resources(self.socket, self.timeout * DEADLINE_SHARE)
        except KubeletUnavailable as err:
            self.owners.replace({}, mode="cgroup")
            self._pids(problems, {})
            self._set_mode("cgroup", f"kubelet pod-resources unavailable: {err}", fams)
        except KubeletError as err:
            self.owners.replace({}, mode="none")
            self._pids(problems, {})
            self._set_mode("none", f"{err}; device attribution cleared", fams)
            problems.insert(0, f"{err}; device attribution cleared")
        else:
            self._refresh_index(problems)  # first: the log directories give the pod uids
            allocs = allocations(response, self.patterns, self.index.names.uid_of)
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
    rootfs = settings.roots.rootfs
    index = PodIndex(
        settings.roots.procfs,
        rootfs / "var/log/pods",
        rootfs / "var/log/containers",
        job_of=training_job_of,
    )
    return PodResourcesCollector(settings.collectors.pod_resources, index)
