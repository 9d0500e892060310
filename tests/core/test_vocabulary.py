"""The core vocabulary: the simulated cluster, the controller and the cluster exporter count nodes
and word pool events alike because they all ask `poolwatch.core.vocabulary`, not because three
copies happen to match.

The agreement tests change the vocabulary (a bucket, an event text) for the duration of a test and
check that all three follow: a part that re-implemented the table or the text would not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from poolwatch.cluster.kubernetes.convert import pool_from
from poolwatch.cluster.model import Node, NodeStatus, PoolStatus
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import GPU, PoolSpec, SimulationSpec
from poolwatch.cluster.workload import is_accelerator as workload_is_accelerator
from poolwatch.controller import pools as controller_pools
from poolwatch.core import vocabulary
from poolwatch.exporters.cluster.aggregate import Aggregator, ResourceFilter
from poolwatch.exporters.cluster.pool_events import PoolEvents
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node.attribution.pod_resources import allocations
from poolwatch.exporters.node.attribution.podresources import api_pb2
from poolwatch.exporters.node.settings import PodResourcesSettings

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0
# one pool of 3 nodes, the last one an HA spare; nothing else happens
SPEC = SimulationSpec(
    pools=(PoolSpec("gpu", 3, 8, GPU, "NVIDIA H100 80GB HBM3", ha_spares=1),),
    initial_jobs=0,
    jobs_per_hour=0,
    fault_interval=None,
    repair_seconds=None,
)
STATUSES = (NodeStatus.AVAILABLE, NodeStatus.AVAILABLE, NodeStatus.SPARE)


def _nodes() -> list[Node]:
    return [
        Node(f"gpu-node-{i:02d}", f"uid-{i}", "gpu", s, allocatable=((GPU, 8.0),))
        for i, s in enumerate(STATUSES)
    ]


def simulator_counts() -> tuple[int, ...]:
    """The counts of the simulated pool's last PoolResourcesStatusChange, once it is created."""
    c = SimulatedCluster(SPEC, clock=lambda: T0)
    c.step(600)
    assert sorted(n.status for n in c.nodes()) == sorted(STATUSES)
    last = [e.message for e in c.events() if e.reason == vocabulary.POOL_RESOURCES_CHANGE][-1]
    m = re.search(r" to (\d+)/(\d+)/(\d+)/(\d+),", last)
    assert m, last
    return tuple(int(x) for x in m.groups())


def exporter_counts() -> tuple[int, ...]:
    agg = Aggregator([2], ResourceFilter(vocabulary.ACCELERATOR_RESOURCES))
    for n in _nodes():
        agg.set_node(n.name, n, n.uid)
    totals = agg.totals("gpu")
    assert totals is not None
    return totals.counts()


def controller_counts() -> tuple[int, ...]:
    return controller_pools.counts(_nodes())


def test_the_three_parts_count_alike() -> None:
    assert simulator_counts() == exporter_counts() == controller_counts() == (2, 0, 0, 0)


def test_the_three_parts_follow_a_change_of_the_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were Spare nodes counted as abnormal, all three would say so: none keeps its own table."""
    monkeypatch.setitem(vocabulary.BUCKET_OF, "Spare", "abnormal")
    assert simulator_counts() == exporter_counts() == controller_counts() == (2, 1, 0, 0)


def test_every_node_status_has_a_bucket_decision() -> None:
    assert set(vocabulary.BUCKET_OF) == {s.value for s in NodeStatus}
    assert set(vocabulary.BUCKET_OF.values()) == {*vocabulary.BUCKETS, None}


def test_the_simulator_and_the_exporter_word_events_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed text reaches the simulated pool's events and the exporter's derived ones."""

    def worded(old: object, new: object, at: float) -> tuple[str, str]:
        return "Warning", f"counts {old} -> {new}"

    monkeypatch.setattr(vocabulary, "pool_resources_changed", worded)
    c = SimulatedCluster(SPEC, clock=lambda: T0)
    c.step(600)
    sim = [e.message for e in c.events() if e.reason == vocabulary.POOL_RESOURCES_CHANGE]
    assert sim
    assert all(m.startswith("counts (") for m in sim)

    agg = Aggregator([2], ResourceFilter(vocabulary.ACCELERATOR_RESOURCES))
    for n in _nodes():
        agg.set_node(n.name, n, n.uid)
    derived = PoolEvents(lambda: T0).changed(["gpu"], lambda _p: "Running", agg.totals)
    assert [e.message for e in derived if e.reason == vocabulary.POOL_RESOURCES_CHANGE] == [
        "counts (0, 0, 0, 0) -> (2, 0, 0, 0)"
    ]


def test_both_backends_follow_the_pool_status_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were two Available nodes too few, the simulated pool and a Kubernetes pool (derived from
    its nodes) would both be Abnormal: neither keeps its own rule."""
    assert SimulatedCluster(SPEC, clock=lambda: T0).pools()[0].status is PoolStatus.RUNNING
    nodes = [(n, T0) for n in _nodes()]
    assert pool_from("gpu", nodes).status is PoolStatus.RUNNING  # type: ignore[union-attr]
    monkeypatch.setattr(vocabulary, "too_few_available", lambda available, least=1: True)
    c = SimulatedCluster(SPEC, clock=lambda: T0)
    c.step(600)
    assert c.pools()[0].status is PoolStatus.ABNORMAL
    assert pool_from("gpu", nodes).status is PoolStatus.ABNORMAL  # type: ignore[union-attr]


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string literal in the code of `path`, docstrings and comments excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_part_spells_the_vocabulary_itself() -> None:
    """The markers, the pool events' words and the accelerator lists live in the vocabulary only,
    so a part cannot drift from the others by keeping a copy."""
    words = re.compile(
        r"^poolwatch\.io/|Pool (resources )?status changed|^Start creating pool$"
        r"|^(nvidia|huawei|amd)\.com/$"  # a vendor test by prefix
    )
    found = []
    for folder in ("poolwatch", "controller", "exporters", "rules", "alerts", "dashboards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.is_symlink() or path == ROOT / "poolwatch/core/vocabulary.py":
                continue
            if any(p.is_symlink() for p in path.parents if ROOT in p.parents):
                continue  # poolwatch/<part> links to the top-level folder, scanned once
            found += [
                f"{path.relative_to(ROOT)}:{line}: {text!r}"
                for line, text in _string_constants(path)
                if words.search(text) or vocabulary.is_accelerator(text)
            ]
    allowed = {
        # the simulation's two pool resources, the resources it builds nodes of
        "poolwatch/cluster/simulated/spec.py",
    }
    assert [f for f in found if f.split(":")[0] not in allowed] == []


# -- decisions where the copies disagreed ---------------------------------------------------------
def test_pool_status_change_has_no_trailing_period() -> None:
    """The simulated pool used to write "... to Abnormal." while the controller and the exporter
    wrote no period; the newer platform format has none."""
    c = SimulatedCluster(SPEC, clock=lambda: T0)
    c.step(600)
    texts = [e.message for e in c.events() if e.reason == vocabulary.POOL_STATUS_CHANGE]
    assert texts == ["Start creating pool", "Pool status changed, from Creating to Running"]


@pytest.mark.parametrize(
    ("new", "kind"),
    [
        (PoolStatus.ABNORMAL, "Warning"),
        (PoolStatus.CREATION_FAILED, "Warning"),
        (PoolStatus.CHANGE_FAILED, "Warning"),
        (PoolStatus.RUNNING, "Normal"),
        (PoolStatus.DELETING, "Normal"),
    ],
)
def test_a_failed_pool_is_a_warning(new: PoolStatus, kind: str) -> None:
    """The controller and the simulation warned only for Abnormal; a pool whose creation or change
    failed needs an operator as much, as the exporter already said."""
    assert vocabulary.pool_status_changed("Running", new)[0] == kind
    assert vocabulary.pool_status_changed("Running", new.value)[0] == kind


@pytest.mark.parametrize(
    ("resource", "accelerator"),
    [
        ("nvidia.com/gpu", True),
        ("nvidia.com/gpu.shared", True),  # time-slicing with renamed resources
        ("nvidia.com/mig-1g.10gb", True),
        ("huawei.com/Ascend910", True),
        ("huawei.com/Ascend310P", True),
        ("huawei.com/npu", True),
        ("huawei.com/Ascend910B-memory", False),  # a device-sharing scheduler's MB of chip memory
        ("huawei.com/Ascend310P-memory", False),
        ("amd.com/gpu", True),  # the exporters used to miss AMD GPUs
        ("cpu", False),
        ("nvidia.com/hostdev", False),
        ("example.com/gpu", False),
    ],
)
def test_one_list_of_accelerator_resources(resource: str, accelerator: bool) -> None:
    """The exporters' defaults and the workload check used three lists; now one, the union."""
    assert vocabulary.is_accelerator(resource) is accelerator
    assert workload_is_accelerator(resource) is accelerator
    for patterns in (
        ClusterExporterSettings().accelerator_resources,
        PodResourcesSettings().resources,
    ):
        assert ResourceFilter(patterns)(resource) is accelerator
    listed = api_pb2.ListPodResourcesResponse(pod_resources=[api_pb2.PodResources(
        name="p", namespace="n", containers=[api_pb2.ContainerResources(name="c", devices=[
            api_pb2.ContainerDevices(resource_name=resource, device_ids=["d0"])])])])  # fmt: skip
    patterns = tuple(PodResourcesSettings().resources)
    assert bool(allocations(listed, patterns)) is accelerator  # the node exporter's device owners
