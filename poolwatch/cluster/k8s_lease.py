"""Leader election's reads and writes: a coordination.k8s.io/v1 Lease, as client-go's
leaderelection keeps it (holderIdentity, leaseDurationSeconds, acquireTime, renewTime,
leaseTransitions).

Every write is conditional: a create fails with 409 when the Lease exists, a replace carries the
`metadata.resourceVersion` that was read and fails with 409 when another candidate wrote in
between. Both become `LeaseConflict`, and the caller reads again; so two controllers can never
both believe they hold the Lease after a write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from poolwatch.cluster.backend import LeaseConflict
from poolwatch.cluster.kubernetes.api import describe, failures
from poolwatch.cluster.kubernetes.write import ClusterWriteError
from poolwatch.cluster.model import Lease

_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime


def _micro(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(_MICRO)


def _seconds(text: object) -> float:
    if not isinstance(text, str) or not text:
        return 0.0
    for fmt in (_MICRO, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


def lease_from(doc: dict[str, Any]) -> Lease:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    return Lease(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        acquired=_seconds(spec.get("acquireTime")),
        renewed=_seconds(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def lease_body(lease: Lease) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": lease.name, "namespace": lease.namespace}
    if lease.resource_version:
        meta["resourceVersion"] = lease.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": lease.holder,
            "leaseDurationSeconds": max(1, round(lease.duration)),
            "acquireTime": _micro(lease.acquired),
            "renewTime": _micro(lease.renewed),
            "leaseTransitions": lease.transitions,
        },
    }


class Leases:
    def __init__(self, client: Callable[[], Any], timeout: tuple[float, float]) -> None:
        self._client, self._timeout = client, timeout

    def _call(
        self, op: str, method: str, namespace: str, name: str = "", body: Any = None
    ) -> dict[str, Any] | None:
        """The answer's JSON; None for 404; LeaseConflict for 409; else ClusterWriteError.

        Why not CoordinationV1Api: its generated methods coerce the body into V1Lease, whose
        datetimes serialise without fractional seconds, and the API server parses MicroTime
        with exactly six (metav1.RFC3339Micro); the JSON built here goes out as it is."""
        target = f"{namespace}/{name or (body or {}).get('metadata', {}).get('name', '')}"
        path = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        params: dict[str, str] = {"namespace": namespace}
        if name:
            path, params["name"] = path + "/{name}", name
        try:
            api = self._client()
            headers = {"Accept": "application/json", "Content-Type": "application/json"}
            call = api.param_serialize(method, path, params, None, headers, body,
                                       auth_settings=["BearerToken"])  # fmt: skip
            response = api.call_api(*call, _request_timeout=self._timeout)
            response.read()
            status, data = response.status, response.data
        except failures() as err:
            raise ClusterWriteError(op, target, describe(err)) from err
        if status == 404 and method == "GET":
            return None
        if status == 409:
            raise LeaseConflict(f"{op} {target}: HTTP 409 Conflict")
        if not 200 <= status < 300:
            raise ClusterWriteError(op, target, f"HTTP {status}: {data[:200]!r}", status)
        try:
            doc = json.loads(data) if data else {}
        except ValueError as err:
            raise ClusterWriteError(op, target, f"answer is not JSON: {data[:80]!r}") from err
        return doc if isinstance(doc, dict) else {}

    def read(self, namespace: str, name: str) -> Lease | None:
        doc = self._call("read lease", "GET", namespace, name)
        return None if doc is None else lease_from(doc)

    def write(self, lease: Lease) -> Lease:
        body = lease_body(lease)
        if lease.resource_version:
            doc = self._call("replace lease", "PUT", lease.namespace, lease.name, body)
        else:
            doc = self._call("create lease", "POST", lease.namespace, body=body)
        return lease_from(doc or {})
