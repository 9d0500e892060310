"""Node-exporter-shaped metrics for simulated nodes, so the whole stack has data without hardware.

Every family comes from the catalog (`new_family`, identity labels node and pool first), so a rule
or panel that works on the simulation works on a real node exporter. Values follow the simulation:
- utilisation is high on devices whose job computes, zero when idle, creating, hung or stalled (a
  hung job keeps its memory, which is how it looks on a real GPU);
- a lost GPU shows `up 0` and health 3, and its other series go, as the real collector drops them;
- after an `ecc` fault the uncorrected and corrected counters climb every simulated minute and
  retired/isolated pages pass 64 (the seeds' A050104/A050951 thresholds);
- `npu_health` is health level 2 (Alarm); `cache_full` puts the cache disk and the kubelet data
  disk at 0.97 used;
  `kubelet_readonly` sets `poolwatch_filesystem_readonly` on the kubelet directory.
Pods get their node exporter's per-pod series too: poolwatch_container_accelerator_* mirror the
device they hold (allocated seconds count from the job's start, idle seconds while it is hung or
stalled), the cgroup CPU and memory follow the job's activity, and the I/O counters the hang rule
reads (process read/write, NFS, block devices, network; as an exporter run as root with
SYS_PTRACE sees them, each container with one NFS mount) grow at a steady per-pod rate while the
job runs and stop while it is hung or stalled: a stuck job's processes block, so they read and
write nothing, and its utilisation sits flat at 0 (the hang rule's "not computing"). A healed
hang goes on from the values it stopped at, so the counters never go back. Host CPU and memory
follow the node's busy devices; filesystems have sizes (a 3.5 TiB cache disk, a 480 GiB system
disk).
Reading metrics never draws from the simulation's random generator (that would change the
simulation); the small jitter is a hash of node, device and the 15 s slot of simulated time.

`exposition()` renders with `poolwatch.core.exposition.render`, the renderer the exporters use.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from poolwatch.cluster.simulated.nodeview import DeviceView, NodeView
from poolwatch.cluster.simulated.spec import PoolSpec, vendor_of
from poolwatch.core.catalog import new_family
from poolwatch.core.exposition import render

if TYPE_CHECKING:
    from poolwatch.cluster.simulated.backend import SimulatedCluster

MIB = 1048576.0
IDENTITY = ("node", "pool")
A = "poolwatch_accelerator_"
C = "poolwatch_container_accelerator_"
#: per-pod cgroup families: (name, value per pod) drawn from the pod's steady footprint
POD_FAMILIES = (
    "cpu_used_cores", "cpu_used_ratio", "memory_used_bytes", "memory_used_ratio",
    "network_receive_bytes_total", "network_transmit_bytes_total", "disk_read_bytes_total",
    "disk_written_bytes_total", "nfs_mounts",
)  # fmt: skip
#: per-container I/O counters by direction (read, write): bytes per second while the job runs
DIRECTED = {
    "process_io_bytes_total": (2.0e8, 3.0e7),  # rchar/wchar: dataset reads, logs, checkpoints
    "nfs_bytes_total": (1.2e8, 8.0e6),  # the dataset and checkpoint volume (SFS Turbo, NFS)
}
#: per-pod counters without direction: bytes per second while the job runs
RATES = {"network_receive_bytes_total": 4e8, "network_transmit_bytes_total": 3.5e8,
         "disk_read_bytes_total": 6e7, "disk_written_bytes_total": 1.5e7}  # fmt: skip
POD_CPUS, POD_MEMORY = 16.0, 256 * 1024 * MIB  # a training pod's CPU and memory limits
FAMILIES = (
    A + "info", A + "up", A + "health_level", A + "healthy", A + "utilization_ratio",
    A + "memory_total_bytes", A + "memory_used_bytes", A + "memory_free_bytes",
    A + "memory_used_ratio", A + "temperature_celsius", A + "power_watts", A + "ecc_errors_total",
    A + "retired_pages", A + "owners", "poolwatch_node_accelerators",
    "poolwatch_node_accelerators_idle", "poolwatch_accelerator_allocation_info",
    "poolwatch_filesystem_used_ratio", "poolwatch_filesystem_readonly", "poolwatch_collector_up",
    "poolwatch_filesystem_size_bytes", "poolwatch_filesystem_available_bytes",
    "poolwatch_node_cpu_used_ratio", "poolwatch_node_memory_used_ratio",
    "poolwatch_node_network_receive_bytes_total", "poolwatch_node_network_transmit_bytes_total",
    *(C + n for n in ("utilization_ratio", "memory_used_bytes", "memory_total_bytes",
                      "memory_used_ratio", "allocated_seconds_total", "idle_seconds_total")),
    *("poolwatch_container_" + n for n in (*POD_FAMILIES, *DIRECTED)),
)  # fmt: skip
COLLECTORS = ("accelerator", "filesystem", "pod_resources")
MEMORY = {"nvidia": 81559 * MIB, "huawei": 65536 * MIB}  # H100 80GB as NVML reports it; 910B3 HBM
POWER = {"nvidia": (70.0, 650.0), "huawei": (95.0, 340.0)}  # watts idle, fully busy
CACHE = ("/cache", "cache", "/cache", "ext4")
KUBELET = ("/var/lib/kubelet", "kubelet", "/var/lib/kubelet", "ext4")
CACHE_BYTES, KUBELET_BYTES = 3.5 * 2**40, 480 * 2**30  # a local NVMe cache disk, the system disk


def node_families(cluster: SimulatedCluster, node_name: str) -> list[Metric]:
    """The families one simulated node's exporter would serve (empty ones left out)."""
    return _families(cluster, [node_name])


def exposition(cluster: SimulatedCluster) -> bytes:
    """Text exposition of every simulated node, one block per family."""
    return render(_families(cluster, [n.name for n in cluster.nodes()]))


def _families(cluster: SimulatedCluster, names: Iterable[str]) -> list[Metric]:
    fams = {name: new_family(name, IDENTITY) for name in FAMILIES}
    pools = {p.name: p for p in cluster.spec.pools}
    for name in names:
        view = cluster.node_view(name)
        if view.pool in pools:  # a free node (in no pool) is not simulated as monitored
            _node(view, pools[view.pool], fams)
    return [f for f in fams.values() if f.samples]


def _jitter(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for these parts."""
    return zlib.crc32("/".join(map(str, parts)).encode()) / 2**32


def _node(view: NodeView, pool: PoolSpec, fams: dict[str, Metric]) -> None:
    ident = [view.name, view.pool]
    vendor = vendor_of(view.resource)
    up = idle = 0
    for dev in view.devices:
        answered = _device(view, pool, dev, fams)
        up += answered
        idle += answered and dev.owner is None
        if dev.owner is not None:
            ns, pod, container, job = dev.owner
            device_id = dev.uuid if vendor == "nvidia" else f"Ascend910-{dev.index}"
            fams[A + "allocation_info"].add_metric(
                [*ident, view.resource, device_id, ns, pod, container, job], 1
            )
    _host(view, fams)
    _pods(view, fams)
    fams["poolwatch_node_accelerators"].add_metric([*ident, vendor], up)
    fams["poolwatch_node_accelerators_idle"].add_metric([*ident, vendor], idle)
    faults = dict(view.faults)
    base = 0.25 + 0.3 * _jitter(view.name, "cache")
    cache_used = 0.97 if "cache_full" in faults else base
    kubelet_used = 0.97 if "cache_full" in faults else 0.1 + 0.2 * _jitter(view.name, "kubelet")
    for labels, used, readonly, size in (
        (CACHE, cache_used, 0, CACHE_BYTES),
        (KUBELET, kubelet_used, 1 if "kubelet_readonly" in faults else 0, KUBELET_BYTES),
    ):
        fams["poolwatch_filesystem_used_ratio"].add_metric([*ident, *labels], used)
        fams["poolwatch_filesystem_readonly"].add_metric([*ident, *labels], readonly)
        fams["poolwatch_filesystem_size_bytes"].add_metric([*ident, *labels], size)
        fams["poolwatch_filesystem_available_bytes"].add_metric([*ident, *labels],
                                                                size * (1 - used))  # fmt: skip
    for collector in COLLECTORS:
        fams["poolwatch_collector_up"].add_metric([*ident, collector], 1)


def _device(view: NodeView, pool: PoolSpec, dev: DeviceView, fams: dict[str, Metric]) -> bool:
    """Render one device; False when it does not answer (lost)."""
    vendor = vendor_of(view.resource)
    faults = dict(dev.faults)
    labels = [view.name, view.pool, vendor, view.model, str(dev.index), dev.uuid]
    bus_id = f"0000:{0x18 + dev.index:02x}:00.0"
    fams[A + "info"].add_metric([*labels, "", bus_id, pool.driver_version, ""], 1)
    lost = "gpu_lost" in faults
    fams[A + "up"].add_metric(labels, 0 if lost else 1)
    health = 3 if lost else 2 if "npu_health" in faults else 0
    fams[A + "health_level"].add_metric(labels, health)
    fams[A + "healthy"].add_metric(labels, 1 if health == 0 else 0)
    if lost:
        return False
    slot = int(view.now // 15)
    wiggle = _jitter(view.name, dev.index, slot)
    util = 0.85 + 0.14 * wiggle if dev.activity == "busy" else 0.0
    total = MEMORY[vendor]
    share = 0.6 + 0.3 * _jitter(view.name, dev.index)  # a job's footprint, steady while it runs
    share = {"idle": 0.0, "creating": 0.02}.get(dev.activity, share)
    idle_w, busy_w = POWER[vendor]
    fams[A + "utilization_ratio"].add_metric(labels, util)
    fams[A + "memory_total_bytes"].add_metric(labels, total)
    fams[A + "memory_used_bytes"].add_metric(labels, total * share)
    fams[A + "memory_free_bytes"].add_metric(labels, total * (1 - share))
    fams[A + "memory_used_ratio"].add_metric(labels, share)
    fams[A + "temperature_celsius"].add_metric(labels, round(32 + 40 * util + 3 * wiggle, 1))
    fams[A + "power_watts"].add_metric(labels, round(idle_w + (busy_w - idle_w) * util, 1))
    hit = "ecc" in faults
    minutes = int((view.now - faults["ecc"]) // 60) if hit else 0
    counts = (("corrected", 8 + 4 * minutes), ("uncorrected", 1 + minutes)) if hit else (
        ("corrected", 0), ("uncorrected", 0))  # fmt: skip
    for error, count in counts:
        for scope in ("volatile", "aggregate"):
            fams[A + "ecc_errors_total"].add_metric([*labels, error, scope], count)
    single, double = (1, 64 + min(minutes, 16)) if hit else (0, 0)
    fams[A + "retired_pages"].add_metric([*labels, "single_bit"], single)
    fams[A + "retired_pages"].add_metric([*labels, "double_bit"], double)
    fams[A + "owners"].add_metric(labels, 0 if dev.owner is None else 1)
    if dev.owner is not None:
        held = [view.name, view.pool, *dev.owner, *labels[2:]]
        fams[C + "utilization_ratio"].add_metric(held, util)
        fams[C + "memory_used_bytes"].add_metric(held, total * share)
        fams[C + "memory_total_bytes"].add_metric(held, total)
        fams[C + "memory_used_ratio"].add_metric(held, share)
        fams[C + "allocated_seconds_total"].add_metric(held, max(0.0, view.now - dev.held_since))
        fams[C + "idle_seconds_total"].add_metric(held, dev.quiet)
    return True


def _host(view: NodeView, fams: dict[str, Metric]) -> None:
    """Host CPU and memory: a base load plus what the node's busy devices' jobs draw."""
    busy = sum(d.activity == "busy" for d in view.devices) / max(1, len(view.devices))
    held = sum(d.owner is not None for d in view.devices) / max(1, len(view.devices))
    ident = [view.name, view.pool]
    fams["poolwatch_node_cpu_used_ratio"].add_metric(ident, 0.03 + 0.6 * busy)
    fams["poolwatch_node_memory_used_ratio"].add_metric(ident, 0.08 + 0.5 * held)
    # the host NIC: a steady per-node rate since the epoch of the simulation, so the counter only
    # ever rises (the pods' own traffic is in their cgroup counters)
    for name, rate in (("receive", 2.0e7), ("transmit", 1.5e7)):
        value = rate * (0.5 + _jitter(view.name, name)) * max(0.0, view.now)
        fams[f"poolwatch_node_network_{name}_bytes_total"].add_metric([*ident, "eth0"], value)


def _pods(view: NodeView, fams: dict[str, Metric]) -> None:
    """Each pod's cgroup readings, once per pod; counters grow at a steady per-pod rate over the
    time the job has run and not been stuck, so they rise while it works, stay flat while it is
    hung or stalled, and never go back while the pod lives (a restarted job is a new pod)."""
    seen: dict[tuple[str, str, str, str], DeviceView] = {}
    for d in view.devices:
        if d.owner is not None:
            seen.setdefault(d.owner, d)
    for owner, dev in seen.items():
        ident = [view.name, view.pool, *owner]
        busy = 1.0 if dev.activity == "busy" else 0.05
        cores = POD_CPUS * (0.2 + 0.6 * busy * (0.8 + 0.2 * _jitter(*owner, "cpu")))
        memory = POD_MEMORY * (0.3 + 0.4 * _jitter(*owner, "mem"))
        worked = max(0.0, view.now - dev.held_since - dev.quiet)  # seconds it did I/O
        counters = {k: r * (0.5 + _jitter(*owner, k)) * worked for k, r in RATES.items()}
        values = {"cpu_used_cores": cores, "cpu_used_ratio": cores / POD_CPUS,
                  "memory_used_bytes": memory, "memory_used_ratio": memory / POD_MEMORY,
                  "nfs_mounts": 1.0, **counters}  # fmt: skip
        for name in POD_FAMILIES:
            # the simulated pods have limits: the ratios are over them (basis="limit")
            extra = ["limit"] if name.endswith("_ratio") else []
            # a pod's network belongs to the pod, not to one of its containers: the exporter
            # serves it with container="" (its network namespace is shared by all of them)
            who = [*ident[:4], "", *ident[5:]] if name.startswith("network_") else ident
            fams["poolwatch_container_" + name].add_metric([*who, *extra], values[name])
        for name, pair in DIRECTED.items():
            for direction, rate in zip(("read", "write"), pair, strict=True):
                value = rate * (0.5 + _jitter(*owner, name, direction)) * worked
                fams["poolwatch_container_" + name].add_metric([*ident, direction], value)
