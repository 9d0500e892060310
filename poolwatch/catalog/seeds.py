"""Seed metrics poolwatch does not produce yet, each with the reason and the issue that adds it.

A test reads every row of the seed table (`tests/fixtures/spec/seed-metrics.csv`) and requires each
name to be either an alias in the catalog or listed here. A name listed here that a collector starts
producing drops out of `UNPRODUCED` by itself; delete it here when its issue closes.
"""

from __future__ import annotations

from .model import Unproduced

_GPU = "needs the NVML GPU collector (accelerators in the node exporter)"
_NPU = "needs the npu-smi NPU collector (accelerators in the node exporter)"
_CONTAINER = (
    "per-container series need cgroup v2 and pod attribution from the kubelet pod-resources API"
)
_SHARE = "GPU sharing is derived from pod attribution of accelerators"
_OPTICAL = (
    "optical module readings come from `npu-smi info -t optical`; "
    "the accelerator collector adds them"
)

# (reason, issue, whitespace-separated seed names)
_GROUPS: list[tuple[str, int | None, str]] = [
    (
        _CONTAINER,
        9,
        """
ma_container_cpu_util ma_container_cpu_used_core ma_container_cpu_limit_core
ma_container_memory_capacity_megabytes ma_container_memory_util ma_container_memory_used_megabytes
ma_container_disk_read_kilobytes ma_container_disk_write_kilobytes
ma_container_network_receive_bytes ma_container_network_receive_packets
ma_container_network_receive_error_packets ma_container_network_transmit_bytes
ma_container_network_transmit_error_packets ma_container_network_transmit_packets
""",
    ),
    (
        _GPU,
        9,
        """
ma_container_gpu_mem_util ma_container_gpu_memory_util ma_container_gpu_mem_total_megabytes
ma_container_gpu_memory_total_megabytes ma_container_gpu_mem_used_megabytes
ma_container_gpu_memory_used_megabytes ma_container_gpu_mem_free_megabytes ma_container_gpu_util
ma_container_gpu_mem_copy_util ma_container_gpu_enc_util ma_container_gpu_encode_util
ma_container_gpu_dec_util ma_container_gpu_decode_util
DCGM_FI_DEV_GPU_TEMP DCGM_FI_DEV_POWER_USAGE DCGM_FI_DEV_MEMORY_TEMP
ma_node_gpu_util ma_node_gpu_mem_total_megabytes ma_node_gpu_memory_total_megabytes
ma_node_gpu_mem_util ma_node_gpu_memory_util ma_node_gpu_mem_used_megabytes
ma_node_gpu_mem_free_megabytes
""",
    ),
    (_SHARE, 9, "node_gpu_share_job_count"),
    (
        _NPU,
        9,
        """
ma_container_npu_util ma_container_npu_memory_util ma_container_npu_memory_used_megabytes
ma_container_npu_memory_total_megabytes ma_container_npu_ai_core_error_code
ma_container_npu_ai_core_health_status ma_container_npu_ai_core_power_usage_watts
ma_container_npu_ai_core_temperature_celsius ma_container_npu_ai_core_util
ma_container_npu_general_util ma_container_npu_ai_core_frequency_hertz
ma_container_npu_ai_core_voltage_volts ma_container_npu_ddr_memory_bytes
ma_container_npu_ddr_memory_usage_bytes ma_container_npu_ddr_memory_util ma_container_npu_hbm_bytes
ma_container_npu_hbm_usage_bytes ma_container_npu_hbm_util ma_container_npu_hbm_bandwidth_util
ma_container_npu_hbm_frequency_hertz ma_container_npu_hbm_temperature_celsius
ma_container_npu_ai_cpu_util ma_container_npu_ctrl_cpu_util ma_container_npu_vector_core_util
ma_container_npu_roce_tx_rate_bytes_per_second ma_container_npu_roce_rx_rate_bytes_per_second
ma_node_npu_util ma_node_npu_memory_util ma_node_npu_memory_used_megabytes
ma_node_npu_memory_total_megabytes ma_node_npu_ai_core_error_code ma_node_npu_ai_core_health_status
ma_node_npu_ai_core_power_usage_watts ma_node_npu_ai_core_temperature_celsius
ma_node_npu_ai_core_util
ma_node_npu_general_util ma_node_npu_ai_core_frequency_hertz ma_node_npu_ai_core_voltage_volts
ma_node_npu_ddr_memory_bytes ma_node_npu_ddr_memory_usage_bytes ma_node_npu_ddr_memory_util
ma_node_npu_hbm_bytes ma_node_npu_hbm_usage_bytes ma_node_npu_hbm_util
ma_node_npu_hbm_bandwidth_util ma_node_npu_hbm_frequency_hertz ma_node_npu_hbm_temperature_celsius
ma_node_npu_ai_cpu_util ma_node_npu_ctrl_cpu_util ma_node_npu_ctrl_cpu_frequency_hertz
ma_node_npu_hbm_ecc_enable ma_node_npu_hbm_single_bit_error_total
ma_node_npu_hbm_double_bit_error_total ma_node_npu_hbm_total_single_bit_error_total
ma_node_npu_hbm_total_double_bit_error_total ma_node_npu_hbm_single_bit_isolated_pages_total
ma_node_npu_hbm_double_bit_isolated_pages_total ma_node_npu_vector_core_util
ma_node_npu_roce_tx_rate_bytes_per_second ma_node_npu_roce_rx_rate_bytes_per_second
ma_node_npu_roce_mac_tx_pause_packets_total ma_node_npu_roce_mac_rx_pause_packets_total
ma_node_npu_roce_mac_tx_pfc_packets_total ma_node_npu_roce_mac_rx_pfc_packets_total
ma_node_npu_roce_mac_tx_bad_packets_total ma_node_npu_roce_mac_rx_bad_packets_total
ma_node_npu_roce_tx_err_packets_total ma_node_npu_roce_rx_err_packets_total
ma_node_npu_roce_tx_all_packets_total ma_node_npu_roce_rx_all_packets_total
""",
    ),
    (
        _OPTICAL,
        9,
        """
ma_node_npu_optical_temperature ma_node_npu_optical_vcc
ma_node_npu_optical_tx_power0 ma_node_npu_optical_tx_power1 ma_node_npu_optical_tx_power2
ma_node_npu_optical_tx_power3 ma_node_npu_optical_rx_power0 ma_node_npu_optical_rx_power1
ma_node_npu_optical_rx_power2 ma_node_npu_optical_rx_power3
""",
    ),
]


def pending(produced: set[str]) -> dict[str, Unproduced]:
    """The listed seed metrics that are not among `produced` (the catalog's alias names)."""
    return {
        name: Unproduced(name=name, reason=reason, issue=issue)
        for reason, issue, names in _GROUPS
        for name in names.split()
        if name not in produced
    }
