"""container: CPU, memory, disk I/O and network of each Kubernetes container (cgroup v2).

Containers are found by a bounded walk of the kubepods hierarchy under the cgroup v2 mount and
named by `attribution.cgroup.PodNames` (the kubelet's log directories): a container whose names
cannot be resolved keeps its pod uid as `pod` (namespace "") and the first 12 characters of its id
as `container`; pod sandboxes (pause) are not reported. `training_job` is the pod's first
`job_labels` label where the Kubernetes API is configured (`attribution.pod_labels`, refreshed by
the pod_resources collector), else derived from the pod name (`pod_resources.training_job_of`).

Per container, from the files of its cgroup:
- CPU seconds from `cpu.stat` usage_usec; used cores = that counter's increase over the wall time
  since the previous collection (absent on a container's first collection); the limit from
  `cpu.max` (quota/period; absent when "max"), and used/limit.
- memory used = working set = `memory.current` minus `memory.stat` inactive_file (what the kubelet
  evicts on and cAdvisor reports as container_memory_working_set_bytes); the limit from
  `memory.max` (absent when "max"), and used/limit.
- A container without a CPU or memory limit (a request-only training pod) gets its ratio over
  what it applied for, its request in the pod spec (ModelArts' denominator), read from the same
  list of this node's pods that names training jobs (`attribution.pod_labels`); the ratios carry
  `basis="limit"` or `basis="request"`. With neither (no API configured, no request) the ratio
  is absent, as before.
- disk bytes read/written from `io.stat` rbytes/wbytes, summed over devices (absent when the io
  controller is not enabled for the container).
- process I/O: `rchar`/`wchar` of `/proc/<pid>/io`, summed over the container's processes: every
  byte passed to read and write calls, whatever is behind them (a local disk, NFS, the page
  cache, a pipe or socket read with read()/write()); socket recv/send calls, which most network
  clients use (object storage among them), are not counted, which is why the hang rule also
  reads the network counters. A process that exits takes its bytes with it (the sum drops, as a
  counter reset); a process whose file cannot be read (it exited, no permission) is left out,
  and with none readable the series is absent. The kernel lets a reader see another user's `io`
  only with CAP_SYS_PTRACE: an exporter running unprivileged (the chart's default) sees none,
  and the hang rule judges by the NFS, block and network counters alone.
- NFS bytes: what the container's processes read and wrote through NFS mounts, from
  `/proc/<pid>/mountstats` of its first process that answers (the mounts of the container's own
  mount namespace: its NFS volumes), the `bytes:` line's normal plus direct reads and writes,
  summed over its NFS mounts. The kernel counts these per NFS superblock, and pods that mount the
  same export with the same options share one: each of them is credited with the bytes of all
  (a mount shared with a busy job looks busy; nothing is credited to a container that does not
  mount it). The file is readable only by the process's owner or a reader that may bypass file
  permissions (root with DAC_READ_SEARCH, the chart's `runAsRoot`); an exporter that may not
  gets no bytes, but counts the container's NFS mounts from `/proc/<pid>/mountinfo`, which
  anyone may read, so the hang rule can tell "no NFS traffic" from "NFS traffic not visible".
  A container whose mount namespace is the host's is skipped (it would report every mount of
  the node).
Network counters belong to the pod's network namespace, which all its containers share, so they
are read once per pod from `/proc/<pid>/net/dev` of one of its processes (`lo` skipped) and carry
`container=""`. A pod in the host's network namespace (hostNetwork) would report the node's
interfaces, so its network is skipped, as it is when the namespaces cannot be compared (no access
to `/proc/<pid>/ns/net`).

Errors: a container whose cgroup disappears during the run (it exited) is skipped silently. A
required file (`cpu.stat`, `memory.current`, `memory.stat`) that is missing, or any file that does
not parse, drops that container's series for the run and makes the run a PartialFailure naming the
file; the other containers are still reported. A host without cgroup v2 (cgroup v1, or no
cgroup filesystem, as in a sandbox) has nothing this collector can read: it says so once in the log
and reports no series, like a node without GPUs; it stays `up 1`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import Metric

from ..attribution.cgroup import (
    CgroupRef,
    PodNames,
    container_cgroup_paths,
    is_pause,
    read_small,
)
from ..attribution.owners import Owner
from ..attribution.pod_labels import TrainingJobs, shared_pod_labels
from ..attribution.pod_resources import training_job_of
from ..collector import PartialFailure, families, register
from ..settings import ContainerSettings, NodeExporterSettings
from .host import parse_net_dev
from .nfs import nfs_bytes

log = logging.getLogger(__name__)
P = "poolwatch_container_"
_NET = {  # /proc/net/dev column -> family
    0: P + "network_receive_bytes_total",
    1: P + "network_receive_packets_total",
    2: P + "network_receive_errors_total",
    8: P + "network_transmit_bytes_total",
    9: P + "network_transmit_packets_total",
    10: P + "network_transmit_errors_total",
}


class CgroupFileError(Exception):
    """A cgroup file of a live container that is missing or does not parse."""


def parse_keyed(text: str) -> dict[str, int]:
    """`cpu.stat`, `memory.stat`: "key value" lines."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            out[key] = int(value)
    return out


def keyed_value(text: str, key: str) -> int | None:
    """The value of one `key` line of a "key value" file, without parsing the other lines
    (memory.stat has about forty; this runs for every container on every collection)."""
    at = -1
    while (at := text.find(key + " ", at + 1)) >= 0:
        if at == 0 or text[at - 1] == "\n":
            end = text.find("\n", at)
            return int(text[at + len(key) + 1 : end if end >= 0 else len(text)])
    return None


def parse_cpu_max(text: str) -> float | None:
    """`cpu.max` "200000 100000" -> 2.0 cores; "max 100000" -> None (no limit)."""
    quota, period = text.split()
    return None if quota == "max" else int(quota) / int(period)


def parse_max(text: str) -> float | None:
    """`memory.max`: bytes, or "max" -> None."""
    value = text.strip()
    return None if value == "max" else float(int(value))


def parse_io_stat(text: str) -> tuple[float, float]:
    """`io.stat` "253:0 rbytes=.. wbytes=.. rios=.." lines -> (read, written) bytes, all devices."""
    read = written = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        stats = dict(f.split("=", 1) for f in fields[1:])
        read += int(stats.get("rbytes", 0))
        written += int(stats.get("wbytes", 0))
    return float(read), float(written)


def _pids(cgroup: str) -> list[int]:
    try:
        return [int(p) for p in read_small(cgroup + "/cgroup.procs").split()]
    except (OSError, ValueError):
        return []


class ContainerCollector:
    name = "container"

    def __init__(
        self,
        settings: ContainerSettings,
        cgroupfs: Path,
        procfs: Path,
        names: PodNames,
        clock: Callable[[], float] = time.monotonic,
        max_dirs: int = 20_000,
        requests: Callable[[str, str, str], tuple[float | None, float | None]] | None = None,
    ) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.cgroupfs, self.procfs, self.names = cgroupfs, procfs, names
        self.clock, self.max_dirs = clock, max_dirs
        # (namespace, pod, container) -> (CPU cores, memory bytes) requested; (None, None) unknown
        self.requests: Callable[[str, str, str], tuple[float | None, float | None]] = requests or (
            lambda _ns, _pod, _c: (None, None)
        )
        self._prev: dict[str, tuple[float, float]] = {}  # cgroup -> (cpu seconds, clock)
        # cgroup -> is it a pod sandbox (pause)? Decided once per cgroup: a sandbox never
        # becomes a container nor the reverse, and the check costs a file read per cgroup
        self._sandbox: dict[str, bool] = {}
        self._said_no_v2 = False

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        if not (self.cgroupfs / "cgroup.controllers").is_file():
            if not self._said_no_v2:
                log.info("no cgroup v2 at %s: no per-container series", self.cgroupfs)
                self._said_no_v2 = True
            return
        problems: list[str] = []
        self.names.refresh()
        cgroups, truncated = container_cgroup_paths(str(self.cgroupfs), self.max_dirs)
        if truncated:
            problems.append(f"stopped walking {self.cgroupfs} after {self.max_dirs} directories")
        now, prev, self._prev = self.clock(), self._prev, {}
        sandbox, self._sandbox = self._sandbox, {}
        seen: set[tuple[str, ...]] = set()
        pod_pids: dict[str, list[int]] = {}
        host_mnt = _ns(str(self.procfs) + "/1", "mnt")
        for path, ref in cgroups:
            pids = _pids(path)
            pod_pids.setdefault(ref.pod_uid, []).extend(pids[:1])
            is_sandbox = sandbox.get(path)
            if is_sandbox is None and pids:
                is_sandbox = len(pids) == 1 and is_pause(self.procfs, pids[0])
            if is_sandbox is not None:
                self._sandbox[path] = is_sandbox
            if is_sandbox:
                continue  # the pod sandbox
            labels = _labels(self.names.owner(ref))
            if tuple(labels) in seen:  # a restarted container's old cgroup, a recreated pod
                log.debug("container %s: labels %s taken, skipped", path, labels)
                continue
            seen.add(tuple(labels))
            try:
                self._container(path, labels, fams, now, prev.get(path))
                self._process_io(pids, labels, fams)
                self._nfs(pids, labels, fams, problems, host_mnt)
            except CgroupFileError as err:
                if os.path.isdir(path):
                    problems.append(str(err))
        seen.clear()
        host_ns = _ns(str(self.procfs) + "/1")
        for uid, pids in sorted(pod_pids.items()):
            self._network(uid, pids, fams, problems, seen, host_ns)
        yield from fams.values()
        if problems:
            raise PartialFailure("; ".join(problems[:5]))

    def _read(self, cgroup: str, name: str, required: bool = True) -> str | None:
        try:
            return read_small(f"{cgroup}/{name}")
        except FileNotFoundError:
            if required:
                raise CgroupFileError(f"{cgroup}/{name}: missing") from None
            return None
        except OSError as err:
            raise CgroupFileError(f"{cgroup}/{name}: {err.strerror}") from None

    def _container(
        self,
        cg: str,
        labels: list[str],
        fams: dict[str, Metric],
        now: float,
        prev: tuple[float, float] | None,
    ) -> None:
        """Parse everything first, then add: a garbled file drops the container, not half of it."""
        values: list[tuple[str, float]] = []
        ratios: list[tuple[str, float, str]] = []  # (family, value, basis)
        name = "cpu.stat"
        try:
            usec = keyed_value(self._read(cg, name) or "", "usage_usec")
            if usec is None:
                raise KeyError("usage_usec")
            cpu = usec / 1e6
            name = "cpu.max"
            raw = self._read(cg, name, required=False)
            limit = parse_cpu_max(raw) if raw is not None else None
            name = "memory.current"
            current = float(int(self._read(cg, name) or ""))
            name = "memory.stat"
            inactive = keyed_value(self._read(cg, name) or "", "inactive_file") or 0
            name = "memory.max"
            raw = self._read(cg, name, required=False)
            mem_limit = parse_max(raw) if raw is not None else None
            name = "io.stat"
            raw = self._read(cg, name, required=False)
            io = parse_io_stat(raw) if raw is not None else None
        except (ValueError, KeyError) as err:
            raise CgroupFileError(
                f"{cg}/{name}: cannot parse ({type(err).__name__}: {err})"
            ) from None
        self._prev[cg] = (cpu, now)
        cpu_req, mem_req = (None, None) if limit and mem_limit else self.requests(*labels[:3])
        cpu_base, cpu_basis = (limit, "limit") if limit else (cpu_req, "request")
        values.append((P + "cpu_seconds_total", cpu))
        if prev is not None and now > prev[1] and cpu >= prev[0]:
            used = (cpu - prev[0]) / (now - prev[1])
            values.append((P + "cpu_used_cores", used))
            if cpu_base:
                ratios.append((P + "cpu_used_ratio", used / cpu_base, cpu_basis))
        if limit is not None:
            values.append((P + "cpu_limit_cores", limit))
        working_set = max(current - inactive, 0.0)
        values.append((P + "memory_used_bytes", working_set))
        if mem_limit is not None:
            values.append((P + "memory_limit_bytes", mem_limit))
        mem_base, mem_basis = (mem_limit, "limit") if mem_limit else (mem_req, "request")
        if mem_base:
            ratios.append((P + "memory_used_ratio", working_set / mem_base, mem_basis))
        if io is not None:
            values.append((P + "disk_read_bytes_total", io[0]))
            values.append((P + "disk_written_bytes_total", io[1]))
        for family, value in values:
            fams[family].add_metric(labels, value)
        for family, value, basis in ratios:
            fams[family].add_metric([*labels, basis], value)

    def _process_io(self, pids: list[int], labels: list[str], fams: dict[str, Metric]) -> None:
        read = written = 0
        seen = False
        for pid in pids:
            try:  # "rchar: 323934931\nwchar: 323929600\nsyscr: ..."
                text = read_small(f"{self.procfs}/{pid}/io")
                r, w = keyed_value(text, "rchar:"), keyed_value(text, "wchar:")
            except (OSError, ValueError):
                continue  # exited, no permission to read another user's process, or garbled
            if r is None or w is None:
                continue
            read, written, seen = read + r, written + w, True
        if seen:
            fams[P + "process_io_bytes_total"].add_metric([*labels, "read"], read)
            fams[P + "process_io_bytes_total"].add_metric([*labels, "write"], written)

    def _nfs(
        self,
        pids: list[int],
        labels: list[str],
        fams: dict[str, Metric],
        problems: list[str],
        host_mnt: str | None,
    ) -> None:
        """NFS bytes of the mounts the container sees, read through its first process that
        answers; a superblock mounted at several paths is counted once. Where mountstats is not
        ours to read, the world-readable mountinfo still says how many NFS mounts there are, so
        the hang rule knows it cannot see that container's NFS traffic."""
        for pid in pids:
            proc = f"{self.procfs}/{pid}"
            mnt = _ns(proc, "mnt")
            if mnt is not None and mnt == host_mnt:
                return  # the host's mount namespace: every NFS mount of the node
            try:
                text = read_small(proc + "/mountstats")
            except PermissionError:
                mounts = _nfs_mounts_of(proc)
                if mounts:
                    fams[P + "nfs_mounts"].add_metric(labels, mounts)
                return
            except OSError:
                continue  # the process exited; try the next
            if " fstype nfs" not in text:
                return  # no NFS mount: no series
            try:
                mounts = nfs_bytes(text)
            except ValueError as err:
                problems.append(f"{proc}/mountstats: cannot parse ({err})")
                return
            seen: set[tuple[str, tuple[int, ...]]] = set()
            read = written = 0
            for m in mounts:
                key = (m.export, tuple(m.bytes))
                if len(m.bytes) < 4 or key in seen:
                    continue
                seen.add(key)
                read += m.bytes[0] + m.bytes[2]
                written += m.bytes[1] + m.bytes[3]
            if seen:
                fams[P + "nfs_mounts"].add_metric(labels, len(seen))
                fams[P + "nfs_bytes_total"].add_metric([*labels, "read"], read)
                fams[P + "nfs_bytes_total"].add_metric([*labels, "write"], written)
            return

    def _network(
        self,
        uid: str,
        pids: list[int],
        fams: dict[str, Metric],
        problems: list[str],
        seen: set[tuple[str, ...]],
        host_ns: str | None,
    ) -> None:
        """The pod's interfaces, read through the first of its processes that is still there."""
        labels = _labels(self.names.owner(CgroupRef(uid, "")))
        if tuple(labels) in seen:
            return
        for pid in pids:
            proc = f"{self.procfs}/{pid}"
            ns = _ns(proc)
            if ns is None and not os.path.isdir(proc):
                continue  # the process exited; try the next
            if ns is None or host_ns is None or ns == host_ns:
                log.debug("pod %s: network namespace unknown or the host's; skipped", uid)
                return
            try:
                devices = parse_net_dev(read_small(proc + "/net/dev"))
            except OSError:
                continue  # the process exited; try the next
            except ValueError as err:
                problems.append(f"{proc}/net/dev: cannot parse ({err})")
                return
            seen.add(tuple(labels))
            totals = dict.fromkeys(_NET, 0.0)
            for dev, values in devices.items():
                if dev != "lo" and len(values) >= 11:
                    for column in _NET:
                        totals[column] += values[column]
            for column, family in _NET.items():
                fams[family].add_metric(labels, totals[column])
            return


def _nfs_mounts_of(proc: str) -> int:
    """NFS superblocks (distinct major:minor) in a process's mountinfo, which anyone may read:
    "36 35 0:52 / /data rw,relatime shared:1 - nfs4 10.0.0.1:/export rw,vers=4.1"."""
    try:
        text = read_small(proc + "/mountinfo")
    except OSError:
        return 0
    devices = set()
    for line in text.splitlines():
        fields, sep, rest = line.partition(" - ")
        parts = fields.split()
        if sep and len(parts) > 2 and rest.startswith("nfs"):
            devices.add(parts[2])
    return len(devices)


def _ns(proc: str, kind: str = "net") -> str | None:
    try:
        return os.readlink(f"{proc}/ns/{kind}")
    except OSError:
        return None


def _labels(owner: Owner) -> list[str]:
    return [owner.namespace, owner.pod, owner.container, owner.training_job]


@register("container", lambda s: s.collectors.container)
def _factory(settings: NodeExporterSettings) -> ContainerCollector:
    cfg = settings.collectors.container
    # an explicit `cgroupfs` wins; else the cgroup mount under the configured sysfs root, so a
    # DaemonSet that mounts the host's /sys at /host/sys reads the host's cgroups, not its own
    cgroupfs = (
        cfg.cgroupfs if "cgroupfs" in cfg.model_fields_set else settings.roots.sysfs / "fs/cgroup"
    )
    rootfs = settings.roots.rootfs
    # the same jobs the pod_resources collector gives the allocations: a pod label when the
    # Kubernetes API answers, else the pod name
    jobs = TrainingJobs(shared_pod_labels(), settings.collectors.pod_resources.job_labels)
    names = PodNames(
        rootfs / "var/log/pods", rootfs / "var/log/containers", training_job_of, jobs=jobs
    )
    return ContainerCollector(
        cfg, cgroupfs, settings.roots.procfs, names, requests=shared_pod_labels().requests_of
    )
