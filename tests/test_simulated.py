"""The simulated cluster: determinism, a scripted scenario with known counts, faults and their
visible effects, the write side, the watch stream, and the node-shaped metrics."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import Counter

import pytest
from helpers import not_about_seed_names, parse, promtool_findings, value
from prom_versions import Prometheus
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest

from poolwatch.cluster import Event, JobStatus, Node, NodeStatus, PoolStatus
from poolwatch.cluster.backend import ClusterBackend
from poolwatch.cluster.sim_metrics import exposition, node_families
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import (
    FAULT_TAINT,
    GPU,
    NOT_READY_TAINT,
    NPU,
    STATUS_LABEL,
    JobRequest,
    PoolSpec,
    SimulationSpec,
    TeamSpec,
)
from poolwatch.core.catalog import by_name

T0 = 1_700_000_000.0
SMALL = SimulationSpec(
    pools=(
        PoolSpec("gpu", 3, 8, GPU, "NVIDIA H100 80GB HBM3", ha_spares=1, driver_version="535"),
        PoolSpec("npu", 2, 8, NPU, "910B3", ha_spares=0, driver_version="24.1"),
    ),
    teams=(
        TeamSpec("team-a", "queue-a", ("alice",), share=0.5),
        TeamSpec("team-b", "queue-b", ("bob",), share=0.5),
    ),
    initial_jobs=0,
    jobs_per_hour=0,
    fault_interval=None,
    repair_seconds=None,
)


def small() -> SimulatedCluster:
    return SimulatedCluster(SMALL, clock=lambda: T0)


def job(ns: str, pool: str, name: str, workers: int, per: int, **kw: object) -> JobRequest:
    req = JobRequest(namespace=ns, pool=pool, name=name, workers=workers, per_worker=per)
    return dataclasses.replace(req, **kw)


def statuses(c: SimulatedCluster, pool: str) -> Counter[NodeStatus]:
    return Counter(n.status for n in c.nodes() if n.pool == pool)


def allocated(c: SimulatedCluster, pool: str) -> tuple[float, float]:
    """(allocated, idle on Available nodes) accelerators, from the objects alone."""
    res = GPU if pool == "gpu" else NPU
    live = [p for p in c.pods() if p.phase in ("Pending", "Running")]
    used = {
        n.name: sum(dict(p.requests).get(res, 0) for p in live if p.node == n.name)
        for n in c.nodes()
    }
    busy = sum(used[n.name] for n in c.nodes() if n.pool == pool)
    idle = sum(
        n.allocatable_of(res) - used[n.name]
        for n in c.nodes()
        if n.pool == pool and n.status is NodeStatus.AVAILABLE
    )
    return busy, idle


def quota_used(c: SimulatedCluster) -> dict[tuple[str, str], dict[str, float]]:
    return {(q.kind, q.namespace or q.name): dict(q.used) for q in c.quotas()}


def job_states(c: SimulatedCluster) -> dict[str, JobStatus]:
    return {j.name: j.status for j in c.jobs()}


def messages(c: SimulatedCluster, reason: str, pool: str = "") -> list[str]:
    return [e.message for e in c.events() if e.reason == reason and (not pool or e.pool == pool)]


# -- construction and determinism ------------------------------------------------------------------
def test_the_defaults_are_the_demo_pool() -> None:
    c = SimulatedCluster(clock=lambda: T0)
    backend: ClusterBackend = c  # the protocol, checked by the type checker
    assert backend.name == "simulated"
    assert backend.healthy()
    assert [(p.name, p.status, p.accelerator_resource, p.ha_spares) for p in c.pools()] == [
        ("gpu-a", PoolStatus.RUNNING, GPU, 1),
        ("npu-b", PoolStatus.RUNNING, NPU, 1),
    ]
    assert statuses(c, "gpu-a") == {NodeStatus.AVAILABLE: 7, NodeStatus.SPARE: 1}
    assert statuses(c, "npu-b") == {NodeStatus.AVAILABLE: 3, NodeStatus.SPARE: 1}
    assert {n.allocatable_of(GPU) for n in c.nodes() if n.pool == "gpu-a"} == {8.0}
    assert c.pools()[0].flavor == "NVIDIA H100 80GB HBM3"
    assert c.pools()[1].flavor == "910B3"
    assert len(c.jobs()) == 4  # a few jobs from the start
    struck = 0
    for _ in range(60):  # a fault every few minutes: several within the hour
        c.step(60)
        views = [c.node_view(n.name) for n in c.nodes()]
        struck += sum(len(v.faults) + sum(len(d.faults) for d in v.devices) for v in views) > 0
    assert struck >= 10


def _run(spec: SimulationSpec, steps: list[float]) -> tuple[list, list]:
    c = SimulatedCluster(spec, clock=lambda: T0)
    stream = c.watch(stop_after=0)
    listed = [c.pools(), c.nodes(), c.pods(), c.jobs(), c.quotas(), c.events()]
    seen = [next(stream) for _ in range(sum(map(len, listed)) + 1)]  # the list and SYNCED
    for s in steps:
        c.step(s)
    seen += list(stream)
    state = [c.pools(), c.nodes(), c.pods(), c.jobs(), c.quotas(), c.events()]
    return state, [(e.type, e.kind, e.obj) for e in seen]


def test_same_seed_and_steps_give_identical_objects_and_events() -> None:
    spec = SimulationSpec(seed=7, jobs_per_hour=20, fault_interval=120)
    state_1, watch_1 = _run(spec, [600.0] * 12)
    state_2, watch_2 = _run(spec, [600.0] * 12)
    assert state_1 == state_2
    assert watch_1 == watch_2
    events = state_1[5]
    assert [e.extra for e in events] == [e.extra for e in _run(spec, [600.0] * 12)[0][5]]
    assert {e.reason for e in events} >= {"JobStarted", "JobCreated"}  # it did something


def test_time_slicing_does_not_change_the_outcome() -> None:
    spec = SimulationSpec(seed=3, jobs_per_hour=20, fault_interval=120)
    sliced, _ = _run(spec, [60.0] * 120)
    whole, _ = _run(spec, [7200.0])
    assert sliced == whole


def test_another_seed_gives_another_history() -> None:
    a, _ = _run(SimulationSpec(seed=1, fault_interval=60), [3600.0])
    b, _ = _run(SimulationSpec(seed=2, fault_interval=60), [3600.0])
    assert a[3] != b[3] or a[5] != b[5]


def _owner_of_quota(pod: object, kind: str) -> str:
    """The namespace (ResourceQuota) or queue (Queue) a pod's requests count against."""
    if kind == "ResourceQuota":
        return pod.namespace  # type: ignore[attr-defined]
    return dict(pod.labels)["volcano.sh/queue-name"]  # type: ignore[attr-defined]


def _reported_counts(c: SimulatedCluster, pool: str) -> str:
    s = statuses(c, pool)
    abnormal = sum(s.values()) - s[NodeStatus.AVAILABLE] - s[NodeStatus.SPARE]
    return f"{s[NodeStatus.AVAILABLE]}/{abnormal}/0/0"


def test_invariants_hold_over_a_long_random_run() -> None:
    spec = SimulationSpec(seed=11, jobs_per_hour=30, fault_interval=120)
    c = SimulatedCluster(spec, clock=lambda: T0)
    for _ in range(48):
        c.step(900)
        live = [p for p in c.pods() if p.phase in ("Pending", "Running")]
        for q in c.quotas():  # usage is exactly the live pods' requests, never over hard
            mine = [p for p in live if _owner_of_quota(p, q.kind) == (q.namespace or q.name)]
            for res, used in q.used:
                bare = res.removeprefix("requests.")
                assert used == sum(dict(p.requests).get(bare, 0) for p in mine)
                assert used <= dict(q.hard)[res]
        for n in c.nodes():  # no node holds more than it has
            res = GPU if n.pool == "gpu-a" else NPU
            held = sum(dict(p.requests)[res] for p in live if p.node == n.name)
            assert held <= dict(n.capacity)[res]
        for j in c.jobs():  # gangs: all pods or none
            pods = [p for p in c.pods() if (p.namespace, p.job) == (j.namespace, j.name)]
            if j.status is JobStatus.PENDING:
                assert pods == []
            if j.status is JobStatus.RUNNING:
                assert [p.phase for p in pods] == ["Running"] * j.workers
        for pool in c.pools():  # the last resources event tells the counts as they are
            if said := messages(c, "PoolResourcesStatusChange", pool.name):
                assert said[-1].split(" to ")[1].startswith(_reported_counts(c, pool.name) + ",")
            assert pool.ha_spares == statuses(c, pool.name)[NodeStatus.SPARE]


# -- a scripted scenario with known counts ---------------------------------------------------------
def scenario() -> SimulatedCluster:
    """Five jobs on the small cluster; their fates are fixed, so every count is known."""
    c = small()
    c.submit(job("team-a", "gpu", "a", 1, 8, duration=600))
    c.submit(job("team-b", "gpu", "b", 2, 2, outcome="hang", duration=300))
    c.submit(job("team-a", "gpu", "c", 1, 8))  # team-a's GPU quota is 12: it waits
    c.submit(job("team-b", "npu", "d", 1, 4, outcome="fail", duration=200, kind="vcjob"))
    c.submit(job("team-a", "npu", "e", 1, 8, kind="MPIJob"))
    return c


def test_scenario_places_gangs_within_quota() -> None:
    c = scenario()
    assert job_states(c) == {
        "a": "Creating",
        "b": "Creating",
        "c": "Pending",
        "d": "Creating",
        "e": "Creating",
    }
    c.step(60)
    assert job_states(c) == {
        "a": "Running",
        "b": "Running",
        "c": "Pending",
        "d": "Running",
        "e": "Running",
    }
    assert statuses(c, "gpu") == {NodeStatus.AVAILABLE: 2, NodeStatus.SPARE: 1}
    assert statuses(c, "npu") == {NodeStatus.AVAILABLE: 2}
    assert allocated(c, "gpu") == (12, 4)  # a fills node-00; b's two workers share node-01
    assert allocated(c, "npu") == (12, 4)
    assert {p.name: p.node for p in c.pods() if p.job == "b"} == {
        "b-worker-0": "gpu-node-01",
        "b-worker-1": "gpu-node-01",
    }
    rq_gpu, rq_npu = "requests." + GPU, "requests." + NPU  # ResourceQuota's spelling
    assert quota_used(c) == {
        ("ResourceQuota", "team-a"): {rq_gpu: 8, rq_npu: 8},
        ("Queue", "queue-a"): {GPU: 8, NPU: 8},
        ("ResourceQuota", "team-b"): {rq_gpu: 4, rq_npu: 4},
        ("Queue", "queue-b"): {GPU: 4, NPU: 4},
    }
    hard = {q.name: dict(q.hard) for q in c.quotas() if q.kind == "Queue"}
    assert hard["queue-a"] == {GPU: 12, NPU: 8}
    assert {q.name: dict(q.min) for q in c.quotas() if q.kind == "Queue"}["queue-a"] == {
        GPU: 6,
        NPU: 4,
    }


def test_scenario_jobs_end_and_free_their_share() -> None:
    c = scenario()
    c.step(700)  # d failed at 230, b hung at 330, a completed at 630 and c took its place
    assert job_states(c) == {
        "a": "Completed",
        "b": "Running",
        "c": "Running",
        "d": "Failed",
        "e": "Running",
    }
    assert allocated(c, "gpu") == (12, 4)
    assert allocated(c, "npu") == (8, 8)
    assert quota_used(c)[("Queue", "queue-b")] == {GPU: 4, NPU: 0}
    assert {p.name: p.phase for p in c.pods() if p.job in ("a", "d")} == {
        "a-worker-0": "Succeeded",
        "d-worker-0": "Failed",
    }
    jobs = {j.name: j for j in c.jobs()}
    assert (jobs["a"].started, jobs["a"].finished) == (T0 + 30, T0 + 630)
    assert (jobs["c"].created, jobs["c"].started) == (T0, T0 + 660)
    assert messages(c, "JobFailed") == ["Failed to run the training job."]


def test_scenario_faults_isolation_and_replacement() -> None:
    c = scenario()
    c.step(700)
    # faults: node-01 stops reporting, a GPU under c falls off the bus
    c.inject("not_ready", "gpu-node-01")
    assert c.inject("gpu_lost", "gpu-node-00", device=3) == 3
    assert statuses(c, "gpu") == {
        NodeStatus.AVAILABLE: 1,
        NodeStatus.UNAVAILABLE: 1,
        NodeStatus.SPARE: 1,
    }
    assert c.pools()[0].status is PoolStatus.RUNNING  # one node is still Available
    # the controller's part, through the write side: isolate node-00, take the spare in
    c.taint_node("gpu-node-00", FAULT_TAINT, "A050203", "NoSchedule")
    assert c.pools()[0].status is PoolStatus.ABNORMAL
    c.cordon("gpu-node-02", False)  # still Spare: the status label wins
    c.label_node("gpu-node-02", {STATUS_LABEL: None})
    assert c.pools()[0].status is PoolStatus.RUNNING
    assert c.pools()[0].ha_spares == 0  # the spare is in use
    c.evict("team-a", "c-worker-0")  # c restarts on the former spare
    assert {p.name: p.node for p in c.pods() if p.job == "c"} == {"c-worker-0": "gpu-node-02"}
    assert (jobs := {j.name: j for j in c.jobs()})["c"].restarts == 1
    assert jobs["c"].status is JobStatus.CREATING

    c.step(700)  # t=1400: b, stalled by the NotReady node at 700, failed at 1300
    assert job_states(c) == {
        "a": "Completed",
        "b": "Failed",
        "c": "Running",
        "d": "Failed",
        "e": "Running",
    }
    assert statuses(c, "gpu") == {
        NodeStatus.ISOLATED: 1,
        NodeStatus.UNAVAILABLE: 1,
        NodeStatus.AVAILABLE: 1,
    }
    assert allocated(c, "gpu") == (8, 0)
    assert next(n for n in c.nodes() if n.name == "gpu-node-00").fault_code == "A050203"
    assert Counter(j.status for j in c.jobs()) == {"Completed": 1, "Failed": 2, "Running": 2}
    assert quota_used(c)[("Queue", "queue-a")] == {GPU: 8, NPU: 8}
    assert quota_used(c)[("Queue", "queue-b")] == {GPU: 0, NPU: 0}
    assert messages(c, "PoolStatusChange", "gpu") == [
        "Start creating pool",
        "Pool status changed, from Creating to Running.",
        "Pool status changed, from Running to Abnormal.",
        "Pool status changed, from Abnormal to Running.",
    ]
    counts = [
        re.search(r"from (\S+) to (\S+),", m).groups()  # type: ignore[union-attr]
        for m in messages(c, "PoolResourcesStatusChange", "gpu")
    ]
    assert counts == [
        ("0/0/0/0", "0/0/3/0"),
        ("0/0/3/0", "2/0/0/0"),
        ("2/0/0/0", "1/1/0/0"),
        ("1/1/0/0", "0/2/0/0"),
        ("0/2/0/0", "1/2/0/0"),
    ]


def test_event_formats_follow_the_seeds() -> None:
    c = small()
    c.inject("not_ready", "npu-node-00")
    c.step(5)
    c.inject("not_ready", "npu-node-01")
    pool_events = [e for e in c.events() if e.pool == "npu" and e.kind == "Pool"]
    resources = re.compile(
        r"^Pool resources status changed, available/abnormal/creating/deleting count from "
        r"\d+/\d+/\d+/\d+ to \d+/\d+/\d+/\d+, timestamp: (\d+)$"
    )
    for e in pool_events:
        if e.reason == "PoolResourcesStatusChange":
            m = resources.match(e.message)
            assert m, e.message
            assert int(m.group(1)) == int(e.time)
        else:
            assert e.reason == "PoolStatusChange"
    last = pool_events[-2:]
    assert [(e.reason, e.type, e.message) for e in last] == [
        (
            "PoolResourcesStatusChange",
            "Warning",
            "Pool resources status changed, available/"
            "abnormal/creating/deleting count from 1/1/0/0 to 0/2/0/0, timestamp: 1700000005",
        ),
        ("PoolStatusChange", "Warning", "Pool status changed, from Running to Abnormal."),
    ]
    assert messages(c, "NodeNotReady") == [
        "Node npu-node-00 status is now: NodeNotReady",
        "Node npu-node-01 status is now: NodeNotReady",
    ]
    c.heal("npu-node-00")
    assert c.pools()[1].status is PoolStatus.RUNNING
    assert messages(c, "NodeReady") == ["Node npu-node-00 status is now: NodeReady"]
    assert (
        messages(c, "PoolStatusChange", "npu")[-1]
        == "Pool status changed, from Abnormal to Running."
    )


def test_events_expire_after_an_hour() -> None:
    c = small()
    first = {e.uid for e in c.events()}
    c.inject("cache_full", "gpu-node-00")
    c.step(3601)
    assert not first & {e.uid for e in c.events()}


# -- faults: what they do to a node ---------------------------------------------------------------
def node(c: SimulatedCluster, name: str) -> Node:
    return next(n for n in c.nodes() if n.name == name)


def test_not_ready_looks_like_kubernetes_and_heals() -> None:
    c = small()
    c.inject("not_ready", "gpu-node-00")
    n = node(c, "gpu-node-00")
    assert n.status is NodeStatus.UNAVAILABLE
    assert n.conditions == (("Ready", "False"),)
    assert set(n.taints) == {
        (NOT_READY_TAINT, "", "NoSchedule"),
        (NOT_READY_TAINT, "", "NoExecute"),
    }
    c.submit(job("team-a", "gpu", "x", 1, 8))
    assert {p.node for p in c.pods()} == {"gpu-node-01"}  # nothing lands on the NotReady node
    c.heal("gpu-node-00", "not_ready")
    n = node(c, "gpu-node-00")
    assert (n.status, n.conditions, n.taints) == (NodeStatus.AVAILABLE, (("Ready", "True"),), ())


def test_device_faults_lower_allocatable_and_show_in_metrics() -> None:
    c = small()
    assert c.inject("gpu_lost", "gpu-node-00") == 0
    assert c.inject("ecc", "gpu-node-01", device=5) == 5
    assert c.inject("npu_health", "npu-node-00", device=2) == 2
    assert c.inject("ecc", "npu-node-01") == 0
    for name in ("gpu-node-00", "gpu-node-01", "npu-node-00", "npu-node-01"):
        n = node(c, name)
        res = GPU if name.startswith("gpu") else NPU
        assert (n.allocatable_of(res), dict(n.capacity)[res]) == (7, 8)
        assert n.status is NodeStatus.AVAILABLE  # detection and isolation are poolwatch's job
    c.step(600)
    series = parse(exposition(c))
    lost = {"node": "gpu-node-00", "index": "0"}
    assert value(series, "poolwatch_accelerator_up", **lost) == 0
    assert value(series, "poolwatch_accelerator_health_level", **lost) == 3
    assert not [
        k for k in series if k[0].endswith("utilization_ratio") and set(lost.items()) <= set(k[1])
    ]
    npu = {"node": "npu-node-00", "index": "2"}
    assert value(series, "poolwatch_accelerator_health_level", **npu) == 2
    assert value(series, "poolwatch_accelerator_healthy", **npu) == 0
    ecc = {"node": "gpu-node-01", "index": "5", "error": "uncorrected", "scope": "volatile"}
    before = value(series, "poolwatch_accelerator_ecc_errors_total", **ecc)
    c.step(300)
    after = value(parse(exposition(c)), "poolwatch_accelerator_ecc_errors_total", **ecc)
    assert (before, after) == (11, 16)  # one more every simulated minute
    pages = {"node": "npu-node-01", "index": "0", "cause": "double_bit"}
    assert value(series, "poolwatch_accelerator_retired_pages", **pages) >= 64
    clean = {"node": "npu-node-01", "index": "1", "error": "uncorrected", "scope": "volatile"}
    assert value(series, "poolwatch_accelerator_ecc_errors_total", **clean) == 0
    c.heal("gpu-node-01")  # the card is replaced: counters start again
    ecc_now = value(parse(exposition(c)), "poolwatch_accelerator_ecc_errors_total", **ecc)
    assert (ecc_now, node(c, "gpu-node-01").allocatable_of(GPU)) == (0, 8)


def test_a_fault_under_a_job_stalls_it_then_fails_it() -> None:
    c = small()
    c.submit(job("team-a", "gpu", "x", 1, 4))
    c.step(60)
    assert c.inject("ecc", "gpu-node-00") == 0  # x holds devices 0-3
    c.step(60)
    series = parse(exposition(c))
    assert (
        value(series, "poolwatch_accelerator_utilization_ratio", node="gpu-node-00", index="1") == 0
    )
    assert job_states(c) == {"x": "Running"}
    c.step(600)
    assert job_states(c) == {"x": "Failed"}
    assert messages(c, "JobFailed") == ["Failed to run the training job."]


def test_host_faults_show_in_metrics_and_block_starts() -> None:
    c = small()
    c.inject("cache_full", "npu-node-00")
    c.inject("kubelet_readonly", "npu-node-01")
    series = parse(exposition(c))
    assert (
        value(series, "poolwatch_filesystem_used_ratio", node="npu-node-00", purpose="cache")
        == 0.97
    )
    assert (
        value(series, "poolwatch_filesystem_used_ratio", node="npu-node-01", purpose="cache") < 0.9
    )
    assert (
        value(series, "poolwatch_filesystem_readonly", node="npu-node-01", purpose="kubelet") == 1
    )
    c.submit(job("team-b", "npu", "filler", 1, 8))  # fills npu-node-00
    c.submit(job("team-a", "npu", "x", 1, 4))  # so x lands on the read-only node
    c.step(300)
    assert job_states(c) == {"filler": "Running", "x": "Creating"}  # x cannot start
    c.heal("npu-node-01", "kubelet_readonly")
    c.step(60)
    assert job_states(c) == {"filler": "Running", "x": "Running"}


def test_faults_are_checked() -> None:
    c = small()
    with pytest.raises(ValueError, match="cannot strike"):
        c.inject("gpu_lost", "npu-node-00")
    with pytest.raises(ValueError, match="cannot strike"):
        c.inject("npu_health", "gpu-node-00")
    with pytest.raises(ValueError, match="fault must be one of"):
        c.inject("meteor", "gpu-node-00")
    with pytest.raises(KeyError):
        c.inject("ecc", "nowhere")
    c.inject("cache_full", "gpu-node-00")
    with pytest.raises(ValueError, match="cannot strike"):
        c.inject("cache_full", "gpu-node-00")


def test_faults_repair_themselves_when_asked_to() -> None:
    c = SimulatedCluster(dataclasses.replace(SMALL, repair_seconds=120), clock=lambda: T0)
    c.inject("not_ready", "gpu-node-00")
    c.inject("gpu_lost", "gpu-node-01")
    c.step(119)
    assert node(c, "gpu-node-00").status is NodeStatus.UNAVAILABLE
    c.step(1)
    assert node(c, "gpu-node-00").status is NodeStatus.AVAILABLE
    assert node(c, "gpu-node-01").allocatable_of(GPU) == 8


# -- write side ---------------------------------------------------------------------------------
def test_write_side_changes_statuses_and_shows_in_watch() -> None:
    c = small()
    stream = c.watch(stop_after=0)
    while next(stream).type != "SYNCED":
        pass
    c.label_node("gpu-node-00", {"team": "a"})
    c.taint_node("gpu-node-00", FAULT_TAINT, "A050101", "NoExecute")
    c.taint_node("gpu-node-00", FAULT_TAINT, "A050104", "NoExecute")  # same key+effect: replaced
    n = node(c, "gpu-node-00")
    assert ("team", "a") in n.labels
    assert (n.status, n.fault_code, n.taints) == (
        NodeStatus.ISOLATED,
        "A050104",
        ((FAULT_TAINT, "A050104", "NoExecute"),),
    )
    c.untaint_node("gpu-node-00", FAULT_TAINT)
    c.cordon("gpu-node-01")
    assert (node(c, "gpu-node-00").status, node(c, "gpu-node-01").status) == (
        NodeStatus.AVAILABLE,
        NodeStatus.UNAVAILABLE,
    )
    c.label_node("gpu-node-00", {"team": None, STATUS_LABEL: "Repairing"})
    assert node(c, "gpu-node-00").status is NodeStatus.REPAIRING
    note = Event(
        "", "Node", "gpu-node-00", "NodeIsolated", "Warning", "isolated: A050101", 0.0, pool="gpu"
    )
    c.record_event(note)
    recorded = [e for e in c.events() if e.reason == "NodeIsolated"]
    assert len(recorded) == 1
    assert recorded[0].uid
    assert recorded[0].time == T0
    changes = list(stream)
    node_changes = [e.obj.status for e in changes if e.kind == "node" and e.type == "MODIFIED"]
    assert NodeStatus.ISOLATED in node_changes
    assert node_changes[-1] is NodeStatus.REPAIRING
    assert any(e.kind == "event" and e.type == "ADDED" and e.obj == recorded[0] for e in changes)
    with pytest.raises(KeyError):
        c.cordon("nowhere")
    with pytest.raises(KeyError):
        c.evict("team-a", "nothing")
    with pytest.raises(ValueError, match="effect"):
        c.taint_node("gpu-node-00", "k", "v", "Sometimes")


def test_eviction_restarts_until_the_budget_is_spent() -> None:
    c = SimulatedCluster(dataclasses.replace(SMALL, max_restarts=1), clock=lambda: T0)
    c.submit(job("team-a", "gpu", "x", 2, 4, outcome="hang", duration=600))
    c.step(60)
    uids = {p.uid for p in c.pods()}
    c.evict("team-a", "x-worker-1")
    x = c.jobs()[0]
    assert (x.status, x.restarts, x.started) == (JobStatus.CREATING, 1, None)
    assert uids.isdisjoint(p.uid for p in c.pods())  # the whole gang came back as new pods
    assert messages(c, "JobRestarted") == ["The training job has been restarted."]
    c.step(60)
    c.evict("team-a", "x-worker-0")
    assert job_states(c) == {"x": "Failed"}


def test_max_runtime_stops_a_hung_job() -> None:
    c = SimulatedCluster(dataclasses.replace(SMALL, max_runtime=3600.0), clock=lambda: T0)
    c.submit(job("team-a", "gpu", "x", 1, 1, outcome="hang", duration=60))
    c.step(3000)
    assert job_states(c) == {"x": "Running"}
    c.step(700)
    assert job_states(c) == {"x": "Terminated"}
    assert messages(c, "JobTerminated") == [
        "The training job has been stopped. (Maximum running duration: 1 hour)"
    ]


# -- watch ----------------------------------------------------------------------------------------
def test_watch_lists_everything_then_streams_changes() -> None:
    c = small()
    c.submit(job("team-a", "gpu", "x", 1, 8, duration=100))
    stream = c.watch(stop_after=0)
    initial = []
    for ev in stream:
        if ev.type == "SYNCED":
            break
        initial.append(ev)
    assert {ev.type for ev in initial} == {"ADDED"}
    kinds = Counter(ev.kind for ev in initial)
    assert kinds == {"pool": 2, "node": 5, "pod": 1, "job": 1, "quota": 4, "event": len(c.events())}
    c.step(60)  # x starts
    c.step(3700)  # x completes at 130; at 3730 its TTL runs out, and the first events' too
    changes = [(ev.type, ev.kind, getattr(ev.obj, "name", "")) for ev in stream]
    assert ("MODIFIED", "job", "x") in changes
    assert ("MODIFIED", "pod", "x-worker-0") in changes
    assert changes.index(("DELETED", "job", "x")) > changes.index(("MODIFIED", "job", "x"))
    assert ("DELETED", "pod", "x-worker-0") in changes
    assert c.jobs() == []
    assert c.pods() == []
    assert ("DELETED", "event", "gpu") in changes  # events expire too


def test_watch_in_another_thread_sees_changes_as_they_happen() -> None:
    c = small()
    seen: list[str] = []
    synced = threading.Event()

    def consume() -> None:
        for ev in c.watch(stop_after=10):
            if ev.type == "SYNCED":
                synced.set()
            elif ev.kind == "job" and ev.obj.status is JobStatus.RUNNING:  # type: ignore[union-attr]
                seen.append(ev.obj.name)  # type: ignore[union-attr]
                return

    t = threading.Thread(target=consume)
    t.start()
    assert synced.wait(5)
    c.submit(job("team-a", "gpu", "x", 1, 8))
    c.step(60)
    t.join(5)
    assert seen == ["x"]


def test_run_paces_simulated_time() -> None:
    c = small()
    stop = threading.Event()
    t = threading.Thread(target=c.run, args=(stop,), kwargs={"speed": 1000.0, "tick": 0.01})
    began = time.monotonic()
    t.start()
    time.sleep(0.3)
    stop.set()
    t.join(5)
    wall = time.monotonic() - began
    assert not t.is_alive()
    assert 0 < c.now - T0 <= wall * 1000.0  # never ahead of the wall clock x speed


# -- node-shaped metrics --------------------------------------------------------------------------
def _render(c: SimulatedCluster, name: str) -> bytes:
    """One node's exposition, as its own node exporter would serve it."""

    class Families:
        def collect(self) -> list[Metric]:
            return node_families(c, name)

    return generate_latest(Families())  # type: ignore[arg-type]


def test_node_metrics_follow_the_simulation() -> None:
    c = small()
    c.submit(job("team-a", "gpu", "busy", 1, 4))
    c.submit(job("team-b", "gpu", "stuck", 1, 2, outcome="hang", duration=30))
    c.step(300)
    fams = node_families(c, "gpu-node-00")
    for fam in fams:  # catalog names, identity labels first
        spec = by_name(fam.name + ("_total" if fam.type == "counter" else ""))
        assert list(fam.samples[0].labels)[:2] == ["node", "pool"]
        assert set(fam.samples[0].labels) == {"node", "pool", *spec.labels}
    series = parse(_render(c, "gpu-node-00"))
    util = {
        int(dict(k[1])["index"]): v
        for k, v in series.items()
        if k[0] == "poolwatch_accelerator_utilization_ratio"
    }
    assert all(util[i] > 0.8 for i in range(4))  # busy's devices
    assert [util[i] for i in range(4, 8)] == [0, 0, 0, 0]  # stuck's (hung) and two idle
    used = value(series, "poolwatch_accelerator_memory_used_ratio", index="4")
    assert used > 0.5  # a hung job keeps its memory
    assert value(series, "poolwatch_node_accelerators", vendor="nvidia") == 8
    assert value(series, "poolwatch_node_accelerators_idle", vendor="nvidia") == 2
    owners = {
        dict(k[1])["device_id"]: dict(k[1])["training_job"]
        for k in series
        if k[0] == "poolwatch_accelerator_allocation_info"
    }
    assert sorted(owners.values()) == ["busy"] * 4 + ["stuck"] * 2
    assert all(d.startswith("GPU-") for d in owners)
    assert value(series, "poolwatch_collector_up", collector="accelerator") == 1
    npu = parse(_render(c, "npu-node-00"))
    assert value(npu, "poolwatch_node_accelerators_idle", vendor="huawei") == 8
    assert parse(exposition(c)).keys() >= series.keys() | npu.keys()


@pytest.mark.integration
def test_promtool_accepts_the_simulated_exposition(prom: Prometheus) -> None:
    c = SimulatedCluster(clock=lambda: T0)
    c.step(1800)
    c.inject("ecc", "gpu-a-node-00", device=7)
    c.step(60)
    assert not_about_seed_names(promtool_findings(exposition(c), prom.promtool)) == set()


def test_daemonset_pods_run_on_every_node_and_hold_nothing() -> None:
    spec = dataclasses.replace(SMALL, daemonsets=("nvidia-device-plugin",))
    cluster = SimulatedCluster(spec, clock=lambda: T0)
    plugins = [p for p in cluster.pods() if p.namespace == "kube-system"]
    assert sorted(p.node for p in plugins) == sorted(n.name for n in cluster.nodes())
    assert {(p.phase, p.job) for p in plugins} == {("Running", "")}
    assert all(dict(p.requests).keys() == {"cpu"} for p in plugins)
    cluster.submit(JobRequest("team-a", "gpu", per_worker=8, name="train"))
    cluster.step(60)  # the job's pod lands on a node beside the plugin: both live
    assert len(cluster.pods()) == len(plugins) + 1


def test_a_created_pool_keeps_its_workspace_and_job_types() -> None:
    cluster = SimulatedCluster(SMALL, clock=lambda: T0)
    assert {(p.name, p.workspace, p.job_types) for p in cluster.pools()} == {
        ("gpu", "default", ("Train",)), ("npu", "default", ("Train",))}  # fmt: skip
    cluster.set_node_pool("gpu-node-00", None)
    pool = next(p for p in cluster.pools() if p.name == "gpu")
    made = dataclasses.replace(pool, name="new", workspace="5", job_types=("Train", "Infer"))
    cluster.create_pool(made, ["gpu-node-00"])
    new = next(p for p in cluster.pools() if p.name == "new")
    assert (new.workspace, new.job_types) == ("5", ("Train", "Infer"))
    cluster.step(60)  # a later commit republishes the pool from its spec: it keeps them
    new = next(p for p in cluster.pools() if p.name == "new")
    assert (new.workspace, new.job_types) == ("5", ("Train", "Infer"))
