"""The NVML backend through the accelerator collector, on a fake pynvml fed with real captures."""

from pathlib import Path

import pytest
from helpers import FIXTURES, names, run_collector, value
from nvml_fake import FakeGpu, FakeNvml, read_query_csv
from prom_versions import Prometheus

from poolwatch.exporters.node.accelerators.model import BackendUnavailable
from poolwatch.exporters.node.accelerators.nvml import NvmlBackend
from poolwatch.exporters.node.attribution.owners import DeviceOwners, Owner
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.settings import AcceleratorSettings
from poolwatch.exporters.node.store import ExpositionStore

NV = FIXTURES / "nvidia"
MIB = 1 << 20


def h100() -> FakeGpu:
    (q,) = read_query_csv(NV / "nvidia-smi_query-gpu_csv_H100_load.csv")
    apps = read_query_csv(NV / "nvidia-smi_query-compute-apps_H100_load.csv")
    procs = [(int(a["pid"]), int(a["used_gpu_memory"].split()[0]) * MIB) for a in apps]
    return FakeGpu(q, procs=procs)


def a100s() -> list[FakeGpu]:
    rows = read_query_csv(NV / "nvidia-smi_query-gpu_csv_A100_8gpu.csv")
    for row in rows:  # the capture has no UUIDs; give each GPU a stable one
        row["uuid"] = f"GPU-a100-capture-{row['index']}"
    return [FakeGpu(row) for row in rows]


def collector(fake: FakeNvml, owners: DeviceOwners | None = None, required: bool = True):
    return AcceleratorCollector(AcceleratorSettings(), [(NvmlBackend(fake), required)], owners)


def test_h100_capture_values_and_seed_aliases() -> None:
    ok, s, _ = run_collector(collector(FakeNvml([h100()])), ("modelarts",))
    assert ok
    dev = {"vendor": "nvidia", "model": "NVIDIA H100 80GB HBM3", "index": "0"}
    assert value(s, "poolwatch_accelerator_utilization_ratio", **dev) == 1.0
    assert value(s, "poolwatch_accelerator_memory_used_bytes", **dev) == 19818 * MIB
    assert value(s, "poolwatch_accelerator_memory_total_bytes", **dev) == 81559 * MIB
    assert value(s, "poolwatch_accelerator_memory_free_bytes", **dev) == 61263 * MIB
    assert value(s, "poolwatch_accelerator_temperature_celsius", **dev) == 59
    assert value(s, "poolwatch_accelerator_memory_temperature_celsius", **dev) == 54
    assert value(s, "poolwatch_accelerator_power_watts", **dev) == pytest.approx(631.95)
    assert value(s, "poolwatch_accelerator_core_clock_hertz", **dev) == 1980e6
    assert value(s, "poolwatch_accelerator_memory_clock_hertz", **dev) == 2619e6
    assert value(s, "poolwatch_gpu_power_limit_watts", **dev) == 700
    assert value(s, "poolwatch_gpu_memory_copy_utilization_ratio", **dev) == pytest.approx(0.11)
    assert value(s, "poolwatch_accelerator_processes", **dev) == 3
    for error in ("corrected", "uncorrected"):
        for scope in ("volatile", "aggregate"):
            assert value(s, "poolwatch_accelerator_ecc_errors_total", error=error, scope=scope) == 0
    assert value(s, "poolwatch_gpu_remapped_rows", kind="uncorrectable") == 0
    assert value(s, "poolwatch_gpu_remapped_rows_failed") == 0
    assert value(s, "poolwatch_accelerator_info", driver_version="590.48.01") == 1
    assert value(s, "poolwatch_accelerator_healthy", **dev) == 1
    # [N/A] in the capture is "not supported" in NVML: omitted, never exported as a number
    assert "poolwatch_accelerator_retired_pages" not in names(s)
    assert "poolwatch_gpu_retired_pages_pending" not in names(s)
    assert "poolwatch_accelerator_energy_joules_total" not in names(s)
    # the seeds' names, in the seeds' units
    assert value(s, "DCGM_FI_DEV_GPU_TEMP") == 59
    assert value(s, "DCGM_FI_DEV_MEMORY_TEMP") == 54
    assert value(s, "DCGM_FI_DEV_POWER_USAGE") == pytest.approx(631.95)
    assert value(s, "ma_node_gpu_util") == 100
    assert value(s, "ma_node_gpu_mem_used_megabytes") == 19818
    assert value(s, "ma_node_gpu_memory_total_megabytes") == 81559
    assert value(s, "ma_node_gpu_mem_util") == pytest.approx(19818 / 81559 * 100)
    assert value(s, "poolwatch_accelerator_backend_up", backend="nvml") == 1


def test_eight_a100s_missing_fields_are_omitted_not_zero() -> None:
    ok, s, _ = run_collector(collector(FakeNvml(a100s())))
    assert ok
    used = [66147, 77105, 50803, 57421, 76651, 0, 6313, 6247]
    util = [99, 0, 87, 99, 0, 0, 39, 40]
    for i in range(8):
        mem = value(s, "poolwatch_accelerator_memory_used_bytes", index=str(i))
        assert mem == used[i] * MIB
        assert value(s, "poolwatch_accelerator_utilization_ratio", index=str(i)) == util[i] / 100
    # the capture has no temperature or power column: no such series rather than zeros
    assert "poolwatch_accelerator_temperature_celsius" not in names(s)
    assert "poolwatch_accelerator_power_watts" not in names(s)


def test_sentinel_value_is_omitted() -> None:
    gpu = h100()
    gpu.q["power.draw"] = "4294967.295 W"  # NVML's 0xFFFFFFFF mW "no reading"
    _, s, _ = run_collector(collector(FakeNvml([gpu])))
    assert "poolwatch_accelerator_power_watts" not in names(s)


def test_fields_nvidia_smi_prints_as_err_are_counted_per_gpu() -> None:
    """FI-02 (A050102): a query that fails with an error other than 'not supported' is what
    nvidia-smi prints as ERR!; the healthy GPU beside it counts none."""
    broken, healthy = h100(), h100()
    broken.q["power.draw"] = "ERR!"
    broken.q["temperature.gpu"] = "[Unknown Error]"
    healthy.q["uuid"] = "GPU-healthy"
    _, s, _ = run_collector(collector(FakeNvml([broken, healthy])))
    assert value(s, "poolwatch_gpu_query_errors", index="0") == 2
    assert value(s, "poolwatch_gpu_query_errors", index="1") == 0
    assert value(s, "poolwatch_accelerator_power_watts", index="1") == pytest.approx(631.95)


def _runner(coll: AcceleratorCollector) -> tuple[Runner, ExpositionStore]:
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    return Runner([coll], store), store


def test_gpu_lost_mid_run_drops_its_series_and_keeps_the_others() -> None:
    from helpers import parse

    gpus = a100s()
    fake = FakeNvml(gpus)
    coll = collector(fake)
    runner, store = _runner(coll)
    assert runner.run_once(coll)
    gpus[3].lost = True  # NVML_ERROR_GPU_IS_LOST from now on
    assert runner.run_once(coll)
    s = parse(store.body())
    assert value(s, "poolwatch_accelerator_up", index="3") == 0
    assert value(s, "poolwatch_accelerator_health_level", index="3") == 3
    assert value(s, "poolwatch_accelerator_healthy", index="3") == 0
    assert value(s, "poolwatch_accelerator_events_total", index="3", event="lost") == 1
    lost_series = {n for n, ls in s if ("index", "3") in ls}
    assert "poolwatch_accelerator_memory_used_bytes" not in lost_series  # no stale readings
    assert value(s, "poolwatch_accelerator_memory_used_bytes", index="4") == 76651 * MIB
    assert value(s, "poolwatch_accelerator_up", index="4") == 1
    gpus[3].lost = False
    runner.run_once(coll)
    s = parse(store.body())
    assert value(s, "poolwatch_accelerator_up", index="3") == 1
    assert value(s, "poolwatch_accelerator_events_total", index="3", event="recovered") == 1


def test_gpu_that_falls_off_the_bus_is_reported_lost() -> None:
    from helpers import parse

    gpus = a100s()
    fake = FakeNvml(gpus)
    coll = collector(fake)
    runner, store = _runner(coll)
    runner.run_once(coll)
    fake.gpus = gpus[:7]  # the device count drops: GPU 7 is gone
    runner.run_once(coll)
    s = parse(store.body())
    assert value(s, "poolwatch_accelerator_up", index="7", uuid="GPU-a100-capture-7") == 0
    assert value(s, "poolwatch_accelerator_up", index="6") == 1


def test_xid_events_are_counted_per_code_never_sticky() -> None:
    from helpers import parse

    fake = FakeNvml(a100s())
    coll = collector(fake)
    runner, store = _runner(coll)
    runner.run_once(coll)  # registers the devices for XID events
    assert fake.registered == set(range(8))
    fake.xid_queue += [(2, 79), (2, 79), (5, 13)]
    runner.run_once(coll)
    s = parse(store.body())
    assert value(s, "poolwatch_gpu_xid_errors_total", index="2", xid="79") == 2
    assert value(s, "poolwatch_gpu_xid_errors_total", index="5", xid="13") == 1
    last = value(s, "poolwatch_gpu_xid_last_timestamp_seconds", index="2", xid="79")
    assert last > 1.7e9
    runner.run_once(coll)  # no new events: the counters stay, nothing new is invented
    s = parse(store.body())
    assert value(s, "poolwatch_gpu_xid_errors_total", index="2", xid="79") == 2
    xids = {dict(ls)["xid"] for n, ls in s if n == "poolwatch_gpu_xid_errors_total"}
    assert xids == {"79", "13"}


def test_no_nvml_library_in_auto_mode_is_quiet_and_stays_off() -> None:
    fake = FakeNvml([], library=False)
    coll = collector(fake, required=False)
    ok, s, _ = run_collector(coll)
    assert ok
    assert value(s, "poolwatch_collector_up", collector="accelerator") == 1
    assert "poolwatch_accelerator_backend_up" not in names(s)
    ok, s, _ = run_collector(coll)  # stays off: no second attempt
    assert ok
    with pytest.raises(BackendUnavailable):
        NvmlBackend(fake).read()


def test_no_nvml_library_with_gpu_on_is_an_error() -> None:
    ok, _s, store = run_collector(collector(FakeNvml([], library=False), required=True))
    assert not ok
    assert "nvml" in store.states()[0].last_error


def test_mig_slices_attribute_pods_to_the_parent_gpu() -> None:
    gpu = h100()
    gpu.mig_uuids = ["MIG-11111111-2222-3333-4444-555555555555", "MIG-aaaa"]
    owners = DeviceOwners()
    a = Owner("ml", "train-a-worker-0", "pytorch", "train-a")
    b = Owner("ml", "serve-b-0", "server", "")
    owners.replace(
        {"MIG-11111111-2222-3333-4444-555555555555": (a,), "MIG-aaaa::1": (b,)}, "pod-resources"
    )
    _, s, _ = run_collector(collector(FakeNvml([gpu]), owners), ("modelarts",))
    assert value(s, "poolwatch_accelerator_owners", index="0") == 2
    assert value(s, "node_gpu_share_job_count") == 2
    assert value(s, "poolwatch_node_accelerators", vendor="nvidia") == 1
    assert value(s, "poolwatch_node_accelerators_idle", vendor="nvidia") == 0
    util = value(s, "poolwatch_container_accelerator_utilization_ratio", pod="train-a-worker-0")
    assert util == 1.0
    assert value(s, "ma_container_gpu_util", pod="serve-b-0", training_job="") == 100
    # two owners and no pid mapping: per-container memory is not made up
    assert "poolwatch_container_accelerator_memory_used_bytes" not in names(s)


def test_per_process_memory_goes_to_the_owner_of_the_pids() -> None:
    owners = DeviceOwners()
    a = Owner("ml", "burn-0", "burn", "burn")
    b = Owner("ml", "hog-0", "hog", "hog")
    gpu = h100()
    owners.replace({gpu.q["uuid"]: (a, b)}, "pod-resources")
    owners.replace_pids({a: frozenset({11345}), b: frozenset({11327, 11328})})
    _, s, _ = run_collector(collector(FakeNvml([gpu]), owners), ("modelarts",))
    burn = value(s, "poolwatch_container_accelerator_memory_used_bytes", pod="burn-0")
    assert burn == 15690 * MIB
    assert value(s, "ma_container_gpu_mem_used_megabytes", pod="hog-0") == 2566 + 1542


@pytest.mark.integration
def test_eight_gpus_pass_promtool(tmp_path: Path, prom: Prometheus) -> None:
    from helpers import not_about_seed_names, promtool_findings

    gpus = [*a100s(), h100()]
    owners = DeviceOwners()
    owners.replace({"GPU-a100-capture-0": (Owner("a", "p", "c", "j"),)}, "pod-resources")
    coll = collector(FakeNvml(gpus), owners)
    _, s, _ = run_collector(coll)
    assert value(s, "poolwatch_node_accelerators", vendor="nvidia") == 9
    assert value(s, "poolwatch_node_accelerators_idle", vendor="nvidia") == 8
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    Runner([coll], store, ["modelarts"]).run_once(coll)
    body = store.states()[0].body
    assert not_about_seed_names(promtool_findings(body, prom.promtool)) == set()


def test_without_kubelet_devices_are_attributed_by_their_processes() -> None:
    owners = DeviceOwners()
    hog = Owner("ml", "hog-0", "hog", "hog")
    owners.replace({}, "cgroup")  # the fallback: no device list, only cgroup membership
    owners.replace_pids({hog: frozenset({11327, 11328}), Owner("x", "y", "z"): frozenset({1})})
    _, s, _ = run_collector(collector(FakeNvml([h100()]), owners))
    assert value(s, "poolwatch_accelerator_owners") == 1
    used = value(s, "poolwatch_container_accelerator_memory_used_bytes", pod="hog-0")
    assert used == (2566 + 1542) * MIB
    assert value(s, "poolwatch_container_accelerator_utilization_ratio", pod="hog-0") == 1.0


def test_booked_and_idle_seconds_accumulate_per_holder() -> None:
    """The Apulis VC table's booked hours and idle hours (held at 0 %) as counters."""
    from helpers import parse

    gpus = a100s()  # GPU 0 at 99 %, GPU 1 at 0 %
    owners = DeviceOwners()
    busy, idle = Owner("ml", "busy-0", "c", "busy"), Owner("ml", "idle-0", "c", "idle")
    owners.replace({gpus[0].q["uuid"]: (busy,), gpus[1].q["uuid"]: (idle,)}, "pod-resources")
    coll = collector(FakeNvml(gpus), owners)
    now = [1000.0]
    coll.clock = lambda: now[0]
    runner, store = _runner(coll)
    runner.run_once(coll)
    now[0] += 15
    runner.run_once(coll)
    now[0] += 15
    runner.run_once(coll)
    s = parse(store.body())
    booked = "poolwatch_container_accelerator_allocated_seconds_total"
    idle_s = "poolwatch_container_accelerator_idle_seconds_total"
    assert value(s, booked, pod="busy-0") == 30
    assert value(s, idle_s, pod="busy-0") == 0
    assert value(s, booked, pod="idle-0") == 30
    assert value(s, idle_s, pod="idle-0") == 30
    now[0] += 3600  # the exporter stalled for an hour: at most two intervals are booked
    runner.run_once(coll)
    assert value(parse(store.body()), booked, pod="busy-0") == 30 + 2 * coll.interval
    owners.replace({gpus[0].q["uuid"]: (busy,)}, "pod-resources")  # idle-0 let go
    now[0] += 15
    runner.run_once(coll)
    assert not [ls for n, ls in parse(store.body()) if n == booked and ("pod", "idle-0") in ls]
