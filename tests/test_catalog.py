"""The metric catalog: every seed row accounted for, naming conventions, docs in sync."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES

from poolwatch.core import catalog
from poolwatch.core.catalog import ALL_SPECS, UNPRODUCED, all_alias_names, render
from poolwatch.exporters.node.collector import REGISTRY

ROOT = Path(__file__).parent.parent
SEED_NAMES = {r["name"] for r in csv.DictReader((FIXTURES / "spec/seed-metrics.csv").open())}
UNIT_SUFFIX = {
    u: f"_{u}" for u in ("bytes", "seconds", "ratio", "celsius", "watts", "joules", "hertz")
}


def test_every_seed_metric_is_produced_or_listed_with_a_reason() -> None:
    aliases = set(all_alias_names())
    missing = SEED_NAMES - aliases - set(UNPRODUCED)
    assert not missing, f"seed metrics neither produced nor listed: {sorted(missing)}"
    assert not aliases & set(UNPRODUCED), "a seed metric cannot be both produced and unproduced"
    assert not aliases - SEED_NAMES, "aliases must be seed names"
    assert not set(UNPRODUCED) - SEED_NAMES
    for u in UNPRODUCED.values():
        assert len(u.reason) > 20, f"{u.name}: say why it is not produced"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_canonical_names_follow_prometheus_conventions(spec: catalog.MetricSpec) -> None:
    assert re.fullmatch(r"poolwatch_[a-z0-9_]+", spec.name)
    assert spec.name.endswith("_total") == (spec.type == "counter")
    assert spec.name.endswith("_info") == (spec.type == "info")
    base = spec.name.removesuffix("_total")
    if spec.unit in UNIT_SUFFIX:
        assert UNIT_SUFFIX[spec.unit] in base, f"{spec.name} lacks its unit"
    assert not {"node", "pool", "instance", "job", "cluster"} & set(spec.labels)
    assert spec.help.endswith(")."), "help names the collector and source: '... (host, /proc)'"


def test_each_collector_owns_its_families_and_is_registered() -> None:
    from poolwatch.core.catalog.cluster import CLUSTER_IDENTITY

    # the other parts serve their own families; every other collector is a node exporter one
    not_node = {"runner", "rules_engine", "controller", "alerts_receiver", "alerts_delivery",
                *CLUSTER_IDENTITY}  # fmt: skip
    node_collectors = {s.collector for s in ALL_SPECS} - not_node
    from poolwatch.exporters.node import collectors  # noqa: F401 - registers

    assert node_collectors == set(REGISTRY)


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(catalog.CatalogError, match="not in the poolwatch metric catalog"):
        catalog.by_name("poolwatch_no_such_metric")


def test_committed_docs_match_the_catalog() -> None:
    assert (ROOT / "docs/metrics.md").read_text() == render.markdown(), (
        "docs/metrics.md is stale: run `poolwatch catalog --markdown > docs/metrics.md`"
    )


def test_cli_prints_markdown_and_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "poolwatch", "catalog", "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    assert {m["name"] for m in doc["metrics"]} == {s.name for s in ALL_SPECS}
    assert len(doc["unproduced"]) == len(UNPRODUCED)
    md = subprocess.run(
        [sys.executable, "-m", "poolwatch", "catalog", "--markdown"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert md.stdout == render.markdown()
