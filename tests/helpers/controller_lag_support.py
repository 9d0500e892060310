"""Shared pieces of the controller-under-lag tests (no tests here): the API a test drives (the
real kube-apiserver, or tests/helpers/k8s_stub.py where a test says why), a Kubernetes backend whose
informers read through a delaying `TcpProxy` (tests/helpers/tcpproxy.py) while its writes go direct,
pool manifests, and the live check of the limits.

The limits are checked on what the API server holds (a direct read, never the controller's
cache): nodes out of service (any status but Available and Spare) and fault taints within the
breaker's limit; replacements in flight and started within the same window within POL-01/02.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import kubernetes

from poolwatch.cluster.kubernetes.api import load_configuration
from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.cluster.kubernetes.convert import node_from
from poolwatch.cluster.kubernetes.read import Context
from poolwatch.cluster.model import Node
from poolwatch.controller.pools import FAULT_TAINT, allowed, out_of_service
from poolwatch.controller.service import PoolController
from poolwatch.core.actions import ActionResult
from tests.helpers.tcpproxy import TcpProxy

NODES = "/api/v1/nodes"
TEST_LABEL = "poolwatch.io/test"  # tests/helpers/controlplane.py removes what carries it
POOL = "gpu"
FLAVOR = "gpu.8x.h100"
T0 = 1_790_000_000.0


class Api(Protocol):
    """What the tests need from an API server: a client configuration for a given host (the
    proxy's or its own), the host, and admin reads and writes of nodes."""

    host: tuple[str, int]
    scheme: str  # "https" for the real API server
    namespace: str  # where the test's Leases go

    def configuration(self, host: str | None = None) -> Any: ...
    def kubeconfig(self, server: str | None = None) -> str: ...
    def lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_node(self, body: dict[str, Any]) -> None: ...
    def delete_node(self, name: str) -> None: ...
    def list_nodes(self) -> list[dict[str, Any]]: ...


def node_body(name: str, pool: str = POOL, spare: bool = False) -> dict[str, Any]:
    """A Ready node of `pool` with 8 GPUs; a spare carries the Spare label and is cordoned."""
    labels = {"poolwatch.io/pool": pool, "node.kubernetes.io/instance-type": FLAVOR}
    if spare:
        labels["poolwatch.io/status"] = "Spare"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": spare},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"}},
    }  # fmt: skip


def live_nodes(api: Api, pool: str = POOL) -> list[Node]:
    """The pool's nodes as the API server holds them now (a direct list, no cache)."""
    ctx = Context()
    found = [node_from(raw, ctx) for raw in api.list_nodes()]
    return [n for n in found if n.pool == pool]


@dataclass
class Limits:
    """The most the pool may have out at once, and what was seen; `violations` lists each
    observation over a limit."""

    breaker: int
    concurrent: int
    daily: int
    most_out: int = 0
    most_tainted: int = 0
    most_in_flight: int = 0
    violations: list[str] | None = None

    def check(self, api: Api, ctl: PoolController, when: str, pool: str = POOL) -> None:
        nodes = live_nodes(api, pool)
        out = out_of_service(nodes)
        tainted = sum(any(k == FAULT_TAINT for k, _, _ in n.taints) for n in nodes)
        reps = ctl.store.replacements(pool)
        flight = sum(r.state in ("starting", "running") for r in reps)
        started = sorted(r.started_at for r in reps if r.started_at)
        self.most_out = max(self.most_out, out)
        self.most_tainted = max(self.most_tainted, tainted)
        self.most_in_flight = max(self.most_in_flight, flight)
        self.violations = self.violations or []
        if out > self.breaker:
            self.violations.append(f"{when}: {out} of {len(nodes)} out (limit {self.breaker})")
        if tainted > self.breaker:
            self.violations.append(f"{when}: {tainted} nodes tainted (limit {self.breaker})")
        if flight > self.concurrent:
            self.violations.append(f"{when}: {flight} replacements in flight")
        if len(started) > self.daily:
            self.violations.append(f"{when}: {len(started)} replacements started in 24 h")


def limits_for(ctl: PoolController, total: int) -> Limits:
    s = ctl.settings
    return Limits(
        breaker=allowed(s.breaker_ratio, total, 1),
        concurrent=allowed(s.replace_concurrent_ratio, total, s.replace_min),
        daily=allowed(s.replace_daily_ratio, total, s.replace_min),
    )


@contextmanager
def lagged_backend(
    api: Api, delay: float, **kw: Any
) -> Iterator[tuple[KubernetesCluster, TcpProxy]]:
    """A Kubernetes backend whose informers list and watch through a proxy that delivers what
    the API server sends `delay` seconds late; its writes go to the API server directly. (The
    proxy's delay holds for the connections it accepts: a test that needs another lag opens
    another backend rather than cutting the open connections.)"""
    proxy = TcpProxy(api.host[1], delay)
    read = api.configuration(f"{api.scheme}://127.0.0.1:{proxy.port}")
    read.connection_pool_maxsize = 32
    write = api.configuration()
    backend = KubernetesCluster(
        kubernetes.client.ApiClient(read),
        write_api_client=kubernetes.client.ApiClient(write),
        watch_timeout=30,
        sync_timeout=30.0,
        clock=lambda: T0,
        **kw,
    )
    try:
        yield backend, proxy
    finally:
        backend.stop()
        proxy.close()


def until(check: Callable[[], Any], timeout: float = 20.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if found := check():
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def consistent(
    result: ActionResult, ctl: PoolController, node: str, pool: str = POOL
) -> str | None:
    """Why an action's answer contradicts the replacement it started, or None. A `done` whose
    replacement failed is the bug this guards against: the engine then never sends it again."""
    reps = [r for r in ctl.store.replacements(pool) if r.node == node]
    if result.outcome == "done" and "replacement" in result.detail:
        if not reps:
            return f"{node}: answered done ({result.detail}) with no replacement"
        if reps[-1].state == "failed":
            return f"{node}: answered done ({result.detail}) but the replacement failed"
    return None


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)[:400]


class StubApi:
    """tests/helpers/k8s_stub.py as an `Api`: for what the real API server cannot be made to do,
    and for comparing a run against the stub (its watch delivers a write as soon as it is made)."""

    scheme = "http"
    namespace = "default"

    def __init__(self) -> None:
        from tests.helpers.k8s_stub import KubeApiStub

        self.stub = KubeApiStub()
        self.host = ("127.0.0.1", self.stub.port)

    def configuration(self, host: str | None = None) -> Any:
        cfg = kubernetes.client.Configuration(host=host or self.stub.url)
        cfg.retries = False
        return cfg

    def kubeconfig(self, server: str | None = None) -> str:
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: stub\n"
            f"clusters: [{{name: stub, cluster: {{server: '{server or self.stub.url}'}}}}]\n"
            "users: [{name: stub, user: {}}]\n"
            "contexts: [{name: stub, context: {cluster: stub, user: stub}}]\n"
        )

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.stub.cond:
            held = self.stub.leases.get((namespace, name))
            return json.loads(json.dumps(held)) if held else None

    def create_node(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        body = {**body, "metadata": {**body["metadata"], "uid": f"uid-{name}"}}
        self.stub.put(NODES, body)

    def delete_node(self, name: str) -> None:
        self.stub.delete(NODES, name)

    def list_nodes(self) -> list[dict[str, Any]]:
        with self.stub.cond:
            found = list(self.stub.collections[NODES].objects.values())
        return [json.loads(json.dumps(o)) for o in found]

    def close(self) -> None:
        self.stub.close()


class RealApi:
    """The session's real kube-apiserver (tests/helpers/controlplane.py) as an `Api`, for one
    test: its nodes carry the test's label (removed by its cleanup), its Leases live in its
    namespace."""

    scheme = "https"

    def __init__(self, kube: Any, workdir: Path) -> None:  # kube: controlplane.TestCluster
        self.kube, self.plane, self.admin = kube, kube.plane, kube.api
        self.host = ("127.0.0.1", self.plane.port)
        self.namespace = kube.namespace
        self._dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._configs = itertools.count()

    def kubeconfig(self, server: str | None = None) -> str:
        path = self._dir / f"admin-{next(self._configs)}.kubeconfig"
        return self.plane.admin_kubeconfig(path, server).read_text()

    def configuration(self, host: str | None = None) -> Any:
        path = self._dir / f"admin-{next(self._configs)}.kubeconfig"
        self.plane.admin_kubeconfig(path, host)
        cfg = load_configuration(path, {})
        cfg.retries = False
        return cfg

    def create_node(self, body: dict[str, Any]) -> None:
        labels = {**body["metadata"]["labels"], TEST_LABEL: self.kube.test_id}
        self.admin.post(NODES, {**body, "metadata": {**body["metadata"], "labels": labels}})

    def delete_node(self, name: str) -> None:
        self.admin.delete(f"{NODES}/{name}")

    def list_nodes(self) -> list[dict[str, Any]]:
        found = self.admin.get(NODES, labelSelector=self.kube.selector)
        return list(found.get("items") or [])

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        from tests.helpers.controlplane import ApiError

        try:
            return self.admin.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/"
                                  f"{name}")  # fmt: skip
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def close(self) -> None:
        """The test's cleanup (the `kube` fixture) removes what it made."""
