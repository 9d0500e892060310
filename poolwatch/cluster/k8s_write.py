"""The controller's writes to the Kubernetes API: labels, taints, cordon, eviction, events.

- `label_node`: a JSON merge patch of `metadata.labels`; a None value removes the label.
- `taint_node` / `untaint_node`: read-modify-write of `spec.taints`. A merge patch replaces the
  whole list, so it carries the `metadata.resourceVersion` that was read: the API server then
  refuses it with 409 Conflict if the node changed in between (another controller tainted it),
  and the write is tried again on a fresh read, up to `CONFLICT_RETRIES` times. A taint is
  identified by key and effect, as Kubernetes does; writing one that is already there sends no
  request. NoExecute taints get `timeAdded` (the taint manager counts tolerationSeconds from it).
- `cordon`: a merge patch of `spec.unschedulable`.
- Every node write returns the node's `metadata.resourceVersion` after it (the one read, when
  there was nothing to change): a reader waits for its informer to reach it before it decides
  anything that follows the write (read-your-writes, `KubernetesCluster.await_view`).
- `evict`: a policy/v1 Eviction, so PodDisruptionBudgets are honoured: 429 raises
  `EvictionBlocked`; 404 (the pod is already gone) is success.
- `record_event`: a core/v1 Event. Node and pool events go to namespace `default` (core/v1
  validation wants a cluster-scoped object's events there); a pool has no API object, so its
  events name `{apiVersion: poolwatch.io/v1, kind: Pool}`, and a plain-pod job's name
  `{poolwatch.io/v1, TrainingJob}`; other jobs' events name the job's own apiVersion (the version
  it was read at), kind and uid.
  The seeds' "Abnormal" becomes "Warning" (the API accepts Normal and Warning only).

Every failure raises `ClusterWriteError` naming the operation, the object and the API's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from poolwatch.cluster.kubernetes.api import describe, failures
from poolwatch.cluster.kubernetes.read import POOL_API_VERSION
from poolwatch.cluster.model import Event

CONFLICT_RETRIES = 5
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "poolwatch"
REQUEUED = "poolwatch.io/requeued"  # when the controller re-issued the job (MA-J-03)
STOPPED = "poolwatch.io/stopped"  # why the controller made a job exit (re-queue gave up)
_PLURALS = {"PyTorchJob": "pytorchjobs", "TFJob": "tfjobs", "MPIJob": "mpijobs"}


class ClusterWriteError(RuntimeError):
    """A write the API did not accept, or could not be asked."""

    def __init__(self, op: str, target: str, why: str, status: int | None = None) -> None:
        super().__init__(f"{op} {target}: {why}")
        self.op, self.target, self.status = op, target, status


class EvictionBlocked(ClusterWriteError):
    """429: a PodDisruptionBudget does not allow this eviction now; try again later."""


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(obj: Any) -> str:
    """metadata.resourceVersion of an object the API answered with ("" when it has none)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) else ""


def _name_prefix(name: str) -> str:
    """A generateName prefix that is a valid DNS subdomain whatever the object's name is."""
    prefix = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip(".-")[:200]
    return f"{prefix or COMPONENT}."


class Writer:
    """The write side over one lazily built API client."""

    def __init__(
        self,
        client: Callable[[], Any],  # -> kubernetes.client.ApiClient
        clock: Callable[[], float],
        job_ref: Callable[[str, str], tuple[str, str, str] | None],  # (apiVersion, kind, uid)
        timeout: tuple[float, float] = (10.0, 30.0),
    ) -> None:
        self._client, self._clock, self._job_ref, self._timeout = client, clock, job_ref, timeout

    def _core(self, op: str, target: str) -> Any:
        from kubernetes import client

        try:
            return client.CoreV1Api(self._client())
        except failures() as err:
            raise ClusterWriteError(op, target, describe(err)) from err

    def _call(self, op: str, target: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """fn(*args, **kw) -> the answer's JSON; failures become ClusterWriteError."""
        try:
            response = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kw)
        except failures() as err:
            status = getattr(err, "status", None)
            kind = EvictionBlocked if status == 429 and op == "evict" else ClusterWriteError
            code = status if isinstance(status, int) else None
            raise kind(op, target, describe(err), code) from err
        try:
            body = response.data
        finally:
            response.release_conn()
        try:
            return json.loads(body) if body else {}
        except ValueError as err:
            raise ClusterWriteError(op, target, f"answer is not JSON: {body[:80]!r}") from err

    def _patch_node(self, op: str, node: str, patch: dict[str, Any]) -> str:
        core = self._core(op, node)
        return _version(self._call(op, node, core.patch_node, node, patch,
                                   _content_type=MERGE_PATCH))  # fmt: skip

    def label_node(self, node: str, labels: dict[str, str | None]) -> str:
        return self._patch_node("label", node, {"metadata": {"labels": dict(labels)}})

    def cordon(self, node: str, unschedulable: bool = True) -> str:
        return self._patch_node(
            "cordon" if unschedulable else "uncordon",
            node,
            {"spec": {"unschedulable": unschedulable}},
        )

    def taint_node(self, node: str, key: str, value: str, effect: str) -> str:
        if effect not in EFFECTS:
            raise ValueError(f"taint effect {effect!r}: expected one of {', '.join(EFFECTS)}")
        taint: dict[str, Any] = {"key": key, "value": value, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = _rfc3339(self._clock())

        def change(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
            same = [t for t in taints if (t.get("key"), t.get("effect")) == (key, effect)]
            if same and same[0].get("value", "") == value:
                return taints
            kept = [t for t in taints if (t.get("key"), t.get("effect")) != (key, effect)]
            return [*kept, taint]

        return self._edit_taints("taint", node, change)

    def untaint_node(self, node: str, key: str) -> str:
        return self._edit_taints("untaint", node,
                                 lambda ts: [t for t in ts if t.get("key") != key])  # fmt: skip

    def _edit_taints(self, op: str, node: str, change: Callable[[list[Any]], list[Any]]) -> str:
        from kubernetes.client.exceptions import ApiException

        core = self._core(op, node)
        for _ in range(CONFLICT_RETRIES):
            current = self._call(op, node, core.read_node, node)
            spec = current.get("spec") if isinstance(current.get("spec"), dict) else {}
            taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
            wanted = change(taints)
            if wanted == taints:  # already so: the version read is what a reader must reach
                return _version(current)
            meta = current.get("metadata") if isinstance(current.get("metadata"), dict) else {}
            rv = meta.get("resourceVersion", "")
            patch = {"metadata": {"resourceVersion": rv}, "spec": {"taints": wanted or None}}
            try:
                return _version(self._call(op, node, core.patch_node, node, patch,
                                           _content_type=MERGE_PATCH))  # fmt: skip
            except ClusterWriteError as err:
                if err.status != 409 or not isinstance(err.__cause__, ApiException):
                    raise
        raise ClusterWriteError(op, node, f"the node kept changing ({CONFLICT_RETRIES} conflicts)")

    def evict(self, namespace: str, pod: str) -> None:
        from kubernetes import client

        target = f"{namespace}/{pod}"
        core = self._core("evict", target)
        body = client.V1Eviction.model_validate(
            {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": namespace},
            }
        )
        try:
            self._call("evict", target, core.create_namespaced_pod_eviction, pod, namespace, body)
        except ClusterWriteError as err:
            if err.status != 404:  # already gone is what eviction wanted
                raise

    def prioritize_job(self, namespace: str, name: str, priority_class: str) -> bool:
        """Mark a re-issued job (annotation `poolwatch.io/requeued`) and, with a PriorityClass
        configured, give the pods its operator creates next that class: Kubeflow jobs through
        `spec.runPolicy.schedulingPolicy.priorityClass`, Volcano jobs `spec.priorityClassName`
        (a batch Job's pod template is immutable: annotated only). False for a job without an
        API object of its own (plain pods) or not seen yet."""
        ref = self._job_ref(namespace, name)
        if ref is None:
            return False
        api_version, kind, _ = ref
        patch: dict[str, Any] = {"metadata": {"annotations": {REQUEUED: _rfc3339(self._clock())}}}
        if priority_class and api_version.startswith("kubeflow.org/"):
            patch["spec"] = {"runPolicy": {"schedulingPolicy": {"priorityClass": priority_class}}}
        elif priority_class and api_version.startswith("batch.volcano.sh/"):
            patch["spec"] = {"priorityClassName": priority_class}
        plural = _PLURALS.get(kind, "jobs")
        path = f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}"
        target = f"{kind} {namespace}/{name}"
        try:
            api = self._client()
            headers = {"Accept": "application/json", "Content-Type": MERGE_PATCH}
            call = api.param_serialize("PATCH", path, None, None, headers, patch,
                                       auth_settings=["BearerToken"])  # fmt: skip
            response = api.call_api(*call, _request_timeout=self._timeout)
            response.read()
        except failures() as err:
            raise ClusterWriteError("prioritize", target, describe(err)) from err
        if not 200 <= response.status < 300:
            raise ClusterWriteError("prioritize", target, f"HTTP {response.status}",
                                    response.status)  # fmt: skip
        return True

    def stop_job(self, namespace: str, name: str, reason: str) -> bool:
        """Make a job exit (a re-issued job that waited too long in the queue): suspend it where
        its API can (`spec.runPolicy.suspend` of Kubeflow jobs, `spec.suspend` of a batch Job;
        the operator then deletes its pods) and annotate it `poolwatch.io/stopped` with the
        reason; a Volcano job has no suspend field and is annotated only. False for a job
        without an API object of its own (plain pods) or not seen yet."""
        ref = self._job_ref(namespace, name)
        if ref is None:
            return False
        api_version, kind, _ = ref
        patch: dict[str, Any] = {"metadata": {"annotations": {STOPPED: reason[:256]}}}
        if api_version.startswith("kubeflow.org/"):
            patch["spec"] = {"runPolicy": {"suspend": True}}
        elif api_version == "batch/v1":
            patch["spec"] = {"suspend": True}
        plural = _PLURALS.get(kind, "jobs")
        path = f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}"
        target = f"{kind} {namespace}/{name}"
        try:
            api = self._client()
            headers = {"Accept": "application/json", "Content-Type": MERGE_PATCH}
            call = api.param_serialize("PATCH", path, None, None, headers, patch,
                                       auth_settings=["BearerToken"])  # fmt: skip
            response = api.call_api(*call, _request_timeout=self._timeout)
            response.read()
        except failures() as err:
            raise ClusterWriteError("stop", target, describe(err)) from err
        if not 200 <= response.status < 300:
            raise ClusterWriteError("stop", target, f"HTTP {response.status}", response.status)
        return True

    def record_event(self, event: Event) -> None:
        from kubernetes import client

        namespace, involved = self._involved(event)
        when = _rfc3339(event.time or self._clock())
        body = client.CoreV1Event.model_validate(
            {
                "metadata": {
                    "generateName": _name_prefix(event.name),
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": COMPONENT},
                },
                "involvedObject": involved,
                "reason": event.reason[:128],
                "message": event.message[:1024],
                "type": "Normal" if event.type == "Normal" else "Warning",
                "firstTimestamp": when,
                "lastTimestamp": when,
                "count": 1,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
            }
        )
        target = f"{event.kind} {event.name}"
        core = self._core("record event", target)
        self._call("record event", target, core.create_namespaced_event, namespace, body)

    def _involved(self, event: Event) -> tuple[str, dict[str, str]]:
        """(event namespace, involvedObject) for a Node, Pool or Job event."""
        if event.kind == "Node":
            return "default", {"apiVersion": "v1", "kind": "Node", "name": event.name}
        if event.kind == "Pool":
            return "default", {"apiVersion": POOL_API_VERSION, "kind": "Pool", "name": event.name}
        if event.kind != "Job" or not event.namespace:
            raise ValueError(f"event kind {event.kind!r}: expected Node, Pool or a namespaced Job")
        ref = {"namespace": event.namespace, "name": event.name}
        known = self._job_ref(event.namespace, event.name)
        if known is None:  # a plain-pod job (no API object of its own), or not seen (yet)
            return event.namespace, {**ref, "apiVersion": POOL_API_VERSION, "kind": "TrainingJob"}
        api_version, kind, uid = known
        return event.namespace, {**ref, "apiVersion": api_version, "kind": kind, "uid": uid}
