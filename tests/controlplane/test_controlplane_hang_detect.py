"""The per-job hang detection time, end to end: `MA_HANG_DETECT_TIME` set in the pod templates of
jobs stored in the real kube-apiserver (a PyTorchJob and a Volcano job, through their CRDs), read
by the real `poolwatch cluster-exporter` process after its list and watch, and served as
`poolwatch_training_job_hang_detect_seconds`: the job's own value, an out-of-range one clamped,
the 30-minute default where unset, and a change to the job followed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.test_controlplane_exporter import exporter, poll
from tests.helpers import Series
from tests.helpers.controlplane import TestCluster
from tests.helpers.controlplane_seed import fixture, seed_handbuilt

pytestmark = pytest.mark.controlplane
NAME = "poolwatch_training_job_hang_detect_seconds"


def with_env(containers: list[Any], value: str) -> list[Any]:
    out = copy.deepcopy(containers)
    out[0]["env"] = [{"name": "MA_HANG_DETECT_TIME", "value": value}]
    return out


def worker_env(value: str) -> Any:
    """A merge patch of the PyTorchJob's Worker template that sets the variable."""
    torch = fixture("pytorchjob_HANDBUILT.json")["spec"]["pytorchReplicaSpecs"]["Worker"]
    containers = with_env(torch["template"]["spec"]["containers"], value)
    return {"spec": {"pytorchReplicaSpecs": {"Worker": {"template": {"spec": {
        "containers": containers}}}}}}  # fmt: skip


def detect(series: Series, job: str) -> float | None:
    hits = [v for (n, ls), v in series.items() if n == NAME and ("training_job", job) in ls]
    return hits[0] if len(hits) == 1 else None


def test_the_exporter_serves_each_jobs_detection_time(kube: TestCluster, tmp_path: Path) -> None:
    seed_handbuilt(kube)
    ns = kube.namespace
    torch_path = f"/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs/bert-large-ft"
    kube.api.patch(torch_path, worker_env("10"))
    tasks = copy.deepcopy(fixture("vcjob_HANDBUILT.json")["spec"]["tasks"])
    tasks[0]["template"]["spec"]["containers"] = with_env(
        tasks[0]["template"]["spec"]["containers"], "1000"
    )
    kube.api.patch(
        f"/apis/batch.volcano.sh/v1alpha1/namespaces/{ns}/jobs/gpt-pretrain",
        {"spec": {"tasks": tasks}},
    )
    log = tmp_path / "exporter.log"
    with exporter(kube.kubeconfig(tmp_path / "kubeconfig"), log) as port:
        s = poll(port, 1, lambda s: detect(s, "bert-large-ft") == 600, log=log)
        assert detect(s, "gpt-pretrain") == 720 * 60  # 1000 minutes, clamped to 720
        assert detect(s, "sweep-17") == 30 * 60  # a plain-pod job that sets nothing
        # the job's setting changes: the exporter follows the watch
        kube.api.patch(torch_path, worker_env("45"))
        poll(port, 1, lambda s: detect(s, "bert-large-ft") == 45 * 60, log=log)
