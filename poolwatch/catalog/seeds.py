"""Seed metrics poolwatch does not produce, each with the reason and the issue that adds it, if any.

A test reads every row of the seed table (`tests/fixtures/spec/seed-metrics.csv`) and requires each
name to be either an alias in the catalog or listed here. A name listed here that a collector starts
producing drops out of `UNPRODUCED` by itself; delete it here when its issue closes.
"""

from __future__ import annotations

from poolwatch.core.catalog.model import Unproduced

_ROCE_CONTAINER = (
    "hccn_tool reports RoCE traffic per NPU device id, and the device -> pod mapping is keyed by "
    "npu-smi's labels, which those series do not carry; not planned"
)
_VOLT = (
    "`npu-smi info -t volt` exists, but no real output of it was found to build and test a parser "
    "on; the per-container view follows the node series"
)
_CTRL_FREQ = "npu-smi prints no control CPU frequency; only Ascend's DCMI library reports it"

# (reason, issue or None when no issue plans it, whitespace-separated seed names)
_GROUPS: list[tuple[str, int | None, str]] = [
    (
        _ROCE_CONTAINER,
        None,
        "ma_container_npu_roce_tx_rate_bytes_per_second "
        "ma_container_npu_roce_rx_rate_bytes_per_second",
    ),
    (_VOLT, None, "ma_node_npu_ai_core_voltage_volts ma_container_npu_ai_core_voltage_volts"),
    (_CTRL_FREQ, None, "ma_node_npu_ctrl_cpu_frequency_hertz"),
]


def pending(produced: set[str]) -> dict[str, Unproduced]:
    """The listed seed metrics that are not among `produced` (the catalog's alias names)."""
    return {
        name: Unproduced(name=name, reason=reason, issue=issue)
        for reason, issue, names in _GROUPS
        for name in names.split()
        if name not in produced
    }
