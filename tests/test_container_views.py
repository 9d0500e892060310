"""Per-container views of device series, for GPU and NPU alike, through the real collector."""

from helpers import names, run_collector, value
from nvml_fake import FakeNvml
from test_npu_smi import VIEWS_910B, FakeNpuSmi, fixture
from test_nvml import MIB, h100

from poolwatch.exporters.node.accelerators.npu_smi import NpuSmiBackend
from poolwatch.exporters.node.accelerators.nvml import NvmlBackend
from poolwatch.exporters.node.attribution.owners import DeviceOwners, Owner
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.settings import AcceleratorSettings

OWNER = Owner("ml", "train-0", "worker", "train")


def test_gpu_views_carry_owner_and_device_labels() -> None:
    gpu = h100()
    owners = DeviceOwners()
    owners.replace({gpu.q["uuid"]: (OWNER,)}, "pod-resources")
    coll = AcceleratorCollector(
        AcceleratorSettings(), [(NvmlBackend(FakeNvml([gpu])), True)], owners
    )
    ok, s, _ = run_collector(coll, ("modelarts",))
    assert ok
    free = value(s, "poolwatch_container_accelerator_memory_free_bytes", pod="train-0")
    assert free == 61263 * MIB
    assert value(s, "ma_container_gpu_mem_free_megabytes", training_job="train") == 61263
    assert value(s, "ma_container_gpu_mem_copy_util", container="worker") == 11
    assert value(s, "ma_container_gpu_util", namespace="ml") == 100
    # the device is alone with its owner, so the device's memory is the owner's
    assert value(s, "ma_container_gpu_mem_used_megabytes", pod="train-0") == 19818


def test_npu_only_series_get_container_views_too() -> None:
    run = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    backend = NpuSmiBackend(run=run)  # type: ignore[arg-type]
    first = backend.read().devices[0]
    owners = DeviceOwners()
    owners.replace({first.aliases[0]: (OWNER,)}, "pod-resources")
    coll = AcceleratorCollector(AcceleratorSettings(), [(backend, True)], owners)
    ok, s, _ = run_collector(coll, ("modelarts",))
    assert ok
    device_vector = value(s, "poolwatch_npu_vector_core_utilization_ratio", index=first.index)
    view = value(s, "poolwatch_container_npu_vector_core_utilization_ratio", pod="train-0")
    assert view == device_vector
    assert value(s, "ma_container_npu_vector_core_util", pod="train-0") == device_vector * 100
    assert value(s, "ma_container_npu_ai_core_health_status", pod="train-0") == 1
    held = {dict(ls)["index"] for n, ls in s if n == "poolwatch_container_accelerator_healthy"}
    assert held == {first.index}  # only the device the pod holds
    assert value(s, "poolwatch_node_accelerators_idle", vendor="huawei") == 7
    assert "poolwatch_container_gpu_encoder_utilization_ratio" not in names(s)


def _npu_collector(mode: str, compat: frozenset[str]) -> AcceleratorCollector:
    run = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    backend = NpuSmiBackend(run=run)  # type: ignore[arg-type]
    owners = DeviceOwners()
    owners.replace({d.aliases[0]: (OWNER,) for d in backend.read().devices}, "pod-resources")
    settings = AcceleratorSettings(container_views=mode)
    return AcceleratorCollector(settings, [(backend, True)], owners, compat)


def _views(s) -> set[str]:
    return {n for n in names(s) if n.startswith("poolwatch_container_")}


def test_without_compat_only_the_views_rules_and_dashboards_read_are_copied() -> None:
    """The default: no seed names asked for, so only what a shipped rule or dashboard reads
    (and utilisation/memory, always there) is copied per container."""
    from poolwatch.core.catalog.accelerator import CONTAINER_VIEWS_USED

    _, s, _ = run_collector(_npu_collector("needed", frozenset()))
    assert _views(s) == {
        *(CONTAINER_VIEWS_USED - {"poolwatch_container_npu_ddr_memory_used_ratio"}),  # 910B: no DDR
        "poolwatch_container_accelerator_utilization_ratio",
        "poolwatch_container_accelerator_memory_total_bytes",
        "poolwatch_container_accelerator_memory_used_bytes",
        "poolwatch_container_accelerator_allocated_seconds_total",
        "poolwatch_container_accelerator_idle_seconds_total",
    }
    _, with_seeds, _ = run_collector(
        _npu_collector("needed", frozenset({"modelarts"})), ("modelarts",)
    )
    assert "poolwatch_container_npu_vector_core_utilization_ratio" in _views(with_seeds)
    assert "ma_container_npu_vector_core_util" in names(with_seeds)
    _, every, _ = run_collector(_npu_collector("all", frozenset()))
    assert _views(every) == _views(with_seeds)  # every NPU view has a seed name
    _, none, _ = run_collector(_npu_collector("none", frozenset()))
    assert _views(none) == _views(s) - CONTAINER_VIEWS_USED
    assert len(_views(none)) == 5


def test_every_per_container_name_a_shipped_rule_or_dashboard_reads_is_kept() -> None:
    import re
    from pathlib import Path

    from poolwatch.core.catalog.accelerator import CONTAINER_VIEWS, CONTAINER_VIEWS_USED

    root = Path(__file__).resolve().parent.parent
    text = "".join(
        p.read_text()
        for d in ("rules/default", "dashboards/generated", "helm/poolwatch/files")
        for p in (root / d).rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
    )
    used = set(re.findall(r"poolwatch_container_[a-z_]+", text))
    views = {v.name for v in CONTAINER_VIEWS}
    assert used & views <= CONTAINER_VIEWS_USED
