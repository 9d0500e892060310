"""Every dashboard panel returns data from a real Prometheus scraping `poolwatch demo`.

For a GPU pool and an NPU pool of the simulation, the dashboard variables get values from what
Prometheus holds (a pool, a node and a running job of it, the job's user and queue), every panel
query runs as an instant query, and each must return at least one series; every table column must
be filled (its query returns data, or its label is set on some query's series).

SIM_MISSING is the allow-list: node exporter families the simulated nodes do not serve
(poolwatch/cluster/sim_metrics.FAMILIES lists what they serve), so a query that needs one of them
has no data for a simulated pool. Each entry is checked to be really absent for the pool, so the
list has to shrink the day the simulation starts producing it. It is empty: the simulation serves
every family a panel reads.
"""

from __future__ import annotations

import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from helpers import free_block
from prom_versions import Prometheus

from poolwatch.app.demo import Demo
from poolwatch.cluster.sim_metrics import FAMILIES
from poolwatch.dashboards import lint, registry

from .conftest import prom_query, running_version, use_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIM_MISSING: dict[str, str] = {}
POOLS = {"nvidia": ("gpu-a", "nvidia.com/gpu"), "huawei": ("npu-b", "huawei.com/Ascend910")}


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    try:
        return prom_query(base, expr)
    except (OSError, urllib.error.URLError):
        return []


def _running_job(base: str, pool: str) -> dict[str, str] | None:
    expr = (f'max by (node, namespace, training_job, pod) (poolwatch_accelerator_allocation_info'
            f'{{pool="{pool}"}}) and on (namespace, training_job) (poolwatch_training_job_status'
            f'{{status="Running"}} == 1) and on (namespace, training_job) '
            f"poolwatch_training_job_info")  # fmt: skip
    found = _query(base, expr)
    if not found:
        return None
    job = found[0]["metric"]
    info = _query(base, f'poolwatch_training_job_info{{namespace="{job["namespace"]}", '
                        f'training_job="{job["training_job"]}"}}')  # fmt: skip
    if not info:
        return None
    return {**job, **{k: info[0]["metric"][k] for k in ("owner", "queue", "job_type")}}


def _values(vendor: str, job: dict[str, str]) -> dict[str, str]:
    pool, resource = POOLS[vendor]
    ns, name = job["namespace"], job["training_job"]
    return {
        "accel": vendor, "pool": pool, "gpu_node": job["node"], "node": job["node"], "GPU": ".*",
        "job_namespace": ns, "namespace": ns, "job_type": job["job_type"], "job_name": name,
        "job": name, "pod": ".*", "user": job["owner"], "vc": job["queue"], "resource": resource,
    }  # fmt: skip


def _ready(base: str) -> dict[str, dict[str, str]] | None:
    """The running job per vendor once both pools have one and the counters have two samples."""
    booked = _query(base, "increase(poolwatch_cluster_accelerator_allocated_seconds_total[1m])")
    if not booked:
        return None
    jobs = {vendor: _running_job(base, pool) for vendor, (pool, _) in POOLS.items()}
    return jobs if all(jobs.values()) else None  # type: ignore[return-value]


def _problems(base: str, models: dict[str, dict[str, Any]], vendor: str,
              values: dict[str, str]) -> list[str]:  # fmt: skip
    out: list[str] = []
    for model in models.values():
        for panel in lint.panels(model):
            results: dict[str, list[dict[str, Any]]] = {}
            for t in panel.get("targets", []):
                expr = lint.substitute(t["expr"], values)
                results[t["refId"]] = res = _query(base, expr)
                if not res and not _excused(expr):
                    out.append(f"{vendor}: {model['uid']}: {panel['title']!r} {t['refId']}: "
                               f"no data for {expr}")  # fmt: skip
            out += _empty_columns(model["uid"], panel, results, vendor)
    return out


def _excused(expr: str) -> bool:
    return bool(lint.metric_names(expr) & set(SIM_MISSING))


def _empty_columns(uid: str, panel: dict[str, Any], results: dict[str, list[dict[str, Any]]],
                   vendor: str) -> list[str]:  # fmt: skip
    out = []
    exprs = {t["refId"]: t["expr"] for t in panel.get("targets", [])}
    for tr in panel.get("transformations", []):
        if tr["id"] != "organize":
            continue
        for field, title in tr["options"]["renameByName"].items():
            if field == "Value":
                continue  # the one-query spelling of "Value #A"
            if field.startswith("Value #"):
                ref = field.removeprefix("Value #")
                filled = bool(results.get(ref)) or _excused(exprs[ref])
            else:
                filled = any(r["metric"].get(field) for res in results.values() for r in res) or (
                    all(_excused(e) for e in exprs.values())
                )
            if not filled:
                out.append(f"{vendor}: {uid}: {panel['title']!r}: column {title!r} is empty")
    return out


def test_every_panel_and_column_has_data_for_a_gpu_and_an_npu_pool(
    tmp_path: Path, prom: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SIM_MISSING:
        assert name not in FAMILIES, f"the simulation serves {name} now: drop it from SIM_MISSING"
    models = registry.dashboards()
    on_path = use_prometheus(prom, tmp_path, monkeypatch)
    demo = Demo(free_block(), tmp_path / "demo", speed=10.0, scrape_interval="1s")
    demo.start()
    try:
        assert demo.prometheus is not None
        base = f"http://127.0.0.1:{demo.ports.prometheus}"
        assert running_version(base) == on_path, "the demo did not run the Prometheus on PATH"
        deadline = time.monotonic() + 45
        jobs = None
        while time.monotonic() < deadline and not (jobs := _ready(base)):
            time.sleep(0.5)
        assert jobs, "no running job in both simulated pools within 45 s"
        for vendor, job in jobs.items():
            pool = POOLS[vendor][0]
            for name in SIM_MISSING:
                assert not _query(base, f'{name}{{pool="{pool}"}}'), f"{name} exists for {pool}"
            problems = _problems(base, models, vendor, _values(vendor, job))
            while problems and time.monotonic() < deadline:  # rates need a second sample
                time.sleep(1)
                problems = _problems(base, models, vendor, _values(vendor, job))
            assert not problems, "\n".join(problems)
    finally:
        demo.stop()
