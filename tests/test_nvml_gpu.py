"""The GPU collector on a real NVIDIA GPU, compared with nvidia-smi on the same machine.

Skipped where NVML cannot load (CI, the development VM). Run on a GPU host with
`pytest -m gpu -s`: it prints the side-by-side comparison it asserts on."""

import csv
import shutil
import subprocess
import sys

import pytest
from helpers import run_collector, value

from poolwatch.exporters.node.accelerators.nvml import NvmlBackend
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.settings import AcceleratorSettings

pytestmark = pytest.mark.gpu
FIELDS = (
    "index,uuid,name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu,"
    "temperature.memory,power.draw,clocks.sm,clocks.mem,enforced.power.limit,"
    "ecc.errors.uncorrected.volatile.total,remapped_rows.uncorrectable"
)


def _nvml_ok() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any failure means "no GPU here"
        return False
    return shutil.which("nvidia-smi") is not None


def _smi() -> list[dict[str, str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    keys = FIELDS.split(",")
    return [dict(zip(keys, (v.strip() for v in row), strict=True))
            for row in csv.reader(out.stdout.splitlines())]  # fmt: skip


@pytest.mark.skipif(not _nvml_ok(), reason="no NVIDIA GPU / NVML on this machine")
def test_real_gpu_matches_nvidia_smi() -> None:
    coll = AcceleratorCollector(AcceleratorSettings(), [(NvmlBackend(), True)])
    ok, s, store = run_collector(coll, ("modelarts",))
    assert ok, store.states()[0].last_error
    for gpu in _smi():
        dev = {"index": gpu["index"], "uuid": gpu["uuid"]}
        ours = {
            "name": value(s, "poolwatch_accelerator_info", **dev, model=gpu["name"]),
            "memory.total MiB": value(s, "poolwatch_accelerator_memory_total_bytes", **dev) / 2**20,
            "memory.used MiB": value(s, "poolwatch_accelerator_memory_used_bytes", **dev) / 2**20,
            "temperature.gpu C": value(s, "poolwatch_accelerator_temperature_celsius", **dev),
            "power.draw W": value(s, "poolwatch_accelerator_power_watts", **dev),
            "clocks.sm MHz": value(s, "poolwatch_accelerator_core_clock_hertz", **dev) / 1e6,
            "clocks.mem MHz": value(s, "poolwatch_accelerator_memory_clock_hertz", **dev) / 1e6,
            "power limit W": value(s, "poolwatch_gpu_power_limit_watts", **dev),
        }
        theirs = {
            "name": 1.0, "memory.total MiB": float(gpu["memory.total"]),
            "memory.used MiB": float(gpu["memory.used"]),
            "temperature.gpu C": float(gpu["temperature.gpu"]),
            "power.draw W": float(gpu["power.draw"]), "clocks.sm MHz": float(gpu["clocks.sm"]),
            "clocks.mem MHz": float(gpu["clocks.mem"]),
            "power limit W": float(gpu["enforced.power.limit"]),
        }  # fmt: skip
        for key in ours:
            line = f"GPU {gpu['index']} {key:<18} poolwatch {ours[key]:>12.2f}  "
            sys.stdout.write(line + f"nvidia-smi {theirs[key]:>12.2f}\n")
        assert ours["memory.total MiB"] == theirs["memory.total MiB"]
        assert abs(ours["memory.used MiB"] - theirs["memory.used MiB"]) <= 64
        assert abs(ours["temperature.gpu C"] - theirs["temperature.gpu C"]) <= 3
        assert ours["power.draw W"] == pytest.approx(theirs["power.draw W"], rel=0.25, abs=15)
        assert ours["power limit W"] == pytest.approx(theirs["power limit W"])
        assert ours["clocks.mem MHz"] == pytest.approx(theirs["clocks.mem MHz"], rel=0.05)
        if gpu["temperature.memory"].isdigit():
            mem_temp = value(s, "poolwatch_accelerator_memory_temperature_celsius", **dev)
            assert abs(mem_temp - float(gpu["temperature.memory"])) <= 3
        if gpu["ecc.errors.uncorrected.volatile.total"].isdigit():
            ecc = value(s, "poolwatch_accelerator_ecc_errors_total", **dev,
                        error="uncorrected", scope="volatile")  # fmt: skip
            assert ecc == float(gpu["ecc.errors.uncorrected.volatile.total"])
        assert value(s, "DCGM_FI_DEV_GPU_TEMP", **dev) == ours["temperature.gpu C"]
        assert value(s, "poolwatch_accelerator_up", **dev) == 1
    assert value(s, "poolwatch_accelerator_backend_up", backend="nvml") == 1
