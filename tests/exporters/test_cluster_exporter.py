"""The cluster exporter on a hand-built pool: exact figures, bad input, freshness, HTTP, promtool.

The scenario (pool "pa", nvidia.com/gpu; pool "pb", Ascend, being created):

    node  status     alloc  held by pods               idle  frag k=2/4/8
    n1    Available  8      bert 2 x 4 (Running)       0     0/0/0
    n2    Available  8      resnet 3 (+4 Succeeded)    5     1/1/5
    n3    Available  8      -                          8     0/0/0
    n4    Isolated   7      llama 2 (Pending, bound)   0     - (not schedulable)
    n5    Spare      8      -                          0     -
    n6    Available  4      bert-eval 1                3     1/3/3  (k=8 on a 4-card node: 4)
    pool pa: 43 allocatable, 14 allocated, 16 idle; fragments 2/4/8; counts 4/1/0/0
    m1    Creating   8 Ascend910 (pool pb)

Measured with `_bench()` at the end of this file (not a test; run it with
`python -c "import tests.exporters.test_cluster_exporter as t; print(t._bench())"` from the
checkout's root)
on the shared 2-core development machine (load average 2-4 from other work), Python 3.11,
ranges over three runs:
- 5,000 nodes + 50,000 pods + 10,000 jobs + 10 pools as 65,010 ADDED events, then SYNCED:
  4.3-4.8 s (66-74 us an event; pods dominate: each updates its node's allocated line and its
  pool's sums);
- the first scrape: 20.2 MB, 195,530 lines, 40-57 ms to join; nothing changed: 16-20 ms (one
  copy of the body); gzipped 48-54 ms the first time (0.80 MB);
- 500 MODIFIED events (250 job restarts, 250 pods moved): 28-55 ms to apply; the next gzipped
  scrape 7-13 ms (only the families with changed lines are joined and compressed again).

Why one long file: the tests share the one hand-built scenario above (with its `Clock` and, for
the served app, `FakeBackend`), so each figure is checked against the same table; the sections
are the exporter's families (pools, nodes, jobs, quotas, events) and its behaviours (bad input,
freshness, HTTP).
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest

from poolwatch.cluster import (
    Event,
    JobStatus,
    Node,
    NodeStatus,
    Pod,
    Pool,
    PoolStatus,
    Quota,
    TrainingJob,
    WatchEvent,
)
from poolwatch.core.catalog.cluster import CLUSTER_IDENTITY, CLUSTER_SPECS
from poolwatch.core.web.config import WebConfig
from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.cluster.store import ClusterStore
from tests.helpers import parse, promtool_findings, value
from tests.helpers.prom_versions import Prometheus

GPU, NPU = "nvidia.com/gpu", "huawei.com/Ascend910"
GiB = 1024.0**3


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _node(name: str, status: NodeStatus, alloc: float, cap: float = 8, pool: str = "pa",
          res: str = GPU, **kw: object) -> Node:  # fmt: skip
    return Node(name, f"uid-{name}", pool, status, capacity=((res, cap), ("cpu", 96.0)),
                allocatable=((res, alloc), ("cpu", 90.0)), **kw)  # type: ignore[arg-type]  # fmt: skip


def _pod(name: str, node: str, gpus: float, job: str, phase: str = "Running",
         ns: str = "team-a") -> Pod:  # fmt: skip
    return Pod(name, ns, f"uid-{name}", node, phase, job, ((GPU, gpus), ("cpu", 4.0)))


def _job(name: str, ns: str, kind: str, status: JobStatus, gpus: float, owner: str, queue: str,
         **kw: object) -> TrainingJob:  # fmt: skip
    return TrainingJob(name, ns, f"uid-{name}", kind, status, pool="pa", owner=owner,
                       queue=queue, accelerator_resource=GPU, accelerators_requested=gpus,
                       **kw)  # type: ignore[arg-type]  # fmt: skip


POOLS = [
    Pool("pa", "uid-pa", PoolStatus.RUNNING, flavor="gpu-8xA100", accelerator_resource=GPU,
         ha_spares=1, job_types=("training", "inference"), driver_version="535.104",
         created=1_700_000_000.0),
    Pool("pb", "uid-pb", PoolStatus.CREATING, accelerator_resource=NPU),
]  # fmt: skip
NODES = [
    _node("n1", NodeStatus.AVAILABLE, 8, conditions=(("Ready", "True"),)),
    _node("n2", NodeStatus.AVAILABLE, 8),
    _node("n3", NodeStatus.AVAILABLE, 8),
    _node("n4", NodeStatus.ISOLATED, 7, unschedulable=True, fault_code="A050101",
          taints=(("poolwatch.io/isolated", "A050101", "NoSchedule"),),
          conditions=(("Ready", "Unknown"),)),
    _node("n5", NodeStatus.SPARE, 8),
    _node("n6", NodeStatus.AVAILABLE, 4, cap=4),
    _node("m1", NodeStatus.CREATING, 8, pool="pb", res=NPU),
]  # fmt: skip
PODS = [
    _pod("bert-worker-0", "n1", 4, "bert"),
    _pod("bert-worker-1", "n1", 4, "bert"),
    _pod("resnet-0", "n2", 3, "resnet", ns="team-b"),
    _pod("old-0", "n2", 4, "old", phase="Succeeded", ns="team-b"),
    _pod("llama-0", "n4", 2, "llama", phase="Pending"),
    _pod("bert-eval-0", "n6", 1, "bert-eval"),
    _pod("unbound-0", "", 8, "llama", phase="Pending"),
]
JOBS = [
    _job("bert", "team-a", "PyTorchJob", JobStatus.RUNNING, 8, "alice", "vc-a", workers=2,
         restarts=1, priority="2", created=1000.0, started=1100.0),
    _job("resnet", "team-b", "MPIJob", JobStatus.RUNNING, 3, "bob", "vc-b", started=1200.0),
    _job("llama", "team-a", "vcjob", JobStatus.PENDING, 2, "alice", "vc-a"),
    _job("old", "team-b", "TFJob", JobStatus.COMPLETED, 4, "bob", "vc-b", started=500.0,
         finished=900.0),
]  # fmt: skip
QUOTAS = [
    Quota("team-a", "team-a", "ElasticQuota",
          hard=(("cpu", 64.0), ("memory", 256 * GiB), (GPU, 16.0)), min=((GPU, 8.0),),
          used=((GPU, 10.0), ("cpu", 20.0))),
    Quota("vc-npu", "", "Queue", hard=((NPU, 4.0),), min=((NPU, 2.0),), used=((NPU, 0.0),)),
]  # fmt: skip
EVENTS = [
    Event("ev-1", "Node", "n4", "NodeNotReady", "Warning", "Node n4 status is now: NodeNotReady",
          2000.0, pool="pa"),
    Event("ev-2", "Job", "bert", "JobRestarted", "Normal", "The training job has been restarted.",
          2100.0, pool="pa", namespace="team-a"),
]  # fmt: skip
SPARK = _job("spark", "team-a", "SparkApplication", JobStatus.RUNNING, 1, "carol", "vc-a")
EV3 = Event("ev-3", "Pool", "pa", "PoolStatusChange", "Normal", "from the backend", 2200.0,
            pool="pa")  # fmt: skip
ODD = [
    WatchEvent("ADDED", "node", Node("", "uid-lost", "pa", NodeStatus.AVAILABLE)),
    WatchEvent("ADDED", "job", SPARK),
    WatchEvent("ADDED", "quota", Quota("bad", "team-b", "ResourceQuota", used=((GPU, -2.0),))),
    WatchEvent("ADDED", "pod", _pod("neg", "n3", -1, "x")),
    WatchEvent("ADDED", "event", EV3),
]


def initial_list() -> list[WatchEvent]:
    out = [WatchEvent("ADDED", "pod", p) for p in PODS]  # pods before their nodes on purpose
    out += [WatchEvent("ADDED", "pool", p) for p in POOLS]
    out += [WatchEvent("ADDED", "node", n) for n in NODES]
    out += [WatchEvent("ADDED", "job", j) for j in JOBS]
    out += [WatchEvent("ADDED", "quota", q) for q in QUOTAS]
    out += [WatchEvent("ADDED", "event", e) for e in EVENTS]
    return [*out, *ODD, WatchEvent("SYNCED", "pool", None)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> ClusterStore:
    s = ClusterStore(ClusterExporterSettings(events_kept=50, pool_events="derive"), clock=clock)
    s.watch_started()
    for ev in initial_list():
        s.apply(ev)
    return s


def series(store: ClusterStore):
    return parse(store.body())


# -- pools ---------------------------------------------------------------------------------------
def test_pool_node_counts_by_status(store: ClusterStore) -> None:
    s = series(store)
    want = {"Available": 4, "Isolated": 1, "Spare": 1}
    for status in NodeStatus:
        got = value(s, "poolwatch_pool_nodes", pool="pa", status=status.value)
        assert got == want.get(status.value, 0), status
    assert value(s, "poolwatch_pool_nodes", pool="pb", status="Creating") == 1


def test_pool_accelerators_total_allocated_idle_and_fragments(store: ClusterStore) -> None:
    s = series(store)
    assert value(s, "poolwatch_pool_accelerators", pool="pa", resource=GPU) == 43
    assert value(s, "poolwatch_pool_accelerators_allocated", pool="pa", resource=GPU) == 14
    assert value(s, "poolwatch_pool_accelerators_idle", pool="pa", resource=GPU) == 16
    frags = {k: value(s, "poolwatch_pool_accelerator_fragments", pool="pa", resource=GPU,
                      task_cards=k) for k in ("2", "4", "8")}  # fmt: skip
    assert frags == {"2": 2, "4": 4, "8": 8}
    # the pool being created: its node's cards count, none is idle or a fragment yet
    assert value(s, "poolwatch_pool_accelerators", pool="pb", resource=NPU) == 8
    assert value(s, "poolwatch_pool_accelerators_idle", pool="pb", resource=NPU) == 0
    assert value(s, "poolwatch_pool_accelerator_fragments", pool="pb", resource=NPU,
                 task_cards="8") == 0  # fmt: skip


def test_pool_identity_status_set_and_literal_lines(store: ClusterStore) -> None:
    text = store.body().decode()
    assert (
        'poolwatch_pool_info{pool="pa",uid="uid-pa",flavor="gpu-8xA100",'
        'accelerator_resource="nvidia.com/gpu",driver_version="535.104",workspace="",'
        'job_types="training,inference"} 1.0\n'
    ) in text
    lines = [ln for ln in text.splitlines() if ln.startswith('poolwatch_pool_status{pool="pa"')]
    assert lines == [f'poolwatch_pool_status{{pool="pa",status="{st.value}"}} '
                     f'{"1.0" if st is PoolStatus.RUNNING else "0.0"}'
                     for st in PoolStatus]  # fmt: skip
    s = parse(text)
    assert value(s, "poolwatch_pool_created_timestamp_seconds", pool="pa") == 1_700_000_000
    assert value(s, "poolwatch_pool_ha_spare_nodes", pool="pa") == 1


def test_pool_totals_follow_pod_and_node_changes(store: ClusterStore) -> None:
    store.apply(WatchEvent("DELETED", "pod", PODS[2]))  # resnet-0 leaves n2: 8 idle, no fragment
    store.apply(WatchEvent("MODIFIED", "node", _node("n6", NodeStatus.AVAILABLE, 4, cap=4,
                                                       unschedulable=True)))  # fmt: skip
    s = series(store)
    assert value(s, "poolwatch_pool_accelerators_allocated", pool="pa", resource=GPU) == 11
    assert value(s, "poolwatch_pool_accelerators_idle", pool="pa", resource=GPU) == 16  # 8+8
    for k in ("2", "4", "8"):
        assert value(s, "poolwatch_pool_accelerator_fragments", pool="pa", resource=GPU,
                     task_cards=k) == 0  # fmt: skip
    assert value(s, "poolwatch_cluster_node_accelerators_allocated", node="n2", resource=GPU) == 0


# -- nodes ---------------------------------------------------------------------------------------
def test_node_series(store: ClusterStore) -> None:
    s = series(store)
    assert value(s, "poolwatch_cluster_node_status", node="n4", status="Isolated") == 1
    assert value(s, "poolwatch_cluster_node_status", node="n4", status="Available") == 0
    assert value(s, "poolwatch_cluster_node_unschedulable", node="n4", pool="pa") == 1
    assert value(s, "poolwatch_cluster_node_fault_info", node="n4", code="A050101") == 1
    assert value(s, "poolwatch_cluster_node_taint", node="n4", key="poolwatch.io/isolated",
                 value="A050101", effect="NoSchedule") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_node_condition", node="n4", condition="Ready",
                 status="unknown") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_node_accelerators_capacity", node="n4") == 8
    assert value(s, "poolwatch_cluster_node_accelerators_allocatable", node="n4") == 7
    assert value(s, "poolwatch_cluster_node_accelerators_allocated", node="n1") == 8
    assert value(s, "poolwatch_cluster_node_accelerators_allocated", node="n3") == 0
    # cpu is not an accelerator: it is not among the node's accelerator series
    assert not [k for k in s if k[0].startswith("poolwatch_cluster_node_acc")
                and ("resource", "cpu") in k[1]]  # fmt: skip


# -- jobs ----------------------------------------------------------------------------------------
def test_job_state_sets_and_identity(store: ClusterStore) -> None:
    s = series(store)
    for name, ns, status in (("bert", "team-a", "Running"), ("llama", "team-a", "Pending"),
                             ("old", "team-b", "Completed")):  # fmt: skip
        for st in JobStatus:
            got = value(s, "poolwatch_training_job_status", namespace=ns, training_job=name,
                        status=st.value)  # fmt: skip
            assert got == (1 if st.value == status else 0), (name, st)
    info = [dict(ls) for (n, ls), _ in s.items()
            if n == "poolwatch_training_job_info" and ("training_job", "bert") in ls]  # fmt: skip
    assert info == [{"pool": "pa", "namespace": "team-a", "training_job": "bert",
                     "uid": "uid-bert", "job_type": "PyTorchJob", "owner": "alice",
                     "queue": "vc-a", "priority": "2", "accelerator_resource": GPU}]  # fmt: skip
    j = {"namespace": "team-a", "training_job": "bert"}
    assert value(s, "poolwatch_training_job_start_timestamp_seconds", **j) == 1100
    assert value(s, "poolwatch_training_job_created_timestamp_seconds", **j) == 1000
    assert value(s, "poolwatch_training_job_accelerators_requested", **j, resource=GPU) == 8
    assert value(s, "poolwatch_training_job_workers", **j) == 2
    assert value(s, "poolwatch_training_job_restarts_total", **j) == 1
    done = {"namespace": "team-b", "training_job": "old"}
    assert value(s, "poolwatch_training_job_completion_timestamp_seconds", **done) == 900
    assert not [k for k in s if k[0] == "poolwatch_training_job_completion_timestamp_seconds"
                and ("training_job", "bert") in k[1]]  # fmt: skip
    assert not {"job", "instance", "cluster"} & {k for _n, ls in s for k, _v in ls}


def test_allocated_accelerator_seconds_grow_with_time(store: ClusterStore, clock: Clock) -> None:
    clock.now += 100
    s = series(store)
    assert value(s, "poolwatch_cluster_accelerator_allocated_seconds_total", owner="alice",
                 queue="vc-a", resource=GPU) == 800  # fmt: skip
    assert value(s, "poolwatch_cluster_accelerator_allocated_seconds_total", owner="bob",
                 queue="vc-b", resource=GPU) == 300  # fmt: skip
    # llama starts: alice's rate goes to 10 cards; bert completes 50 s later: 2 cards
    store.apply(WatchEvent("MODIFIED", "job", replace(JOBS[2], status=JobStatus.RUNNING)))
    clock.now += 50
    done = replace(JOBS[0], status=JobStatus.COMPLETED, finished=clock.now)
    store.apply(WatchEvent("MODIFIED", "job", done))
    clock.now += 10
    s = series(store)
    assert value(s, "poolwatch_cluster_accelerator_allocated_seconds_total", owner="alice",
                 queue="vc-a", resource=GPU) == 800 + 50 * 10 + 10 * 2  # fmt: skip


# -- quotas --------------------------------------------------------------------------------------
def test_quota_max_min_used(store: ClusterStore) -> None:
    s = series(store)
    q = {"namespace": "team-a", "quota": "team-a", "kind": "ElasticQuota"}
    assert value(s, "poolwatch_quota_max", **q, resource="cpu") == 64
    assert value(s, "poolwatch_quota_max", **q, resource="memory") == 256 * GiB
    assert value(s, "poolwatch_quota_max", **q, resource=GPU) == 16
    assert value(s, "poolwatch_quota_min", **q, resource=GPU) == 8
    assert value(s, "poolwatch_quota_used", **q, resource=GPU) == 10
    vc = {"namespace": "", "quota": "vc-npu", "kind": "Queue", "resource": NPU}
    assert (value(s, "poolwatch_quota_max", **vc), value(s, "poolwatch_quota_min", **vc),
            value(s, "poolwatch_quota_used", **vc)) == (4, 2, 0)  # fmt: skip
    store.apply(WatchEvent("DELETED", "quota", QUOTAS[1]))
    assert not [k for k in series(store) if ("quota", "vc-npu") in k[1]]


# -- bad input -----------------------------------------------------------------------------------
def test_odd_objects_are_counted_skipped_and_logged_once(
    store: ClusterStore, caplog: pytest.LogCaptureFixture
) -> None:
    s = series(store)
    skipped = {(dict(ls)["kind"], dict(ls)["reason"]): v for (n, ls), v in s.items()
               if n == "poolwatch_cluster_objects_skipped_total"}  # fmt: skip
    assert skipped == {
        ("node", "missing_name"): 1, ("job", "unknown_job_kind"): 1,
        ("quota", "negative_quantity"): 1, ("pod", "negative_quantity"): 1,
        ("event", "derived_here"): 1,
    }  # fmt: skip
    assert not [k for k in s if ("uid", "uid-lost") in k[1] or ("training_job", "spark") in k[1]]
    assert not [k for k in s if ("quota", "bad") in k[1]]
    # the same odd object again: counted again, not logged again
    caplog.clear()
    store.apply(ODD[0])
    store.apply(WatchEvent("ADDED", "job", None))  # no object at all
    store.apply(WatchEvent("ADDED", "pool", "not a pool"))  # type: ignore[arg-type]
    assert [r.message for r in caplog.records] == [
        "skipped a job: missing_uid", "skipped a pool: missing_uid"]  # fmt: skip
    s = series(store)
    assert value(s, "poolwatch_cluster_objects_skipped_total", kind="node",
                 reason="missing_name") == 2  # fmt: skip
    assert value(s, "poolwatch_cluster_up") == 1  # the loop goes on


def test_the_backends_own_skips_are_served_too(store: ClusterStore) -> None:
    store.set_backend_skipped({"node: unknown poolwatch.io/status value": 3, "odd": 1})
    s = series(store)
    assert value(s, "poolwatch_cluster_objects_skipped_total", kind="node",
                 reason="unknown poolwatch.io/status value") == 3  # fmt: skip
    assert value(s, "poolwatch_cluster_objects_skipped_total", kind="backend", reason="odd") == 1
    assert value(s, "poolwatch_cluster_objects_skipped_total", kind="node",
                 reason="missing_name") == 1  # fmt: skip


def test_a_free_node_is_exported_without_a_pool_and_in_no_pool_total(
    store: ClusterStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A node in no pool (released by the pool API) is normal: its node series carry pool="",
    it is not skipped or logged, and no pool's figures (and no pool "") include it."""
    skipped = {k: v for k, v in series(store).items()
               if k[0] == "poolwatch_cluster_objects_skipped_total"}  # fmt: skip
    caplog.clear()
    store.apply(WatchEvent("ADDED", "node", _node("f1", NodeStatus.AVAILABLE, 8, pool="")))
    store.apply(WatchEvent("ADDED", "pod", _pod("probe", "f1", 2, "")))
    store.apply(WatchEvent("MODIFIED", "node", replace(NODES[2], pool="")))  # n3 released
    s = series(store)
    assert not caplog.records
    assert {k: v for k, v in s.items() if k[0] == "poolwatch_cluster_objects_skipped_total"} == (
        skipped
    )
    for node, held in (("f1", 2), ("n3", 0)):
        assert value(s, "poolwatch_cluster_node_status", node=node, pool="",
                     status="Available") == 1  # fmt: skip
        assert value(s, "poolwatch_cluster_node_info", node=node, pool="") == 1
        assert value(s, "poolwatch_cluster_node_accelerators_allocatable", node=node, pool="",
                     resource=GPU) == 8  # fmt: skip
        assert value(s, "poolwatch_cluster_node_accelerators_allocated", node=node, pool="",
                     resource=GPU) == held  # fmt: skip
    assert not [k for k in s if k[0].startswith("poolwatch_pool_") and ("pool", "") in k[1]]
    assert value(s, "poolwatch_pool_accelerators", pool="pa", resource=GPU) == 35  # 43 - n3
    assert value(s, "poolwatch_pool_nodes", pool="pa", status="Available") == 3
    store.apply(WatchEvent("MODIFIED", "node", NODES[2]))  # back into pa
    s = series(store)
    assert value(s, "poolwatch_pool_accelerators", pool="pa", resource=GPU) == 43
    assert value(s, "poolwatch_cluster_node_info", node="n3", pool="pa") == 1
    assert not [k for k in s if ("node", "n3") in k[1] and ("pool", "") in k[1]]


def test_a_good_object_turning_odd_loses_its_series(store: ClusterStore) -> None:
    store.apply(WatchEvent("MODIFIED", "node", _node("n3", NodeStatus.AVAILABLE, -8)))
    s = series(store)
    assert not [k for k in s if ("node", "n3") in k[1]]
    assert value(s, "poolwatch_pool_accelerators", pool="pa", resource=GPU) == 35
    assert value(s, "poolwatch_pool_nodes", pool="pa", status="Available") == 3


def test_an_object_recreated_under_its_name_replaces_the_old_one(store: ClusterStore) -> None:
    """The new uid may arrive before the old one's DELETED: never two series for one name."""
    store.apply(WatchEvent("ADDED", "node", replace(NODES[2], uid="uid-n3-new")))
    store.apply(WatchEvent("ADDED", "job", replace(JOBS[0], uid="uid-bert-new")))
    store.apply(WatchEvent("DELETED", "node", NODES[2]))
    store.apply(WatchEvent("DELETED", "job", JOBS[0]))
    s = series(store)  # parse() keeps one value per series: count the lines instead
    text = store.body().decode()
    assert text.count('poolwatch_cluster_node_info{node="n3"') == 1
    assert 'uid="uid-n3-new"' in text
    assert text.count('training_job="bert",uid=') == 1
    assert value(s, "poolwatch_pool_nodes", pool="pa", status="Available") == 4
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert len(lines) == len({ln.rsplit(" ", 1)[0] for ln in lines})  # no duplicate series


def test_an_exception_while_applying_is_contained(store: ClusterStore, monkeypatch) -> None:
    def boom(_obj: object) -> str | None:
        raise RuntimeError("boom")

    monkeypatch.setitem(store._checks, "pool", boom)
    store.apply(WatchEvent("MODIFIED", "pool", POOLS[0]))
    s = series(store)
    assert value(s, "poolwatch_cluster_objects_skipped_total", kind="pool",
                 reason="apply_error") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_up") == 1


# -- events --------------------------------------------------------------------------------------
def test_derived_pool_events_in_the_seed_format(store: ClusterStore, clock: Clock) -> None:
    clock.now = 1_728_702_612.0
    store.apply(WatchEvent("MODIFIED", "node", _node("n3", NodeStatus.UNAVAILABLE, 8)))
    store.apply(WatchEvent("MODIFIED", "pool", Pool("pb", "uid-pb", PoolStatus.RUNNING,
                                                     accelerator_resource=NPU)))  # fmt: skip
    store.apply(WatchEvent("MODIFIED", "node", _node("m1", NodeStatus.AVAILABLE, 8, pool="pb",
                                                     res=NPU)))  # fmt: skip
    store.apply(WatchEvent("ADDED", "pool", Pool("pc", "uid-pc", PoolStatus.CREATING)))
    derived = [(r.pool, r.reason, r.type, r.message)
               for r in store.recent_events(source="derived")]  # fmt: skip
    assert sorted(derived) == sorted([
        ("pa", "PoolResourcesStatusChange", "Warning", "Pool resources status changed, "
         "available/abnormal/creating/deleting count from 4/1/0/0 to 3/2/0/0, "
         "timestamp: 1728702612"),
        ("pb", "PoolStatusChange", "Normal", "Pool status changed, from Creating to Running"),
        ("pb", "PoolResourcesStatusChange", "Normal", "Pool resources status changed, "
         "available/abnormal/creating/deleting count from 0/0/1/0 to 1/0/0/0, "
         "timestamp: 1728702612"),
        ("pc", "PoolStatusChange", "Normal", "Start creating pool"),
    ])  # fmt: skip
    s = series(store)
    assert value(s, "poolwatch_cluster_events_total", pool="pa", kind="Pool",
                 reason="PoolResourcesStatusChange", type="Warning") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_events_total", pool="pb", kind="Pool",
                 reason="PoolStatusChange", type="Normal") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_events_total", pool="pc", kind="Pool",
                 reason="PoolStatusChange", type="Normal") == 1  # fmt: skip


def test_no_pool_events_for_the_initial_list(store: ClusterStore) -> None:
    assert store.recent_events(source="derived") == []


def test_backend_events_counted_once_and_listed_newest_first(store: ClusterStore) -> None:
    store.apply(WatchEvent("ADDED", "event", EVENTS[0]))  # a re-list: not counted again
    s = series(store)
    assert value(s, "poolwatch_cluster_events_total", pool="pa", kind="Node",
                 reason="NodeNotReady", type="Warning") == 1  # fmt: skip
    assert value(s, "poolwatch_cluster_events_total", pool="pa", kind="Job",
                 reason="JobRestarted", type="Normal") == 1  # fmt: skip
    assert [r.uid for r in store.recent_events()] == ["ev-2", "ev-1"]
    assert [r.uid for r in store.recent_events(limit=1)] == ["ev-2"]
    assert store.recent_events(limit=0) == []


def test_pool_events_from_the_backend_by_default(clock: Clock) -> None:
    s = ClusterStore(clock=clock)
    s.watch_started()
    for ev in initial_list():
        s.apply(ev)
    s.apply(WatchEvent("MODIFIED", "node", _node("n3", NodeStatus.UNAVAILABLE, 8)))
    assert s.recent_events(source="derived") == []
    assert [r.uid for r in s.recent_events(reason="PoolStatusChange")] == ["ev-3"]
    got = series(s)
    assert value(got, "poolwatch_cluster_events_total", pool="pa", kind="Pool",
                 reason="PoolStatusChange", type="Normal") == 1  # fmt: skip
    assert not [k for k in got if k[0] == "poolwatch_cluster_objects_skipped_total"
                and ("reason", "derived_here") in k[1]]  # fmt: skip


def test_a_repeated_kubernetes_event_adds_the_growth_of_its_count(store: ClusterStore) -> None:
    ev = Event("ev-9", "Node", "n2", "NodeNotReady", "Warning", "m", 3000.0, pool="pa",
               extra={"count": "3"})  # fmt: skip
    store.apply(WatchEvent("ADDED", "event", ev))
    again = replace(ev, time=3060.0, extra={"count": "7"})
    store.apply(WatchEvent("MODIFIED", "event", again))
    store.apply(WatchEvent("MODIFIED", "event", again))  # the same version twice: once
    assert value(series(store), "poolwatch_cluster_events_total", pool="pa", kind="Node",
                 reason="NodeNotReady", type="Warning") == 1 + 7  # fmt: skip


def test_events_kept_is_a_bound_by_time(clock: Clock) -> None:
    s = ClusterStore(ClusterExporterSettings(events_kept=3), clock=clock)
    s.watch_started()
    for i in (5, 1, 9, 3, 7):
        s.apply(WatchEvent("ADDED", "event", Event(f"e{i}", "Job", "j", "R", "Normal", "m",
                                                    float(i), pool="p")))  # fmt: skip
    assert [r.time for r in s.recent_events()] == [9, 7, 5]


# -- freshness -----------------------------------------------------------------------------------
def test_unhealthy_backend_serves_up_0_and_no_figures(store: ClusterStore) -> None:
    assert value(series(store), "poolwatch_cluster_up") == 1
    store.set_healthy(False)
    s = series(store)
    assert value(s, "poolwatch_cluster_up") == 0
    object_series = {n for n, _ in s} - {spec.name for spec in CLUSTER_SPECS
                                         if spec.collector == "cluster_runner"}  # fmt: skip
    assert object_series == set()
    store.set_healthy(True)
    assert value(series(store), "poolwatch_pool_accelerators", pool="pa") == 43


def test_nothing_served_before_the_initial_list_completes(clock: Clock) -> None:
    s = ClusterStore(clock=clock)
    s.watch_started()
    for ev in initial_list()[:-1]:
        s.apply(ev)
    got = series(s)
    assert value(got, "poolwatch_cluster_up") == 0
    assert not [k for k in got if k[0].startswith("poolwatch_pool_")]


def test_a_relist_drops_what_was_deleted_meanwhile(store: ClusterStore) -> None:
    store.watch_failed()
    store.watch_started()
    for ev in initial_list():
        if getattr(ev.obj, "name", "") not in ("n3", "old"):
            store.apply(ev)
    s = series(store)
    assert value(s, "poolwatch_cluster_up") == 1
    assert not [k for k in s if ("node", "n3") in k[1] or ("training_job", "old") in k[1]]
    assert value(s, "poolwatch_pool_nodes", pool="pa", status="Available") == 3
    assert value(s, "poolwatch_cluster_watch_restarts_total") == 1
    msgs = [r.message for r in store.recent_events(source="derived")]
    assert msgs == ["Pool resources status changed, available/abnormal/creating/deleting count "
                    "from 4/1/0/0 to 3/1/0/0, timestamp: 10000"]  # fmt: skip


def test_gzip_body_is_the_plain_body(store: ClusterStore) -> None:
    assert gzip.decompress(store.body(gzipped=True)) == store.body()
    store.apply(WatchEvent("DELETED", "job", JOBS[3]))
    assert gzip.decompress(store.body(gzipped=True)) == store.body()


def test_gzip_body_is_one_stream_a_single_member_reader_reads_whole(store: ClusterStore) -> None:
    """A reader that stops at the end of the first gzip member (as some do) gets the whole
    exposition: the families are joined as one stream, not one member each."""
    for _ in range(2):  # the second time from the cached pieces
        reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert reader.decompress(store.body(gzipped=True)) == store.body()
        assert reader.eof
        assert reader.unused_data == b""
        store.apply(WatchEvent("DELETED", "job", JOBS[3]))


def test_every_family_matches_its_catalog_entry(store: ClusterStore) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    specs = {s.name: s for s in CLUSTER_SPECS}
    seen = set()
    for fam in text_string_to_metric_families(store.body().decode()):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        spec = specs[name]
        seen.add(name)
        assert fam.type == ("counter" if spec.type == "counter" else "gauge")
        assert fam.documentation == spec.help
        assert spec.help.endswith(")."), name
        want = {*CLUSTER_IDENTITY[spec.collector], *spec.labels}
        assert all(set(sample.labels) == want for sample in fam.samples), name
    assert seen == set(specs)


# -- the served app ------------------------------------------------------------------------------
class FakeBackend:
    """Yields a hand-built list, then holds the stream open like a live watch."""

    name = "fake"

    def __init__(self, events: list[WatchEvent]) -> None:
        self.events = events
        self.ok = True
        self.closed = threading.Event()

    def watch(self, stop_after: float | None = None) -> Iterator[WatchEvent]:
        yield from self.events
        self.closed.wait()

    def healthy(self) -> bool:
        return self.ok


def _get(port: int, path: str, headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def _poll(port: int, want_up: float) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = parse(_get(port, "/metrics")[1])
        if value(s, "poolwatch_cluster_up") == want_up:
            return s
        time.sleep(0.02)
    pytest.fail(f"poolwatch_cluster_up never became {want_up}")


@pytest.fixture
def served() -> Iterator[tuple[int, FakeBackend]]:
    backend = FakeBackend(initial_list())
    settings = ClusterExporterSettings(health_interval=0.02)
    exporter = ClusterExporter(backend, settings)
    httpd = serve_cluster(exporter, ("127.0.0.1", 0), WebConfig())
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    exporter.start()
    try:
        yield httpd.server_address[1], backend
    finally:
        exporter.stop()
        backend.closed.set()
        httpd.shutdown()
        httpd.server_close()


def test_http_metrics_events_health_and_index(served: tuple[int, FakeBackend]) -> None:
    port, backend = served
    s = _poll(port, 1)
    assert value(s, "poolwatch_pool_accelerators_idle", pool="pa", resource=GPU) == 16
    resp, body = _get(port, "/metrics", {"Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") == "gzip"
    assert value(parse(gzip.decompress(body)), "poolwatch_pool_nodes", pool="pa",
                 status="Spare") == 1  # fmt: skip
    resp, body = _get(port, "/events?limit=2")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/json"
    doc = json.loads(body)
    assert [(e["uid"], e["reason"], e["occurred_at"]) for e in doc["events"]] == [
        ("ev-3", "PoolStatusChange", "1970-01-01T00:36:40+00:00"),
        ("ev-2", "JobRestarted", "1970-01-01T00:35:00+00:00")]  # fmt: skip
    _, body = _get(port, "/events?reason=NodeNotReady")
    assert [e["name"] for e in json.loads(body)["events"]] == ["n4"]
    assert _get(port, "/events?limit=x")[0].status == 400
    resp, body = _get(port, "/healthz")
    assert resp.status == 200
    assert b"reachable, synced" in body
    resp, body = _get(port, "/")
    assert resp.status == 200
    assert b"cluster exporter" in body
    # the API goes away: up 0 and no figures, while /healthz stays 200 so the target is scraped
    backend.ok = False
    s = _poll(port, 0)
    assert not [k for k in s if k[0].startswith("poolwatch_pool_")]
    resp, body = _get(port, "/healthz")
    assert resp.status == 200
    assert b"unreachable" in body


@pytest.mark.integration
def test_promtool_check_metrics_is_clean(
    store: ClusterStore, clock: Clock, prom: Prometheus
) -> None:
    clock.now += 60
    assert promtool_findings(store.body(), prom.promtool) == set()


@pytest.mark.integration
def test_real_prometheus_scrapes_the_gzip_members(served, tmp_path, prom: Prometheus) -> None:
    """Prometheus asks for gzip; the body is two or more gzip members, which Go reads as one."""
    from tests.helpers import free_port
    from tests.integration.conftest import process, prom_query

    port, _backend = served
    _poll(port, 1)
    prom_port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs: [{job_name: cluster, static_configs: "
        f"[{{targets: ['127.0.0.1:{port}']}}]}}]\n"
    )
    cmd = [prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"]  # fmt: skip
    base = f"http://127.0.0.1:{prom_port}"
    with process(cmd, tmp_path / "prometheus.log", f"{base}/-/ready"):
        deadline, got = time.monotonic() + 30, []
        while time.monotonic() < deadline and not got:
            got = prom_query(base, 'poolwatch_pool_accelerators_idle{pool="pa"}')
            time.sleep(0.3)
        assert got, (tmp_path / "prometheus.log").read_text()
        assert got[0]["value"][1] == "16"
        assert prom_query(base, 'up{job="cluster"}')[0]["value"][1] == "1"
        joined = prom_query(base, '(poolwatch_training_job_status{status="Running"} == 1) '
                                  "* on(namespace, training_job) group_left(owner) "
                                  "poolwatch_training_job_info")  # fmt: skip
        assert sorted(r["metric"]["owner"] for r in joined) == ["alice", "bob"]


def test_the_simulated_backend_drives_the_exporter() -> None:
    """Six simulated hours of jobs and faults, applied event by event, end in the same figures
    as a fresh list of the final state: the incremental pool totals do not drift."""
    sim = pytest.importorskip("poolwatch.cluster.simulated.backend")
    cluster = sim.SimulatedCluster()

    def listed() -> ClusterStore:
        store = ClusterStore()
        store.watch_started()
        for ev in cluster.watch(stop_after=0):
            store.apply(ev)
        return store

    live = listed()
    for _ in range(6 * 60):
        for ev in cluster.step(60):
            live.apply(ev)
    fresh = listed()

    def figures(store: ClusterStore):
        skip = ("poolwatch_cluster_", "poolwatch_pool_created")
        return {k: v for k, v in series(store).items() if not k[0].startswith(skip)}

    assert figures(live) == figures(fresh)
    got = series(live)
    assert value(got, "poolwatch_cluster_up") == 1
    assert [v for (n, _), v in got.items() if n == "poolwatch_cluster_objects_skipped_total"] == []
    by_status = Counter((n.pool, str(n.status)) for n in cluster.nodes())
    for (pool, status), n in by_status.items():
        assert value(got, "poolwatch_pool_nodes", pool=pool, status=status) == n
    # the backend's pool events (backend mode, the default) are counted, none is skipped
    counted: Counter[str] = Counter()
    for (n, ls), v in got.items():
        if n == "poolwatch_cluster_events_total":
            counted[dict(ls)["reason"]] += int(v)
    assert {e.reason for e in cluster.events()} <= set(counted)
    assert counted.get("PoolStatusChange", 0) >= 2  # Start creating pool, Creating -> Running


def test_a_node_released_on_the_simulated_backend_stays_exported() -> None:
    """The pool API's release on the simulated backend: the node leaves its pool's figures and
    shows as a free node; device-plugin DaemonSet pods are ordinary pods to the exporter."""
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.cluster.simulated.spec import SimulationSpec

    spec = SimulationSpec(initial_jobs=0, jobs_per_hour=0, fault_interval=None,
                          daemonsets=("nvidia-device-plugin",))  # fmt: skip
    cluster = SimulatedCluster(spec, clock=lambda: 1_700_000_000.0)
    store = ClusterStore()
    store.watch_started()
    for ev in cluster.watch(stop_after=0):
        store.apply(ev)
    before = value(series(store), "poolwatch_pool_accelerators", pool="gpu-a", resource=GPU)
    cluster.set_node_pool("gpu-a-node-03", None)
    for ev in cluster.watch(stop_after=0):
        store.apply(ev)
    s = series(store)
    assert [v for (n, _), v in s.items() if n == "poolwatch_cluster_objects_skipped_total"] == []
    assert value(s, "poolwatch_cluster_node_info", node="gpu-a-node-03", pool="") == 1
    assert value(s, "poolwatch_pool_accelerators", pool="gpu-a", resource=GPU) == before - 8


def _bench() -> dict[str, float]:  # a measurement, see the module docstring; not a test
    import random

    rnd, n_nodes, n_jobs = random.Random(1), 5000, 10_000  # noqa: S311 - not for security
    evs = [WatchEvent("ADDED", "pool", Pool(f"pool-{i}", f"p{i}", PoolStatus.RUNNING))
           for i in range(10)]  # fmt: skip
    evs += [WatchEvent("ADDED", "node", _node(f"node-{i}", NodeStatus.AVAILABLE, 8,
                                              pool=f"pool-{i % 10}"))
            for i in range(n_nodes)]  # fmt: skip
    jobs = [_job(f"job-{i}", f"ns-{i % 50}", "PyTorchJob", JobStatus.RUNNING, 5, f"u{i % 200}",
                 f"vc-{i % 20}", started=1.0) for i in range(n_jobs)]  # fmt: skip
    evs += [WatchEvent("ADDED", "job", j) for j in jobs]

    def pod(i: int) -> WatchEvent:
        node = f"node-{rnd.randrange(n_nodes)}"
        return WatchEvent("ADDED", "pod", _pod(f"job-{i // 5}-{i % 5}", node, 1, f"job-{i // 5}"))

    evs += [pod(i) for i in range(5 * n_jobs)]
    store = ClusterStore()
    store.watch_started()
    out, t = {"events": float(len(evs))}, time.perf_counter()
    for ev in [*evs, WatchEvent("SYNCED", "pool", None)]:
        store.apply(ev)
    out["apply_s"], t = time.perf_counter() - t, time.perf_counter()
    body = store.body()
    out["join_ms"], t = 1e3 * (time.perf_counter() - t), time.perf_counter()
    store.body()
    out["cached_ms"], t = 1e3 * (time.perf_counter() - t), time.perf_counter()
    out["gzip_mb"] = len(store.body(gzipped=True)) / 1e6
    out["gzip_ms"] = 1e3 * (time.perf_counter() - t)
    out["body_mb"], out["lines"] = len(body) / 1e6, float(body.count(b"\n"))
    churn = [WatchEvent("MODIFIED", "job", replace(rnd.choice(jobs), restarts=1))
             for _ in range(250)]  # fmt: skip
    churn += [pod(5 * rnd.randrange(n_jobs)) for _ in range(250)]
    t = time.perf_counter()
    for ev in churn:
        store.apply(ev)
    out["churn_500_ms"], t = 1e3 * (time.perf_counter() - t), time.perf_counter()
    store.body(gzipped=True)
    out["next_gzip_scrape_ms"] = 1e3 * (time.perf_counter() - t)
    return out
