"""Catalog entries that only Ascend NPUs have (`poolwatch_npu_*`), read through npu-smi.

The vendor-neutral families NPUs share with GPUs are in `accelerator.py`; these carry the same
device labels (`vendor`, `model`, `index`, `uuid`), so they join the `poolwatch_accelerator_*`
series one to one. Each help text names the npu-smi field it comes from.

DDR is the NPU's own DRAM as npu-smi's overview prints it in the Memory-Usage(MB) column (the
device memory of 310/310P cards; 910A has it beside its HBM). 910B and A3 print a constant `0 / 0`
there, so the backend omits DDR for them rather than export a zero capacity. The seeds' legacy
`ma_node_npu_memory_*` names mean DDR on Snt3 (310-class chips) and HBM on Snt9 (910-class): here
they alias the DDR families for 310-class models only, and the device memory families
(`accelerator.py`, HBM on an NPU) for 910-class models (`model_re`, SNT3 and SNT9 below).

Not produced from npu-smi (no npu-smi view reports them): AI core voltage and control CPU
frequency (DCMI calls only) stay in `seeds.py`; the NIC link, RoCE and optical-module series come
from `hccn_tool` (`hccn.py`).
"""

from __future__ import annotations

from poolwatch.core.catalog.model import Alias, MetricSpec, read_every

#: chip classes by npu-smi's model name: the seeds' Snt3 (310, 310P, 310B) and Snt9 (910, 910B,
#: 910 A3); the legacy `ma_*_npu_memory_*` names mean DDR on the first and HBM on the second
SNT3 = r"310"
SNT9 = r"910"

#: npu-smi detail-view groups -> seconds between two readings by default (0: every collection).
#: The overview (`npu-smi info`: utilisation, memory, temperature, power, health, processes) is
#: read on every collection; these groups are the per-chip views for what it lacks.
NPU_SMI_INTERVALS: dict[str, float] = {
    "utilization": 30.0,  # -t usages: vector/cube/AI CPU/control CPU busy, HBM bandwidth
    "clocks": 120.0,  # -t common, -t memory: AI core and HBM clocks, HBM temperature
    "health": 300.0,  # -t health: error code (at once when the overview's health is not OK)
    "ecc": 60.0,  # -t ecc: HBM ECC counts, isolated pages
    "inventory": 3600.0,  # -t board, ecc-enable: VDie ID, serial, firmware (and on a card swap)
}
#: family -> the npu-smi group it comes from (for NPUs; GPU values come from NVML every run)
NPU_SMI_GROUP_OF: dict[str, str] = {
    "poolwatch_npu_vector_core_utilization_ratio": "utilization",
    "poolwatch_npu_cube_core_utilization_ratio": "utilization",
    "poolwatch_npu_ai_cpu_utilization_ratio": "utilization",
    "poolwatch_npu_ctrl_cpu_utilization_ratio": "utilization",
    "poolwatch_npu_overall_utilization_ratio": "utilization",
    "poolwatch_npu_hbm_bandwidth_utilization_ratio": "utilization",
    "poolwatch_accelerator_core_clock_hertz": "clocks",
    "poolwatch_accelerator_memory_clock_hertz": "clocks",
    "poolwatch_accelerator_memory_temperature_celsius": "clocks",
    "poolwatch_npu_ai_core_rated_clock_hertz": "clocks",
    "poolwatch_accelerator_error_code": "health",
    "poolwatch_accelerator_ecc_errors_total": "ecc",
    "poolwatch_accelerator_retired_pages": "ecc",
    "poolwatch_npu_hbm_ecc_enabled": "inventory",
    "poolwatch_accelerator_info": "inventory",
}


def npu_smi_age(spec: MetricSpec) -> MetricSpec:
    """`spec`, its help saying how old an NPU's value can be (see `read_every`)."""
    group = NPU_SMI_GROUP_OF.get(spec.name)
    if group is None:
        return spec
    tool = "NPU: npu-smi" if spec.name.startswith("poolwatch_accelerator_") else "npu-smi"
    return read_every(spec, tool, group, NPU_SMI_INTERVALS[group])


MA = "modelarts"
MIB = 1.0 / 1048576
DEV = ("vendor", "model", "index", "uuid")
HW = (("vendor", "huawei"),)


def _a(name: str, unit: str, **kw: object) -> Alias:
    return Alias(name=name, compat=MA, unit=unit, match=HW, **kw)  # type: ignore[arg-type]


def _spec(name: str, typ: str, unit: str, help_: str, *al: Alias) -> MetricSpec:
    return MetricSpec(name, typ, unit, help_, DEV, "accelerator", tuple(al))  # type: ignore[arg-type]


# fmt: off
NPU_SPECS: list[MetricSpec] = [
    _spec("poolwatch_npu_vector_core_utilization_ratio", "gauge", "ratio",
          "Busy share of the AI vector cores, 0-1 (accelerator; npu-smi Aivector Usage Rate).",
          _a("ma_node_npu_vector_core_util", "%", scale=100.0)),
    _spec("poolwatch_npu_cube_core_utilization_ratio", "gauge", "ratio",
          "Busy share of the AI cube (matrix) units, 0-1 (accelerator; npu-smi Aicube Usage "
          "Rate)."),
    _spec("poolwatch_npu_ai_cpu_utilization_ratio", "gauge", "ratio",
          "Busy share of the AI CPU cores, 0-1 (accelerator; npu-smi Aicpu Usage Rate).",
          _a("ma_node_npu_ai_cpu_util", "%", scale=100.0)),
    _spec("poolwatch_npu_ctrl_cpu_utilization_ratio", "gauge", "ratio",
          "Busy share of the control CPU cores, 0-1 (accelerator; npu-smi Ctrlcpu Usage Rate).",
          _a("ma_node_npu_ctrl_cpu_util", "%", scale=100.0)),
    _spec("poolwatch_npu_overall_utilization_ratio", "gauge", "ratio",
          "Overall NPU busy share, 0-1; driver 24.1.RC2 and later (accelerator; npu-smi NPU "
          "Utilization).",
          _a("ma_node_npu_general_util", "%", scale=100.0)),
    _spec("poolwatch_npu_hbm_bandwidth_utilization_ratio", "gauge", "ratio",
          "Share of the HBM bandwidth in use, 0-1 (accelerator; npu-smi HBM Bandwidth Usage "
          "Rate).",
          _a("ma_node_npu_hbm_bandwidth_util", "%", scale=100.0)),
    _spec("poolwatch_npu_ddr_memory_total_bytes", "gauge", "bytes",
          "NPU DDR memory; absent where npu-smi prints 0 / 0 (910B, A3) (accelerator; npu-smi "
          "Memory-Usage(MB)).",
          _a("ma_node_npu_ddr_memory_bytes", "Byte"),
          _a("ma_node_npu_memory_total_megabytes", "MB", scale=MIB, model_re=SNT3)),
    _spec("poolwatch_npu_ddr_memory_used_bytes", "gauge", "bytes",
          "NPU DDR memory in use (accelerator; npu-smi Memory-Usage(MB)).",
          _a("ma_node_npu_ddr_memory_usage_bytes", "Byte"),
          _a("ma_node_npu_memory_used_megabytes", "MB", scale=MIB, model_re=SNT3)),
    _spec("poolwatch_npu_ddr_memory_used_ratio", "gauge", "ratio",
          "Used over total NPU DDR memory, 0-1 (accelerator; npu-smi Memory-Usage(MB)).",
          _a("ma_node_npu_ddr_memory_util", "%", scale=100.0),
          _a("ma_node_npu_memory_util", "%", scale=100.0, model_re=SNT3)),
    _spec("poolwatch_npu_hbm_ecc_enabled", "gauge", "",
          "1 if HBM ECC detection is enabled, 0 if not (accelerator; npu-smi HBM ECC-Enable "
          "Status).",
          _a("ma_node_npu_hbm_ecc_enable", "-")),
    _spec("poolwatch_npu_ai_core_rated_clock_hertz", "gauge", "hertz",
          "Rated AI core clock; the current one is poolwatch_accelerator_core_clock_hertz "
          "(accelerator; npu-smi Aicore Freq(MHZ))."),
    MetricSpec("poolwatch_npu_tool_processes", "gauge", "",
               "npu-smi and hccn_tool processes the last collection started, by tool: the cost "
               "of reading the NPUs, which per-group intervals keep low (accelerator).",
               ("tool",), "accelerator"),
]
# fmt: on
NPU_SPECS = [npu_smi_age(s) for s in NPU_SPECS]
