"""Per-container views of device series, for GPU and NPU alike, through the real collector."""

from helpers import names, run_collector, value
from nvml_fake import FakeNvml
from test_npu_smi import VIEWS_910B, FakeNpuSmi, fixture
from test_nvml import MIB, h100

from exporters.node.accelerators.npu_smi import NpuSmiBackend
from exporters.node.accelerators.nvml import NvmlBackend
from exporters.node.attribution.owners import DeviceOwners, Owner
from exporters.node.collectors.accelerator import AcceleratorCollector
from exporters.node.settings import AcceleratorSettings

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
