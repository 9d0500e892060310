"""The CustomResourceDefinitions poolwatch reads, for the real API server in the tests.

The operators' own CRDs are large (a full PodTemplateSpec schema per replica type); these keep
what makes a CRD behave like the published one for poolwatch: the published group, version,
kind, plural, scope and status subresource, and a structural schema that types every field
poolwatch reads (replica counts and templates, run policies, conditions, phases, queues, quantity
maps) and keeps the rest (`x-kubernetes-preserve-unknown-fields`). So a field of the wrong type is
refused by the API server exactly as with the operator's CRD, and the hand-built objects in
tests/fixtures/kubeapi/ are stored as written.

Published definitions they follow:
- kubeflow.org/v1 PyTorchJob, TFJob, MPIJob: kubeflow/training-operator manifests/base/crds
  (spec.runPolicy.schedulingPolicy{queue, priorityClass}, spec.<kind>ReplicaSpecs{<type>:
  {replicas, restartPolicy, template}}, status{conditions, replicaStatuses, startTime,
  completionTime}).
- kubeflow.org/v2beta1 MPIJob: kubeflow/mpi-operator deploy/v2beta1 (mpiReplicaSpecs, as v1);
  one CRD serves both versions here (storage v2beta1), as a cluster has either one or the other.
- batch.volcano.sh/v1alpha1 Job and scheduling.volcano.sh/v1beta1 Queue: volcano-sh/volcano
  config/crd (spec.tasks[{name, replicas, template}], spec.queue, spec.priorityClassName,
  status.state{phase, lastTransitionTime}, status.retryCount; Queue spec.capability,
  spec.guarantee.resource, status.allocated; Queue is cluster-scoped).
- scheduling.sigs.k8s.io/v1alpha1 ElasticQuota: kubernetes-sigs/scheduler-plugins
  manifests/crds (spec.min, spec.max, status.used).
- scheduling.sigs.k8s.io/v1beta1 ElasticQuotaTree: Alibaba Cloud ACK (spec.root{name, min, max,
  children}); children nest without limit, which a structural schema cannot spell, so below the
  root they are kept as written.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

KEEP: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
TIME: Schema = {"type": "string", "format": "date-time"}
QUANTITIES: Schema = {  # a ResourceList, as controller-gen writes it
    "type": "object",
    "additionalProperties": {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
}
CONDITIONS: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": STRING,
            "status": STRING,
            "reason": STRING,
            "message": STRING,
            "lastUpdateTime": TIME,
            "lastTransitionTime": TIME,
        },
    },
}
REPLICA_SPEC: Schema = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "format": "int32", "minimum": 0},
        "restartPolicy": STRING,
        "template": KEEP,
    },
}
RUN_POLICY: Schema = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "schedulingPolicy": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"queue": STRING, "priorityClass": STRING},
        },
    },
}
KUBEFLOW_STATUS: Schema = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "conditions": CONDITIONS,
        "replicaStatuses": KEEP,
        "startTime": TIME,
        "completionTime": TIME,
        "lastReconcileTime": TIME,
    },
}


def _obj(properties: Schema) -> Schema:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "properties": properties}  # fmt: skip


def kubeflow_spec(replica_specs: str) -> Schema:
    return _obj({
        "runPolicy": RUN_POLICY,
        replica_specs: {"type": "object", "additionalProperties": REPLICA_SPEC},
    })  # fmt: skip


def crd(
    group: str,
    kind: str,
    plural: str,
    versions: dict[str, tuple[Schema, Schema]],  # version -> (spec, status) schemas
    *,
    namespaced: bool = True,
    storage: str = "",
    short_names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An apiextensions.k8s.io/v1 CRD with a status subresource on every version."""
    storage = storage or next(iter(versions))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"poolwatch.io/test-crd": "true"},
            # a *.k8s.io group needs this; scheduler-plugins' own CRD carries the same
            **(
                {
                    "annotations": {
                        "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/scheduler-plugins/pull/52"
                    }
                }
                if group.endswith(".k8s.io")
                else {}
            ),
        },
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                **({"shortNames": list(short_names)} if short_names else {}),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == storage,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": STRING,
                                "kind": STRING,
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
                for version, (spec, status) in versions.items()
            ],
        },
    }


VOLCANO_JOB_SPEC = _obj({
    "queue": STRING,
    "priorityClassName": STRING,
    "minAvailable": INTEGER,
    "maxRetry": INTEGER,
    "tasks": {
        "type": "array",
        "items": _obj({"name": STRING, "replicas": INTEGER, "template": KEEP}),
    },
})  # fmt: skip
VOLCANO_JOB_STATUS = _obj({
    "state": _obj({"phase": STRING, "reason": STRING, "message": STRING,
                   "lastTransitionTime": TIME}),
    "retryCount": INTEGER,
    "conditions": {
        "type": "array",
        "items": _obj({"status": STRING, "lastTransitionTime": TIME}),
    },
})  # fmt: skip
QUEUE_SPEC = _obj({
    "weight": INTEGER,
    "reclaimable": {"type": "boolean"},
    "capability": QUANTITIES,
    "guarantee": _obj({"resource": QUANTITIES}),
})  # fmt: skip
QUEUE_STATUS = _obj({"state": STRING, "allocated": QUANTITIES})
TREE_NODE = _obj({"name": STRING, "max": QUANTITIES, "min": QUANTITIES,
                  "namespaces": {"type": "array", "items": STRING},
                  "children": {"type": "array", "items": KEEP}})  # fmt: skip

CRDS: tuple[dict[str, Any], ...] = (
    crd("kubeflow.org", "PyTorchJob", "pytorchjobs",
        {"v1": (kubeflow_spec("pytorchReplicaSpecs"), KUBEFLOW_STATUS)}),
    crd("kubeflow.org", "TFJob", "tfjobs",
        {"v1": (kubeflow_spec("tfReplicaSpecs"), KUBEFLOW_STATUS)}),
    crd("kubeflow.org", "MPIJob", "mpijobs",
        {"v1": (kubeflow_spec("mpiReplicaSpecs"), KUBEFLOW_STATUS),
         "v2beta1": (kubeflow_spec("mpiReplicaSpecs"), KUBEFLOW_STATUS)},
        storage="v2beta1"),
    crd("batch.volcano.sh", "Job", "jobs", {"v1alpha1": (VOLCANO_JOB_SPEC, VOLCANO_JOB_STATUS)},
        short_names=("vcjob", "vj")),
    crd("scheduling.volcano.sh", "Queue", "queues", {"v1beta1": (QUEUE_SPEC, QUEUE_STATUS)},
        namespaced=False, short_names=("q",)),
    crd("scheduling.sigs.k8s.io", "ElasticQuota", "elasticquotas",
        {"v1alpha1": (_obj({"min": QUANTITIES, "max": QUANTITIES}), _obj({"used": QUANTITIES}))},
        short_names=("eq", "eqs")),
    crd("scheduling.sigs.k8s.io", "ElasticQuotaTree", "elasticquotatrees",
        {"v1beta1": (_obj({"root": TREE_NODE}), KEEP)}),
)  # fmt: skip
