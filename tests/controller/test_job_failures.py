"""How a failed job's cause is read (controller/failures.py, from the pod end reasons that
k8s_convert.pod_reason extracts) and what a re-created job keeps (k8s_write.fresh_job). Pure
functions over captured-shaped objects; the end-to-end behaviour on the real API server is in
test_controlplane_jobs.py."""

from __future__ import annotations

import pytest

from poolwatch.cluster.kubernetes.convert import pod_reason
from poolwatch.cluster.kubernetes.write import fresh_job
from poolwatch.cluster.model import JobStatus, Node, NodeStatus, Pod, TrainingJob
from poolwatch.controller.failures import classify

JOB = TrainingJob("train", "team-a", "u1", "PyTorchJob", JobStatus.FAILED)


def terminated(code: int, reason: str = "Error") -> dict:
    return {"containerStatuses": [{"name": "main", "state": {"terminated": {
        "exitCode": code, "reason": reason}}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"phase": "Failed", "reason": "Evicted", **terminated(137)}, "Evicted"),
        ({"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True",
          "reason": "DeletionByTaintManager"}], **terminated(1)}, "DeletionByTaintManager"),
        ({"phase": "Failed", **terminated(137, "OOMKilled")}, "OOMKilled"),
        ({"phase": "Failed", **terminated(3)}, "Error:3"),
        ({"phase": "Succeeded", **terminated(0, "Completed")}, ""),
        ({"phase": "Running"}, ""),
    ],
)  # fmt: skip
def test_a_pods_end_reason(status: dict, reason: str) -> None:
    assert pod_reason(status) == reason


def node(name: str, ready: str = "True", fault: str = "") -> Node:
    taints = (("poolwatch.io/fault", fault, "NoSchedule"),) if fault else ()
    return Node(name, name, "p0", NodeStatus.AVAILABLE, taints=taints,
                conditions=(("Ready", ready),))  # fmt: skip


def pod(node_name: str, reason: str) -> Pod:
    return Pod(f"train-worker-{node_name}", "team-a", "p", node_name, "Failed", "train",
               reason=reason)  # fmt: skip


@pytest.mark.parametrize(
    ("pods", "cause", "evidence"),
    [
        ([pod("n1", "Error:1")], "platform", "isolated, fault code A050101 (GPU ECC error exists)"),
        ([pod("n2", "Error:1")], "platform", "not Ready"),
        ([pod("gone", "Error:1")], "platform", "is gone"),
        ([pod("n3", "Evicted")], "platform", "Evicted"),
        ([pod("n3", "OOMKilled")], "user", "OOMKilled"),
        ([pod("n3", "Error:1"), pod("n1", "")], "platform", "isolated"),
        ([], "user", "no pod of job team-a/train shows a platform fault"),
    ],
)
def test_a_failure_is_the_platforms_only_with_evidence(pods: list, cause: str, evidence: str):
    nodes = {"n1": node("n1", fault="A050101"), "n2": node("n2", ready="Unknown"),
             "n3": node("n3")}  # fmt: skip
    got, said = classify(JOB, pods, nodes)
    assert got == cause
    assert evidence in said


def test_a_node_isolated_for_a_driver_upgrade_is_no_platform_fault() -> None:
    nodes = {"n1": node("n1", fault="A200001")}
    assert classify(JOB, [pod("n1", "Error:1")], nodes, ("A200001",))[0] == "user"
    assert classify(JOB, [pod("n1", "Error:1")], nodes)[0] == "platform"


def test_a_re_created_job_keeps_its_spec_and_loses_what_the_server_assigned() -> None:
    raw = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train", "namespace": "team-a", "uid": "u1", "resourceVersion": "9",
                     "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1,
                     "managedFields": [{}], "labels": {"team": "nlp"},
                     "annotations": {"fault-tolerance/job-retry-num": "3"}},
        "spec": {"backoffLimit": 0,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                 "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1",
                                                      "controller-uid": "u1", "app": "t"}},
                              "spec": {"containers": [{"name": "main", "image": "x"}]}}},
        "status": {"failed": 1},
    }  # fmt: skip
    body = fresh_job(raw, {"poolwatch.io/restarts": "1"}, "")
    assert "status" not in body
    assert body["metadata"] == {"name": "train", "namespace": "team-a",
                                "labels": {"team": "nlp"},
                                "annotations": {"fault-tolerance/job-retry-num": "3",
                                                "poolwatch.io/restarts": "1"}}  # fmt: skip
    assert "selector" not in body["spec"]
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "t"}
    assert raw["status"] == {"failed": 1}  # the original is not changed
    raw["spec"]["manualSelector"] = True  # a selector the user chose stays
    assert "selector" in fresh_job(raw, {}, "")["spec"]
    kubeflow = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {},
                "spec": {"pytorchReplicaSpecs": {}}}  # fmt: skip
    again = fresh_job(kubeflow, {}, "training-high")
    assert again["spec"]["runPolicy"]["schedulingPolicy"]["priorityClass"] == "training-high"
