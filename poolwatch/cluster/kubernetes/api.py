"""How poolwatch talks to the Kubernetes API: which collections (and which converter reads each),
through which client calls, with which configuration, and what its failures look like.

Every collection is read through the official client's own list function (`CoreV1Api`,
`BatchV1Api`, `CustomObjectsApi` for CRDs) with `_preload_content=False`, so the informer gets the
raw HTTP response: a list body to parse as JSON, or a watch stream to read line by line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from poolwatch.cluster.kubernetes.convert import (
    elastic_quota_from,
    elastic_quota_tree_from,
    event_from,
    node_from,
    queue_from,
    resource_quota_from,
)
from poolwatch.cluster.kubernetes.jobs import batch_job_from, kubeflow_job_from, volcano_job_from
from poolwatch.cluster.kubernetes.read import Context

Converter = Callable[[Any, Context], list[Any]]  # raw object -> model objects
USER_AGENT = "poolwatch-cluster"  # what apiserver audit logs and priority-and-fairness see


@dataclass(frozen=True)
class Resource:
    """A collection to list and watch: core ("" group), a built-in group or a CRD."""

    group: str
    version: str
    plural: str
    feeds: str  # the model kind it feeds: node | pod | job | quota | event
    optional: bool = False  # a CRD: a 404 means "not installed"

    @property
    def name(self) -> str:
        """`nodes`, `jobs.batch/v1`, `pytorchjobs.kubeflow.org/v1`: kubectl's spelling."""
        if not self.group:
            return self.plural
        return f"{self.plural}.{self.group}/{self.version}"

    @property
    def path(self) -> str:
        if not self.group:
            return f"/api/{self.version}/{self.plural}"
        return f"/apis/{self.group}/{self.version}/{self.plural}"


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits initial * factor**n, at most `maximum`,
    less a random share of up to `jitter` (so informers that failed together spread out)."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * random.random())  # noqa: S311 - spread, not secrecy


class NotAList(ValueError):
    """A 2xx answer to a list that is not a list."""


def describe(err: BaseException, resource: str = "") -> str:
    """One line for the log and for `error`."""
    status = getattr(err, "status", None)
    if isinstance(status, int) and status:  # kubernetes.client.ApiException
        message = ""
        try:
            doc = json.loads(getattr(err, "body", None) or b"")
            message = doc.get("message", "") if isinstance(doc, dict) else ""
        except (ValueError, TypeError):
            pass
        text = f"HTTP {status} {getattr(err, 'reason', '') or ''}".strip()
        text += f": {message}" if message else ""
        if status in (401, 403):
            text += f" (poolwatch's ServiceAccount needs list and watch on {resource})"
        return text
    return f"{type(err).__name__}: {err}"


def import_client() -> None:
    """Import the Kubernetes client's modules in the calling thread, before worker threads use
    them. The client package loads its submodules lazily (a module `__getattr__`), and threads
    importing them at once can deadlock in Python's import locks: `_DeadlockError` on
    `kubernetes.client.exceptions` once killed the readiness probe's thread, so the exporter never
    noticed etcd going down. Imported on start, not with this module: a process that never
    talks to a cluster (the demo, the simulated backend) does not pay for the client."""
    import kubernetes.client
    import kubernetes.client.api_client
    import kubernetes.client.exceptions
    import kubernetes.client.rest
    import kubernetes.config
    import kubernetes.config.config_exception
    import kubernetes.watch.watch
    import urllib3.exceptions  # noqa: F401 - with the client's, for `failures`

    for name in ("ApiClient", "Configuration", "CoreV1Api", "BatchV1Api", "CustomObjectsApi",
                 "CoordinationV1Api", "CoreV1Event", "V1Eviction", "ApiException"):  # fmt: skip
        getattr(kubernetes.client, name)  # the lazy submodules behind the names poolwatch uses


def failures() -> tuple[type[BaseException], ...]:
    """What a failing API raises: its answers, the connection, the configuration, the body."""
    from kubernetes.client.exceptions import OpenApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    return (OpenApiException, ConfigException, HTTPError, OSError, ValueError)


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "nodes", "node"),
    Resource("", "v1", "pods", "pod"),
    Resource("", "v1", "resourcequotas", "quota"),
    Resource("", "v1", "events", "event"),
    Resource("batch", "v1", "jobs", "job"),
    Resource("kubeflow.org", "v1", "pytorchjobs", "job", optional=True),
    Resource("kubeflow.org", "v1", "tfjobs", "job", optional=True),
    Resource("kubeflow.org", "v1", "mpijobs", "job", optional=True),
    Resource("kubeflow.org", "v2beta1", "mpijobs", "job", optional=True),
    Resource("batch.volcano.sh", "v1alpha1", "jobs", "job", optional=True),
    Resource("scheduling.volcano.sh", "v1beta1", "queues", "quota", optional=True),
    Resource("scheduling.sigs.k8s.io", "v1beta1", "elasticquotatrees", "quota", optional=True),
    Resource("scheduling.sigs.k8s.io", "v1alpha1", "elasticquotas", "quota", optional=True),
)
CONVERTERS: dict[tuple[str, str], Converter] = {
    ("", "nodes"): lambda raw, ctx: [node_from(raw, ctx)],
    ("", "pods"): lambda raw, ctx: [],  # pods are converted by the state (plain-pod jobs)
    ("", "resourcequotas"): resource_quota_from,
    ("", "events"): event_from,
    ("batch", "jobs"): batch_job_from,
    ("kubeflow.org", "pytorchjobs"): partial(kubeflow_job_from, kind="PyTorchJob"),
    ("kubeflow.org", "tfjobs"): partial(kubeflow_job_from, kind="TFJob"),
    ("kubeflow.org", "mpijobs"): partial(kubeflow_job_from, kind="MPIJob"),
    ("batch.volcano.sh", "jobs"): volcano_job_from,
    ("scheduling.volcano.sh", "queues"): queue_from,
    ("scheduling.sigs.k8s.io", "elasticquotatrees"): elastic_quota_tree_from,
    ("scheduling.sigs.k8s.io", "elasticquotas"): elastic_quota_from,
}
_CORE_LISTS = {
    "nodes": "list_node",
    "pods": "list_pod_for_all_namespaces",
    "resourcequotas": "list_resource_quota_for_all_namespaces",
    "events": "list_event_for_all_namespaces",
}


def list_call(resource: Resource, api: Callable[[], Any], **kwargs: Any) -> Any:
    """The client's list (or watch, with watch=True) of `resource`, with `kwargs`."""
    from kubernetes import client

    api_client = api()
    if not resource.group:
        return getattr(client.CoreV1Api(api_client), _CORE_LISTS[resource.plural])(**kwargs)
    if (resource.group, resource.plural) == ("batch", "jobs"):
        return client.BatchV1Api(api_client).list_job_for_all_namespaces(**kwargs)
    objects = client.CustomObjectsApi(api_client)
    return objects.list_cluster_custom_object(
        resource.group, resource.version, resource.plural, **kwargs
    )


def load_configuration(kubeconfig: Path | str | None, environ: Mapping[str, str]) -> Any:
    """The client configuration: the kubeconfig at `kubeconfig` (an explicit setting wins over
    the environment); else the pod's service account when KUBERNETES_SERVICE_HOST is set; else
    the client's default kubeconfig ($KUBECONFIG, ~/.kube/config)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig is not None:
        config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=cfg, persist_config=False
        )
    elif environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(client_configuration=cfg, persist_config=False)
    return cfg
