"""Catalog entries of the node exporter: collector health, host, filesystems, cache dirs, IB, NFS.

Seed aliases are declared next to the canonical family they derive from; the seed row each one
answers is in `../shared/spec/seed-metrics.csv` (ModelArts AOM tables 11-2/11-3, 4-4/4-5).
"MB" in the seeds is taken as MiB (2^20 bytes) and "KB" as KiB, as Linux tools print them.
"""

from __future__ import annotations

from poolwatch.core.catalog.model import KIB, MIB, Alias, MetricSpec
from poolwatch.core.catalog.model import family as _spec
from poolwatch.core.catalog.model import seed as _ma

USER_HZ = 100.0  # jiffies per second in /proc/stat on every Linux build we target (CLK_TCK)


# The tables below are data, aligned for reading; the formatter would put every argument on a line.
# fmt: off

# --- the runner's own health series, one set per collector -------------------------------------
RUNNER = [
    _spec("poolwatch_collector_up", "gauge", "",
          "1 if the collector's last run succeeded within its timeout, else 0 (runner).",
          ("collector",), "runner"),
    _spec("poolwatch_collector_duration_seconds", "gauge", "seconds",
          "Wall time of the collector's last run (runner).", ("collector",), "runner"),
    _spec("poolwatch_collector_last_success_timestamp_seconds", "gauge", "seconds",
          "Unix time of the collector's last successful run (runner).", ("collector",), "runner"),
    _spec("poolwatch_collector_errors_total", "counter", "",
          "Failed, partial or timed-out runs of the collector (runner).", ("collector",), "runner"),
]

# --- host: /proc/stat, /proc/meminfo, /proc/net/dev, /proc/diskstats ---------------------------
_rate_kb = {"transform": "rate", "scale": KIB}
HOST = [
    _spec("poolwatch_node_cpu_cores", "gauge", "", "Logical CPUs online (host, /proc/stat).", (),
          "host", _ma("ma_node_cpu_limit_core", "Cores")),
    _spec("poolwatch_node_cpu_used_cores", "gauge", "",
          "CPUs busy on average over the last collection interval (host, /proc/stat).", (), "host",
          _ma("ma_node_cpu_used_core", "Cores")),
    _spec("poolwatch_node_cpu_used_ratio", "gauge", "ratio",
          "Busy share of all CPUs over the last collection interval, 0-1 (host, /proc/stat).", (),
          "host", _ma("ma_node_cpu_util", "%", scale=100.0)),
    _spec("poolwatch_node_cpu_seconds_total", "counter", "seconds",
          "CPU time summed over all CPUs, by mode (host, /proc/stat).", ("mode",), "host",
          _ma("ma_node_cpu_iowait_counter", "jiffies", scale=USER_HZ, match=(("mode", "iowait"),)),
          _ma("ma_node_cpu_io_wait_counter", "jiffies", scale=USER_HZ,
              match=(("mode", "iowait"),))),
    _spec("poolwatch_node_memory_total_bytes", "gauge", "bytes",
          "Physical memory, MemTotal (host, /proc/meminfo).", (), "host",
          _ma("ma_node_memory_total_megabytes", "MB", scale=MIB)),
    _spec("poolwatch_node_memory_available_bytes", "gauge", "bytes",
          "Memory available to new work without swapping, MemAvailable (host, /proc/meminfo).",
          (), "host"),
    _spec("poolwatch_node_memory_used_ratio", "gauge", "ratio",
          "1 - MemAvailable/MemTotal (host, /proc/meminfo).", (), "host",
          _ma("ma_node_memory_util", "%", scale=100.0)),
    _spec("poolwatch_node_network_receive_bytes_total", "counter", "bytes",
          "Bytes received by the interface (host, /proc/net/dev).", ("device",), "host",
          _ma("ma_node_network_receive_rate_bytes_seconds", "Bytes/s", transform="rate")),
    _spec("poolwatch_node_network_transmit_bytes_total", "counter", "bytes",
          "Bytes sent by the interface (host, /proc/net/dev).", ("device",), "host",
          _ma("ma_node_network_transmit_rate_bytes_seconds", "Bytes/s", transform="rate")),
    _spec("poolwatch_node_network_receive_packets_total", "counter", "",
          "Packets received (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_network_transmit_packets_total", "counter", "",
          "Packets sent (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_network_receive_errors_total", "counter", "",
          "Receive errors (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_network_transmit_errors_total", "counter", "",
          "Transmit errors (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_network_receive_drops_total", "counter", "",
          "Received packets dropped (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_network_transmit_drops_total", "counter", "",
          "Sent packets dropped (host, /proc/net/dev).", ("device",), "host"),
    _spec("poolwatch_node_disk_info", "info", "",
          "Block device identity: major and minor number (host, /proc/diskstats).",
          ("device", "major", "minor"), "host", _ma("ma_node_disk_info", "-", type="info")),
    _spec("poolwatch_node_disk_reads_completed_total", "counter", "",
          "Reads completed (host, /proc/diskstats field 1).", ("device",), "host",
          _ma("ma_node_disk_reads_completed_total", "-", type="counter")),
    _spec("poolwatch_node_disk_reads_merged_total", "counter", "",
          "Adjacent reads merged (host, /proc/diskstats field 2).", ("device",), "host",
          _ma("ma_node_disk_reads_merged_total", "-", type="counter")),
    _spec("poolwatch_node_disk_read_bytes_total", "counter", "bytes",
          "Bytes read, sectors x 512 (host, /proc/diskstats field 3).", ("device",), "host",
          _ma("ma_node_disk_read_bytes_total", "Bytes", type="counter"),
          _ma("ma_node_disk_read_rate_kilobytes_seconds", "KB/s", **_rate_kb)),
    _spec("poolwatch_node_disk_read_time_seconds_total", "counter", "seconds",
          "Time spent reading (host, /proc/diskstats field 4).", ("device",), "host",
          _ma("ma_node_disk_read_time_seconds_total", "Seconds", type="counter")),
    _spec("poolwatch_node_disk_writes_completed_total", "counter", "",
          "Writes completed (host, /proc/diskstats field 5).", ("device",), "host",
          _ma("ma_node_disk_writes_completed_total", "-", type="counter")),
    _spec("poolwatch_node_disk_writes_merged_total", "counter", "",
          "Adjacent writes merged (host, /proc/diskstats field 6).", ("device",), "host",
          _ma("ma_node_disk_writes_merged_total", "-", type="counter")),
    _spec("poolwatch_node_disk_written_bytes_total", "counter", "bytes",
          "Bytes written, sectors x 512 (host, /proc/diskstats field 7).", ("device",), "host",
          _ma("ma_node_disk_written_bytes_total", "Bytes", type="counter"),
          _ma("ma_node_disk_write_rate_kilobytes_seconds", "KB/s", **_rate_kb)),
    _spec("poolwatch_node_disk_write_time_seconds_total", "counter", "seconds",
          "Time spent writing (host, /proc/diskstats field 8).", ("device",), "host",
          _ma("ma_node_disk_write_time_seconds_total", "Seconds", type="counter")),
    _spec("poolwatch_node_disk_io_now", "gauge", "",
          "I/Os in progress (host, /proc/diskstats field 9).", ("device",), "host",
          _ma("ma_node_disk_io_now", "-")),
    _spec("poolwatch_node_disk_io_time_seconds_total", "counter", "seconds",
          "Time the device had I/O in flight (host, /proc/diskstats field 10).", ("device",),
          "host", _ma("ma_node_disk_io_time_seconds_total", "Seconds", type="counter")),
    _spec("poolwatch_node_disk_io_time_weighted_seconds_total", "counter", "seconds",
          "I/O time weighted by I/Os in flight (host, /proc/diskstats field 11).", ("device",),
          "host", _ma("ma_node_disk_io_time_weighted_seconds_total", "Seconds", type="counter")),
]

# --- filesystems: statvfs of the configured paths (cache dir, container space, kubelet) --------
_FS = ("path", "purpose", "mountpoint", "fstype")
# ModelArts' "cache space" metrics are the Kubernetes space (MA-N-03): the kubelet data disk
# that holds pods' emptyDir volumes and logs, not the /cache directory
_kube = (("purpose", "kubelet"),)
_cont = (("purpose", "container"),)
FILESYSTEM = [
    _spec("poolwatch_filesystem_size_bytes", "gauge", "bytes",
          "Size of the filesystem holding the path, f_blocks x f_frsize (filesystem, statvfs).",
          _FS, "filesystem",
          _ma("ma_node_cache_space_capacity_megabytes", "MB", scale=MIB, match=_kube),
          _ma("ma_node_container_space_capacity_megabytes", "MB", scale=MIB, match=_cont)),
    _spec("poolwatch_filesystem_used_bytes", "gauge", "bytes",
          "Used space, (f_blocks - f_bfree) x f_frsize (filesystem, statvfs).", _FS, "filesystem",
          _ma("ma_node_cache_space_used_capacity_megabytes", "MB", scale=MIB, match=_kube),
          _ma("ma_node_container_space_used_capacity_megabytes", "MB", scale=MIB, match=_cont)),
    _spec("poolwatch_filesystem_available_bytes", "gauge", "bytes",
          "Space available to unprivileged users, f_bavail x f_frsize (filesystem, statvfs).",
          _FS, "filesystem"),
    _spec("poolwatch_filesystem_used_ratio", "gauge", "ratio",
          "used / (used + available), as df computes Use% (filesystem, statvfs).", _FS,
          "filesystem",
          _ma("ma_node_cache_space_used_percent", "%", scale=100.0, match=_kube),
          _ma("ma_node_container_space_used_percent", "%", scale=100.0, match=_cont)),
    _spec("poolwatch_filesystem_inodes", "gauge", "",
          "Inodes in the filesystem, f_files (filesystem, statvfs).", _FS, "filesystem"),
    _spec("poolwatch_filesystem_inodes_free", "gauge", "",
          "Free inodes, f_ffree (filesystem, statvfs).", _FS, "filesystem"),
    _spec("poolwatch_filesystem_readonly", "gauge", "",
          "1 if the filesystem is mounted read-only, ST_RDONLY (filesystem, statvfs).", _FS,
          "filesystem"),
    _spec("poolwatch_filesystem_device_error", "gauge", "",
          "1 while the path cannot be measured; `error` is one of missing, timeout, permission, "
          "not_a_mount, io (filesystem).", ("path", "purpose", "error"), "filesystem"),
]

# --- cache directory per workload: a bounded walk under the cache root ------------------------
CACHE_DIR = [
    _spec("poolwatch_cache_dir_usage_bytes", "gauge", "bytes",
          "Disk space used under the workload's directory in the cache root, st_blocks x 512, "
          "from its last finished walk; a lower bound when truncated. A walk the budget cuts is "
          "finished by later runs, so the figure can be one full rotation over the cache old "
          "(see poolwatch_cache_dir_measured_timestamp_seconds); directory=\"/others\" sums "
          "the directories beyond max_dirs (cache_dir, bounded walk).", ("directory",),
          "cache_dir", _ma("ma_container_notebook_cache_dir_size_bytes", "Bytes")),
    _spec("poolwatch_cache_dir_used_ratio", "gauge", "ratio",
          "The directory's usage over the cache filesystem's size, 0-1 (cache_dir).",
          ("directory",), "cache_dir",
          _ma("ma_container_notebook_cache_dir_util", "%", scale=100.0)),
    _spec("poolwatch_cache_dir_files", "gauge", "",
          "Files and directories counted under the workload's directory (cache_dir).",
          ("directory",), "cache_dir"),
    _spec("poolwatch_cache_dir_walk_truncated", "gauge", "",
          "1 if the directory's usage is a lower bound or absent: its first walk is not finished "
          "yet, or some of it could not be read (cache_dir).", ("directory",), "cache_dir"),
    _spec("poolwatch_cache_dir_unreadable_directories", "gauge", "",
          "Subdirectories and entries of the directory the exporter could not list or stat in "
          "its last walk (permission denied, I/O error): its usage is then a lower bound "
          "(cache_dir).", ("directory",), "cache_dir"),
    _spec("poolwatch_cache_dir_measured_timestamp_seconds", "gauge", "seconds",
          "When the walk behind the directory's figures finished, Unix time (cache_dir).",
          ("directory",), "cache_dir"),
]

# --- InfiniBand: /sys/class/infiniband/<hca>/ports/<port>/counters ---------------------------
_IB = ("device", "port")
_words = 0.25  # PortXmitData/PortRcvData count 32-bit words; the canonical series are bytes


def _ib_counter(name: str, counter_file: str, help_: str, *al: Alias) -> MetricSpec:
    return _spec(f"poolwatch_infiniband_{name}_total", "counter", "",
                 f"{help_} (infiniband, counters/{counter_file}).", _IB, "infiniband", *al)


def _diag(name: str) -> Alias:
    return _ma(name, "Total count", type="counter")


INFINIBAND = [
    _spec("poolwatch_infiniband_info", "info", "",
          "HCA identity (infiniband, board_id, fw_ver, hca_type).",
          ("device", "board_id", "firmware_version", "hca_type"), "infiniband"),
    _spec("poolwatch_infiniband_port_state", "gauge", "",
          "Logical port state number: 1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER "
          "(infiniband, ports/N/state).", _IB, "infiniband"),
    _spec("poolwatch_infiniband_port_physical_state", "gauge", "",
          "Physical port state number: 2 Polling, 3 Disabled, 5 LinkUp, ... "
          "(infiniband, ports/N/phys_state).", _IB, "infiniband"),
    _spec("poolwatch_infiniband_port_rate_bytes_per_second", "gauge", "bytes",
          "Link rate (infiniband, ports/N/rate).", _IB, "infiniband"),
    _spec("poolwatch_infiniband_port_data_received_bytes_total", "counter", "bytes",
          "Data received on all VLs, port_rcv_data x 4 (infiniband, counters/port_rcv_data).",
          _IB, "infiniband",
          _ma("ma_node_infiniband_port_received_data_bytes_total", "32-bit words", type="counter",
              scale=_words, note="ModelArts counts 32-bit words under a _bytes name"),
          _ma("infiniband_port_rcv_data_total", "32-bit words", type="counter", scale=_words)),
    _spec("poolwatch_infiniband_port_data_transmitted_bytes_total", "counter", "bytes",
          "Data sent on all VLs, port_xmit_data x 4 (infiniband, counters/port_xmit_data).",
          _IB, "infiniband",
          _ma("ma_node_infiniband_port_transmitted_data_bytes_total", "32-bit words",
              type="counter", scale=_words,
              note="ModelArts counts 32-bit words under a _bytes name"),
          _ma("infiniband_port_xmit_data_total", "32-bit words", type="counter", scale=_words)),
    _ib_counter("port_packets_received", "port_rcv_packets", "Packets received"),
    _ib_counter("port_packets_transmitted", "port_xmit_packets", "Packets sent"),
    _ib_counter("port_symbol_errors", "symbol_error", "Minor link errors on physical lanes",
                _diag("infiniband_symbol_error_counter_total")),
    _ib_counter("port_link_error_recoveries", "link_error_recovery",
                "Link error recoveries completed",
                _diag("infiniband_link_error_recovery_counter_total")),
    _ib_counter("port_link_downed", "link_downed", "Times the link went down"),
    _ib_counter("port_receive_errors", "port_rcv_errors", "Packets received with errors",
                _diag("infiniband_port_rcv_errors_total")),
    _ib_counter("port_local_link_integrity_errors", "local_link_integrity_errors",
                "Link-layer receiver retries",
                _diag("infiniband_local_link_integrity_errors_total")),
    _ib_counter("port_receive_remote_physical_errors", "port_rcv_remote_physical_errors",
                "Packets received marked with the EBP delimiter",
                _diag("infiniband_port_rcv_remote_physical_errors_total")),
    _ib_counter("port_receive_switch_relay_errors", "port_rcv_switch_relay_errors",
                "Packets the switch relay could not forward",
                _diag("infiniband_port_rcv_switch_relay_errors_total")),
    _ib_counter("port_receive_constraint_errors", "port_rcv_constraint_errors",
                "Packets dropped by receive constraints"),
    _ib_counter("port_transmit_constraint_errors", "port_xmit_constraint_errors",
                "Packets dropped by transmit constraints"),
    _ib_counter("port_transmit_wait", "port_xmit_wait",
                "Ticks with data to send but none sent",
                _diag("infiniband_port_transmit_wait_total")),
    _ib_counter("port_transmit_discards", "port_xmit_discards",
                "Outbound packets discarded (port down or congested)",
                _diag("infiniband_port_xmit_discards_total")),
    _ib_counter("port_excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors",
                "Consecutive flow-control buffer overruns"),
    _ib_counter("port_vl15_dropped", "VL15_dropped", "Subnet management packets dropped"),
]

# --- NFS: /proc/self/mountstats, per mount and RPC operation ----------------------------------
_NFS = ("mountpoint", "export", "operation")


def _nfs_ms(op: str, kind: str, spellings: tuple[str, ...]) -> tuple[Alias, ...]:
    """Seed NFS aliases: the average ms per operation over the last interval (both spellings)."""
    names = (f"ma_node_{s}_{op.lower()}_{kind}" for s in spellings)
    return tuple(
        _ma(name, "ms", transform="per", scale=1000.0,
            per="poolwatch_nfs_rpc_operations_total", match=(("operation", op),),
            note="average per operation over the last collection interval")
        for name in names
        if name != "ma_node_mount_stats_getattr_backlog_wait"  # the seeds spell this one once
    )


_BOTH = ("mountstats", "mount_stats")
_NFS_OPS = ("GETATTR", "ACCESS", "LOOKUP", "READ", "WRITE")
NFS = [
    _spec("poolwatch_nfs_rpc_operations_total", "counter", "",
          "RPC operations issued (nfs, mountstats per-op ops).", _NFS, "nfs"),
    _spec("poolwatch_nfs_rpc_transmissions_total", "counter", "",
          "RPC transmissions, retransmits included (nfs, mountstats per-op trans).", _NFS, "nfs"),
    _spec("poolwatch_nfs_rpc_major_timeouts_total", "counter", "",
          "RPC major timeouts (nfs, mountstats per-op timeouts).", _NFS, "nfs"),
    _spec("poolwatch_nfs_rpc_sent_bytes_total", "counter", "bytes",
          "Bytes sent (nfs, mountstats per-op bytes sent).", _NFS, "nfs"),
    _spec("poolwatch_nfs_rpc_received_bytes_total", "counter", "bytes",
          "Bytes received (nfs, mountstats per-op bytes received).", _NFS, "nfs"),
    _spec("poolwatch_nfs_rpc_backlog_wait_seconds_total", "counter", "seconds",
          "Time requests waited in the transmit backlog (nfs, mountstats per-op queue).", _NFS,
          "nfs", *(a for op in _NFS_OPS for a in _nfs_ms(op, "backlog_wait", _BOTH))),
    _spec("poolwatch_nfs_rpc_rtt_seconds_total", "counter", "seconds",
          "Round-trip time from send to reply (nfs, mountstats per-op rtt).", _NFS, "nfs",
          *(a for op in _NFS_OPS for a in _nfs_ms(op, "rtt", _BOTH))),
    _spec("poolwatch_nfs_rpc_execute_seconds_total", "counter", "seconds",
          "Time from queueing to completion (nfs, mountstats per-op execute).", _NFS, "nfs"),
    _spec("poolwatch_nfs_mount_info", "info", "",
          "An NFS mount (nfs, mountstats device line).",
          ("mountpoint", "export", "fstype", "version"), "nfs"),
]

NODE_SPECS: list[MetricSpec] = [*RUNNER, *HOST, *FILESYSTEM, *CACHE_DIR, *INFINIBAND, *NFS]

# fmt: on
