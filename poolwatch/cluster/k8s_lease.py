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

from .backend import LeaseConflict
from .k8s_api import describe, failures
from .k8s_write import ClusterWriteError
from .model import Lease

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

    def _call(self, op: str, target: str, name: str, *args: Any) -> dict[str, Any] | None:
        """The answer's JSON; None for 404; LeaseConflict for 409; else ClusterWriteError."""
        from kubernetes import client

        try:
            api = client.CoordinationV1Api(self._client())
            response = getattr(api, name)(
                *args, _preload_content=False, _request_timeout=self._timeout
            )
            body = response.data
            response.release_conn()
            return json.loads(body) if body else {}
        except failures() as err:
            status = getattr(err, "status", None)
            if status == 404 and op == "read lease":
                return None
            if status == 409:
                raise LeaseConflict(f"{op} {target}: {describe(err)}") from err
            code = status if isinstance(status, int) else None
            raise ClusterWriteError(op, target, describe(err), code) from err

    def read(self, namespace: str, name: str) -> Lease | None:
        doc = self._call("read lease", f"{namespace}/{name}", "read_namespaced_lease", name,
                         namespace)  # fmt: skip
        return None if doc is None else lease_from(doc)

    def write(self, lease: Lease) -> Lease:
        target, body = f"{lease.namespace}/{lease.name}", lease_body(lease)
        if lease.resource_version:
            doc = self._call("replace lease", target, "replace_namespaced_lease", lease.name,
                             lease.namespace, body)  # fmt: skip
        else:
            doc = self._call("create lease", target, "create_namespaced_lease", lease.namespace,
                             body)  # fmt: skip
        return lease_from(doc or {})
