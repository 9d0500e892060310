"""The training job from a pod label: the real `kubernetes` client against a local API server.

The server is `http.server` on 127.0.0.1 answering `GET /api/v1/pods` with a hand-built v1 PodList
(tests/fixtures/kubeapi/, see its .source.txt), honouring `fieldSelector=spec.nodeName=...` as the
apiserver does, and recording every request so the tests can check what the client really sent.
The end-to-end tests run the pod_resources collector with the real gRPC fake kubelet of
tests/test_pod_resources.py.
"""

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes
import pytest
from helpers import FIXTURES, free_port, run_collector, value
from test_pod_resources import FakeKubelet, log_dirs, pod_msg, process, serve, systemd_path

from poolwatch.exporters.node.attribution import pod_labels as pod_labels_module
from poolwatch.exporters.node.attribution.cgroup import PodIndex
from poolwatch.exporters.node.attribution.owners import DeviceOwners, Owner
from poolwatch.exporters.node.attribution.pod_labels import (
    PodLabels,
    TrainingJobs,
    parse_pod_list,
    pod_labels_source,
    shared_pod_labels,
)
from poolwatch.exporters.node.attribution.pod_resources import training_job_of
from poolwatch.exporters.node.attribution.podresources import api_pb2_grpc
from poolwatch.exporters.node.collectors import pod_resources as collector_module
from poolwatch.exporters.node.collectors.pod_resources import PodResourcesCollector
from poolwatch.exporters.node.settings import NodeExporterSettings, PodResourcesSettings

PODLIST = json.loads((FIXTURES / "kubeapi/podlist_HANDBUILT.json").read_text())
NODE = "gpu-node-07"
KEYS = PodResourcesSettings().job_labels  # the defaults: kubeflow, volcano, batch, job-name
GPT = ("llm", "gpt-pretrain-master-node-0")
LAUNCHER = ("hpc", "allreduce-launcher-x7k2p")
EVAL = ("eval", "nightly-eval-29401440-b9xq4")
BERT = ("team-a", "bert-large-ft-worker-0")
TRITON = ("inference", "triton-server-0")
GPT_UID = "0b9e6d2f-3c71-4a58-b4e2-9f6a1d7c8e05"
UUID2 = "5f3c9e21-8a4b-4d7e-9c1f-2b6a8d0e4f13"
UUID3 = "c0ffee00-1234-4abc-8def-0123456789ab"
UUID4 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
UUID5 = "11112222-3333-4444-8555-666677778888"
UUID6 = "aaaabbbb-cccc-4ddd-8eee-ffff00001111"
CTR = {"g": ("9" * 8 + "0123456789abcdef" * 4)[:64]}


# --- a fake Kubernetes API server -----------------------------------------------------------------
def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A metav1.Status as the apiserver sends with an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"kind": "pods"},
        "code": code,
    }


FORBIDDEN = status(
    403,
    "Forbidden",
    'pods is forbidden: User "system:serviceaccount:monitoring:poolwatch-node" cannot list '
    'resource "pods" in API group "" at the cluster scope',
)
INTERNAL = status(500, "InternalError", "Internal error occurred: etcdserver: request timed out")


class FakeApiServer:
    """GET /api/v1/pods: the PodList, filtered by `fieldSelector=spec.nodeName=<node>`."""

    def __init__(self, podlist: dict[str, Any]) -> None:
        self.podlist = podlist
        # (path with query, parsed query, headers with lower-case names), one per request
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.error: dict[str, Any] | None = None  # a Status to answer with instead
        self.raw: bytes | None = None  # a 200 body to answer with instead
        self.delay = 0.0
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the apiserver

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((self.path, parse_qs(url.query), headers))
                if fake.delay:
                    fake.release.wait(fake.delay)
                if url.path != "/api/v1/pods":
                    return self.reply(404, status(404, "NotFound", "the server could not find it"))
                if fake.error is not None:
                    return self.reply(fake.error["code"], fake.error)
                if fake.raw is not None:
                    return self.send(200, fake.raw)
                items = fake.podlist["items"]
                for selector in parse_qs(url.query).get("fieldSelector", []):
                    for term in selector.split(","):
                        field, _, want = term.partition("=")
                        if field != "spec.nodeName":
                            msg = f'field label "{field}" not supported for pods'
                            return self.reply(400, status(400, "BadRequest", msg))
                        items = [i for i in items if i["spec"].get("nodeName") == want]
                return self.reply(200, {**fake.podlist, "items": items})

            def reply(self, code: int, doc: dict[str, Any]) -> None:
                self.send(code, json.dumps(doc).encode())

            def send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def query(self, n: int = -1) -> dict[str, list[str]]:
        return self.requests[n][1]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 must not go through a proxy the environment names."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer(PODLIST)
    yield server
    server.close()


def labels_for(server: FakeApiServer, node: str = NODE, max_age: float = 60.0) -> PodLabels:
    """PodLabels whose client is configured as the brief asks: Configuration(host=...)."""

    def loader() -> kubernetes.client.Configuration:
        return kubernetes.client.Configuration(host=server.url)

    return PodLabels(node, loader, "test", max_age)


# --- the list -------------------------------------------------------------------------------------
def test_the_fixture_is_a_v1_podlist_the_clients_own_models_accept(api: FakeApiServer) -> None:
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
    pods = kubernetes.client.CoreV1Api(client).list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={NODE}", _request_timeout=5
    )
    assert isinstance(pods, kubernetes.client.V1PodList)
    assert len(pods.items) == 7
    assert pods.metadata.resource_version == "48213377"
    gpt = next(p for p in pods.items if p.metadata.name == GPT[1])
    assert gpt.metadata.labels["volcano.sh/job-name"] == "gpt-pretrain"
    assert gpt.spec.containers[0].resources.limits["nvidia.com/gpu"] == "8"
    assert parse_pod_list(json.dumps(PODLIST).encode())[0][GPT] == gpt.metadata.labels


def test_only_this_nodes_pods_are_listed_through_the_field_selector(api: FakeApiServer) -> None:
    labels = labels_for(api)
    assert labels.refresh(5.0)
    assert labels.up is True
    path, query, headers = api.requests[0]
    assert path.startswith("/api/v1/pods?")
    assert f"fieldSelector=spec.nodeName%3D{NODE}" in path
    assert query["fieldSelector"] == [f"spec.nodeName={NODE}"]
    assert query["resourceVersion"] == ["0"]  # the first list: from the watch cache
    assert "resourceVersionMatch" not in query
    assert "watch" not in query
    assert headers["user-agent"] == "poolwatch-node-exporter"
    assert labels.pods == 7
    assert labels.resource_version == "48213377"
    assert labels.labels_of(*BERT) == PODLIST["items"][0]["metadata"]["labels"]
    assert labels.labels_of("team-a", "bert-large-ft-worker-1") is None  # on gpu-node-08
    assert labels.labels_of("default", "scratch-shell") == {}  # listed, without labels
    assert labels.labels_of("team-a", "late-worker-3") is None  # not listed

    assert labels.refresh(5.0)
    query = api.query()
    assert query["resourceVersion"] == ["48213377"]  # kept: never older than what was seen
    assert query["resourceVersionMatch"] == ["NotOlderThan"]
    assert query["fieldSelector"] == [f"spec.nodeName={NODE}"]


@pytest.mark.parametrize(
    ("keys", "pod", "job"),
    [
        (KEYS, LAUNCHER, "allreduce"),  # the MPIJob, ahead of the launcher's batch Job
        (
            ["batch.kubernetes.io/job-name", "training.kubeflow.org/job-name"],
            LAUNCHER,
            "allreduce-launcher",
        ),
        (["job-name", "volcano.sh/job-name"], LAUNCHER, "allreduce-launcher"),
        (KEYS, GPT, "gpt-pretrain"),  # the name reads as gpt-pretrain-master
        (KEYS, EVAL, "nightly-eval-29401440"),  # the CronJob's Job; the name reads nightly-eval
        (KEYS, BERT, "bert-large-ft"),
        (["volcano.sh/job-name"], BERT, "bert-large-ft"),  # no such label: the name decides
    ],
)
def test_the_first_job_label_present_wins(
    api: FakeApiServer, keys: list[str], pod: tuple[str, str], job: str
) -> None:
    labels = labels_for(api)
    assert labels.refresh(5.0)
    assert TrainingJobs(labels, keys)(*pod) == job


def test_the_labels_do_differ_from_the_names() -> None:
    """Guards the cases above: they would pass without the API if the names said the same."""
    assert training_job_of(GPT[1]) == "gpt-pretrain-master"
    assert training_job_of(EVAL[1]) == "nightly-eval"


def test_without_a_job_label_the_name_decides(api: FakeApiServer) -> None:
    podlist = json.loads(json.dumps(PODLIST))
    gpt = next(i for i in podlist["items"] if i["metadata"]["name"] == GPT[1])
    gpt["metadata"]["labels"]["training.kubeflow.org/job-name"] = ""  # empty counts as absent
    api.podlist = podlist
    labels = labels_for(api)
    assert labels.refresh(5.0)
    jobs = TrainingJobs(labels, KEYS)
    assert jobs(*GPT) == "gpt-pretrain"  # the volcano label, after the empty kubeflow one
    assert jobs(*TRITON) == "triton"  # a StatefulSet without job label: the name's reading
    assert jobs("default", "scratch-shell") == ""  # no labels at all, nothing in the name
    assert jobs("team-a", "late-worker-3") == "late"  # not listed (yet): the name
    assert TrainingJobs(labels, [])(*GPT) == "gpt-pretrain-master"  # no keys: names only


# --- failures -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "said"),
    [
        (FORBIDDEN, "HTTP 403 Forbidden: pods is forbidden: User"),
        (INTERNAL, "HTTP 500 Internal Server Error: Internal error occurred: etcdserver"),
    ],
)
def test_an_api_error_drops_the_labels_and_names_take_over(
    api: FakeApiServer, caplog: pytest.LogCaptureFixture, error: dict[str, Any], said: str
) -> None:
    labels = labels_for(api)
    jobs = TrainingJobs(labels, KEYS)
    with caplog.at_level(logging.INFO, logger=pod_labels_module.__name__):
        assert labels.refresh(5.0)
        assert jobs(*GPT) == "gpt-pretrain"
        api.error = error
        assert not labels.refresh(5.0)
        assert not labels.refresh(5.0)
        assert labels.up is False
        assert said in labels.error
        assert ("RBAC `list` on `pods`" in labels.error) == (error["code"] == 403)
        assert labels.labels_of(*GPT) is None  # dropped, not kept as if fresh
        assert jobs(*GPT) == "gpt-pretrain-master"
        api.error = None
        assert labels.refresh(5.0)
    assert api.query()["resourceVersion"] == ["0"]  # after a failure the list starts over
    assert jobs(*GPT) == "gpt-pretrain"
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["INFO", "WARNING", "INFO"]  # once per change
    assert said in lines[1][1]


def test_the_client_configuration_is_reloaded_after_a_failure(api: FakeApiServer) -> None:
    """A rotated token, client certificate or CA is picked up: the next list reloads it."""
    loads: list[float] = []

    def loader() -> kubernetes.client.Configuration:
        loads.append(time.monotonic())
        return kubernetes.client.Configuration(host=api.url)

    labels = PodLabels(NODE, loader, "test")
    assert labels.refresh(5.0)
    assert labels.refresh(5.0)
    assert len(loads) == 1  # kept while it works
    api.error = INTERNAL
    assert not labels.refresh(5.0)
    api.error = None
    assert labels.refresh(5.0)
    assert len(loads) == 2


def test_a_late_api_fails_within_the_timeout(api: FakeApiServer) -> None:
    api.delay = 30.0
    labels = labels_for(api)
    started = time.monotonic()
    assert not labels.refresh(0.3)
    assert time.monotonic() - started < 2.0
    assert labels.up is False
    assert "timed out" in labels.error.lower()
    assert len(api.requests) == 1  # not retried behind the caller's back


def test_no_api_listening_is_a_failure() -> None:
    port = free_port()
    labels = PodLabels(
        NODE, lambda: kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}"), "test"
    )
    assert not labels.refresh(2.0)
    assert "refused" in labels.error.lower()


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Success"}).encode(),
        json.dumps({"kind": "PodList", "apiVersion": "v1", "items": {"a": 1}}).encode(),
    ],
)
def test_an_answer_that_is_not_a_podlist_is_a_failure(api: FakeApiServer, body: bytes) -> None:
    labels = labels_for(api)
    assert labels.refresh(5.0)
    api.raw = body
    assert not labels.refresh(5.0)
    assert labels.labels_of(*GPT) is None


def test_labels_expire_without_a_fresh_list(api: FakeApiServer) -> None:
    labels = labels_for(api, max_age=0.2)
    assert labels.refresh(5.0)
    assert labels.labels_of(*GPT) is not None
    time.sleep(0.3)
    assert labels.labels_of(*GPT) is None
    assert TrainingJobs(labels, KEYS)(*GPT) == "gpt-pretrain-master"


# --- where the API is -----------------------------------------------------------------------------
def test_a_kubeconfig_points_the_client_at_the_api(api: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: pool
  cluster:
    server: {api.url}
users:
- name: poolwatch
  user:
    token: not-checked-by-the-fake
contexts:
- name: pool
  context: {{cluster: pool, user: poolwatch}}
current-context: pool
"""
    )
    before = kubeconfig.read_text()
    mode, loader, why = pod_labels_source(
        kubeconfig, KEYS, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    )
    assert mode == "kubeconfig"  # an explicit kubeconfig wins over the environment
    assert str(kubeconfig) in why
    labels = PodLabels(NODE, loader, mode)
    assert labels.refresh(5.0)
    assert TrainingJobs(labels, KEYS)(*GPT) == "gpt-pretrain"
    assert api.requests[0][2]["authorization"] == "Bearer not-checked-by-the-fake"
    assert kubeconfig.read_text() == before  # never written back


def test_in_cluster_without_a_reachable_api_is_a_failing_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pod (KUBERNETES_SERVICE_HOST set) whose API cannot be used: no service-account token
    mounted here, or, where there is one, nothing listening on the port: `up` False either way."""
    mode, loader, _ = pod_labels_source(None, KEYS, {"KUBERNETES_SERVICE_HOST": "127.0.0.1"})
    assert mode == "in-cluster"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(free_port()))
    labels = PodLabels(NODE, loader, mode)
    assert not labels.refresh(1.0)
    assert labels.up is False
    assert labels.error


def test_no_api_configured_means_names_said_once(caplog: pytest.LogCaptureFixture) -> None:
    mode, loader, why = pod_labels_source(None, KEYS, {})
    assert (mode, loader) == ("none", None)
    assert pod_labels_source(Path("/k"), [], {"KUBERNETES_SERVICE_HOST": "x"})[:2] == (
        "none",
        None,
    )  # no job label to read: nothing to ask the API
    with caplog.at_level(logging.INFO, logger=pod_labels_module.__name__):
        labels = PodLabels()
        labels.configure(NODE, loader, mode, 60.0, why=why)
        assert not labels.refresh(5.0)
        assert not labels.refresh(5.0)
    assert [r.getMessage() for r in caplog.records] == [
        "pod labels off (KUBERNETES_SERVICE_HOST is unset and collectors.pod_resources.kubeconfig "
        "is not set): training_job from pod names"
    ]
    assert labels.up is None
    assert not labels.enabled
    assert TrainingJobs(labels, KEYS)(*GPT) == "gpt-pretrain-master"


# --- the pod_resources collector, end to end ------------------------------------------------------
@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[tuple[FakeKubelet, Path]]:
    sock = tmp_path / "kubelet.sock"
    fake = FakeKubelet()
    fake.pods = [
        pod_msg(*GPT, "trainer", {"nvidia.com/gpu": [f"GPU-{UUID2}"]}),
        pod_msg(*BERT, "pytorch", {"nvidia.com/gpu": [UUID3]}),
        pod_msg(*EVAL, "eval", {"nvidia.com/gpu": [f"GPU-{UUID4}"]}),
        pod_msg(*TRITON, "triton", {"nvidia.com/gpu": [UUID5]}),
        pod_msg("team-a", "late-worker-3", "pytorch", {"nvidia.com/gpu": [UUID6]}),  # not listed
        pod_msg(*LAUNCHER, "mpi-launcher", {}),
    ]
    server = serve(sock, lambda s: api_pb2_grpc.add_PodResourcesListerServicer_to_server(fake, s))
    yield fake, sock
    fake.release.set()
    server.stop(grace=None).wait(5)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """The gpt-pretrain pod's processes, with their cgroups and the kubelet's log directories."""
    root = tmp_path / "root"
    log_dirs(root, [(*GPT, GPT_UID, {"trainer": CTR["g"]})])
    proc = tmp_path / "proc"
    path = systemd_path("", GPT_UID, "cri-containerd", CTR["g"])  # Guaranteed
    for pid in (9100, 9101):
        process(proc, pid, f"0::{path}\n")
    return tmp_path


def collector(
    sock: Path, base: Path, labels: PodLabels, owners: DeviceOwners, timeout: float = 5.0
) -> PodResourcesCollector:
    settings = PodResourcesSettings(socket=sock, timeout=timeout)
    index = PodIndex(
        base / "proc",
        base / "root/var/log/pods",
        base / "root/var/log/containers",
        job_of=training_job_of,
        jobs=TrainingJobs(labels, settings.job_labels),
    )
    return PodResourcesCollector(settings, index, owners, labels)


INFO = "poolwatch_accelerator_allocation_info"


def test_allocation_info_takes_the_training_job_from_the_label(
    api: FakeApiServer, kubelet: tuple[FakeKubelet, Path], node: Path
) -> None:
    _, sock = kubelet
    owners = DeviceOwners()
    c = collector(sock, node, labels_for(api), owners)
    ok, s, _ = run_collector(c)
    assert ok
    assert value(s, "poolwatch_attribution_pod_labels_up") == 1
    jobs = {dict(ls)["pod"]: dict(ls)["training_job"] for n, ls in s if n == INFO}
    assert jobs == {
        GPT[1]: "gpt-pretrain",  # label; the name says gpt-pretrain-master
        BERT[1]: "bert-large-ft",
        EVAL[1]: "nightly-eval-29401440",  # label; the name says nightly-eval
        TRITON[1]: "triton",  # no job label: the name
        "late-worker-3": "late",  # not in the list: the name
    }
    gpt = Owner(*GPT, "trainer", "gpt-pretrain", GPT_UID)
    assert owners.owners((UUID2,)) == (gpt,)  # the mapping agrees with allocation_info
    assert owners.pids_of(gpt) == {9100, 9101}
    assert api.query()["fieldSelector"] == [f"spec.nodeName={NODE}"]

    api.error = FORBIDDEN  # RBAC revoked: names take over, the collector itself stays up
    ok, s, _ = run_collector(c)
    assert ok
    assert value(s, "poolwatch_attribution_pod_labels_up") == 0
    jobs = {dict(ls)["pod"]: dict(ls)["training_job"] for n, ls in s if n == INFO}
    assert jobs[GPT[1]] == "gpt-pretrain-master"
    assert jobs[EVAL[1]] == "nightly-eval"
    assert owners.owners((UUID2,)) == (Owner(*GPT, "trainer", "gpt-pretrain-master", GPT_UID),)


def test_the_cgroup_fallback_names_jobs_from_labels_too(api: FakeApiServer, node: Path) -> None:
    owners = DeviceOwners()
    c = collector(node / "missing.sock", node, labels_for(api), owners)
    ok, s, _ = run_collector(c)
    assert ok
    assert value(s, "poolwatch_attribution_mode", mode="cgroup") == 1
    assert value(s, "poolwatch_attribution_pod_labels_up") == 1
    gpt = Owner(*GPT, "trainer", "gpt-pretrain", GPT_UID)
    assert c.index.pids_by_owner() == {gpt: {9100, 9101}}
    assert owners.owner_of_pid(9100) == gpt


def test_without_an_api_there_is_no_labels_up_series(
    kubelet: tuple[FakeKubelet, Path], node: Path
) -> None:
    _, sock = kubelet
    ok, s, _ = run_collector(collector(sock, node, PodLabels(), DeviceOwners()))
    assert ok
    assert not [k for k in s if k[0] == "poolwatch_attribution_pod_labels_up"]
    assert value(s, INFO, pod=GPT[1], training_job="gpt-pretrain-master") == 1


def test_a_slow_kubelet_leaves_no_time_for_the_list_and_the_run_stays_in_time(
    api: FakeApiServer, kubelet: tuple[FakeKubelet, Path], node: Path
) -> None:
    fake, sock = kubelet
    fake.delay = 30.0
    labels = labels_for(api)
    started = time.monotonic()
    ok, s, store = run_collector(collector(sock, node, labels, DeviceOwners(), timeout=1.0))
    assert time.monotonic() - started < 1.5
    assert not ok  # the kubelet's failure, not the list's
    assert "no answer within 0.8s" in store.states()[0].last_error
    assert value(s, "poolwatch_attribution_pod_labels_up") == 0
    assert "no time left" in labels.error
    assert not api.requests


def test_a_node_name_the_api_does_not_know_is_said_once(
    api: FakeApiServer,
    kubelet: tuple[FakeKubelet, Path],
    node: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, sock = kubelet
    c = collector(sock, node, labels_for(api, node="ip-192-168-40-17"), DeviceOwners())
    with caplog.at_level(logging.WARNING, logger=collector_module.__name__):
        assert run_collector(c)[0]
        assert run_collector(c)[0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert "lists no pod on node 'ip-192-168-40-17'" in said[0]


# --- the factory ----------------------------------------------------------------------------------
@pytest.fixture
def shared_off() -> Iterator[PodLabels]:
    yield shared_pod_labels()
    shared_pod_labels().configure("", None, "none", 60.0)


def test_the_factory_configures_the_shared_pod_labels(
    monkeypatch: pytest.MonkeyPatch, shared_off: PodLabels
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = NodeExporterSettings(node=NODE)
    c = collector_module._factory(settings)
    assert c.labels is shared_off
    assert shared_off.mode == "none"
    assert not shared_off.enabled

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    c = collector_module._factory(settings)
    assert c.labels is shared_off
    assert (shared_off.mode, shared_off.node, shared_off.max_age) == ("in-cluster", NODE, 60.0)
    assert c.index.names.jobs.labels is shared_off
    assert c.jobs.keys == tuple(KEYS)
