"""The labels of this node's pods, from the Kubernetes API, and the training job they name.

The kubelet's pod-resources API names pods but carries no labels, and training controllers record
the job in a label: `training.kubeflow.org/job-name` (Kubeflow training operator, MPI operator),
`volcano.sh/job-name` (Volcano), `batch.kubernetes.io/job-name` (batch/v1 Job; `job-name` before
Kubernetes 1.27). `PodLabels` lists the pods of this node through the official `kubernetes`
client, `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`, when the pod_resources collector
asks (`refresh()`, once per collector run, every 30 s by default; never on a scrape), and keeps
(namespace, pod) -> labels from the last list that succeeded. `TrainingJobs` turns that into a
pod's training job: the value of the first of `collectors.pod_resources.job_labels` the pod
carries (an empty value counts as absent), else the name-based `training_job_of(pod)`: for a pod
the list has not seen yet, a pod without any of those labels, or when the source is off or failing.

Cost. One list of one node's pods (at most 110 with the kubelet's default) per node and interval.
The first list asks resourceVersion=0, which the apiserver answers from its watch cache instead of
a quorum read of etcd (a DaemonSet restarted on a thousand nodes must not read every pod in the
cluster a thousand times over); each later list asks resourceVersionMatch=NotOlderThan the last
list's resourceVersion (kept in `resource_version`), also answered from the cache and never older
than what was already seen, should the connection move to an apiserver replica that lags. A
watch would be cheaper again, but it is a long-lived stream per node; watching pods is the cluster
exporter's job (once for the whole cluster), not the node exporter's. The body is parsed for
`items[].metadata` and each container's `resources.requests` only (`_preload_content=False`,
the requests are the container collector's denominators without a limit): the client's generated
models would build every
container spec of every pod to read three fields (about 4x the time for 110 pods), and a field
that fails their validation in one pod's spec would fail the whole list.

Where the API is (`pod_labels_source`): the kubeconfig at `collectors.pod_resources.kubeconfig` when
it is set (an explicit setting wins over what the environment suggests); else the pod's service
account when KUBERNETES_SERVICE_HOST is set (in-cluster); else nowhere: the source is off, which is
logged once, and every training job comes from the pod name. An empty `job_labels` turns it off
too. The client configuration is loaded at the first refresh, not at start-up, and again after
every failure (a rotated certificate or kubeconfig is picked up), so a missing service-account
token shows as a failing source. The
ServiceAccount needs `list` on `pods` (cluster scope: a node's pods span namespaces).

Failures (the API unreachable or late, 403 because RBAC does not grant `list pods`, an answer that
is not a PodList, a configuration that does not load): the labels are dropped, not kept for a
while, because a stale label served as fresh is exactly what must not happen; training jobs fall
back to pod names, `up` turns False (exported as `poolwatch_attribution_pod_labels_up` 0) and the
change is logged once, a warning on the way down and an info line on the way back. For readers on
other schedules (the container collector), labels also expire `max_age` seconds after the list
that fetched them, in case the collector that refreshes them stops running.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poolwatch.cluster.kubernetes.quantity import QuantityError, parse_quantity

from .pod_resources import training_job_of

if TYPE_CHECKING:
    from kubernetes.client import Configuration

log = logging.getLogger(__name__)
USER_AGENT = "poolwatch-node-exporter"  # what apiserver audit logs and priority-and-fairness see

Loader = Callable[[], "Configuration"]


class NotAPodList(ValueError):
    """The API answered 2xx with something that is not a v1 PodList."""


#: (namespace, pod, container) -> (CPU request in cores, memory request in bytes), None if unset
Requests = dict[tuple[str, str, str], tuple[float | None, float | None]]


@dataclass(frozen=True)
class _Snapshot:
    labels: Mapping[tuple[str, str], Mapping[str, str]]  # (namespace, pod) -> labels
    fetched: float  # time.monotonic() when the list came back
    requests: Mapping[tuple[str, str, str], tuple[float | None, float | None]] = field(
        default_factory=dict
    )


def parse_pod_list(body: bytes) -> tuple[dict[tuple[str, str], dict[str, str]], str]:
    """A v1 PodList (JSON) -> ({(namespace, name): labels}, the list's resourceVersion)."""
    labels, _, rv = parse_pod_list_requests(body)
    return labels, rv


def _request(resources: object, name: str) -> float | None:
    """One container's `resources.requests[name]` in base units; None when unset or unreadable
    (a quantity the apiserver accepted always parses; anything else is not a request)."""
    requests = resources.get("requests") if isinstance(resources, dict) else None
    raw = requests.get(name) if isinstance(requests, dict) else None
    if raw is None:
        return None
    try:
        value = parse_quantity(raw)
    except QuantityError:
        return None
    return value if value > 0 else None


def _container_requests(item: dict[str, Any], key: tuple[str, str], out: Requests) -> None:
    spec = item.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for c in containers if isinstance(containers, list) else []:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            res = c.get("resources")
            out[(*key, c["name"])] = (_request(res, "cpu"), _request(res, "memory"))


def parse_pod_list_requests(
    body: bytes,
) -> tuple[dict[tuple[str, str], dict[str, str]], Requests, str]:
    """A v1 PodList (JSON) -> (labels as parse_pod_list, each container's CPU and memory
    requests, the list's resourceVersion). The requests are the denominators of a container's
    CPU and memory use when it has no limit (ModelArts divides by what the container applied
    for)."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("kind") != "PodList":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise NotAPodList(f"expected a PodList, got {kind!r}")
    items = doc.get("items") or []  # an empty list is serialised as "items": [] or null
    if not isinstance(items, list):
        raise NotAPodList("PodList items is not a list")
    out: dict[tuple[str, str], dict[str, str]] = {}
    requests: Requests = {}
    for item in items:
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict):
            continue
        namespace, name = meta.get("namespace"), meta.get("name")
        if not (isinstance(namespace, str) and isinstance(name, str)):
            continue
        labels = meta.get("labels") or {}
        if not isinstance(labels, dict):
            labels = {}
        out[(namespace, name)] = {k: v for k, v in labels.items() if isinstance(v, str)}
        _container_requests(item, (namespace, name), requests)
    list_meta = doc.get("metadata")
    rv = list_meta.get("resourceVersion", "") if isinstance(list_meta, dict) else ""
    return out, requests, rv if isinstance(rv, str) else ""


def _from_kubeconfig(path: Path) -> Configuration:
    from kubernetes import client, config

    cfg = client.Configuration()
    # persist_config=False: never write refreshed credentials back into a mounted file
    config.load_kube_config(config_file=str(path), client_configuration=cfg, persist_config=False)
    return cfg


def _in_cluster() -> Configuration:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_incluster_config(client_configuration=cfg)  # re-reads a rotated token itself
    return cfg


def pod_labels_source(
    kubeconfig: Path | None,
    job_labels: Sequence[str],
    environ: Mapping[str, str] = os.environ,
) -> tuple[str, Loader | None, str]:
    """(mode, configuration loader or None, why): where the Kubernetes API is, if anywhere."""
    if not job_labels:
        return "none", None, "collectors.pod_resources.job_labels is empty"
    if kubeconfig is not None:
        return "kubeconfig", lambda: _from_kubeconfig(kubeconfig), f"kubeconfig {kubeconfig}"
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster", _in_cluster, "in-cluster service account"
    return (
        "none",
        None,
        "KUBERNETES_SERVICE_HOST is unset and collectors.pod_resources.kubeconfig is not set",
    )


def _describe(err: Exception) -> str:
    """One line for the log and for `error`."""
    status = getattr(err, "status", None)
    if isinstance(status, int) and status:  # kubernetes.client.ApiException
        reason = getattr(err, "reason", "") or ""
        message = ""
        try:
            doc = json.loads(getattr(err, "body", None) or b"")
            if isinstance(doc, dict) and isinstance(doc.get("message"), str):
                message = doc["message"]
        except ValueError:
            pass
        text = f"HTTP {status} {reason}".strip() + (f": {message}" if message else "")
        if status == 403:
            text += " (the exporter's ServiceAccount needs RBAC `list` on `pods`)"
        return text
    return f"{type(err).__name__}: {err}"


class PodLabels:
    """The labels of the pods on one node, as of the last list that succeeded."""

    def __init__(
        self,
        node: str = "",
        loader: Loader | None = None,
        mode: str = "none",
        max_age: float = 60.0,
    ) -> None:
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self.configure(node, loader, mode, max_age)

    def configure(
        self, node: str, loader: Loader | None, mode: str, max_age: float, why: str = ""
    ) -> None:
        """(Re)point the source; drops what an earlier configuration listed."""
        with self._lock:
            self.node, self.mode, self.max_age = node, mode if loader else "none", max_age
            self._loader = loader
            self._api: Any = None
            self._snapshot: _Snapshot | None = None
            self.resource_version = ""  # of the last list that succeeded
            self.pods = 0  # pods in that list
            self.up: bool | None = None  # None until the first refresh, and while off
            self.error = ""
        if loader is None and why:
            log.info("pod labels off (%s): training_job from pod names", why)

    @property
    def enabled(self) -> bool:
        return self._loader is not None

    def labels_of(self, namespace: str, pod: str) -> dict[str, str] | None:
        """The pod's labels from the last list, or None: not listed, off, failing, or expired."""
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.fetched > self.max_age:
            return None
        labels = snap.labels.get((namespace, pod))
        return dict(labels) if labels is not None else None

    def requests_of(
        self, namespace: str, pod: str, container: str
    ) -> tuple[float | None, float | None]:
        """The container's (CPU cores, memory bytes) requests from the last list; (None, None)
        when not listed, off, failing or expired, like `labels_of`."""
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.fetched > self.max_age:
            return None, None
        return snap.requests.get((namespace, pod, container), (None, None))

    def refresh(self, timeout: float) -> bool:
        """List this node's pods, giving up after `timeout` seconds; True if the list succeeded.
        Never raises for a failure of the source: it is recorded in `up` and `error`."""
        if self._loader is None:
            return False
        failures = _failures()
        with self._lock:
            loader = self._loader
            if loader is None:  # switched off meanwhile
                return False
            try:
                labels, requests, rv = self._list(loader, timeout)
            except failures as err:
                self._down(_describe(err))
                return False
            self._snapshot = _Snapshot(labels, time.monotonic(), requests)
            self.resource_version, self.pods, self.error = rv, len(labels), ""
            if self.up is not True:
                log.info(
                    "pod labels from the Kubernetes API (%s) for node %s: %d pods",
                    self.mode,
                    self.node,
                    len(labels),
                )
            self.up = True
            return True

    def fail(self, why: str) -> None:
        """Record a refresh that could not be tried (no time left in the run)."""
        if self._loader is None:
            return
        with self._lock:
            self._down(why)

    def _down(self, why: str) -> None:
        self._snapshot = None  # never serve the previous list as if it were current
        if self._api is not None:  # reload the configuration next time: a token, a client
            self._api.api_client.close()  # certificate or the CA may have been rotated
            self._api = None
        self.resource_version = ""  # the next list starts over from the cache (resourceVersion=0)
        self.pods, self.error = 0, why
        if self.up is not False:
            log.warning(
                "pod labels unavailable from the Kubernetes API (%s) for node %s: %s; "
                "training_job from pod names until it answers",
                self.mode,
                self.node,
                why,
            )
        self.up = False

    def _list(
        self, loader: Loader, timeout: float
    ) -> tuple[dict[tuple[str, str], dict[str, str]], Requests, str]:
        from kubernetes import client

        if self._api is None:
            cfg = loader()
            # one try per refresh: the next refresh is the retry, and urllib3's own retries
            # would each get the whole timeout again
            cfg.retries = False
            api_client = client.ApiClient(cfg)
            api_client.user_agent = USER_AGENT
            self._api = client.CoreV1Api(api_client)
        if self.resource_version:
            since = {
                "resource_version": self.resource_version,
                "resource_version_match": "NotOlderThan",
            }
        else:
            since = {"resource_version": "0"}
        response = self._api.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}",
            _preload_content=False,
            _request_timeout=max(timeout, 0.001),
            **since,
        )
        try:
            body = response.data
        finally:
            response.release_conn()
        return parse_pod_list_requests(body)


def _failures() -> tuple[type[BaseException], ...]:
    """What a failing source raises: the API's answers, the connection, the configuration."""
    from kubernetes.client.exceptions import OpenApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    return (OpenApiException, ConfigException, HTTPError, OSError, ValueError)


class TrainingJobs:
    """(namespace, pod) -> training job: the first of `keys` among the pod's labels, else the
    job derived from the pod name."""

    def __init__(self, labels: PodLabels, keys: Sequence[str]) -> None:
        self.labels, self.keys = labels, tuple(keys)

    def __call__(self, namespace: str, pod: str) -> str:
        labels = self.labels.labels_of(namespace, pod) if self.keys else None
        if labels:
            for key in self.keys:
                if labels.get(key):
                    return labels[key]
        return training_job_of(pod)


_SHARED = PodLabels()


def shared_pod_labels() -> PodLabels:
    """The process-wide pod labels: pod_resources refreshes them, the container collector may
    read them (through `TrainingJobs`) on its own schedule."""
    return _SHARED
