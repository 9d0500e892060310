"""Catalog entries for pod attribution (`pod_resources`) and per-container resources (`container`).

`pod_resources` says which container holds which accelerator, from the kubelet's pod-resources API,
and which training job a pod belongs to, from its labels in the Kubernetes API (else its name);
the per-container views of those devices are the accelerator collector's (`accelerator.py`).
`container` reads cgroup v2 files of every Kubernetes container on the node.

Owner labels are `namespace`, `pod`, `container`, `training_job` (`training_job`, not `job`:
Prometheus owns `job` as a target label). Network counters belong to the pod's network namespace,
not to one container, so they carry `container=""`, are counted once per pod and are summed over
the pod's interfaces (lo aside), as the seed's per-container figures are; per-interface detail
would triple the series of a node with 200 pods for little use. Seed aliases are
the ModelArts container table (`ma_container_*`); its "MB" is MiB and its "KB" is KiB, as for the
node aliases in `node.py`.
"""

from __future__ import annotations

from poolwatch.core.catalog.model import KIB, MIB, MetricSpec
from poolwatch.core.catalog.model import family as _spec
from poolwatch.core.catalog.model import seed as _ma

OWNER = ("namespace", "pod", "container", "training_job")


_rate = {"transform": "rate"}
_rate_kb = {"transform": "rate", "scale": KIB}

# The tables below are data, aligned for reading; the formatter would put every argument on a line.
# fmt: off

# --- pod_resources: kubelet pod-resources API v1 (List), cgroup fallback ------------------------
POD_RESOURCES = [
    _spec("poolwatch_accelerator_allocation_info", "info", "",
          "A device the kubelet allocated to a container, value 1; device_id as the kubelet lists "
          "it (pod_resources, kubelet pod-resources List).",
          ("resource", "device_id", *OWNER), "pod_resources"),
    _spec("poolwatch_attribution_mode", "gauge", "",
          "How devices are attributed to pods: 1 for the mode in use (pod-resources, cgroup, "
          "none), 0 for the others (pod_resources, kubelet socket or /proc/<pid>/cgroup).",
          ("mode",), "pod_resources"),
    _spec("poolwatch_attribution_pod_labels_up", "gauge", "",
          "1 if the last list of this node's pods succeeded, 0 if it failed and training_job "
          "falls back to pod names; absent when no Kubernetes API is configured (pod_resources, "
          "Kubernetes API).",
          (), "pod_resources"),
]

# --- container: cgroup v2 files of each kubepods container, /proc/<pid>/net/dev -----------------
CONTAINER = [
    _spec("poolwatch_container_cpu_seconds_total", "counter", "seconds",
          "CPU time the container used (container, cgroup v2 cpu.stat usage_usec).", OWNER,
          "container"),
    _spec("poolwatch_container_cpu_used_cores", "gauge", "",
          "CPUs busy on average over the last collection interval (container, cgroup v2 "
          "cpu.stat).", OWNER, "container",
          _ma("ma_container_cpu_used_core", "Cores")),
    _spec("poolwatch_container_cpu_limit_cores", "gauge", "",
          "CPU limit, quota over period; absent without a limit (container, cgroup v2 cpu.max).",
          OWNER, "container",
          _ma("ma_container_cpu_limit_core", "Cores")),
    _spec("poolwatch_container_cpu_used_ratio", "gauge", "ratio",
          "CPUs used over the CPU limit, or over the CPU request when there is no limit (basis "
          "limit or request), 0-1 (may exceed 1); absent with neither (container, cgroup v2 "
          "cpu.stat and cpu.max, pod spec requests from the Kubernetes API).", (*OWNER, "basis"),
          "container",
          _ma("ma_container_cpu_util", "%", scale=100.0)),
    _spec("poolwatch_container_memory_used_bytes", "gauge", "bytes",
          "Working set: memory.current minus inactive_file, as kubelet and cAdvisor count it "
          "(container, cgroup v2 memory.current and memory.stat).", OWNER, "container",
          _ma("ma_container_memory_used_megabytes", "MB", scale=MIB)),
    _spec("poolwatch_container_memory_limit_bytes", "gauge", "bytes",
          "Memory limit; absent without a limit (container, cgroup v2 memory.max).", OWNER,
          "container",
          _ma("ma_container_memory_capacity_megabytes", "MB", scale=MIB)),
    _spec("poolwatch_container_memory_used_ratio", "gauge", "ratio",
          "Working set over the memory limit, or over the memory request when there is no limit "
          "(basis limit or request), 0-1 (may exceed 1 on a request); absent with neither "
          "(container, cgroup v2 memory.current, memory.stat and memory.max, pod spec requests "
          "from the Kubernetes API).", (*OWNER, "basis"), "container",
          _ma("ma_container_memory_util", "%", scale=100.0)),
    _spec("poolwatch_container_disk_read_bytes_total", "counter", "bytes",
          "Bytes read from block devices, summed over devices (container, cgroup v2 io.stat "
          "rbytes).", OWNER, "container",
          _ma("ma_container_disk_read_kilobytes", "KB/s", **_rate_kb)),
    _spec("poolwatch_container_disk_written_bytes_total", "counter", "bytes",
          "Bytes written to block devices, summed over devices (container, cgroup v2 io.stat "
          "wbytes).", OWNER, "container",
          _ma("ma_container_disk_write_kilobytes", "KB/s", **_rate_kb)),
    _spec("poolwatch_container_process_io_bytes_total", "counter", "bytes",
          "Bytes the container's processes passed to read and write calls, by direction read or "
          "write: every file system (local, NFS, page cache hits) and socket, summed over the "
          "processes alive now, so it drops when one exits (container, /proc/<pid>/io rchar and "
          "wchar).", (*OWNER, "direction"), "container"),
    _spec("poolwatch_container_network_receive_bytes_total", "counter", "bytes",
          "Bytes received by the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_receive_bytes", "Bytes/s", **_rate)),
    _spec("poolwatch_container_network_transmit_bytes_total", "counter", "bytes",
          "Bytes sent by the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_transmit_bytes", "Bytes/s", **_rate)),
    _spec("poolwatch_container_network_receive_packets_total", "counter", "",
          "Packets received by the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_receive_packets", "Packets/s", **_rate)),
    _spec("poolwatch_container_network_transmit_packets_total", "counter", "",
          "Packets sent by the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_transmit_packets", "Packets/s", **_rate)),
    _spec("poolwatch_container_network_receive_errors_total", "counter", "",
          "Receive errors on the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_receive_error_packets", "Packets/s", **_rate)),
    _spec("poolwatch_container_network_transmit_errors_total", "counter", "",
          "Transmit errors on the pod, over its interfaces but lo, container=\"\" (container, "
          "/proc/<pid>/net/dev of a process in the pod).", OWNER, "container",
          _ma("ma_container_network_transmit_error_packets", "Packets/s", **_rate)),
]
# fmt: on

CONTAINER_SPECS: list[MetricSpec] = [*POD_RESOURCES, *CONTAINER]
