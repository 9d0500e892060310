"""The formulas behind the seed-defined columns, evaluated by promtool on series whose answer the
seed prints: the Apulis idle percentage, VC availability, pool fragments, job duration.

The expressions are read from the generated JSON, with the variables set as a user would, so the
test checks the query Grafana runs, not a copy of it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prom_versions import Prometheus

from poolwatch.dashboards import lint, registry

pytestmark = pytest.mark.integration
ALL = {"accel": "nvidia", "pool": ".*", "vc": ".*", "namespace": ".*", "job_namespace": ".*",
       "job_name": ".*", "job_type": ".*", "resource": "nvidia.com/gpu"}  # fmt: skip
DAY = 86400


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    return registry.dashboards()


def column(models: dict[str, dict[str, Any]], uid: str, panel: str, title: str) -> str:
    """The substituted query that fills column `title` of table `panel`."""
    p = next(p for p in lint.panels(models[uid]) if p["title"] == panel)
    organize = next(t for t in p["transformations"] if t["id"] == "organize")["options"]
    field = next(f for f, t in organize["renameByName"].items() if t == title and "#" in f)
    target = next(t for t in p["targets"] if t["refId"] == field.removeprefix("Value #"))
    return lint.substitute(target["expr"], ALL)


def as_shown(models: dict[str, dict[str, Any]], uid: str, panel: str, title: str) -> str:
    """The column's query rounded as Grafana shows it (its `decimals` override, which must be
    there): the figure a user reads, the same on Prometheus 2.x and 3.x."""
    p = next(p for p in lint.panels(models[uid]) if p["title"] == panel)
    (override,) = [o for o in p["fieldConfig"]["overrides"] if o["matcher"]["options"] == title]
    (decimals,) = [prop["value"] for prop in override["properties"] if prop["id"] == "decimals"]
    return f"round({column(models, uid, panel, title)}, {10.0**-decimals:g})"


def run_promtool(prom: Prometheus, tmp_path: Path, series: list[dict[str, str]],
                 tests: list[dict[str, Any]], interval: str = "1d") -> None:  # fmt: skip
    doc = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": interval, "input_series": series, "promql_expr_test": tests}],
    }
    path = tmp_path / "dashboards-test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run([prom.promtool, "test", "rules", str(path)], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def _job(ns: str, job: str, owner: str, resource: str) -> dict[str, str]:
    return {"series": f'poolwatch_training_job_info{{pool="p",namespace="{ns}",'
                      f'training_job="{job}",'
                      f'owner="{owner}",queue="vc1",job_type="PyTorchJob",'
                      f'accelerator_resource="{resource}"}}', "values": "1x30"}  # fmt: skip


def _hours(metric: str, labels: str, hours: int) -> dict[str, str]:
    """A counter that grows by `hours` hours over the 30 days of the test."""
    return {"series": f"{metric}{{{labels}}}", "values": f"0+{hours * 3600 // 30}x30"}


def test_idle_percentage_is_floored_and_empty_without_bookings(
    models: dict[str, dict[str, Any]], tmp_path: Path, prom: Prometheus
) -> None:
    booked = "poolwatch_cluster_accelerator_allocated_seconds_total"
    idle = "poolwatch_container_accelerator_idle_seconds_total"
    dev = 'pool="p",node="n1",vendor="nvidia",model="H100",index="0",uuid="G0",container="c"'
    series = [
        _job("ns1", "j1", "weilin", "nvidia.com/gpu"),
        _job("ns1", "j2", "bifeng peng", "nvidia.com/gpu"),
        _job("ns1", "j3", "yunxia chu", "nvidia.com/gpu"),
        # the seed's figure 27: 28 h booked, 19 idle -> 67; 17 and 14 -> 82; 0 booked -> "-"
        _hours(booked, 'owner="weilin",queue="vc1",resource="nvidia.com/gpu"', 28),
        _hours(booked, 'owner="bifeng peng",queue="vc1",resource="nvidia.com/gpu"', 17),
        _hours(booked, 'owner="yunxia chu",queue="vc1",resource="nvidia.com/gpu"', 0),
        _hours(idle, f'{dev},namespace="ns1",training_job="j1",pod="j1-0"', 19),
        _hours(idle, f'{dev},namespace="ns1",training_job="j2",pod="j2-0"', 14),
        _hours(idle, f'{dev},namespace="ns1",training_job="j3",pod="j3-0"', 0),
    ]
    uid, table = "poolwatch-apulis-vc-users", "Team VC User Status"
    run_promtool(prom, tmp_path, series, [
        {"expr": column(models, uid, table, "Past Month Idle Hour %"), "eval_time": "30d",
         "exp_samples": [
             {"labels": '{owner="weilin",resource="nvidia.com/gpu"}', "value": 67},
             {"labels": '{owner="bifeng peng",resource="nvidia.com/gpu"}', "value": 82}]},
        # Prometheus 3 extrapolates increase() to the window's open left edge (2.x has a sample
        # on it): 17.000000000000004 for 17, shown as 17
        {"expr": as_shown(models, uid, table, "Past Month Booked Hour"), "eval_time": "30d",
         "exp_samples": [
             {"labels": '{owner="weilin",resource="nvidia.com/gpu"}', "value": 28},
             {"labels": '{owner="bifeng peng",resource="nvidia.com/gpu"}', "value": 17},
             {"labels": '{owner="yunxia chu",resource="nvidia.com/gpu"}', "value": 0}]},
    ])  # fmt: skip


def test_vc_available_is_bounded_by_the_limit_and_by_idle_devices(
    models: dict[str, dict[str, Any]], tmp_path: Path, prom: Prometheus
) -> None:
    q = 'namespace="",kind="Queue",resource="nvidia.com/gpu"'
    series = [
        {"series": f'poolwatch_quota_max{{{q},quota="big"}}', "values": "16x2"},
        {"series": f'poolwatch_quota_used{{{q},quota="big"}}', "values": "10x2"},
        {"series": f'poolwatch_quota_max{{{q},quota="small"}}', "values": "4x2"},
        {"series": f'poolwatch_quota_used{{{q},quota="small"}}', "values": "3x2"},
        {"series": 'poolwatch_pool_accelerators_idle{pool="p",resource="nvidia.com/gpu"}',
         "values": "4x2"},
    ]  # fmt: skip
    uid, table = "poolwatch-apulis-vc", "Team Virtual Cluster Status"
    labels = '{{quota="{}",resource="nvidia.com/gpu"}}'
    run_promtool(prom, tmp_path, series, [
        # big: 6 unused of its limit, the pool has 4 idle -> 4 available, 2 unschedulable
        {"expr": column(models, uid, table, "Available"), "eval_time": "1m",
         "exp_samples": [{"labels": labels.format("big"), "value": 4},
                         {"labels": labels.format("small"), "value": 1}]},
        {"expr": column(models, uid, table, "Unschedulable"), "eval_time": "1m",
         "exp_samples": [{"labels": labels.format("big"), "value": 2},
                         {"labels": labels.format("small"), "value": 0}]},
    ], interval="1m")  # fmt: skip


def test_fragments_table_pairs_idle_cards_with_each_task_size(
    models: dict[str, dict[str, Any]], tmp_path: Path, prom: Prometheus
) -> None:
    r = 'pool="p",resource="nvidia.com/gpu"'
    series = [
        {"series": f'poolwatch_pool_accelerator_fragments{{{r},task_cards="{n}"}}', "values": v}
        for n, v in (("1", "0x2"), ("4", "3x2"), ("8", "7x2"))
    ] + [{"series": f"poolwatch_pool_accelerators_idle{{{r}}}", "values": "7x2"}]
    run_promtool(prom, tmp_path, series, [
        {"expr": column(models, "poolwatch-ma-pool", "${accel:text} Fragments", "Idle Cards"),
         "eval_time": "1m",
         "exp_samples": [{"labels": f'{{{r},task_cards="{n}"}}', "value": 7} for n in "148"]},
    ], interval="1m")  # fmt: skip


def test_job_duration_runs_to_completion_or_to_now(
    models: dict[str, dict[str, Any]], tmp_path: Path, prom: Prometheus
) -> None:
    j = 'pool="p",namespace="ns"'
    series = [
        _job("ns", "done", "u", "nvidia.com/gpu"), _job("ns", "live", "u", "nvidia.com/gpu"),
        {"series": f'poolwatch_training_job_start_timestamp_seconds{{{j},training_job="done"}}',
         "values": "60x5"},
        {"series": "poolwatch_training_job_completion_timestamp_seconds"
                   f'{{{j},training_job="done"}}',
         "values": "180x5"},
        {"series": f'poolwatch_training_job_start_timestamp_seconds{{{j},training_job="live"}}',
         "values": "120x5"},
    ]  # fmt: skip
    run_promtool(prom, tmp_path, series, [
        {"expr": column(models, "poolwatch-ack-training-jobs", "Training Jobs", "Duration"),
         "eval_time": "5m",
         "exp_samples": [{"labels": '{namespace="ns",training_job="done"}', "value": 120},
                         {"labels": '{namespace="ns",training_job="live"}', "value": 180}]},
    ], interval="1m")  # fmt: skip
