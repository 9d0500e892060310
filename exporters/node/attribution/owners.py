"""The latest device -> owner mapping, shared by the attribution refresher and the accelerator
collector. The refresher replaces the whole mapping on its own schedule; readers never wait on the
kubelet, and a scrape never triggers a refresh."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    namespace: str
    pod: str
    container: str
    training_job: str = ""
    pod_uid: str = ""


def normalise(device_id: str) -> str:
    """Device ids as kubelets list them, reduced to one comparable form.

    NVIDIA's device plugin lists `GPU-<uuid>`, a bare `<uuid>`, `MIG-<uuid>`, or `<uuid>::<n>` for
    time-sliced replicas; Ascend's lists `Ascend910-0`. Comparison ignores case, a `GPU-` prefix
    and a `::n` replica suffix."""
    base = device_id.strip().split("::", 1)[0].lower()
    return base.removeprefix("gpu-")


class DeviceOwners:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_device: dict[str, tuple[Owner, ...]] = {}
        self._pids: dict[Owner, frozenset[int]] = {}
        self._by_pid: dict[int, Owner] = {}
        self.mode = "none"  # "pod-resources", "cgroup" or "none": how the mapping was made

    def replace_pids(self, pids: dict[Owner, frozenset[int]]) -> None:
        """The host pids running in each owner's container (from cgroup membership)."""
        by_pid = {pid: owner for owner, members in pids.items() for pid in members}
        with self._lock:
            self._pids, self._by_pid = dict(pids), by_pid

    def owner_of_pid(self, pid: int) -> Owner | None:
        with self._lock:
            return self._by_pid.get(pid)

    def pids_of(self, owner: Owner) -> frozenset[int]:
        with self._lock:
            return self._pids.get(owner, frozenset())

    def replace(self, mapping: dict[str, tuple[Owner, ...]], mode: str) -> None:
        normalised: dict[str, tuple[Owner, ...]] = {}
        for device_id, owners in mapping.items():
            key = normalise(device_id)
            normalised[key] = tuple(dict.fromkeys((*normalised.get(key, ()), *owners)))
        with self._lock:
            self._by_device, self.mode = normalised, mode

    def owners(self, ids: tuple[str, ...]) -> tuple[Owner, ...]:
        """Owners of a device known under any of `ids` (its UUID, aliases, ...)."""
        with self._lock:
            found: dict[Owner, None] = {}
            for device_id in ids:
                for owner in self._by_device.get(normalise(device_id), ()):
                    found[owner] = None
            return tuple(found)
