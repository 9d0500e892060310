"""The dashboards: valid PromQL on catalog metrics, sound layout and links, thresholds from the
rule files, the seeds' titles, and committed JSON and docs that match the definitions."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from poolwatch.dashboards import cli, docs, lint, registry, thresholds

GPU = {"accel:text": "GPU"}


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    return registry.dashboards()


def _title(text: str, kind: str = "GPU") -> str:
    return text.replace("${accel:text}", kind)


def test_the_dashboards_pass_every_check(models: dict[str, dict[str, Any]]) -> None:
    assert lint.check_all(models) == []


def test_every_panel_query_parses_as_promql_after_substitution(
    models: dict[str, dict[str, Any]],
) -> None:
    count = 0
    for model in models.values():
        values = lint.sample_values(model)
        for panel, target in lint.queries(model):
            expr = lint.substitute(target["expr"], values)
            assert "$" not in expr.replace('"$1"', ""), (model["uid"], panel["title"], expr)
            promql_parser.parse(expr)  # raises on a syntax error
            count += 1
    assert count > 100


def test_every_metric_named_is_in_the_catalog(models: dict[str, dict[str, Any]]) -> None:
    recorded = lint.recorded_names()
    names = set()
    for model in models.values():
        values = lint.sample_values(model)
        for _, target in lint.queries(model):
            names |= lint.metric_names(lint.substitute(target["expr"], values))
    assert names, "no metric found in any query"
    assert sorted(n for n in names if not lint.known_metric(n, recorded)) == []


def test_an_unknown_metric_an_undefined_variable_and_bad_promql_are_reported(
    models: dict[str, dict[str, Any]],
) -> None:
    model = copy.deepcopy(models["poolwatch-ack-cluster"])
    targets = model["panels"][0]["targets"]
    targets[0]["expr"] = "poolwatch_no_such_metric_total"
    targets[1]["expr"] = 'poolwatch_accelerator_up{pool="$nowhere"}'
    targets[2]["expr"] = "sum(poolwatch_accelerator_up"
    problems = "\n".join(lint.check(model, set(models), set()))
    assert "poolwatch_no_such_metric_total is not in the catalog" in problems
    assert "undefined variable $nowhere" in problems
    assert "not PromQL" in problems


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(
    models: dict[str, dict[str, Any]],
) -> None:
    for model in models.values():
        ids = [p["id"] for p in lint.panels(model)]
        assert len(ids) == len(set(ids)), model["uid"]
        for p in lint.panels(model):
            g = p["gridPos"]
            assert g["x"] >= 0, (model["uid"], p["title"])
            assert g["x"] + g["w"] <= 24, (model["uid"], p["title"])
    broken = copy.deepcopy(models["poolwatch-ack-nodes"])
    broken["panels"][1]["gridPos"] = dict(broken["panels"][2]["gridPos"])
    broken["panels"][3]["id"] = broken["panels"][4]["id"]
    broken["panels"][5]["gridPos"]["x"] = 20
    problems = "\n".join(lint.check(broken, set(models), set()))
    assert "overlaps" in problems
    assert "not unique" in problems
    assert "outside 24 columns" in problems


def test_links_resolve_and_follow_the_ack_chain(models: dict[str, dict[str, Any]]) -> None:
    def targets(uid: str) -> list[str]:
        return [lk["url"].removeprefix("/d/") for lk in models[uid]["links"]]

    # Cluster -> "Nodes" -> "TrainingJobs" -> "Quota" [002:L66, L99, L125]
    assert "poolwatch-ack-nodes" in targets("poolwatch-ack-cluster")
    assert "poolwatch-ack-training-jobs" in targets("poolwatch-ack-nodes")
    assert "poolwatch-ack-quota" in targets("poolwatch-ack-training-jobs")
    for model in models.values():
        for where, url in lint.link_targets(model):
            assert url.split("?")[0].removeprefix("/d/") in models, (model["uid"], where, url)
    broken = copy.deepcopy(models["poolwatch-ack-quota"])
    broken["links"][0]["url"] = "/d/poolwatch-nowhere"
    assert any("not a poolwatch dashboard" in p for p in lint.check(broken, set(models), set()))


def test_the_seed_titles_and_columns_are_there_for_gpus(models: dict[str, dict[str, Any]]) -> None:
    def titles(uid: str) -> set[str]:
        return {_title(p["title"]) for p in lint.panels(models[uid])}

    assert {"GPU Summary Of Cluster", "Total GPU Nodes", "Unhealthy GPU Nodes",
            "GPU Memory(Used/Total)", "GPU Memory(Allocated/Total)", "GPU Utilization",
            "GPUs(Allocated/Total)", "Training Job Summary Of Cluster"} <= titles(
                "poolwatch-ack-cluster")  # fmt: skip
    assert {"GPU Node Details", "GPU Duty Cycle", "GPU Memory Usage",
            "GPU Memory Usage Percentage", "Allocated GPUs Per Node", "GPU Number Per Node",
            "Total GPU Memory Per Node"} <= titles("poolwatch-ack-nodes")  # fmt: skip
    assert {"Training Jobs", "Job Instance Used GPU Memory",
            "Job Instance Used GPU Memory Percentage", "Job Instance GPU Duty Cycle"} <= titles(
                "poolwatch-ack-training-jobs")  # fmt: skip
    assert {"CPU usage", "Memory usage", "Used GPUs", "Used GPU memory",
            "Available Disk Capacity (GB)", "Disk Capacity (GB)", "Disk Usage",
            "GPU Fragments"} <= titles("poolwatch-ma-pool")  # fmt: skip
    assert {"CPU", "Memory Usage", "Network", "Block IO", "GPU Usage",
            "GPU Memory Usage"} <= titles("poolwatch-apulis-job")  # fmt: skip
    assert _columns(models, "poolwatch-ack-nodes", "GPU Node Details") == [
        "Name", "IP", "Role", "Status", "GPU Mode", "Total GPUs", "Total GPU Memory",
        "Allocated GPUs", "Allocated GPU Memory", "Used GPU Memory", "GPU Utilization"]  # fmt: skip
    assert _columns(models, "poolwatch-ack-quota", "Quota($resource)") == [
        "Elastic Quota Name", "Namespace", "Resource Name", "Max Quota", "Min Quota",
        "Used Quota"]  # fmt: skip
    assert _columns(models, "poolwatch-apulis-vc-users", "Team VC User Status") == [
        "Username", "Device Type", "Currently Allocated", "Currently Idle",
        "Past Month Booked Hour", "Past Month Idle Hour", "Past Month Idle Hour %"]  # fmt: skip


def _columns(models: dict[str, dict[str, Any]], uid: str, title: str) -> list[str]:
    panel = next(p for p in lint.panels(models[uid]) if _title(p["title"]) == title)
    organize = next(t for t in panel["transformations"] if t["id"] == "organize")["options"]
    order = sorted(organize["renameByName"], key=lambda f: organize["indexByName"][f])
    return list(dict.fromkeys(organize["renameByName"][f] for f in order))


def test_one_panel_serves_gpus_and_npus(models: dict[str, dict[str, Any]]) -> None:
    panel = next(p for p in lint.panels(models["poolwatch-ack-nodes"])
                 if p["title"] == "${accel:text} Duty Cycle")  # fmt: skip
    assert 'vendor="$accel"' in panel["targets"][0]["expr"]
    accel = next(v for v in models["poolwatch-ack-nodes"]["templating"]["list"]
                 if v["name"] == "accel")  # fmt: skip
    assert {(o["text"], o["value"]) for o in accel["options"]} == {
        ("GPU", "nvidia"),
        ("NPU", "huawei"),
    }


def test_red_lines_are_the_thresholds_of_the_shipped_rules(
    models: dict[str, dict[str, Any]],
) -> None:
    rule_file = thresholds.rules_dir() / "node.yaml"
    doc = yaml.safe_load(rule_file.read_text())
    (mem,) = [r for r in doc["rules"] if r["name"] == "PoolwatchAcceleratorMemoryHigh"]
    panel = next(p for p in lint.panels(models["poolwatch-ack-nodes"])
                 if p["title"] == "${accel:text} Memory Usage Percentage")  # fmt: skip
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["thresholds"]["steps"][-1] == {"color": "red", "value": mem["threshold"]}
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    with pytest.raises(thresholds.ThresholdError, match="no shipped rule"):
        thresholds.steps("PoolwatchNoSuchRule")


def test_the_committed_json_provisioning_and_docs_are_current(
    models: dict[str, dict[str, Any]],
) -> None:
    assert registry.stale(registry.GENERATED) == []
    assert docs.DOC.read_text(encoding="utf-8") == docs.render(models)
    provisioning = yaml.safe_load((registry.GENERATED / registry.PROVISIONING).read_text())
    assert provisioning["providers"][0]["type"] == "file"
    for uid in models:
        assert json.loads((registry.GENERATED / f"{uid}.json").read_text())["uid"] == uid
        assert f"uid `{uid}`" in docs.DOC.read_text(encoding="utf-8")


def test_check_names_a_stale_file_and_build_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "generated"
    shutil.copytree(registry.GENERATED, out)
    monkeypatch.setattr(registry, "GENERATED", out)
    monkeypatch.setattr(docs, "DOC", tmp_path / "dashboards.md")
    docs.DOC.write_text((Path(docs.__file__).parent.parent / "docs" / "dashboards.md").read_text())
    assert cli.check(argparse.Namespace()) == 0
    stale = out / "poolwatch-ack-quota.json"
    stale.write_text(stale.read_text().replace("Max Quota", "Maximum"))
    assert cli.check(argparse.Namespace()) == 1
    assert "poolwatch-ack-quota.json: out of date" in capsys.readouterr().err
    assert cli.build(argparse.Namespace(out=None)) == 0
    assert cli.check(argparse.Namespace()) == 0


def test_build_out_writes_json_and_provisioning_elsewhere(tmp_path: Path) -> None:
    assert cli.build(argparse.Namespace(out=tmp_path)) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert registry.PROVISIONING in written
    assert "poolwatch-ma-task-detail.json" in written
    assert len(written) == len(registry.BOARDS) + 1


def test_a_broken_rule_file_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "node.yaml").write_text("group: node\nrules:\n  - name: X\n    op: '>'\n")
    monkeypatch.setattr(thresholds, "rules_dir", lambda: tmp_path)
    thresholds.all_thresholds.cache_clear()
    try:
        with pytest.raises(thresholds.ThresholdError, match=r"node\.yaml: rules\[0\] has no"):
            thresholds.all_thresholds()
        (tmp_path / "node.yaml").write_text("rules: [\n")
        with pytest.raises(thresholds.ThresholdError, match=r"node\.yaml: not valid YAML"):
            thresholds.all_thresholds()
    finally:
        thresholds.all_thresholds.cache_clear()
