"""A hung job in the simulation looks hung to every counter the hang rule (MA-J-02) reads.

The rule calls a job hung when none of its containers' I/O counters (process read/write, NFS,
block devices, network) moves for its detection time while its accelerators' utilisation stays
flat. These tests read the simulated node metrics the rule reads: a healthy job's counters keep
rising, a hung job's stay flat with its utilisation, a healed hang goes on without a counter
going back, and the job's detection time reaches the cluster's job objects.
"""

from __future__ import annotations

import dataclasses

import pytest

from poolwatch.app.demo_node_metrics import exposition
from poolwatch.cluster import JobStatus
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import GPU, JobRequest, PoolSpec, SimulationSpec, TeamSpec
from tests.helpers import parse

T0 = 1_700_000_000.0
SPEC = SimulationSpec(
    pools=(PoolSpec("gpu", 2, 8, GPU, "NVIDIA H100 80GB HBM3", ha_spares=0),),
    teams=(TeamSpec("team-a", "queue-a", ("alice",), share=1.0),),
    initial_jobs=0,
    jobs_per_hour=0,
    fault_interval=None,
    repair_seconds=None,
)
#: every counter the hang rule reads, per container (the I/O) and per card (the utilisation)
IO = (
    "poolwatch_container_process_io_bytes_total",
    "poolwatch_container_nfs_bytes_total",
    "poolwatch_container_disk_read_bytes_total",
    "poolwatch_container_disk_written_bytes_total",
    "poolwatch_container_network_receive_bytes_total",
    "poolwatch_container_network_transmit_bytes_total",
)
UTIL = "poolwatch_container_accelerator_utilization_ratio"


def pool(**kw: object) -> SimulatedCluster:
    c = SimulatedCluster(dataclasses.replace(SPEC, **kw), clock=lambda: T0)
    for name in ("healthy", "stuck"):  # 8 cards each: one node each
        c.submit(JobRequest("team-a", "gpu", per_worker=8, name=name, duration=7200))
    c.step(60)  # both Running (30 s start-up)
    return c


def io_of(c: SimulatedCluster, job: str) -> dict[tuple[str, str], float]:
    """(family, direction) -> value for the job's one pod, from the node exposition."""
    out = {}
    for (name, labels), v in parse(exposition(c)).items():
        lab = dict(labels)
        if name in IO and lab.get("training_job") == job:
            out[(name, lab.get("direction", ""))] = v
    return out


def util_of(c: SimulatedCluster, job: str) -> list[float]:
    series = parse(exposition(c))
    return [v for (n, lab), v in series.items() if n == UTIL and dict(lab)["training_job"] == job]


def test_every_counter_the_hang_rule_reads_is_served_per_container() -> None:
    c = pool()
    got = io_of(c, "healthy")
    assert {name for name, _ in got} == set(IO)
    assert {d for n, d in got if n.endswith(("process_io_bytes_total", "nfs_bytes_total"))} == {
        "read", "write"}  # fmt: skip
    mounts = "poolwatch_container_nfs_mounts"
    nfs = [v for (n, lab), v in parse(exposition(c)).items()
           if n == mounts and dict(lab)["training_job"] == "healthy"]  # fmt: skip
    assert nfs == [1]  # with its bytes served, so the rule judges the job


def test_a_healthy_job_keeps_rising_and_a_hung_one_stays_flat() -> None:
    c = pool()
    c.hang("team-a/stuck")
    c.step(15)  # the last moment the hung job moved anything is behind us
    before_ok, before_hung = io_of(c, "healthy"), io_of(c, "stuck")
    samples = []
    for _ in range(40):  # ten simulated minutes at a 15 s scrape interval
        c.step(15)
        samples.append(util_of(c, "stuck"))
    after_ok, after_hung = io_of(c, "healthy"), io_of(c, "stuck")
    assert len(before_ok) == len(IO) + 2  # two directions for process I/O and NFS
    # healthy: every counter rose by far more than the rule's 1 MiB per 5-minute period
    assert all(after_ok[k] - before_ok[k] > 100 * 1048576 for k in before_ok)
    assert after_hung == before_hung  # hung: not one byte more, on any counter
    assert all(u == [0.0] * 8 for u in samples)  # flat: no variance, the same median
    assert min(util_of(c, "healthy")) > 0.8
    assert [j.status for j in c.jobs()] == [JobStatus.RUNNING, JobStatus.RUNNING]


def test_a_healed_hang_goes_on_from_where_it_stopped() -> None:
    c = pool()
    c.hang("stuck")  # a job name alone, when no other namespace has it
    c.step(600)
    frozen = io_of(c, "stuck")
    assert c.heal("team-a/stuck") == ["team-a/stuck"]
    c.step(15)
    resumed = io_of(c, "stuck")
    assert all(resumed[k] > frozen[k] for k in frozen)  # rising again, never back
    assert min(util_of(c, "stuck")) > 0.8
    assert c.hung_jobs() == []


def test_hang_by_node_heal_by_node_and_what_cannot_hang() -> None:
    c = pool()
    node = next(p.node for p in c.pods() if p.job == "stuck")
    assert c.can_strike("hang", node)
    assert c.hang(node) == "team-a/stuck"
    assert not c.can_strike("hang", node)  # its only job is hung already
    with pytest.raises(ValueError, match="no running job"):
        c.hang(node)
    with pytest.raises(ValueError, match="is hung"):
        c.hang("team-a/stuck")
    with pytest.raises(KeyError, match="no node or training job"):
        c.hang("nothing-by-that-name")
    assert c.heal(node, "ecc") == []  # another fault: the hang stays
    assert c.hung_jobs() == ["team-a/stuck"]
    assert c.heal(node) == ["team-a/stuck"]  # every fault on the node, its hangs included


def test_a_drawn_hang_stops_the_counters_too_and_the_same_seed_gives_the_same_values() -> None:
    def run() -> tuple[dict[tuple[str, str], float], ...]:
        c = SimulatedCluster(dataclasses.replace(SPEC), clock=lambda: T0)
        c.submit(JobRequest("team-a", "gpu", per_worker=8, name="x", outcome="hang",
                            duration=120))  # fmt: skip
        c.step(30 + 120 + 15)
        hung = io_of(c, "x")
        c.step(600)
        return hung, io_of(c, "x")

    first = run()
    assert first[0] == first[1]  # hung at 150 s by its drawn fate: flat since
    assert run() == first  # deterministic under the seed


def test_the_job_carries_its_hang_detection_time() -> None:
    c = pool(hang_detect_minutes=10)
    c.submit(JobRequest("team-a", "gpu", name="own", hang_detect_minutes=45))
    got = {j.name: j.hang_detect_minutes for j in c.jobs()}
    assert got == {"healthy": 10, "stuck": 10, "own": 45}
    with pytest.raises(ValueError, match="10-720"):
        c.submit(JobRequest("team-a", "gpu", name="short", hang_detect_minutes=5))
    with pytest.raises(ValueError, match="10-720"):
        dataclasses.replace(SPEC, hang_detect_minutes=721)


def test_a_pods_network_is_served_as_the_exporter_serves_it() -> None:
    """The real exporter reads a pod's network once, from its shared network namespace, and
    serves it with container=""; the simulated node does the same, the other counters keep
    their container."""
    containers: dict[str, set[str]] = {}
    for (name, labels), _v in parse(exposition(pool())).items():
        lab = dict(labels)
        if name in IO and lab.get("training_job") == "healthy":
            containers.setdefault(name, set()).add(lab["container"])
    network = {n for n in IO if "network" in n}
    assert all(containers[n] == {""} for n in network)
    assert all("" not in containers[n] for n in set(IO) - network)
