"""The Kubernetes backend through the real `kubernetes` client against tests/helpers/k8s_stub.py.

The same behaviours are checked again on a real kube-apiserver in test_controlplane_backend.py.
This stand-in stays for what a real server cannot be made to send, and for exact request bodies:
KubeApiStub on 127.0.0.1 speaks the API's JSON for list and watch (resourceVersion, bookmarks,
410 Gone on the stream and as HTTP, dropped connections, 404 for CRDs that are not installed)
and for the write side, and can send garbage JSON, objects without a uid or of the wrong kind, a
negative quantity, or a scripted 409 between a read and a write. It is fed with the hand-built
objects in tests/fixtures/kubeapi/ (each with its .source.txt). The client's own models are
checked to accept the fixtures of built-in kinds, so a field of the wrong shape fails here.

Why one long file: every test runs the backend against the same stub, fed the same fixtures,
with the recorders defined here (`Recorder`, `RecordingBackoff`); the sections follow the
backend's own concerns (conversion, list and watch, odd objects, the write side, an unreachable
API).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from poolwatch.cluster import JobStatus, NodeStatus, PoolStatus, WatchEvent
from poolwatch.cluster.kubernetes.api import RESOURCES, Backoff, Resource
from poolwatch.cluster.kubernetes.backend import ClusterUnavailable, KubernetesCluster
from poolwatch.cluster.kubernetes.write import ClusterWriteError, EvictionBlocked
from poolwatch.cluster.model import Event
from tests.helpers import FIXTURES
from tests.helpers.k8s_stub import KubeApiStub

KUBEAPI = FIXTURES / "kubeapi"
NODES, PODS, EVENTS = "/api/v1/nodes", "/api/v1/pods", "/api/v1/events"
QUOTAS, BATCH = "/api/v1/resourcequotas", "/apis/batch/v1/jobs"
PYTORCH = "/apis/kubeflow.org/v1/pytorchjobs"
MPI = "/apis/kubeflow.org/v2beta1/mpijobs"
VCJOB = "/apis/batch.volcano.sh/v1alpha1/jobs"
QUEUES = "/apis/scheduling.volcano.sh/v1beta1/queues"
TREES = "/apis/scheduling.sigs.k8s.io/v1beta1/elasticquotatrees"
CRDS = {
    PYTORCH: ("PyTorchJob", "kubeflow.org/v1", True, "pytorchjob_HANDBUILT.json"),
    MPI: ("MPIJob", "kubeflow.org/v2beta1", True, "mpijob_v2beta1_HANDBUILT.json"),
    VCJOB: ("Job", "batch.volcano.sh/v1alpha1", True, "vcjob_HANDBUILT.json"),
    QUEUES: ("Queue", "scheduling.volcano.sh/v1beta1", False, "queue_HANDBUILT.json"),
    TREES: ("ElasticQuotaTree", "scheduling.sigs.k8s.io/v1beta1", True,
            "elasticquotatree_HANDBUILT.json"),
}  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((KUBEAPI / name).read_text())


class RecordingBackoff(Backoff):
    """Fast, and remembers every wait it was asked for."""

    def __init__(self) -> None:
        super().__init__(initial=0.01, maximum=0.08, factor=2.0, jitter=0.0)
        self.waits: list[float] = []

    def delay(self, attempt: int) -> float:
        self.waits.append(super().delay(attempt))
        return self.waits[-1]


def seed(stub: KubeApiStub, crds: tuple[str, ...] = tuple(CRDS)) -> None:
    for node in fixture("nodelist_HANDBUILT.json")["items"]:
        stub.put(NODES, node)
    pods = fixture("podlist_HANDBUILT.json")["items"]
    for pod in pods + fixture("podlist_plain_jobs_HANDBUILT.json")["items"]:
        stub.put(PODS, pod)
    for job in fixture("joblist_batch_HANDBUILT.json")["items"]:
        stub.put(BATCH, job)
    stub.put(QUOTAS, fixture("resourcequota_HANDBUILT.json"))
    for event in fixture("eventlist_HANDBUILT.json")["items"]:
        stub.put(EVENTS, event)
    for path in crds:
        kind, api_version, namespaced, name = CRDS[path]
        stub.install(path, kind, api_version, namespaced)
        stub.put(path, fixture(name))


def until(check: Callable[[], Any], timeout: float = 20.0, what: object = "") -> Any:
    """Poll `check` until it returns something truthy, against a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout}s: {what or check}")


class Recorder:
    """Consumes cluster.watch() in a thread, keeping every event."""

    def __init__(self, cluster: KubernetesCluster) -> None:
        self.events: list[WatchEvent] = []
        self._stream = cluster.watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for event in self._stream:
            self.events.append(event)

    def synced(self) -> None:
        until(lambda: any(e.type == "SYNCED" for e in self.events), what="SYNCED")

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> list[tuple[str, str, str]]:
        return [(e.type, e.kind, getattr(e.obj, "name", "")) for e in self.events[mark:]]

    def wait(self, mark: int, *wanted: tuple[str, str, str]) -> list[tuple[str, str, str]]:
        until(
            lambda: all(w in self.since(mark) for w in wanted),
            what=f"{wanted}; seen {self.since(mark)}",
        )
        return self.since(mark)

    def last(self, kind: str, name: str) -> Any:
        """The newest `kind` object named `name` (a SYNCED marker, which a watch restart sends
        again, carries no object)."""
        return next(e.obj for e in reversed(self.events)
                    if e.kind == kind and e.obj is not None and e.obj.name == name)  # fmt: skip


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    server = KubeApiStub()
    yield server
    server.close()


@pytest.fixture
def backoff() -> RecordingBackoff:
    return RecordingBackoff()


@pytest.fixture
def make(
    stub: KubeApiStub, backoff: RecordingBackoff
) -> Iterator[Callable[..., KubernetesCluster]]:
    made: list[KubernetesCluster] = []

    def build(host: str = "", **kwargs: Any) -> KubernetesCluster:
        config = kubernetes.client.Configuration(host=host or stub.url)
        config.retries = False
        config.connection_pool_maxsize = 32  # a stream per resource, and the writes
        # sync_timeout is a deadline for the first lists, generous for a loaded CI machine
        settings: dict[str, Any] = {"watch_timeout": 5, "backoff": backoff, "sync_timeout": 30.0}
        cluster = KubernetesCluster(kubernetes.client.ApiClient(config), **(settings | kwargs))
        made.append(cluster)
        return cluster

    yield build
    for cluster in made:
        cluster.stop()


@pytest.fixture
def seeded(stub: KubeApiStub, make: Callable[..., KubernetesCluster]) -> KubernetesCluster:
    seed(stub)
    return make()


# --- fixtures are shaped like the real thing ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("nodelist_HANDBUILT.json", "V1NodeList"),
        ("podlist_plain_jobs_HANDBUILT.json", "V1PodList"),
        ("joblist_batch_HANDBUILT.json", "V1JobList"),
        ("resourcequota_HANDBUILT.json", "V1ResourceQuota"),
        ("eventlist_HANDBUILT.json", "CoreV1EventList"),
    ],
)
def test_the_fixtures_of_built_in_kinds_pass_the_clients_own_models(name: str, model: str) -> None:
    parsed = getattr(kubernetes.client, model).from_dict(fixture(name))
    assert parsed is not None
    assert (KUBEAPI / f"{name}.source.txt").is_file()


def test_every_kubeapi_fixture_says_where_it_comes_from() -> None:
    for path in KUBEAPI.glob("*.json"):
        assert Path(f"{path}.source.txt").is_file(), path.name


# --- conversion -----------------------------------------------------------------------------------
def test_objects_convert_to_the_model(seeded: KubernetesCluster) -> None:
    nodes = {n.name: n for n in seeded.nodes()}
    gpu = nodes["gpu-node-07"]
    assert (gpu.pool, gpu.status, gpu.fault_code) == ("pool-h100-a", NodeStatus.AVAILABLE, "")
    assert gpu.allocatable_of("nvidia.com/gpu") == 8.0
    assert gpu.allocatable_of("cpu") == 191.5  # "191500m"
    assert gpu.allocatable_of("memory") == 2102093332 * 1024  # "2102093332Ki"
    assert ("Ready", "True") in gpu.conditions
    npu = nodes["npu-node-03"]
    assert (npu.status, npu.fault_code) == (NodeStatus.ISOLATED, "A050122")
    assert npu.taints == (("poolwatch.io/fault", "A050122", "NoSchedule"),)

    pools = {p.name: p for p in seeded.pools()}
    h100 = pools["pool-h100-a"]
    assert h100.status is PoolStatus.RUNNING
    assert (h100.flavor, h100.accelerator_resource) == ("NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu")
    assert h100.driver_version == "550.127.05"
    assert pools["pool-910b"].status is PoolStatus.ABNORMAL  # its only node is isolated
    assert pools["pool-910b"].accelerator_resource == "huawei.com/Ascend910"

    jobs = {(j.kind, j.name): j for j in seeded.jobs()}
    bert = jobs[("PyTorchJob", "bert-large-ft")]
    assert (bert.status, bert.namespace, bert.pool) == (JobStatus.RUNNING, "team-a", "pool-h100-a")
    assert (bert.workers, bert.accelerators_requested) == (2, 8.0)
    assert (bert.queue, bert.priority, bert.owner) == ("team-a", "training-high", "alice")
    assert bert.started == pytest.approx(1795240932.0)  # 2026-11-21T06:02:12Z
    gpt = jobs[("vcjob", "gpt-pretrain")]
    assert (gpt.status, gpt.workers, gpt.accelerators_requested) == (JobStatus.RUNNING, 3, 24.0)
    assert (gpt.queue, gpt.restarts, gpt.pool) == ("training", 1, "pool-h100-a")  # by affinity
    mpi = jobs[("MPIJob", "allreduce")]
    assert (mpi.status, mpi.workers, mpi.accelerators_requested) == (JobStatus.COMPLETED, 3, 16.0)
    assert mpi.finished is not None
    assert jobs[("Job", "nightly-eval-29401440")].status is JobStatus.COMPLETED
    assert ("Job", "allreduce-launcher") not in jobs  # part of the MPIJob
    sweep = jobs[("Pod", "sweep-17")]
    assert (sweep.status, sweep.workers, sweep.restarts) == (JobStatus.RUNNING, 2, 2)
    assert (sweep.pool, sweep.owner, sweep.queue) == ("pool-h100-a", "bob", "research")
    assert sweep.accelerators_requested == 4.0

    pods = {p.name: p for p in seeded.pods()}
    assert pods["gpt-pretrain-master-node-0"].job == "gpt-pretrain"
    assert pods["allreduce-launcher-x7k2p"].job == "allreduce"  # kubeflow's label first
    assert pods["sweep-17-b"].job == "sweep-17"
    assert dict(pods["gpt-pretrain-master-node-0"].requests)["nvidia.com/gpu"] == 8.0
    assert pods["scratch-shell"].job == ""

    quotas = {(q.kind, q.name): q for q in seeded.quotas()}
    rq = quotas[("ResourceQuota", "team-a-gpu")]
    assert dict(rq.hard)["requests.nvidia.com/gpu"] == 16.0
    assert dict(rq.used)["requests.nvidia.com/gpu"] == 8.0
    queue = quotas[("Queue", "training")]
    assert (dict(queue.hard)["nvidia.com/gpu"], dict(queue.min)["nvidia.com/gpu"]) == (64, 16)
    assert dict(queue.used)["nvidia.com/gpu"] == 24.0
    tree = [q.name for q in seeded.quotas() if q.kind == "ElasticQuota"]
    assert sorted(tree) == [
        "algorithm",
        "algorithm-text",
        "algorithm-video",
        "infrastructure",
        "root",
    ]
    assert dict(quotas[("ElasticQuota", "root")].hard)["cpu"] == 999900.0  # a JSON number

    events = {e.reason: e for e in seeded.events()}
    assert set(events) == {"NodeNotReady", "SuccessfulCreatePod", "ExecuteAction"}  # no pod's
    assert (events["NodeNotReady"].kind, events["NodeNotReady"].pool) == ("Node", "pool-h100-a")
    created = events["SuccessfulCreatePod"]
    assert (created.kind, created.name, created.namespace) == ("Job", "bert-large-ft", "team-a")
    assert created.pool == "pool-h100-a"
    assert seeded.healthy()


@pytest.mark.parametrize(
    ("conditions", "deleting", "status"),
    [
        ([], False, JobStatus.PENDING),
        ([("Created", "True")], False, JobStatus.CREATING),
        ([("Created", "True"), ("Running", "True")], False, JobStatus.RUNNING),
        ([("Running", "False"), ("Restarting", "True")], False, JobStatus.RUNNING),
        ([("Running", "False"), ("Succeeded", "True")], False, JobStatus.COMPLETED),
        ([("Running", "False"), ("Failed", "True")], False, JobStatus.FAILED),
        ([("Suspended", "True")], False, JobStatus.PENDING),
        ([("Running", "True")], True, JobStatus.TERMINATED),
        ([("Succeeded", "True")], True, JobStatus.COMPLETED),  # finished stays finished
        ([("Exploded", "True")], False, JobStatus.ABNORMAL),
    ],
)
def test_kubeflow_conditions_map_to_job_statuses(
    conditions: list[tuple[str, str]], deleting: bool, status: JobStatus
) -> None:
    from poolwatch.cluster.kubernetes.jobs import kubeflow_job_from
    from poolwatch.cluster.kubernetes.read import Context

    raw = fixture("pytorchjob_HANDBUILT.json")
    raw["status"]["conditions"] = [{"type": t, "status": s} for t, s in conditions]
    if deleting:
        raw["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    notes: list[str] = []
    [job] = kubeflow_job_from(raw, Context(note=lambda r, d: notes.append(r)), "PyTorchJob")
    assert job.status is status
    assert notes == (["pytorchjob: unknown condition"] if status is JobStatus.ABNORMAL else [])


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        (None, JobStatus.PENDING),
        ("Pending", JobStatus.PENDING),
        ("Running", JobStatus.RUNNING),
        ("Restarting", JobStatus.RUNNING),
        ("Completing", JobStatus.RUNNING),
        ("Completed", JobStatus.COMPLETED),
        ("Failed", JobStatus.FAILED),
        ("Aborted", JobStatus.TERMINATED),
        ("Terminating", JobStatus.TERMINATED),
        ("Exploded", JobStatus.ABNORMAL),
    ],
)
def test_volcano_phases_map_to_job_statuses(phase: str | None, status: JobStatus) -> None:
    from poolwatch.cluster.kubernetes.jobs import volcano_job_from
    from poolwatch.cluster.kubernetes.read import Context

    raw = fixture("vcjob_HANDBUILT.json")
    if phase is None:
        del raw["status"]
    else:
        raw["status"]["state"]["phase"] = phase
    [job] = volcano_job_from(raw, Context())
    assert job.status is status
    terminal = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TERMINATED, JobStatus.ABNORMAL)
    assert (job.finished is not None) == (status in terminal)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, JobStatus.PENDING),
        ({"active": 2, "ready": 0}, JobStatus.CREATING),
        ({"active": 2, "ready": 1}, JobStatus.RUNNING),
        ({"active": 2}, JobStatus.RUNNING),  # a server before 1.24: no `ready`
        ({"conditions": [{"type": "Suspended", "status": "True"}]}, JobStatus.PENDING),
        ({"conditions": [{"type": "FailureTarget", "status": "True"}]}, JobStatus.FAILED),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, JobStatus.COMPLETED),
    ],
)
def test_batch_job_status(status: dict[str, Any], expected: JobStatus) -> None:
    from poolwatch.cluster.kubernetes.jobs import batch_job_from
    from poolwatch.cluster.kubernetes.read import Context

    raw = fixture("joblist_batch_HANDBUILT.json")["items"][0]
    raw["status"] = status
    [job] = batch_job_from(raw, Context())
    assert job.status is expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("16Gi", 16 * 1024**3),
        ("1k", 1000.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("2Ki", 2048.0),
        ("1e3", 1000.0),
        ("1E", 1e18),  # exa, not an exponent
        ("1E3", 1000.0),
        ("100u", 1e-4),
        ("+4", 4.0),
        ("-1", -1.0),  # the grammar allows it; the converters drop it
        (8, 8.0),
        (0.25, 0.25),
    ],
)
def test_quantities(text: object, value: float) -> None:
    from poolwatch.cluster.kubernetes.quantity import parse_quantity

    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "garbage", ["lots", "", "1 Gi", "1gi", "Gi", "0x10", "1e999", True, None, "1..5"]
)
def test_garbage_quantities_are_a_clear_error(garbage: object) -> None:
    from poolwatch.cluster.kubernetes.quantity import QuantityError, parse_quantity

    with pytest.raises(QuantityError, match="quantity"):
        parse_quantity(garbage)


# --- list and watch -------------------------------------------------------------------------------
def test_the_stream_starts_with_everything_and_one_synced(
    stub: KubeApiStub, seeded: KubernetesCluster
) -> None:
    events = []
    for event in seeded.watch(stop_after=10):
        events.append(event)
        if event.type == "SYNCED":
            break
    assert [e.type for e in events[:-1]] == ["ADDED"] * (len(events) - 1)
    assert events[-1] == WatchEvent("SYNCED", "pool", None)
    added = {(e.kind, e.obj.name) for e in events[:-1]}
    assert {("pool", "pool-h100-a"), ("node", "npu-node-03"), ("job", "sweep-17")} <= added
    assert ("quota", "algorithm-text") in added
    assert ("event", "gpu-node-08") in added
    # a second watcher gets the same snapshot at once, and one SYNCED
    again = list(seeded.watch(stop_after=0.3))
    assert [e.type for e in again].count("SYNCED") == 1
    assert {(e.kind, e.obj.name) for e in again if e.obj} == added
    # every first list asked the watch cache (resourceVersion=0), then watched from its version
    first = stub.queries(NODES, watch=False)[0]
    assert first["resourceVersion"] == ["0"]
    watch = stub.queries(NODES, watch=True)[0]
    assert watch["allowWatchBookmarks"] == ["true"]
    assert watch["timeoutSeconds"] == ["5"]
    assert int(watch["resourceVersion"][0]) >= 1003  # the list's, not 0


def test_reading_never_lists_again(stub: KubeApiStub, seeded: KubernetesCluster) -> None:
    seeded.nodes()
    lists = len(stub.queries(NODES, watch=False))
    for _ in range(20):
        seeded.nodes(), seeded.pools(), seeded.jobs()
    assert len(stub.queries(NODES, watch=False)) == lists == 1


def test_watch_applies_changes(stub: KubeApiStub, seeded: KubernetesCluster) -> None:
    rec = Recorder(seeded)
    rec.synced()
    mark = rec.mark()
    node = fixture("nodelist_HANDBUILT.json")["items"][0]  # gpu-node-07
    node["spec"]["unschedulable"] = True
    stub.put(NODES, node)
    other = copy.deepcopy(node)
    other["metadata"].update(name="gpu-node-08", uid="1a3c5e7f-9b2d-4f6a-8c0e-2d4f6a8c0e32")
    stub.put(NODES, other)
    seen = rec.wait(mark, ("MODIFIED", "node", "gpu-node-07"), ("MODIFIED", "pool", "pool-h100-a"))
    until(lambda: rec.last("pool", "pool-h100-a").status is PoolStatus.ABNORMAL)
    assert rec.last("node", "gpu-node-08").status is NodeStatus.UNAVAILABLE
    pytorch = fixture("pytorchjob_HANDBUILT.json")
    pytorch["status"]["conditions"][-1]["status"] = "False"
    pytorch["status"]["conditions"].append({"type": "Failed", "status": "True"})
    mark = rec.mark()
    stub.put(PYTORCH, pytorch)
    stub.delete(PODS, "sweep-17-a", "research")
    stub.delete(PODS, "sweep-17-b", "research")
    rec.wait(mark, ("MODIFIED", "job", "bert-large-ft"), ("DELETED", "job", "sweep-17"))
    assert rec.last("job", "bert-large-ft").status is JobStatus.FAILED
    assert ("DELETED", "pod", "sweep-17-a") in rec.since(mark)
    assert {p.name for p in seeded.pods()}.isdisjoint({"sweep-17-a", "sweep-17-b"})
    assert len(seen) == len(set(seen))  # no duplicates


def test_an_unchanged_object_emits_nothing(stub: KubeApiStub, seeded: KubernetesCluster) -> None:
    rec = Recorder(seeded)
    rec.synced()
    mark = rec.mark()
    node = fixture("nodelist_HANDBUILT.json")["items"][0]
    node["status"]["conditions"][-1]["lastHeartbeatTime"] = "2026-11-22T09:45:12Z"  # a heartbeat
    stub.put(NODES, node)
    quota = fixture("resourcequota_HANDBUILT.json")
    quota["status"]["used"]["pods"] = "3"
    stub.put(QUOTAS, quota)
    rec.wait(mark, ("MODIFIED", "quota", "team-a-gpu"))  # the marker after the heartbeat
    assert rec.since(mark) == [("MODIFIED", "quota", "team-a-gpu")]


def test_a_bookmark_moves_the_resource_version_on_without_events(
    stub: KubeApiStub, seeded: KubernetesCluster
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    stub.put(QUOTAS, fixture("resourcequota_HANDBUILT.json"))  # the version moves on elsewhere
    mark = rec.mark()
    version = stub.bookmark(NODES)
    watches = len(stub.queries(NODES, watch=True))
    stub.drop(NODES)  # the next watch shows where the informer stood
    until(lambda: len(stub.queries(NODES, watch=True)) > watches)
    assert stub.queries(NODES, watch=True)[-1]["resourceVersion"] == [str(version)]
    assert len(stub.queries(NODES, watch=False)) == 1  # and it did not relist
    assert not [e for e in rec.since(mark) if e[1] in ("node", "pool")]


@pytest.mark.parametrize("as_http", [False, True])
def test_410_gone_relists_and_emits_the_differences(
    stub: KubeApiStub, seeded: KubernetesCluster, as_http: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    mark = rec.mark()
    nodes = fixture("nodelist_HANDBUILT.json")["items"]
    stub.gone_as_http = as_http
    # what happens while the watch is lost: none of it reaches a watch, and history is compacted
    stub.delete(NODES, "gpu-node-08", quiet=True)
    nodes[2]["spec"]["taints"] = []  # npu-node-03 de-isolated
    stub.put(NODES, nodes[2], quiet=True)
    new = copy.deepcopy(nodes[0])
    new["metadata"].update(name="gpu-node-09", uid="77777777-9b2d-4f6a-8c0e-2d4f6a8c0e99")
    stub.put(NODES, new, quiet=True)
    with caplog.at_level(logging.INFO, logger="poolwatch.cluster.kubernetes.informer"):
        if as_http:
            stub.drop(NODES)  # the watch comes back with an old version: HTTP 410
        else:
            stub.expire(NODES)  # an ERROR event with a 410 Status on the open stream
        seen = rec.wait(
            mark,
            ("DELETED", "node", "gpu-node-08"),
            ("MODIFIED", "node", "npu-node-03"),
            ("ADDED", "node", "gpu-node-09"),
            ("MODIFIED", "pool", "pool-910b"),
        )
    assert ("ADDED", "node", "gpu-node-07") not in seen  # unchanged: not emitted again
    assert rec.last("pool", "pool-910b").status is PoolStatus.RUNNING
    assert sorted(n.name for n in seeded.nodes()) == ["gpu-node-07", "gpu-node-09", "npu-node-03"]
    relist = stub.queries(NODES, watch=False)[-1]
    assert "resourceVersion" not in relist  # a consistent read, not the watch cache
    assert "410 Gone" in caplog.text
    until(lambda: stub.watching(NODES))  # and it watches on from the new list
    stub.delete(NODES, "gpu-node-09")
    rec.wait(mark, ("DELETED", "node", "gpu-node-09"))


def test_a_dropped_connection_reconnects_with_backoff(
    stub: KubeApiStub, seeded: KubernetesCluster, backoff: RecordingBackoff
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    until(lambda: stub.watching(PODS))
    watches = stub.queries(PODS, watch=True)
    last = watches[-1]["resourceVersion"]
    waits = len(backoff.waits)
    stub.drop(PODS)
    until(lambda: len(stub.queries(PODS, watch=True)) > len(watches), what="a new watch")
    assert backoff.waits[waits:] == [0.01]  # waited, the first step of the backoff
    assert stub.queries(PODS, watch=True)[-1]["resourceVersion"] == last  # resumed, no relist
    assert len(stub.queries(PODS, watch=False)) == 1
    stub.drop(PODS)  # broken again at once, before any event: the next wait is longer
    until(lambda: len(backoff.waits) >= waits + 2)
    assert backoff.waits[waits + 1] == 0.02
    mark = rec.mark()
    stub.delete(PODS, "scratch-shell", "default")
    rec.wait(mark, ("DELETED", "pod", "scratch-shell"))
    assert seeded.healthy()


def test_watches_that_end_at_once_do_not_spin(
    stub: KubeApiStub, make: Callable[..., KubernetesCluster], backoff: RecordingBackoff
) -> None:
    seed(stub, crds=())
    cluster = make(watch_timeout=0)  # every watch ends at once, cleanly and empty
    cluster.start()
    until(lambda: len(backoff.waits) >= 20, what="backing off")
    watches = sum(len(stub.queries(path, watch=True)) for path in (NODES, PODS, QUOTAS, EVENTS))
    assert watches <= len(backoff.waits) + 4  # one wait per empty watch, not a busy loop
    assert max(backoff.waits) == 0.08  # and the waits grew to the maximum


def test_backoff_grows_to_its_maximum_with_jitter_below() -> None:
    policy = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.25)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (50, 8.0), (10**6, 8.0)]:
        for _ in range(20):
            assert base * 0.75 <= policy.delay(attempt) <= base


def test_a_crd_that_is_not_installed_is_skipped_quietly(
    stub: KubeApiStub, make: Callable[..., KubernetesCluster], caplog: pytest.LogCaptureFixture
) -> None:
    seed(stub, crds=(VCJOB,))  # no Kubeflow, no queues, no quota trees
    with caplog.at_level(logging.INFO):
        cluster = make(absent_retry=0.2)
        rec = Recorder(cluster)
        rec.synced()
        assert cluster.informers()["pytorchjobs.kubeflow.org/v1"] == "absent"
        assert cluster.healthy()
        assert {j.kind for j in cluster.jobs()} == {"vcjob", "Job", "Pod"}
        until(lambda: len(stub.queries(PYTORCH)) >= 3, what="looked for again")
    said = [r for r in caplog.records if "pytorchjobs.kubeflow.org/v1" in r.getMessage()]
    assert [r.levelname for r in said] == ["INFO"]  # once, however often it looks again
    informer = "poolwatch.cluster.kubernetes.informer"
    assert not [r for r in caplog.records if r.name == informer and r.levelno >= logging.WARNING]
    # installed later: its objects arrive as ADDED; removed again: DELETED
    mark = rec.mark()
    kind, api_version, namespaced, name = CRDS[PYTORCH]
    stub.install(PYTORCH, kind, api_version, namespaced)
    stub.put(PYTORCH, fixture(name))
    rec.wait(mark, ("ADDED", "job", "bert-large-ft"))
    until(lambda: stub.watching(PYTORCH))
    stub.uninstall(PYTORCH)
    rec.wait(mark, ("DELETED", "job", "bert-large-ft"))
    until(lambda: cluster.informers()["pytorchjobs.kubeflow.org/v1"] == "absent")


# --- odd objects ----------------------------------------------------------------------------------
def test_odd_objects_are_counted_logged_once_and_never_stop_the_watch(
    stub: KubeApiStub, seeded: KubernetesCluster, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    mark = rec.mark()
    nodes = fixture("nodelist_HANDBUILT.json")["items"]
    odd = nodes[0]
    odd["status"]["allocatable"].update({"nvidia.com/gpu": "-8", "memory": "lots"})
    del odd["metadata"]["labels"]  # no labels at all: no pool, and that is not odd
    no_uid = copy.deepcopy(fixture("podlist_plain_jobs_HANDBUILT.json")["items"][0])
    no_uid["metadata"].update(name="no-uid", uid=None)
    exploded = fixture("vcjob_HANDBUILT.json")
    exploded["status"]["state"]["phase"] = "Exploded"
    wrong_kind = fixture("pytorchjob_HANDBUILT.json")
    wrong_kind["metadata"].update(
        name="not-a-pytorchjob", uid="99999999-51a7-4c3e-9b0f-6a8d7e2f1c35"
    )
    wrong_kind["kind"] = "TFJob"
    with caplog.at_level(logging.WARNING, logger="poolwatch.cluster.kubernetes.backend"):
        for _ in range(2):  # twice: counted twice, logged once
            stub.send_raw(NODES, b"{this is not json")
            stub.put(NODES, odd)
            stub.put(PODS, no_uid)
            stub.put(VCJOB, exploded)
            stub.put(PYTORCH, wrong_kind)
        stub.delete(NODES, "gpu-node-08")  # the watch loop goes on
        rec.wait(mark, ("DELETED", "node", "gpu-node-08"), ("MODIFIED", "job", "gpt-pretrain"))
    node = rec.last("node", "gpu-node-07")
    assert node.pool == ""
    assert node.allocatable_of("nvidia.com/gpu") == 0.0
    assert node.allocatable_of("cpu") == 191.5  # the rest of the object is used
    assert rec.last("job", "gpt-pretrain").status is JobStatus.ABNORMAL
    assert "not-a-pytorchjob" not in {j.name for j in seeded.jobs()}
    expected = {
        "nodes: unparsable watch event",
        "node: negative quantity",
        "node: unparsable quantity",
        "pod: no metadata.uid",
        "vcjob: unknown phase",
        "pytorchjob: unexpected kind",
    }
    # each resource has its own stream: wait for all of them to have seen both rounds
    until(lambda: all(seeded.skipped[reason] >= 2 for reason in expected), what=seeded.skipped)
    logged = [r.getMessage() for r in caplog.records]
    for reason in expected:
        assert sum(m.startswith(reason) for m in logged) == 1, reason
    assert seeded.healthy()


def test_an_object_that_stops_converting_keeps_its_last_good_state(
    stub: KubeApiStub, seeded: KubernetesCluster
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    broken = fixture("resourcequota_HANDBUILT.json")
    broken["metadata"]["name"] = None  # cannot be tracked any more
    stub.put(QUOTAS, fixture("resourcequota_HANDBUILT.json") | {"metadata": broken["metadata"]})
    until(lambda: seeded.skipped["resourcequota: no metadata.name or metadata.uid"])
    assert "team-a-gpu" in {q.name for q in seeded.quotas()}


# --- the write side -------------------------------------------------------------------------------
def requests(stub: KubeApiStub, method: str) -> list[tuple[str, dict[str, str], Any]]:
    return [(p, h, b) for m, p, _, h, b in stub.requests if m == method]


def test_label_cordon_and_taint_send_merge_patches(
    stub: KubeApiStub, seeded: KubernetesCluster
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    seeded.label_node(
        "gpu-node-07", {"poolwatch.io/status": "Repairing", "nvidia.com/gpu.count": None}
    )
    [(path, headers, body)] = requests(stub, "PATCH")
    assert path == "/api/v1/nodes/gpu-node-07"
    assert headers["content-type"] == "application/merge-patch+json"
    assert body == {"metadata": {"labels": {"poolwatch.io/status": "Repairing",
                                            "nvidia.com/gpu.count": None}}}  # fmt: skip
    until(lambda: rec.last("node", "gpu-node-07").status is NodeStatus.REPAIRING)
    assert "nvidia.com/gpu.count" not in dict(rec.last("node", "gpu-node-07").labels)

    seeded.cordon("gpu-node-08")
    assert requests(stub, "PATCH")[-1][2] == {"spec": {"unschedulable": True}}
    until(lambda: rec.last("node", "gpu-node-08").status is NodeStatus.UNAVAILABLE)
    until(lambda: rec.last("pool", "pool-h100-a").status is PoolStatus.ABNORMAL)
    seeded.cordon("gpu-node-08", False)
    assert requests(stub, "PATCH")[-1][2] == {"spec": {"unschedulable": False}}

    stub.conflicts = 1  # someone else changes the node between our read and our write
    seeded.taint_node("gpu-node-08", "poolwatch.io/fault", "A050101", "NoSchedule")
    patches = requests(stub, "PATCH")[-2:]
    assert [p[2]["spec"]["taints"] for p in patches] == [
        [{"key": "poolwatch.io/fault", "value": "A050101", "effect": "NoSchedule"}]
    ] * 2  # refused once (409), then again on a fresh read
    assert all(p[2]["metadata"]["resourceVersion"] for p in patches)
    until(lambda: rec.last("node", "gpu-node-08").status is NodeStatus.ISOLATED)
    assert rec.last("node", "gpu-node-08").fault_code == "A050101"
    before = len(requests(stub, "PATCH"))
    seeded.taint_node("gpu-node-08", "poolwatch.io/fault", "A050101", "NoSchedule")
    assert len(requests(stub, "PATCH")) == before  # already there: no write
    seeded.taint_node("gpu-node-08", "poolwatch.io/fault", "A050203", "NoExecute")
    taints = requests(stub, "PATCH")[-1][2]["spec"]["taints"]
    assert [(t["key"], t["value"], t["effect"]) for t in taints] == [
        ("poolwatch.io/fault", "A050101", "NoSchedule"),
        ("poolwatch.io/fault", "A050203", "NoExecute"),
    ]
    assert taints[1]["timeAdded"].endswith("Z")
    seeded.untaint_node("gpu-node-08", "poolwatch.io/fault")
    assert requests(stub, "PATCH")[-1][2]["spec"]["taints"] is None
    until(lambda: rec.last("node", "gpu-node-08").status is NodeStatus.AVAILABLE)
    with pytest.raises(ValueError, match="NoSchedule, PreferNoSchedule, NoExecute"):
        seeded.taint_node("gpu-node-08", "k", "v", "Sometimes")
    with pytest.raises(ClusterWriteError, match=r'label no-such-node: HTTP 404.*"no-such-node"'):
        seeded.label_node("no-such-node", {"a": "b"})


def test_evict_posts_a_policy_v1_eviction(stub: KubeApiStub, seeded: KubernetesCluster) -> None:
    rec = Recorder(seeded)
    rec.synced()
    mark = rec.mark()
    seeded.evict("research", "sweep-17-a")
    [(path, _, body)] = requests(stub, "POST")
    assert path == "/api/v1/namespaces/research/pods/sweep-17-a/eviction"
    assert body == {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": "sweep-17-a", "namespace": "research"}}  # fmt: skip
    rec.wait(mark, ("DELETED", "pod", "sweep-17-a"), ("MODIFIED", "job", "sweep-17"))
    assert rec.last("job", "sweep-17").workers == 1
    seeded.evict("research", "sweep-17-a")  # already gone: that is what eviction wanted
    stub.evict_status = 429
    with pytest.raises(EvictionBlocked, match="disruption budget") as blocked:
        seeded.evict("research", "sweep-17-b")
    assert blocked.value.status == 429


def test_record_event_creates_core_v1_events_that_read_back(
    stub: KubeApiStub, seeded: KubernetesCluster
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    t = 1795340000.0
    seeded.record_event(Event("", "Node", "gpu-node-07", "NodeIsolated", "Abnormal", "A050101", t))
    seeded.record_event(
        Event(
            "",
            "Pool",
            "pool-h100-a",
            "PoolStatusChange",
            "Normal",
            "Pool status changed, from Running to Abnormal.",
            t,
        )
    )
    seeded.record_event(
        Event(
            "",
            "Job",
            "bert-large-ft",
            "JobRestarted",
            "Warning",
            "restarted",
            t,
            namespace="team-a",
        )
    )
    posts = requests(stub, "POST")
    assert [p for p, _, _ in posts] == [
        "/api/v1/namespaces/default/events",
        "/api/v1/namespaces/default/events",
        "/api/v1/namespaces/team-a/events",
    ]
    node, pool, job = (b for _, _, b in posts)
    assert node["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "gpu-node-07"}
    assert (node["type"], node["reason"], node["message"]) == ("Warning", "NodeIsolated", "A050101")
    assert node["firstTimestamp"] == node["lastTimestamp"]
    assert datetime.fromisoformat(node["firstTimestamp"]).timestamp() == t
    assert node["source"] == {"component": "poolwatch"}
    assert node["metadata"]["generateName"] == "gpu-node-07."
    assert pool["involvedObject"] == {"apiVersion": "poolwatch.io/v1", "kind": "Pool",
                                      "name": "pool-h100-a"}  # fmt: skip
    assert job["involvedObject"] == {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": "bert-large-ft",
        "namespace": "team-a", "uid": "2d1c9e44-51a7-4c3e-9b0f-6a8d7e2f1c35",
    }  # fmt: skip

    # and the events watch reads them back
    def back() -> dict[str, Event]:
        return {e.reason: e for e in seeded.events()}

    until(lambda: {"NodeIsolated", "PoolStatusChange", "JobRestarted"} <= set(back()))
    assert (back()["NodeIsolated"].kind, back()["NodeIsolated"].pool) == ("Node", "pool-h100-a")
    assert (back()["PoolStatusChange"].kind, back()["PoolStatusChange"].pool) == (
        "Pool",
        "pool-h100-a",
    )
    assert (back()["JobRestarted"].kind, back()["JobRestarted"].namespace) == ("Job", "team-a")
    with pytest.raises(ValueError, match="Node, Pool or a namespaced Job"):
        seeded.record_event(Event("", "Job", "x", "R", "Normal", "m", t))


@pytest.mark.parametrize(
    ("namespace", "job", "involved"),
    [
        ("hpc", "allreduce", ("kubeflow.org/v2beta1", "MPIJob")),  # the version it was read at
        ("llm", "gpt-pretrain", ("batch.volcano.sh/v1alpha1", "Job")),
        ("eval", "nightly-eval-29401440", ("batch/v1", "Job")),
        ("research", "sweep-17", ("poolwatch.io/v1", "TrainingJob")),  # plain pods: no object
    ],
)
def test_job_events_name_the_jobs_own_object(
    stub: KubeApiStub,
    seeded: KubernetesCluster,
    namespace: str,
    job: str,
    involved: tuple[str, str],
) -> None:
    uid = next(j.uid for j in seeded.jobs() if (j.namespace, j.name) == (namespace, job))
    seeded.record_event(
        Event("", "Job", job, "JobHanged", "Warning", "m", 0.0, namespace=namespace)
    )
    [(path, _, body)] = requests(stub, "POST")
    assert path == f"/api/v1/namespaces/{namespace}/events"
    ref = body["involvedObject"]
    assert (ref["apiVersion"], ref["kind"], ref["name"], ref["namespace"]) == (
        *involved,
        job,
        namespace,
    )
    assert ref.get("uid") == (None if involved[1] == "TrainingJob" else uid)


def test_it_is_a_cluster_backend() -> None:
    from poolwatch.cluster import ClusterBackend

    members = [m for m in vars(ClusterBackend) if not m.startswith("_")]
    members += list(ClusterBackend.__annotations__)
    assert members
    for member in members:
        assert hasattr(KubernetesCluster, member), member
    assert KubernetesCluster.name == "kubernetes"


# --- the API unreachable --------------------------------------------------------------------------
def test_api_down_is_unhealthy_serves_nothing_stale_and_recovers(
    stub: KubeApiStub, seeded: KubernetesCluster, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(seeded)
    rec.synced()
    assert seeded.healthy()
    mark = rec.mark()
    with caplog.at_level(logging.INFO, logger="poolwatch.cluster.kubernetes.informer"):
        stub.stop()
        until(lambda: not seeded.healthy(), what="unhealthy")
        until(lambda: "refused" in seeded.informers()["nodes"], what="nodes down")
        with pytest.raises(ClusterUnavailable, match=r"nodes: .*refused"):
            seeded.nodes()
        with pytest.raises(ClusterUnavailable):
            seeded.pools()
        # meanwhile: one change a resumed watch can replay, one compacted away
        stub.delete(NODES, "gpu-node-08")
        stub.delete(PODS, "scratch-shell", "default", quiet=True)
        stub.start()
        until(seeded.healthy, what="healthy again")
    rec.wait(
        mark,
        ("DELETED", "node", "gpu-node-08"),
        ("MODIFIED", "job", "sweep-17"),  # its running pod's node, and so its pool, is gone
        ("DELETED", "pod", "scratch-shell"),  # after 410 and a relist
    )
    assert rec.last("job", "sweep-17").pool == ""
    assert "gpu-node-08" not in {n.name for n in seeded.nodes()}
    downs = [r for r in caplog.records if "cannot list or watch" in r.getMessage()]
    assert len({r.getMessage().split(":")[0] for r in downs}) == len(downs)  # once per informer
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_an_api_that_never_answered_is_not_synced(make: Callable[..., KubernetesCluster]) -> None:
    from tests.helpers import free_port

    cluster = make(host=f"http://127.0.0.1:{free_port()}", sync_timeout=0.5)
    events = list(cluster.watch(stop_after=0.5))
    assert events == []  # nothing to say, and no SYNCED
    assert not cluster.healthy()
    with pytest.raises(ClusterUnavailable, match="refused"):
        cluster.jobs()


def test_a_kubeconfig_locates_the_api(stub: KubeApiStub, tmp_path: Path) -> None:
    seed(stub, crds=())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": stub.url}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "u"}}],
    }))  # fmt: skip
    with KubernetesCluster(kubeconfig=kubeconfig, backoff=RecordingBackoff()) as cluster:
        assert {n.name for n in cluster.nodes()} == {"gpu-node-07", "gpu-node-08", "npu-node-03"}
    _, _, _, headers, _ = stub.requests[0]
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["user-agent"] == "poolwatch-cluster"


def test_a_kubeconfig_that_does_not_load_is_a_failure(tmp_path: Path) -> None:
    with KubernetesCluster(
        kubeconfig=tmp_path / "missing", backoff=RecordingBackoff(), sync_timeout=1.0
    ) as cluster:
        until(lambda: "down" in cluster.informers()["nodes"])
        assert not cluster.healthy()
        with pytest.raises(ClusterUnavailable, match="nodes"):
            cluster.nodes()
        with pytest.raises(ClusterWriteError, match="cordon n1"):
            cluster.cordon("n1")


def test_the_pool_comes_from_the_first_pool_label_a_node_carries(
    stub: KubeApiStub, make: Callable[..., KubernetesCluster]
) -> None:
    nodes = fixture("nodelist_HANDBUILT.json")["items"]
    nodes[0]["metadata"]["labels"]["os.modelarts/resource-pool"] = "pool-ma-1"
    for node in nodes:
        stub.put(NODES, node)
    cluster = make(pool_label=("os.modelarts/resource-pool", "poolwatch.io/pool"), resources=[
        r for r in RESOURCES if r.feeds == "node"
    ])  # fmt: skip
    assert {n.name: n.pool for n in cluster.nodes()} == {
        "gpu-node-07": "pool-ma-1",
        "gpu-node-08": "pool-h100-a",
        "npu-node-03": "pool-910b",
    }
    assert sorted(p.name for p in cluster.pools()) == ["pool-910b", "pool-h100-a", "pool-ma-1"]
    with pytest.raises(ValueError, match=r"without a converter: things\.example\.com/v1"):
        make(resources=[Resource("example.com", "v1", "things", "job")])
