"""hccn_tool wired into the accelerator collector: seed aliases, and off quietly when absent."""

from pathlib import Path

from helpers import names, run_collector, value
from test_hccn_tool import FakeHccnTool, backend
from test_npu_smi import VIEWS_910B, FakeNpuSmi, fixture

from poolwatch.exporters.node.accelerators.hccn_tool import HccnToolBackend
from poolwatch.exporters.node.accelerators.npu_smi import NpuSmiBackend
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector, build_backends
from poolwatch.exporters.node.settings import AcceleratorSettings, NodeExporterSettings


def test_npu_node_exports_link_roce_and_optical_seed_names() -> None:
    npu = NpuSmiBackend(run=FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B))
    hccn = backend(FakeHccnTool(), ids=[0, 1])
    coll = AcceleratorCollector(AcceleratorSettings(), [(npu, True), (hccn, False)])
    ok, s, _ = run_collector(coll, ("modelarts",))
    assert ok
    assert value(s, "poolwatch_npu_link_up", device_id="1") == 1
    assert value(s, "poolwatch_accelerator_backend_up", backend="hccn_tool") == 1
    assert "ma_node_npu_optical_temperature" in names(s)
    assert "ma_node_npu_roce_mac_rx_pfc_packets_total" in names(s)
    assert value(s, "poolwatch_accelerator_backend_up", backend="npu_smi") == 1


def test_hccn_tool_is_optional_and_serial(tmp_path: Path) -> None:
    settings = NodeExporterSettings(npu="on", hccn_tool=str(tmp_path / "absent"))
    by_name = {b.name: (b, required) for b, required in build_backends(settings)}
    hccn, required = by_name["hccn_tool"]
    assert isinstance(hccn, HccnToolBackend)
    assert required is False  # inference cards have no RoCE port and no hccn_tool
    assert hccn.max_workers == 1  # Huawei documents hccn_tool as unsafe to run concurrently
    assert by_name["npu_smi"][1] is True
    assert "hccn_tool" not in {b.name for b, _ in build_backends(NodeExporterSettings(npu="off"))}
