"""A real Kubernetes control plane for the tests: etcd and kube-apiserver on 127.0.0.1.

`ControlPlane` starts the pinned etcd (on a temporary directory, no fsync) and kube-apiserver
(RBAC authorization, a static admin token, ServiceAccount tokens through the TokenRequest API,
TLS with a CA made here) on free ports, installs the CRDs poolwatch reads (controlplane_crds.py)
and can restart the API server or stop etcd for the fault tests. `Api` is a small JSON client
(keep-alive, one connection per thread) for setting up objects; poolwatch itself is always
tested through its own client, from a kubeconfig that `write_kubeconfig` writes.

What a real cluster has and this one does not: no kube-controller-manager, no scheduler, no
kubelets. So the tests play them where poolwatch depends on them (`Kubelet`): a node's status
(capacity, conditions, heartbeats) and its node Lease, binding pods and setting their status,
finishing the deletion of pods the API server leaves terminating (a pod on a node is only
removed once its kubelet confirms), the PodDisruptionBudget status the disruption controller
keeps (the Eviction API decides from it), and finalizing a deleted namespace (the namespace
controller). Everything else, validation, admission, RBAC, watch, bookmarks, 410 Gone,
resourceVersions, evictions, is the API server's own.

Why one long file: it is one harness. The JSON client, the processes, the control plane and the
stand-ins for kubelets and controllers are used together by every control-plane test and share
its internals (the CA, the tokens, the ports, the restart hooks); the one piece that stands
alone, the CRDs, is controlplane_crds.py.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

from tests.helpers.controlplane_crds import CRDS

TEST_LABEL = "poolwatch.io/test"  # every cluster-scoped object a test makes carries it
ADMIN_USER = "poolwatch-test-admin"


class ApiError(RuntimeError):
    """A non-2xx answer: the HTTP status, the Status reason and message."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:300]
        self.reason = reason
        super().__init__(f"HTTP {status} {reason}: {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(where: Path) -> None:
    """A CA, the API server's serving certificate (127.0.0.1, localhost, the in-cluster names)
    and the ServiceAccount token signing key pair, made with openssl."""
    where.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=poolwatch-test-ca",
        cwd=where,
    )
    _openssl(
        "req",
        *ec,
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=where,
    )
    sans = "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
    sans += "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    sans += "extendedKeyUsage=serverAuth\n"
    (where / "apiserver.ext").write_text(sans)
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        "2",
        "-extfile",
        "apiserver.ext",
        cwd=where,
    )
    _openssl(
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "sa.key",
        cwd=where,
    )
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=where)


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str, user: str) -> Path:
    """A kubeconfig with one cluster (`server`, trusting `ca_file`), one token user, one context."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


class Api:
    """JSON over HTTPS to the API server with one bearer token; one kept-alive connection per
    thread. Paths are the API's own (`/api/v1/nodes`); `query` is added as a query string."""

    def __init__(self, server: str, ca_file: Path, token: str, timeout: float = 30.0) -> None:
        host_port = server.removeprefix("https://").rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 443)
        self.server, self.token, self.timeout = server, token, timeout
        self.ctx = ssl.create_default_context(cafile=str(ca_file))
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, context=self.ctx, timeout=self.timeout
            )
            self._local.conn = conn
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if query:
            path += "?" + urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        doc: Any = raw.decode(errors="replace")  # /readyz, /healthz: plain text
        if raw and "json" in (resp.getheader("Content-Type") or ""):
            doc = json.loads(raw)
        if resp.status >= 300:
            raise ApiError(resp.status, doc if doc is not None else raw)
        return doc

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any, **query: Any) -> Any:
        return self.request("POST", path, body, query=query)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any, kind: str = "merge") -> Any:
        types = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }
        return self.request("PATCH", path, body, content_type=types[kind])

    def delete(self, path: str, grace: int | None = None, missing_ok: bool = True) -> Any:
        query = {} if grace is None else {"gracePeriodSeconds": grace}
        try:
            return self.request("DELETE", path, query=query)
        except ApiError as err:
            if err.status == 404 and missing_ok:
                return None
            raise

    def apply(self, path: str, obj: dict[str, Any]) -> Any:
        """Create `obj` in the collection at `path`, or replace it when it exists."""
        try:
            return self.post(path, obj)
        except ApiError as err:
            if err.status != 409:
                raise
        current = self.get(f"{path}/{obj['metadata']['name']}")
        obj = {
            **obj,
            "metadata": {
                **obj["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            },
        }
        return self.put(f"{path}/{obj['metadata']['name']}", obj)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


@dataclass
class Process:
    """One started program, its log file, and how long it took to become ready."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ready_s: float = 0.0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its ports but answers nothing (a hung etcd)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def rss_bytes(self) -> int:
        import psutil

        if not self.alive():
            return 0
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    """etcd + kube-apiserver for one test session; see the module docstring."""

    bin_dir: Path
    workdir: Path
    etcd_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    extra_apiserver_args: tuple[str, ...] = ()
    audit: bool = True  # every request in audit.log (what a client asked, as the server saw it)
    etcd: Process | None = None
    apiserver: Process | None = None
    started_s: float = 0.0  # from nothing to an API server that answers /readyz and has the CRDs

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        make_pki(self.workdir / "pki")
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f"{self.admin_token},{ADMIN_USER},{ADMIN_USER},system:masters\n")
        tokens.chmod(0o600)
        self.etcd = Process("etcd", self._etcd_argv(), self.workdir / "etcd.log")
        self.apiserver = Process(
            "kube-apiserver", self._apiserver_argv(), self.workdir / "kube-apiserver.log"
        )
        self.start_etcd()
        self.start_apiserver()
        self.install_crds()
        self.started_s = time.monotonic() - began
        return self

    def _etcd_argv(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            str(self.bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync",  # a test cluster: durability across a power cut is not needed
            "--log-level=warn",
            "--watch-progress-notify-interval=5s",  # as kubeadm sets it: fresh bookmarks
            "--quota-backend-bytes=4294967296",
        ]

    def _apiserver_argv(self) -> list[str]:
        pki = self.workdir / "pki"
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # No controller-manager makes each namespace's "default" ServiceAccount.
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--cert-dir={pki}",
            "--v=0",
            *(self._audit_args() if self.audit else ()),
            *self.extra_apiserver_args,
        ]

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def _audit_args(self) -> list[str]:
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
            "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
        )
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
        ]

    def audit_mark(self) -> int:
        """Where the audit log ends now; `audit_since(mark)` reads what came after."""
        try:
            return self.audit_log.stat().st_size
        except FileNotFoundError:
            return 0

    def audit_since(
        self, mark: int, user_agent: str = "", stage: str = "ResponseComplete"
    ) -> list[dict[str, Any]]:
        """The audit events after `mark`, at `stage` (a watch is logged at ResponseStarted when
        it opens), from clients whose User-Agent starts with `user_agent`."""
        with self.audit_log.open("rb") as f:
            f.seek(mark)
            lines = f.read().splitlines()
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a line being written as we read
                events.append(json.loads(line))
        return [e for e in events if e.get("stage") == stage
                and str(e.get("userAgent", "")).startswith(user_agent)]  # fmt: skip

    def start_etcd(self, timeout: float = 60.0) -> None:
        assert self.etcd is not None
        began = time.monotonic()
        self.etcd.start()
        self._wait(self.etcd, self._etcd_healthy, timeout)
        self.etcd.ready_s = time.monotonic() - began

    def start_apiserver(self, timeout: float = 120.0) -> None:
        assert self.apiserver is not None
        began = time.monotonic()
        self.apiserver.start()
        self._wait(self.apiserver, self._apiserver_ready, timeout)
        self.apiserver.ready_s = time.monotonic() - began

    def restart_apiserver(self) -> None:
        """Stop the API server (SIGTERM) and start it again on the same port and etcd."""
        assert self.apiserver is not None
        self.apiserver.stop()
        self.start_apiserver()

    def stop(self) -> None:
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    if proc.proc is not None:
                        proc.proc.send_signal(signal.SIGCONT)
                proc.stop()

    def _wait(self, proc: Process, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited while starting:\n{proc.tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s:\n{proc.tail()}")

    def _etcd_healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=2)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def _apiserver_ready(self) -> bool:
        try:
            self.admin().get("/readyz")
            return True
        except (ApiError, OSError, http.client.HTTPException, ValueError):
            return False

    # -- credentials -----------------------------------------------------------------------------
    def admin(self, server: str | None = None) -> Api:
        """A client with cluster-admin rights (system:masters)."""
        return Api(server or self.url, self.ca_file, self.admin_token)

    def admin_kubeconfig(self, path: Path, server: str | None = None) -> Path:
        return write_kubeconfig(path, server or self.url, self.ca_file, self.admin_token, "admin")

    def service_account_token(
        self, namespace: str, name: str, expiration_s: int = 7200, create: bool = True
    ) -> str:
        """A token for ServiceAccount `namespace/name` from the TokenRequest API (the account is
        made first when `create`)."""
        api = self.admin()
        if create:
            with contextlib.suppress(ApiError):
                api.post(
                    f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
                )
        answer = api.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_s},
            },
        )
        return str(answer["status"]["token"])

    def service_account_kubeconfig(
        self, path: Path, namespace: str, name: str, server: str | None = None
    ) -> Path:
        token = self.service_account_token(namespace, name)
        user = f"system:serviceaccount:{namespace}:{name}"
        return write_kubeconfig(path, server or self.url, self.ca_file, token, user)

    def as_service_account(self, namespace: str, name: str, server: str | None = None) -> Api:
        return Api(server or self.url, self.ca_file, self.service_account_token(namespace, name))

    # -- CRDs --------------------------------------------------------------------------------------
    def install_crds(self, crds: tuple[dict[str, Any], ...] = CRDS, timeout: float = 60.0) -> None:
        """Create (or replace) the CRDs and wait until each is Established and served."""
        api = self.admin()
        for doc in crds:
            api.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc)
        for doc in crds:
            self.wait_crd(doc, timeout)

    def wait_crd(self, doc: dict[str, Any], timeout: float = 60.0) -> None:
        api = self.admin()
        name, spec = doc["metadata"]["name"], doc["spec"]
        deadline = time.monotonic() + timeout
        while True:
            got = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            # a freshly created CRD may carry `conditions: null` until the server has looked at it
            status = got.get("status") or {}
            conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
            if conds.get("Established") == "True":
                try:
                    for version in spec["versions"]:
                        api.get(
                            f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}",
                            limit=1,
                        )
                    return
                except ApiError as err:
                    if err.status != 404:  # served, and answering (a failing webhook: 500)
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not served after {timeout:.0f} s: {conds}")
            time.sleep(0.2)

    # -- figures for the README ------------------------------------------------------------------
    def figures(self) -> dict[str, float]:
        """Start-up seconds and resident memory (MiB) of each process, now."""
        assert self.etcd is not None
        assert self.apiserver is not None
        return {
            "started_s": round(self.started_s, 2),
            "etcd_ready_s": round(self.etcd.ready_s, 2),
            "apiserver_ready_s": round(self.apiserver.ready_s, 2),
            "etcd_rss_mib": round(self.etcd.rss_bytes() / 2**20, 1),
            "apiserver_rss_mib": round(self.apiserver.rss_bytes() / 2**20, 1),
        }

    def version(self) -> str:
        return str(self.admin().get("/version")["gitVersion"])


# -- the parts of a cluster that are not here: kubelets, controllers ---------------------------
NAMESPACED_KINDS = (  # what per-test cleanup empties, in this order
    "/apis/batch/v1/namespaces/{ns}/jobs",
    "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs",
    "/apis/kubeflow.org/v1/namespaces/{ns}/tfjobs",
    "/apis/kubeflow.org/v2beta1/namespaces/{ns}/mpijobs",
    "/apis/batch.volcano.sh/v1alpha1/namespaces/{ns}/jobs",
    "/apis/scheduling.sigs.k8s.io/v1alpha1/namespaces/{ns}/elasticquotas",
    "/apis/scheduling.sigs.k8s.io/v1beta1/namespaces/{ns}/elasticquotatrees",
    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "/api/v1/namespaces/{ns}/resourcequotas",
    "/api/v1/namespaces/{ns}/events",
    "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/serviceaccounts",
)
LABELLED_CLUSTER_KINDS = (
    "/api/v1/nodes",
    "/apis/scheduling.volcano.sh/v1beta1/queues",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/apis/scheduling.k8s.io/v1/priorityclasses",
)


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Kubelet:
    """Plays the kubelets, the scheduler's binding and the controllers a test needs, through the
    API, as the real ones do (status subresources, the Binding subresource, node Leases)."""

    def __init__(self, api: Api, test_id: str = "") -> None:
        self.api, self.test_id = api, test_id

    # nodes
    def node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        *,
        accelerator: str = "nvidia.com/gpu",
        count: int = 8,
        ready: bool = True,
        taints: list[dict[str, str]] | None = None,
        unschedulable: bool = False,
    ) -> dict[str, Any]:
        """Register a node as its kubelet does: the Node with its status in one create."""
        resources = {"cpu": "96", "memory": "1024Gi", "pods": "110"}
        if accelerator:
            resources[accelerator] = str(count)
        all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        all_labels |= {TEST_LABEL: self.test_id} if self.test_id else {}
        all_labels |= labels or {}
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": all_labels},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": node_conditions(ready),
                "addresses": [
                    {"type": "InternalIP", "address": "10.1.0.1"},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.36.3",
                    "containerRuntimeVersion": "containerd://2.1.0",
                    "kernelVersion": "6.8.0",
                    "osImage": "Ubuntu",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kubeProxyVersion": "",
                },
            },
        }
        return self.api.post("/api/v1/nodes", body)  # type: ignore[no-any-return]

    def set_ready(self, name: str, ready: bool, reason: str = "") -> dict[str, Any]:
        """The node's Ready condition (and a heartbeat), through the status subresource."""
        return self.set_condition(
            name,
            "Ready",
            "True" if ready else "False",
            reason or ("KubeletReady" if ready else "KubeletNotReady"),
        )

    def set_condition(self, name: str, kind: str, status: str, reason: str = "") -> Any:
        node = self.api.get(f"/api/v1/nodes/{name}")
        conds = [c for c in node["status"].get("conditions", []) if c["type"] != kind]
        stamp = now_rfc3339()
        conds.append(
            {
                "type": kind,
                "status": status,
                "reason": reason or kind,
                "message": "",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        return self.api.patch(
            f"/api/v1/nodes/{name}/status", {"status": {"conditions": conds}}, kind="strategic"
        )

    def heartbeat(self, name: str) -> None:
        """What a kubelet does every 10 s: renew its Lease in kube-node-lease."""
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        lease = {
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp},
        }
        self.api.apply(path, lease)

    # pods
    def pod(
        self,
        namespace: str,
        name: str,
        node: str = "",
        *,
        labels: dict[str, str] | None = None,
        requests: dict[str, str] | None = None,
        phase: str = "Running",
        owner: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a pod, bind it to `node` (the Binding subresource, as the scheduler does) and
        set its phase as its kubelet would (Pending stays unbound when there is no node)."""
        meta: dict[str, Any] = {"name": name, "labels": labels or {}}
        if owner:
            meta["ownerReferences"] = [owner]
        res = requests or {}
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "trainer:1",
                        "resources": {"requests": res, "limits": res},
                    }
                ],
                "terminationGracePeriodSeconds": 30,
            },
        }
        created = self.api.post(f"/api/v1/namespaces/{namespace}/pods", body)
        if node:
            self.bind(namespace, name, node)
            if phase != "Pending":
                created = self.set_phase(namespace, name, phase)
        return created  # type: ignore[no-any-return]

    def bind(self, namespace: str, name: str, node: str) -> None:
        self.api.post(
            f"/api/v1/namespaces/{namespace}/pods/{name}/binding",
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            },
        )

    def set_phase(self, namespace: str, name: str, phase: str) -> Any:
        ready = "True" if phase == "Running" else "False"
        stamp = now_rfc3339()
        status = {
            "phase": phase,
            "startTime": stamp,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": stamp}],
        }
        return self.api.patch(
            f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": status}
        )

    def finish_deletions(self, namespace: str) -> list[str]:
        """Remove the pods whose deletion waits for a kubelet (graceful deletion of a bound pod
        sets deletionTimestamp; its kubelet then deletes it for good). Returns their names."""
        done = []
        for pod in self.api.get(f"/api/v1/namespaces/{namespace}/pods")["items"]:
            if pod["metadata"].get("deletionTimestamp"):
                self.api.delete(
                    f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}", grace=0
                )
                done.append(pod["metadata"]["name"])
        return done

    # the disruption controller
    def settle_pdb(self, namespace: str, name: str) -> dict[str, Any]:
        """Compute a PodDisruptionBudget's status as the disruption controller does for
        `minAvailable`/`maxUnavailable` given as integers: healthy = Running and Ready pods
        that match its selector and are not being deleted."""
        base = f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"
        pdb = self.api.get(base)
        selector = pdb["spec"].get("selector", {}).get("matchLabels", {})
        sel = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = self.api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=sel)["items"]
        expected = len(pods)
        healthy = sum(
            1
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and p.get("status", {}).get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        )
        if "minAvailable" in pdb["spec"]:
            desired = int(pdb["spec"]["minAvailable"])
        else:
            desired = max(0, expected - int(pdb["spec"].get("maxUnavailable", 0)))
        status = {
            "observedGeneration": pdb["metadata"]["generation"],
            "disruptionsAllowed": max(0, healthy - desired),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }
        pdb["status"] = {**pdb.get("status", {}), **status}
        return self.api.put(f"{base}/status", pdb)  # type: ignore[no-any-return]


def node_conditions(ready: bool) -> list[dict[str, str]]:
    stamp = now_rfc3339()
    out = []
    for kind, ok in (
        ("MemoryPressure", "False"),
        ("DiskPressure", "False"),
        ("PIDPressure", "False"),
        ("Ready", "True" if ready else "False"),
    ):
        reason = ("KubeletReady" if ready else "KubeletNotReady") if kind == "Ready" else "Fine"
        out.append(
            {
                "type": kind,
                "status": ok,
                "reason": reason,
                "message": "",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
    return out


@dataclass
class TestCluster:
    """One test's share of the session's control plane: its own namespace (and more on
    request), the label its cluster-scoped objects carry, and the admin client. `cleanup()`
    removes all of it, and the events in "default" (where events about nodes must live)."""

    __test__ = False  # a helper, not a test class, whatever its name says
    plane: ControlPlane
    namespace: str
    test_id: str
    api: Api
    kubelet: Kubelet
    namespaces: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, plane: ControlPlane) -> TestCluster:
        test_id = uuid.uuid4().hex[:10]
        api = plane.admin()
        made = cls(plane, "", test_id, api, Kubelet(api, test_id))
        made.namespace = made.new_namespace("t")
        return made

    def new_namespace(self, prefix: str) -> str:
        """Another namespace of this test's, removed with it."""
        name = f"{prefix}-{self.test_id}"
        meta = {"name": name, "labels": {TEST_LABEL: self.test_id}}
        self.api.post("/api/v1/namespaces", {"metadata": meta})
        self.namespaces.append(name)
        return name

    @property
    def selector(self) -> str:
        return f"{TEST_LABEL}={self.test_id}"

    def kubeconfig(self, path: Path, server: str | None = None) -> Path:
        return self.plane.admin_kubeconfig(path, server)

    def cleanup(self) -> None:
        """Empty the namespaces (pods at once: no kubelet finishes a graceful deletion),
        finalize them (no namespace controller does), delete the labelled cluster-scoped
        objects and the events in "default"."""
        if not self.plane.apiserver or not self.plane.apiserver.alive():
            return
        api = self.api
        for ns in self.namespaces:
            with contextlib.suppress(ApiError):
                api.request("DELETE", f"/api/v1/namespaces/{ns}/pods",
                            query={"gracePeriodSeconds": 0})  # fmt: skip
            for template in NAMESPACED_KINDS:
                with contextlib.suppress(ApiError):
                    api.request("DELETE", template.format(ns=quote(ns)))
        with contextlib.suppress(ApiError):
            api.request("DELETE", "/api/v1/namespaces/default/events")
        for path in LABELLED_CLUSTER_KINDS:
            with contextlib.suppress(ApiError):
                api.request("DELETE", path, query={"labelSelector": self.selector})
        for ns in self.namespaces:
            with contextlib.suppress(ApiError):
                api.delete(f"/api/v1/namespaces/{ns}")
                current = api.get(f"/api/v1/namespaces/{ns}")
                current["spec"]["finalizers"] = []
                api.put(f"/api/v1/namespaces/{ns}/finalize", current)
        api.close()


def start_control_plane(bin_dir: Path, workdir: Path) -> ControlPlane:
    """Start one; on failure stop whatever started and raise with the logs' tails."""
    plane = ControlPlane(bin_dir, workdir)
    # the processes run in sessions of their own: stop them even if the test run ends abruptly
    atexit.register(plane.stop)
    try:
        return plane.start()
    except BaseException:
        plane.stop()
        raise


@contextlib.contextmanager
def control_plane(bin_dir: Path, workdir: Path) -> Iterator[ControlPlane]:
    plane = start_control_plane(bin_dir, workdir)
    try:
        yield plane
    finally:
        plane.stop()
        if not os.environ.get("CONTROLPLANE_KEEP_DATA"):
            shutil.rmtree(workdir / "etcd-data", ignore_errors=True)
