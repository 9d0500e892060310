"""Catalog entries of the accelerator collector: one vendor-neutral schema for GPUs and NPUs.

Rules and dashboards are written once against `poolwatch_accelerator_*`; `vendor` ("nvidia" or
"huawei") tells the devices apart, and the seeds' vendor names (`ma_node_gpu_*`, `DCGM_FI_*`,
`ma_node_npu_*`) are aliases selected by `vendor`. Signals with no twin on the other vendor get a
`poolwatch_gpu_*` (here) or `poolwatch_npu_*` family (`npu.py`).

Device labels: `vendor`, `model`, `index` (the driver's logical index: NVML index, npu-smi
"NPU-chip"), `uuid` (GPU UUID; for an NPU chip the VDie ID when npu-smi has one, else
"npu<id>-chip<chip>"). Health levels: 0 OK, 1 Warning, 2 Alarm, 3 Critical (npu-smi's words; a GPU
reports 0, or 3 once NVML calls it lost).
"""

from __future__ import annotations

from poolwatch.core.catalog.model import Alias, MetricSpec
from poolwatch.core.catalog.npu import SNT3, SNT9, npu_smi_age

MA, DCGM = "modelarts", "modelarts"  # DCGM_FI_* names are part of the ModelArts seed tables
MIB = 1.0 / 1048576
DEV = ("vendor", "model", "index", "uuid")
NV = (("vendor", "nvidia"),)
HW = (("vendor", "huawei"),)
# `training_job`, not `job`: Prometheus owns `job` as a target label and would rename ours to
# `exported_job` at scrape time.
OWNER = ("namespace", "pod", "container", "training_job")


def _a(name: str, unit: str, match: tuple[tuple[str, str], ...], **kw: object) -> Alias:
    return Alias(name=name, compat=MA, unit=unit, match=match, **kw)  # type: ignore[arg-type]


def _spec(
    name: str, typ: str, unit: str, help_: str, labels: tuple[str, ...], *al: Alias,
    collector: str = "accelerator",
) -> MetricSpec:  # fmt: skip
    return MetricSpec(name, typ, unit, help_, labels, collector, tuple(al))  # type: ignore[arg-type]


# fmt: off
ACCELERATOR = [
    _spec("poolwatch_accelerator_info", "info", "",
          "Device identity and versions (accelerator; NVML or npu-smi board info).",
          (*DEV, "serial", "bus_id", "driver_version", "firmware_version")),
    _spec("poolwatch_accelerator_up", "gauge", "",
          "1 while the device answers its driver, 0 once it is lost (fell off the bus); its other "
          "series are then dropped (accelerator).", DEV),
    _spec("poolwatch_accelerator_health_level", "gauge", "",
          "Health: 0 OK, 1 Warning, 2 Alarm, 3 Critical (accelerator; npu-smi Health, NVML lost "
          "= 3).", DEV),
    _spec("poolwatch_accelerator_healthy", "gauge", "",
          "1 when health is OK, else 0 (accelerator).", DEV,
          _a("ma_node_npu_ai_core_health_status", "-", HW)),
    _spec("poolwatch_accelerator_error_code", "gauge", "",
          "The device's current error code, 0 when none (accelerator; npu-smi error code).", DEV,
          _a("ma_node_npu_ai_core_error_code", "-", HW)),
    _spec("poolwatch_accelerator_utilization_ratio", "gauge", "ratio",
          "Busy share of the compute engine, 0-1 (accelerator; NVML utilization.gpu, npu-smi "
          "AICore).", DEV,
          _a("ma_node_gpu_util", "%", NV, scale=100.0),
          _a("ma_node_npu_util", "%", HW, scale=100.0),
          _a("ma_node_npu_ai_core_util", "%", HW, scale=100.0)),
    _spec("poolwatch_accelerator_memory_total_bytes", "gauge", "bytes",
          "Device memory (GPU framebuffer, NPU HBM) (accelerator; NVML memory info, npu-smi HBM).",
          DEV,
          _a("ma_node_gpu_mem_total_megabytes", "MB", NV, scale=MIB),
          _a("ma_node_gpu_memory_total_megabytes", "MB", NV, scale=MIB),
          _a("ma_node_npu_hbm_bytes", "Byte", HW),
          _a("ma_node_npu_memory_total_megabytes", "MB", HW, scale=MIB, model_re=SNT9)),
    _spec("poolwatch_accelerator_memory_used_bytes", "gauge", "bytes",
          "Device memory in use (accelerator; NVML memory info, npu-smi HBM).", DEV,
          _a("ma_node_gpu_mem_used_megabytes", "MB", NV, scale=MIB),
          _a("ma_node_npu_hbm_usage_bytes", "Byte", HW),
          _a("ma_node_npu_memory_used_megabytes", "MB", HW, scale=MIB, model_re=SNT9)),
    _spec("poolwatch_accelerator_memory_free_bytes", "gauge", "bytes",
          "Device memory free (accelerator; NVML memory info, npu-smi HBM).", DEV,
          _a("ma_node_gpu_mem_free_megabytes", "MB", NV, scale=MIB)),
    _spec("poolwatch_accelerator_memory_used_ratio", "gauge", "ratio",
          "Used over total device memory, 0-1 (accelerator).", DEV,
          _a("ma_node_gpu_mem_util", "%", NV, scale=100.0),
          _a("ma_node_gpu_memory_util", "%", NV, scale=100.0),
          _a("ma_node_npu_hbm_util", "%", HW, scale=100.0),
          _a("ma_node_npu_memory_util", "%", HW, scale=100.0, model_re=SNT9)),
    _spec("poolwatch_accelerator_temperature_celsius", "gauge", "celsius",
          "Die temperature (accelerator; NVML TEMPERATURE_GPU, npu-smi Temp).", DEV,
          _a("DCGM_FI_DEV_GPU_TEMP", "°C", NV),
          _a("ma_node_npu_ai_core_temperature_celsius", "°C", HW)),
    _spec("poolwatch_accelerator_memory_temperature_celsius", "gauge", "celsius",
          "Device memory (HBM) temperature (accelerator; NVML FI_DEV_MEMORY_TEMP, npu-smi HBM "
          "Temperature).", DEV,
          _a("DCGM_FI_DEV_MEMORY_TEMP", "°C", NV),
          _a("ma_node_npu_hbm_temperature_celsius", "°C", HW)),
    _spec("poolwatch_accelerator_power_watts", "gauge", "watts",
          "Power draw (accelerator; NVML power usage, npu-smi Power).", DEV,
          _a("DCGM_FI_DEV_POWER_USAGE", "W", NV),
          _a("ma_node_npu_ai_core_power_usage_watts", "W", HW)),
    _spec("poolwatch_accelerator_energy_joules_total", "counter", "joules",
          "Energy used since the driver loaded (accelerator; NVML total energy consumption).", DEV),
    _spec("poolwatch_accelerator_core_clock_hertz", "gauge", "hertz",
          "Compute clock (accelerator; NVML SM clock, npu-smi AI core frequency).", DEV,
          _a("ma_node_npu_ai_core_frequency_hertz", "Hz", HW)),
    _spec("poolwatch_accelerator_memory_clock_hertz", "gauge", "hertz",
          "Memory clock (accelerator; NVML memory clock, npu-smi HBM frequency).", DEV,
          _a("ma_node_npu_hbm_frequency_hertz", "Hz", HW)),
    _spec("poolwatch_accelerator_ecc_errors_total", "counter", "",
          "Memory ECC errors; error is corrected (single-bit) or uncorrected (multi-bit), scope "
          "volatile (since the driver loaded) or aggregate (lifetime) (accelerator; NVML total "
          "ECC errors, npu-smi HBM ECC).", (*DEV, "error", "scope"),
          _a("ma_node_npu_hbm_single_bit_error_total", "Number",
             (*HW, ("error", "corrected"), ("scope", "volatile")), type="counter"),
          _a("ma_node_npu_hbm_double_bit_error_total", "Number",
             (*HW, ("error", "uncorrected"), ("scope", "volatile")), type="counter"),
          _a("ma_node_npu_hbm_total_single_bit_error_total", "Number",
             (*HW, ("error", "corrected"), ("scope", "aggregate")), type="counter"),
          _a("ma_node_npu_hbm_total_double_bit_error_total", "Number",
             (*HW, ("error", "uncorrected"), ("scope", "aggregate")), type="counter")),
    _spec("poolwatch_accelerator_retired_pages", "gauge", "",
          "Memory pages retired (GPU) or isolated (NPU HBM), by cause single_bit or double_bit "
          "(accelerator; NVML retired pages, npu-smi isolated pages).", (*DEV, "cause"),
          _a("ma_node_npu_hbm_single_bit_isolated_pages_total", "Number",
             (*HW, ("cause", "single_bit"))),
          _a("ma_node_npu_hbm_double_bit_isolated_pages_total", "Number",
             (*HW, ("cause", "double_bit")))),
    _spec("poolwatch_accelerator_processes", "gauge", "",
          "Processes holding device memory (accelerator; NVML running compute processes, "
          "npu-smi process table).", DEV),
    _spec("poolwatch_accelerator_owners", "gauge", "",
          "Pods holding the device (0: idle, more than 1: shared); absent without pod "
          "attribution (accelerator + pod attribution).", DEV,
          _a("node_gpu_share_job_count", "Number", NV)),
    _spec("poolwatch_node_accelerators", "gauge", "",
          "Devices on this node that answer their driver, by vendor (accelerator).", ("vendor",)),
    _spec("poolwatch_node_accelerators_idle", "gauge", "",
          "Devices that answer and that no pod holds, by vendor: the node's share of the pool's "
          "fragments; absent without pod attribution (accelerator + pod attribution).",
          ("vendor",)),
    _spec("poolwatch_accelerator_events_total", "counter", "",
          "Device events seen by the collector: lost (fell off the bus), recovered "
          "(accelerator).", (*DEV, "event")),
    _spec("poolwatch_accelerator_backend_up", "gauge", "",
          "1 if the backend (nvml, npu_smi) answered in the last run, 0 if it failed; absent "
          "when switched off or not present on this node (accelerator).", ("backend",)),
]

GPU = [
    _spec("poolwatch_gpu_memory_copy_utilization_ratio", "gauge", "ratio",
          "Share of time device memory was read or written, 0-1 (accelerator; NVML "
          "utilization.memory).", DEV),
    _spec("poolwatch_gpu_encoder_utilization_ratio", "gauge", "ratio",
          "Video encoder busy share, 0-1 (accelerator; NVML encoder utilization).", DEV),
    _spec("poolwatch_gpu_decoder_utilization_ratio", "gauge", "ratio",
          "Video decoder busy share, 0-1 (accelerator; NVML decoder utilization).", DEV),
    _spec("poolwatch_gpu_pcie_replays_total", "counter", "",
          "PCIe replay events (accelerator; NVML PCIe replay counter).", DEV),
    _spec("poolwatch_gpu_nvlink_errors_total", "counter", "",
          "NVLink errors per link; error is replay, recovery, crc_flit or crc_data "
          "(accelerator; NVML NvLink error counter).", (*DEV, "link", "error")),
    _spec("poolwatch_gpu_retired_pages_pending", "gauge", "",
          "1 if a page retirement waits for the next driver reload (accelerator; NVML retired "
          "pages pending).", DEV),
    _spec("poolwatch_gpu_remapped_rows", "gauge", "",
          "Rows remapped in device memory, by kind correctable or uncorrectable (accelerator; "
          "NVML remapped rows).", (*DEV, "kind")),
    _spec("poolwatch_gpu_remapped_rows_pending", "gauge", "",
          "1 if a row remap waits for a GPU reset (accelerator; NVML remapped rows).", DEV),
    _spec("poolwatch_gpu_remapped_rows_failed", "gauge", "",
          "1 if a row remap failed: the GPU needs service (accelerator; NVML remapped rows).", DEV),
    _spec("poolwatch_gpu_xid_errors_total", "counter", "",
          "XID events by code since the exporter started (accelerator; NVML critical XID "
          "events).", (*DEV, "xid")),
    _spec("poolwatch_gpu_xid_last_timestamp_seconds", "gauge", "seconds",
          "Unix time the XID code was last seen on the device (accelerator; NVML events).",
          (*DEV, "xid")),
    _spec("poolwatch_gpu_query_errors", "gauge", "",
          "NVML queries about the device that failed with an error in the last collection, other "
          "than not supported/no permission: the fields nvidia-smi prints as ERR! (accelerator; "
          "NVML return codes).", DEV),
    _spec("poolwatch_gpu_power_limit_watts", "gauge", "watts",
          "Enforced power limit (accelerator; NVML power management limit).", DEV),
]

# Per-container views of the devices a container holds (from pod attribution); the device
# labels say which device, the owner labels whose.
CONTAINER_ACCELERATOR = [
    _spec("poolwatch_container_accelerator_utilization_ratio", "gauge", "ratio",
          "Utilisation of a device the container holds, 0-1 (accelerator + pod attribution).",
          (*OWNER, *DEV),
          _a("ma_container_gpu_util", "%", NV, scale=100.0),
          _a("ma_container_npu_util", "%", HW, scale=100.0),
          _a("ma_container_npu_ai_core_util", "%", HW, scale=100.0)),
    _spec("poolwatch_container_accelerator_memory_used_bytes", "gauge", "bytes",
          "Device memory used by the container's processes where the driver reports it per "
          "process, else the device's (accelerator + pod attribution).", (*OWNER, *DEV),
          _a("ma_container_gpu_mem_used_megabytes", "MB", NV, scale=MIB),
          _a("ma_container_gpu_memory_used_megabytes", "MB", NV, scale=MIB),
          _a("ma_container_npu_hbm_usage_bytes", "Byte", HW),
          _a("ma_container_npu_memory_used_megabytes", "MB", HW, scale=MIB, model_re=SNT9)),
    _spec("poolwatch_container_accelerator_memory_total_bytes", "gauge", "bytes",
          "Memory of a device the container holds (accelerator + pod attribution).",
          (*OWNER, *DEV),
          _a("ma_container_gpu_mem_total_megabytes", "MB", NV, scale=MIB),
          _a("ma_container_gpu_memory_total_megabytes", "MB", NV, scale=MIB),
          _a("ma_container_npu_hbm_bytes", "Byte", HW),
          _a("ma_container_npu_memory_total_megabytes", "MB", HW, scale=MIB, model_re=SNT9)),
]

# fmt: off
CONTAINER_ACCOUNTING = [
    _spec("poolwatch_container_accelerator_allocated_seconds_total", "counter", "seconds",
          "Seconds the container held the device, accumulated between collections since the "
          "exporter started: booked hours per user or VC are an increase() joined to "
          "poolwatch_training_job_info (accelerator + pod attribution).", (*OWNER, *DEV)),
    _spec("poolwatch_container_accelerator_idle_seconds_total", "counter", "seconds",
          "Of those, the seconds the device was held at 0 % utilisation (the Apulis VC table's "
          "idle hours: occupied but at 0 % utilization) (accelerator + pod attribution).",
          (*OWNER, *DEV)),
]
# fmt: on


def _view(device_family: str, *al: Alias) -> MetricSpec:
    """The per-container view of a device gauge: same value, owner labels in front."""
    name = "poolwatch_container_" + device_family.removeprefix("poolwatch_")
    return _spec(
        name,
        "gauge",
        _unit_of(device_family),
        f"{device_family} of a device the container holds (accelerator + pod attribution).",
        (*OWNER, *DEV),
        *al,
    )


def _unit_of(name: str) -> str:
    for unit in ("ratio", "bytes", "celsius", "watts", "hertz"):
        if name.endswith("_" + unit):
            return unit
    return ""


# Device family -> its per-container view (the collector copies the device's samples).
CONTAINER_VIEWS = [
    _view(
        "poolwatch_accelerator_memory_free_bytes",
        _a("ma_container_gpu_mem_free_megabytes", "MB", NV, scale=MIB),
    ),
    _view(
        "poolwatch_accelerator_memory_used_ratio",
        _a("ma_container_gpu_mem_util", "%", NV, scale=100.0),
        _a("ma_container_gpu_memory_util", "%", NV, scale=100.0),
        _a("ma_container_npu_hbm_util", "%", HW, scale=100.0),
        _a("ma_container_npu_memory_util", "%", HW, scale=100.0, model_re=SNT9),
    ),
    _view(
        "poolwatch_accelerator_temperature_celsius",
        _a("ma_container_npu_ai_core_temperature_celsius", "°C", HW),
    ),
    _view(
        "poolwatch_accelerator_memory_temperature_celsius",
        _a("ma_container_npu_hbm_temperature_celsius", "°C", HW),
    ),
    _view(
        "poolwatch_accelerator_power_watts",
        _a("ma_container_npu_ai_core_power_usage_watts", "W", HW),
    ),
    _view(
        "poolwatch_accelerator_core_clock_hertz",
        _a("ma_container_npu_ai_core_frequency_hertz", "Hz", HW),
    ),
    _view(
        "poolwatch_accelerator_memory_clock_hertz",
        _a("ma_container_npu_hbm_frequency_hertz", "Hz", HW),
    ),
    _view("poolwatch_accelerator_healthy", _a("ma_container_npu_ai_core_health_status", "-", HW)),
    _view("poolwatch_accelerator_error_code", _a("ma_container_npu_ai_core_error_code", "-", HW)),
    _view(
        "poolwatch_gpu_memory_copy_utilization_ratio",
        _a("ma_container_gpu_mem_copy_util", "%", NV, scale=100.0),
    ),
    _view(
        "poolwatch_gpu_encoder_utilization_ratio",
        _a("ma_container_gpu_enc_util", "%", NV, scale=100.0),
        _a("ma_container_gpu_encode_util", "%", NV, scale=100.0),
    ),
    _view(
        "poolwatch_gpu_decoder_utilization_ratio",
        _a("ma_container_gpu_dec_util", "%", NV, scale=100.0),
        _a("ma_container_gpu_decode_util", "%", NV, scale=100.0),
    ),
    _view(
        "poolwatch_npu_vector_core_utilization_ratio",
        _a("ma_container_npu_vector_core_util", "%", HW, scale=100.0),
    ),
    _view(
        "poolwatch_npu_ai_cpu_utilization_ratio",
        _a("ma_container_npu_ai_cpu_util", "%", HW, scale=100.0),
    ),
    _view(
        "poolwatch_npu_ctrl_cpu_utilization_ratio",
        _a("ma_container_npu_ctrl_cpu_util", "%", HW, scale=100.0),
    ),
    _view(
        "poolwatch_npu_overall_utilization_ratio",
        _a("ma_container_npu_general_util", "%", HW, scale=100.0),
    ),
    _view(
        "poolwatch_npu_hbm_bandwidth_utilization_ratio",
        _a("ma_container_npu_hbm_bandwidth_util", "%", HW, scale=100.0),
    ),
    _view(
        "poolwatch_npu_ddr_memory_total_bytes",
        _a("ma_container_npu_ddr_memory_bytes", "Byte", HW),
        _a("ma_container_npu_memory_total_megabytes", "MB", HW, scale=MIB, model_re=SNT3),
    ),
    _view(
        "poolwatch_npu_ddr_memory_used_bytes",
        _a("ma_container_npu_ddr_memory_usage_bytes", "Byte", HW),
        _a("ma_container_npu_memory_used_megabytes", "MB", HW, scale=MIB, model_re=SNT3),
    ),
    _view(
        "poolwatch_npu_ddr_memory_used_ratio",
        _a("ma_container_npu_ddr_memory_util", "%", HW, scale=100.0),
        _a("ma_container_npu_memory_util", "%", HW, scale=100.0, model_re=SNT3),
    ),
]
# fmt: on

#: the per-container views a shipped rule or dashboard reads: kept whatever the compat sets (the
#: others are copied only for a seed name an enabled compat set needs, or with container_views all)
CONTAINER_VIEWS_USED = frozenset({
    "poolwatch_container_accelerator_memory_used_ratio",
    "poolwatch_container_accelerator_healthy",
    "poolwatch_container_accelerator_error_code",
    "poolwatch_container_npu_vector_core_utilization_ratio",
    "poolwatch_container_npu_hbm_bandwidth_utilization_ratio",
    "poolwatch_container_npu_ddr_memory_used_ratio",
})  # fmt: skip


def container_views_kept(mode: str, compat: frozenset[str] | set[str]) -> frozenset[str]:
    """The per-container view families copied under `container_views: mode` with `compat`."""
    if mode == "all":
        return frozenset(v.name for v in CONTAINER_VIEWS)
    if mode == "none":
        return frozenset()
    seed = {v.name for v in CONTAINER_VIEWS if any(a.compat in compat for a in v.aliases)}
    return CONTAINER_VIEWS_USED | seed


ACCELERATOR_SPECS: list[MetricSpec] = [
    *(npu_smi_age(s) for s in ACCELERATOR), *GPU, *CONTAINER_ACCELERATOR, *CONTAINER_ACCOUNTING,
    *CONTAINER_VIEWS,
]  # fmt: skip
