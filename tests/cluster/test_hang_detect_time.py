"""A job's hang detection time (`MA_HANG_DETECT_TIME`, minutes) from its pod templates' env, and
the per-job series the cluster exporter gives the hang rule.

The conversion is pure (a job object in, a TrainingJob out), so these tests feed it the same
hand-built API objects the Kubernetes backend's tests use; the rule that reads the series is
tested with promtool (rules/default/tests/job-test.yaml)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from poolwatch.cluster.kubernetes.convert import pod_from
from poolwatch.cluster.kubernetes.hang import hang_detect_minutes
from poolwatch.cluster.kubernetes.jobs import batch_job_from, kubeflow_job_from, volcano_job_from
from poolwatch.cluster.kubernetes.podjobs import pod_job_from, pod_job_part
from poolwatch.cluster.kubernetes.read import Context
from poolwatch.cluster.model import JobStatus, TrainingJob
from poolwatch.exporters.cluster.generators.job import JOB
from tests.helpers import FIXTURES

KUBEAPI = FIXTURES / "kubeapi"


def fixture(name: str) -> Any:
    return json.loads((KUBEAPI / name).read_text())


def with_env(raw: Any, templates: list[Any], *values: Any) -> Any:
    """Set MA_HANG_DETECT_TIME in the first container of each given template."""
    for template, value in zip(templates, values, strict=True):
        env = {"name": "MA_HANG_DETECT_TIME"}
        env |= (
            {"valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
            if value is ...
            else {"value": value}
        )
        container = template["spec"]["containers"][0]
        container["env"] = [{"name": "OTHER", "value": "1"}, env]
    return raw


def pytorch(*values: Any) -> tuple[TrainingJob, list[tuple[str, str]]]:
    raw = fixture("pytorchjob_HANDBUILT.json")
    specs = raw["spec"]["pytorchReplicaSpecs"]
    specs["Master"] = copy.deepcopy(specs["Worker"])
    templates = [specs["Master"]["template"], specs["Worker"]["template"]][: len(values)]
    notes: list[tuple[str, str]] = []
    ctx = Context(note=lambda r, d: notes.append((r, d)))
    [job] = kubeflow_job_from(with_env(raw, templates, *values), ctx, "PyTorchJob")
    return job, notes


def test_unset_is_the_documented_default_of_30_minutes() -> None:
    job, notes = pytorch()
    assert (job.hang_detect_minutes, notes) == (30, [])


@pytest.mark.parametrize(("value", "minutes"), [("10", 10), ("720", 720), (" 45 ", 45)])
def test_a_value_in_range_is_taken(value: str, minutes: int) -> None:
    job, notes = pytorch(value)
    assert (job.hang_detect_minutes, notes) == (minutes, [])


@pytest.mark.parametrize(("value", "minutes"), [("5", 10), ("0", 10), ("-3", 10), ("1000", 720)])
def test_out_of_range_is_clamped_with_a_note_naming_job_and_value(value: str, minutes: int) -> None:
    job, notes = pytorch(value)
    assert job.hang_detect_minutes == minutes
    [(reason, detail)] = notes
    assert reason == "job: MA_HANG_DETECT_TIME outside 10-720 minutes, clamped"
    assert detail == f"{job.namespace}/{job.name}: {int(value)} -> {minutes}"


@pytest.mark.parametrize("value", ["30m", "half an hour", "", "12.5"])
def test_not_a_whole_number_keeps_the_default_with_a_note(value: str) -> None:
    job, notes = pytorch(value)
    assert job.hang_detect_minutes == 30
    assert [r for r, _ in notes] == ["job: MA_HANG_DETECT_TIME is not a whole number of minutes"]
    assert repr(value) in notes[0][1]


def test_a_reference_is_not_read_and_keeps_the_default() -> None:
    job, notes = pytorch(...)
    assert job.hang_detect_minutes == 30
    assert [r for r, _ in notes] == ["job: MA_HANG_DETECT_TIME from a reference, not read"]


def test_replicas_that_disagree_take_the_largest() -> None:
    job, _ = pytorch("15", "60")
    assert job.hang_detect_minutes == 60


def test_volcano_and_batch_jobs_read_their_templates() -> None:
    vc = fixture("vcjob_HANDBUILT.json")
    with_env(vc, [vc["spec"]["tasks"][0]["template"]], "20")
    [job] = volcano_job_from(vc, Context())
    assert job.hang_detect_minutes == 20
    batch = fixture("joblist_batch_HANDBUILT.json")["items"][0]  # a CronJob's Job
    with_env(batch, [batch["spec"]["template"]], "90")
    [job] = batch_job_from(batch, Context())
    assert job.hang_detect_minutes == 90


def test_a_plain_pod_job_reads_its_pods() -> None:
    ctx = Context()
    pods = fixture("podlist_plain_jobs_HANDBUILT.json")["items"]
    parts = []
    for raw in pods:
        raw["spec"]["containers"][0]["env"] = [{"name": "MA_HANG_DETECT_TIME", "value": "12"}]
        part = pod_job_part(raw, pod_from(raw, ctx), ctx)
        if part is not None:
            parts.append(part)
    assert parts
    ns, name = parts[0].namespace, parts[0].job
    job = pod_job_from(ns, name, [p for p in parts if (p.namespace, p.job) == (ns, name)], ctx)
    assert job is not None
    assert job.hang_detect_minutes == 12


def test_the_exporter_serves_it_in_seconds_per_job() -> None:
    gen = next(g for g in JOB if g.name == "poolwatch_training_job_hang_detect_seconds")
    job = TrainingJob("bert", "team-a", "u", "PyTorchJob", JobStatus.RUNNING, pool="pa",
                      hang_detect_minutes=10)  # fmt: skip
    assert gen.render(job) == (
        b'poolwatch_training_job_hang_detect_seconds{pool="pa",namespace="team-a",'
        b'training_job="bert"} 600.0\n'
    )
    default = TrainingJob("gpt", "team-a", "v", "PyTorchJob", JobStatus.RUNNING, pool="pa")
    assert gen.render(default).endswith(b" 1800.0\n")


def test_direct_calls_without_entries_give_the_default() -> None:
    assert hang_detect_minutes([], "ns/job", lambda r, d: None) == 30
