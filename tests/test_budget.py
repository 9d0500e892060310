"""The series budget (`poolwatch catalog --budget`) against real expositions of the collectors."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from helpers import run_collector
from nvml_fake import FakeNvml
from test_npu_smi import VIEWS_910B, FakeNpuSmi, fixture
from test_nvml import h100

from poolwatch.core import catalog
from poolwatch.core.catalog import budget
from poolwatch.exporters.node.accelerators.npu_smi import NpuSmiBackend
from poolwatch.exporters.node.accelerators.nvml import NvmlBackend
from poolwatch.exporters.node.attribution.owners import DeviceOwners, Owner
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.settings import AcceleratorSettings


def _per_unit(series) -> Counter[str]:
    owner = {a.name: s for s in catalog.ALL_SPECS for a in s.aliases}
    out: Counter[str] = Counter()
    for (name, labels), _ in series.items():
        if name.startswith("poolwatch_collector_"):
            continue
        spec = owner.get(name) or owner.get(name.removesuffix("_total"))
        if spec is None:
            spec = catalog.by_name(name)
        out[budget.unit_of_sample(spec, dict(labels))] += 1
    return out


def test_a_real_accelerator_exposition_stays_within_its_budget_unit_by_unit() -> None:
    """One H100 (fake NVML fed a captured query) and eight 910B3 NPUs (npu-smi captures), each
    device held by one container, with the ModelArts seed names on."""
    gpu = h100()
    npu = NpuSmiBackend(run=FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B))
    owners = DeviceOwners()
    held = {d.aliases[0]: (Owner("ml", f"p{d.index}", "w", "j"),) for d in npu.read().devices}
    held[gpu.q["uuid"]] = (Owner("ml", "g", "w", "j"),)
    owners.replace(held, "pod-resources")
    coll = AcceleratorCollector(
        AcceleratorSettings(),
        [(NvmlBackend(FakeNvml([gpu])), True), (npu, True)],
        owners,
        frozenset({"modelarts"}),
    )
    run_collector(coll, ("modelarts",))  # the second run has every rate and counter
    ok, s, store = run_collector(coll, ("modelarts",))
    assert ok, store.states()[0].last_error
    real = _per_unit(s)
    shape = budget.Shape(gpus=1, npu_chips=8, gpu_holders=1, npu_holders=8, nvlinks=0)
    table = budget.per_unit(catalog.ALL_SPECS, shape, ["modelarts"])
    for unit, count in (("gpu", 1), ("npu_chip", 8), ("container_gpu", 1), ("container_npu", 8)):
        ceiling = (table[unit]["canonical"] + table[unit]["aliases"]) * count
        assert 0 < real[unit] <= ceiling, unit
        assert real[unit] >= ceiling * 0.5, f"{unit}: budget {ceiling} far above {real[unit]}"


def test_views_switched_off_leave_the_budget() -> None:
    shape = budget.Shape()
    needed = budget.budget(catalog.ALL_SPECS, shape, ["modelarts"], "needed")
    every = budget.budget(catalog.ALL_SPECS, shape, ["modelarts"], "all")
    none = budget.budget(catalog.ALL_SPECS, shape, [], "none")
    plain = budget.budget(catalog.ALL_SPECS, shape, [], "needed")
    assert none["container_npu"] < plain["container_npu"] < needed["container_npu"]
    assert needed["container_gpu"] == every["container_gpu"]  # every GPU view has a seed name
    assert plain["total"] < needed["total"]


def test_cli_prints_the_table_and_refuses_a_bad_shape() -> None:
    cmd = [sys.executable, "-m", "poolwatch.app.cli", "catalog", "--budget"]
    out = subprocess.run([*cmd, "--shape", "gpus=2,npu_chips=0"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| gpu |" in out.stdout
    assert "| **total** |" in out.stdout
    bad = subprocess.run([*cmd, "--shape", "gpu=2"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "'gpu=2' is not one of" in bad.stderr


@pytest.mark.parametrize("text", ["gpus=-1", "gpus=two", "nope"])
def test_shape_errors_name_the_key(text: str) -> None:
    with pytest.raises(ValueError, match="shape: "):
        budget.Shape.parse(text)
