"""The operator's node controls from the command line against the real kube-apiserver
(tests/helpers/controlplane.py): `poolwatch controller restore|ha|jobs` over the Kubernetes
backend, with the changes read back from what the server stored and the audit records from the
state file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from tests.cluster.test_kubernetes_backend import RecordingBackoff
from tests.helpers.controlplane import TestCluster
from tests.helpers.controlplane_seed import seed_handbuilt

pytestmark = pytest.mark.controlplane


def test_restore_ha_and_jobs_from_the_command_line(kube: TestCluster, tmp_path: Path) -> None:
    seed_handbuilt(kube)
    kc = kube.kubeconfig(tmp_path / "kc")
    state = tmp_path / "controller.db"
    (tmp_path / "controller.yaml").write_text(f"state_path: {state}\n")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "poolwatch", "controller", *args, "--kubeconfig", str(kc),
             "--config", str(tmp_path / "controller.yaml")],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip

    def node(name: str) -> dict:
        return kube.api.get(f"/api/v1/nodes/{name}")

    # the seeded pool-910b's only node is isolated: restore it
    assert any(t["key"] == "poolwatch.io/fault" for t in node("npu-node-03")["spec"]["taints"])
    done = cli("restore", "npu-node-03", "--reason", "card replaced")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done:")
    spec = node("npu-node-03")["spec"]
    assert not any(t["key"] == "poolwatch.io/fault" for t in spec.get("taints") or [])
    assert not spec.get("unschedulable")
    # gpu-node-08 runs a job: no HA redundancy; the restored npu-node-03 is idle: it becomes an
    # HA redundant node (a Spare) and a normal node again
    busy = cli("ha", "enable", "gpu-node-08")
    assert busy.returncode == 3
    assert "runs work" in busy.stderr
    enabled = cli("ha", "enable", "npu-node-03")
    assert enabled.returncode == 0, enabled.stderr
    stored = node("npu-node-03")
    assert stored["metadata"]["labels"]["poolwatch.io/status"] == "Spare"
    assert stored["spec"]["unschedulable"] is True
    assert cli("ha", "disable", "npu-node-03").returncode == 0
    stored = node("npu-node-03")
    assert "poolwatch.io/status" not in stored["metadata"]["labels"]
    assert not stored["spec"].get("unschedulable")
    # the job that keeps gpu-node-08 busy is in its pool's job list
    jobs = cli("jobs", "pool-h100-a")
    assert jobs.returncode == 0, jobs.stderr
    assert jobs.stdout.strip(), "the pool's jobs are listed"
    assert cli("jobs", "no-such-pool").returncode == 2
    cmd = [sys.executable, "-m", "poolwatch", "controller", "audit", "--state", str(state)]
    audit = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ops = [line.split("\t")[1:4] for line in audit.splitlines()]
    assert ["restore", "npu-node-03", "done"] in ops
    assert ["enableHaRedundancy", "gpu-node-08", "refused"] in ops
    assert ["enableHaRedundancy", "npu-node-03", "done"] in ops
    assert ["disableHaRedundancy", "npu-node-03", "done"] in ops
    assert ["listPoolJobs", "pool-h100-a", "done"] in ops


def test_a_job_is_made_to_exit_as_the_server_stores_it(kube: TestCluster, tmp_path: Path) -> None:
    """A re-issued job that waited too long exits: a Kubeflow job and a batch Job are suspended
    (their operators then delete the pods) and annotated with the reason, on the real server."""
    seed_handbuilt(kube)
    cluster = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp_path / "kc"), watch_timeout=5,
                                backoff=RecordingBackoff(), sync_timeout=30.0)  # fmt: skip
    cluster.start()
    try:
        deadline = time.monotonic() + 30
        while not cluster.healthy() and time.monotonic() < deadline:
            time.sleep(0.05)
        # this test's jobs only: the server is shared, other tests' objects come and go
        jobs = {j.kind: j for j in cluster.jobs() if j.namespace == kube.namespace}
        paths = {"PyTorchJob": "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs/{name}",
                 "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}"}  # fmt: skip
        for kind, template in paths.items():
            job = jobs[kind]
            cluster.stop_job(job.namespace, job.name, "Failed to be queued.")
            stored = kube.api.get(template.format(ns=job.namespace, name=job.name))
            assert stored["metadata"]["annotations"]["poolwatch.io/stopped"] == (
                "Failed to be queued."
            )
            spec = stored["spec"]
            suspended = spec["runPolicy"]["suspend"] if kind == "PyTorchJob" else spec["suspend"]
            assert suspended is True
    finally:
        cluster.stop()
