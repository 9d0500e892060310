"""The hand-built objects of tests/fixtures/kubeapi/, created in the real API server the way
their controllers would have made them, for one test (controlplane.TestCluster).

What changes on the way in, because a real API server insists on it:
- the server sets uid, resourceVersion, creationTimestamp and generation; so the uids that
  objects quote (ownerReferences, an event's involvedObject) are rewritten to the uids the
  server gave their owners;
- every namespaced object goes to the test's namespace (one namespace per test keeps tests
  apart); events about nodes stay in "default", as the API server requires of an event whose
  object has no namespace; the ResourceQuota gets a namespace of its own, since a quota makes
  the API server check every later pod in its namespace against it;
- status is written through the status subresource, as the kubelet and the operators do;
- a batch Job's selector and controller-uid labels are left to the server (it refuses a
  hand-set selector), and its pods keep their job-name labels.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.helpers.controlplane import TEST_LABEL, ApiError, TestCluster

KUBEAPI = Path(__file__).parents[1] / "fixtures" / "kubeapi"
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
              "selfLink", "deletionTimestamp")  # fmt: skip
CUSTOM = {  # fixture -> (collection path template, namespaced)
    "pytorchjob_HANDBUILT.json": ("/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs", True),
    "mpijob_v2beta1_HANDBUILT.json": ("/apis/kubeflow.org/v2beta1/namespaces/{ns}/mpijobs", True),
    "vcjob_HANDBUILT.json": ("/apis/batch.volcano.sh/v1alpha1/namespaces/{ns}/jobs", True),
    "queue_HANDBUILT.json": ("/apis/scheduling.volcano.sh/v1beta1/queues", False),
    "elasticquotatree_HANDBUILT.json":
        ("/apis/scheduling.sigs.k8s.io/v1beta1/namespaces/{ns}/elasticquotatrees", True),
}  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((KUBEAPI / name).read_text())


def clean(raw: dict[str, Any], namespace: str | None, test_id: str) -> dict[str, Any]:
    """A fixture object as a client creates it: no server-set metadata, in `namespace` (None:
    cluster-scoped, and labelled for the test's cleanup)."""
    obj = copy.deepcopy(raw)
    meta = obj["metadata"]
    for key in SERVER_SET:
        meta.pop(key, None)
    if namespace is None:
        meta.pop("namespace", None)
        meta["labels"] = {**(meta.get("labels") or {}), TEST_LABEL: test_id}
    else:
        meta["namespace"] = namespace
    return obj


class Seeded:
    """What was made: the server's uid for each fixture uid, and where things went."""

    def __init__(self, kube: TestCluster) -> None:
        self.kube = kube
        self.uids: dict[str, str] = {}  # fixture uid -> server uid
        self.quota_namespace = ""

    def made(self, raw: dict[str, Any], created: dict[str, Any]) -> dict[str, Any]:
        old = raw["metadata"].get("uid")
        if old:
            self.uids[old] = created["metadata"]["uid"]
        return created

    def owners(self, obj: dict[str, Any]) -> None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            ref["uid"] = self.uids.get(ref.get("uid", ""), ref.get("uid", ""))

    def with_status(self, path: str, raw: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        api = self.kube.api
        created = self.made(raw, api.post(path, obj))
        if raw.get("status"):
            created["status"] = raw["status"]
            created = api.put(f"{path}/{created['metadata']['name']}/status", created)
        return created


def priority_class(kube: TestCluster, name: str, value: int = 1000) -> None:
    """A PriorityClass (the Priority admission plugin refuses a pod naming a missing one)."""
    body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "value": value,
            "metadata": {"name": name, "labels": {TEST_LABEL: kube.test_id}}}  # fmt: skip
    try:
        kube.api.post("/apis/scheduling.k8s.io/v1/priorityclasses", body)
    except ApiError as err:
        if err.status != 409:
            raise


def seed_handbuilt(kube: TestCluster, crds: bool = True) -> Seeded:
    """Create every hand-built object (the CRs only with `crds`); see the module docstring."""
    seeded = Seeded(kube)
    api, ns, tid = kube.api, kube.namespace, kube.test_id
    for raw in fixture("nodelist_HANDBUILT.json")["items"]:
        seeded.made(raw, api.post("/api/v1/nodes", clean(raw, None, tid)))
    if crds:
        for name, (template, namespaced) in CUSTOM.items():
            raw = fixture(name)
            obj = clean(raw, ns if namespaced else None, tid)
            seeded.with_status(template.format(ns=ns), raw, obj)
    for raw in fixture("joblist_batch_HANDBUILT.json")["items"]:
        obj = clean(raw, ns, tid)
        obj["spec"].pop("selector", None)
        for labels in (obj["metadata"].get("labels") or {}, obj["spec"]["template"]["metadata"]
                       .get("labels") or {}):  # fmt: skip
            for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
                labels.pop(key, None)
        seeded.owners(obj)
        seeded.with_status(f"/apis/batch/v1/namespaces/{ns}/jobs", raw, obj)
    pods = fixture("podlist_HANDBUILT.json")["items"]
    pods += fixture("podlist_plain_jobs_HANDBUILT.json")["items"]
    for priority in sorted({p["spec"].get("priorityClassName") or "" for p in pods} - {""}):
        priority_class(kube, priority)
    for raw in pods:
        obj = clean(raw, ns, tid)
        for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
            (obj["metadata"].get("labels") or {}).pop(key, None)
        seeded.owners(obj)
        obj.pop("status", None)
        seeded.with_status(f"/api/v1/namespaces/{ns}/pods", raw, obj)
    for raw in fixture("eventlist_HANDBUILT.json")["items"]:
        involved = raw["involvedObject"]
        where = ns if involved.get("namespace") else "default"
        obj = clean(raw, where, tid)
        obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), TEST_LABEL: tid}
        ref = obj["involvedObject"]
        if ref.get("namespace"):
            ref["namespace"] = ns
        ref["uid"] = seeded.uids.get(ref.get("uid", ""), ref.get("uid", ""))
        seeded.made(raw, api.post(f"/api/v1/namespaces/{where}/events", obj))
    seeded.quota_namespace = kube.new_namespace("quota")
    raw = fixture("resourcequota_HANDBUILT.json")
    obj = clean(raw, seeded.quota_namespace, tid)
    seeded.with_status(f"/api/v1/namespaces/{seeded.quota_namespace}/resourcequotas", raw, obj)
    return seeded
