"""Rule files: loader errors name file, line and rule; the compiler's output passes promtool; the
shipped rules pass their promtool unit tests; docs/rules.md accounts for every seed alarm."""

from __future__ import annotations

import csv
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from prom_versions import Prometheus

from poolwatch.rules import cli
from poolwatch.rules import compile as compiler
from poolwatch.rules.loader import RuleFileError, default_files, load

from .helpers import FIXTURES

ROOT = Path(__file__).parent.parent

GOOD = """\
group: cache
interval: 1m
rules:
  - name: PoolwatchCacheTest
    seed: [MA-N-03]
    expr: poolwatch_filesystem_used_ratio{purpose="cache"}
    op: ">"
    threshold: 0.9
    periods: 2
    severity: critical
    annotations: {summary: s, description: d, runbook: r}
    actions: [notify, {isolate: A050104}]
"""


def write(tmp_path: Path, text: str, name: str = "cache.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(*paths: Path) -> list[str]:
    with pytest.raises(RuleFileError) as err:
        load(paths)
    return [str(p) for p in err.value.problems]


def test_shipped_rules_are_valid() -> None:
    loaded = load(default_files())
    names = [r.name for g in loaded for r in g.group.rules]
    assert len(names) >= 9
    assert cli.check([]) == 0


def test_a_good_file_loads(tmp_path: Path) -> None:
    (group,) = load([write(tmp_path, GOOD)])
    assert group.group.rules[0].threshold == 0.9


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    periods: 2\n", "    periods: 2\n    colour: red\n", 10, "colour: unknown field"),
        ("threshold: 0.9", "threshold: 90%", 8, "threshold: Input should be a valid number"),
        ("threshold: 0.9", 'threshold: "0.9"', 8, "threshold: Input should be a valid number"),
        ("periods: 2", "periods: two", 9, "periods: Input should be a valid integer"),
        ('{purpose="cache"}', '{purpose="cache"', 6, "expr: not valid PromQL"),
        ("poolwatch_filesystem_used_ratio", "poolwatch_disk_full", 6, "is not in the poolwatch"),
        ("purpose=", "purpse=", 6, "on label(s) purpse it does not have"),
        ("A050104", "A059999", 12, "unknown fault code 'A059999'"),
        ("severity: critical", "severity: fatal", 10, "severity: Input should be"),
        ('op: ">"', 'op: "=>"', 7, "op: Input should be"),
        ("    periods: 2\n", "    periods: 2\n    for: 2m\n", 4, "exactly one of for, periods"),
        ("    periods: 2\n", "", 4, "exactly one of for, periods, window (got none)"),
        ("    periods: 2\n", "    periods: 2\n    clear: 0.95\n", 4, "clear must be below"),
        ("    periods: 2\n", "    for: 1m5\n", 9, "for: expected a Prometheus duration"),
        ("    periods: 2\n", "    for: 1s1m\n", 9, "for: expected a Prometheus duration"),
        ("    periods: 2\n", "    periods: 2\n    labels: {severity: x}\n", 10, "by the compiler"),
    ],
)
def test_bad_input_names_file_line_and_rule(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    found = problems(path)
    rule = "CacheTest" if "CacheTest" in new else "PoolwatchCacheTest"
    assert any(p.startswith(f"{path}:{line}: rule {rule}: ") and message in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("PoolwatchCacheTest", "CacheTest"),  # an operator's own rule: any alert name
        ("PoolwatchCacheTest", "cache:test-fill.ratio"),
        ("    periods: 2\n", "    for: 0s\n"),  # every duration Prometheus accepts
        ("    periods: 2\n", "    for: 0\n"),
        ("    periods: 2\n", "    for: 1h30m5s100ms\n"),
    ],
)
def test_any_alert_name_and_duration_prometheus_accepts_loads(
    tmp_path: Path, old: str, new: str
) -> None:
    (group,) = load([write(tmp_path, GOOD.replace(old, new))])
    alert = compiler.alert(group.group.rules[0], group.group.interval)
    assert alert["alert"] == group.group.rules[0].name
    if "for:" in new:  # a zero hold is no `for` at all, as Prometheus writes it
        assert alert.get("for") == {"0s": None, "0": None}.get(new.split()[1], new.split()[1])


def test_shipped_rule_names_keep_the_poolwatch_prefix() -> None:
    for item in load(default_files()):
        for rule in item.group.rules:
            assert re.fullmatch(r"Poolwatch[A-Z][A-Za-z0-9]*", rule.name), rule.name


def test_every_bad_rule_is_reported_not_just_the_first(tmp_path: Path) -> None:
    second = GOOD.split("rules:\n")[1].replace("PoolwatchCacheTest", "PoolwatchOther")
    text = GOOD.replace("threshold: 0.9", "threshold: x") + second.replace("A050104", "A0")
    found = problems(write(tmp_path, text))
    assert any("rule PoolwatchCacheTest: threshold" in p for p in found)
    assert any("rule PoolwatchOther: actions" in p and "unknown fault code" in p for p in found)


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD)
    second = write(tmp_path, GOOD.replace("group: cache", "group: other"), "other.yaml")
    (found,) = problems(first, second)
    assert found.startswith(f"{second}:4: rule PoolwatchCacheTest: duplicate rule name")
    assert str(first) in found


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    text = GOOD + GOOD.split("rules:\n")[1]
    (found,) = problems(write(tmp_path, text))
    assert ":13: rule PoolwatchCacheTest: duplicate rule name" in found


def test_invalid_yaml_and_group_fields(tmp_path: Path) -> None:
    (found,) = problems(write(tmp_path, "group: [unclosed\n"))
    assert "invalid YAML" in found
    found = problems(write(tmp_path, GOOD.replace("interval: 1m", "interval: soon")))
    assert any(p.startswith(f"{tmp_path / 'cache.yaml'}:2: interval:") for p in found), found


def test_seed_alias_names_are_catalog_names(tmp_path: Path) -> None:
    text = GOOD.replace(
        'poolwatch_filesystem_used_ratio{purpose="cache"}', "ma_node_cache_space_used_percent"
    ).replace("0.9", "90")
    (group,) = load([write(tmp_path, text)])
    assert group.group.rules[0].expr == "ma_node_cache_space_used_percent"


def test_styles_compile_to_plain_promql(tmp_path: Path) -> None:
    text = GOOD.replace("    periods: 2\n", "    periods: 3\n    clear: 0.85\n")
    (loaded,) = load([write(tmp_path, text)])
    alert = compiler.group_dict(loaded.group)["rules"][0]
    assert alert["for"] == "2m"  # 3 consecutive evaluations at 1m
    assert alert["expr"] == (
        '((poolwatch_filesystem_used_ratio{purpose="cache"}) > 0.9) or '
        '(((poolwatch_filesystem_used_ratio{purpose="cache"}) > 0.85) and '
        "ignoring(alertname, alertstate, severity, seed_ids) "
        'ALERTS{alertname="PoolwatchCacheTest", alertstate="firing"})'
    )
    assert alert["labels"] == {"severity": "critical", "seed_ids": "MA-N-03"}
    assert alert["annotations"]["actions"] == "notify isolate:A050104"
    text = GOOD.replace("    periods: 2\n", "    window: {range: 10m, step: 1m, percent: 90}\n")
    (loaded,) = load([write(tmp_path, text)])
    alert = compiler.group_dict(loaded.group)["rules"][0]
    assert "for" not in alert
    assert alert["expr"] == (
        'avg_over_time((poolwatch_filesystem_used_ratio{purpose="cache"} > bool 0.9)[10m:1m])'
        " * 100 > 90"
    )


def test_compile_writes_marked_files_and_a_labelled_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.compile_([], out, {"release": "kube-prometheus-stack"}) == 0
    files = sorted(p.name for p in out.iterdir())
    assert "poolwatch.prometheusrule.yaml" in files
    assert {f"{p.stem}.rules.yaml" for p in default_files()} <= set(files)
    for path in out.iterdir():
        assert path.read_text().startswith("# Generated by poolwatch rules compile")
    manifest = yaml.safe_load((out / "poolwatch.prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert len(manifest["spec"]["groups"]) == len(default_files())


def test_compile_makes_runbook_links_absolute_under_the_base(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = "https://docs.example.com/poolwatch/blob/v1/"
    assert cli.compile_([], out, {}, runbook_base=base) == 0
    manifest = yaml.safe_load((out / "poolwatch.prometheusrule.yaml").read_text())
    alerts = [r for g in manifest["spec"]["groups"] for r in g["rules"]]
    assert alerts
    for r in alerts:  # one slash between base and path, the anchor kept
        assert r["annotations"]["runbook_url"] == (
            f"https://docs.example.com/poolwatch/blob/v1/docs/rules.md#{r['alert'].lower()}"
        )
    group_file = yaml.safe_load(next(out.glob("*.rules.yaml")).read_text())
    assert group_file["groups"][0]["rules"][0]["annotations"]["runbook_url"].startswith(base)
    # without a base the links stay as the rule files write them (the Helm chart prefixes them)
    assert cli.compile_([], tmp_path / "plain", {}) == 0
    plain = yaml.safe_load((tmp_path / "plain" / "poolwatch.prometheusrule.yaml").read_text())
    assert plain["spec"]["groups"][0]["rules"][0]["annotations"]["runbook_url"].startswith(
        "docs/rules.md#"
    )


def test_an_absolute_runbook_is_kept_whatever_the_base() -> None:
    assert compiler.runbook_url("https://wiki/x", "https://docs.example.com") == "https://wiki/x"
    assert compiler.runbook_url("docs/a.md", "https://h") == "https://h/docs/a.md"


@pytest.mark.parametrize("base", ["docs.example.com/x", "ftp://h/x", "https://", "/docs",
                                  "https://h/x?v=1", "https://h/x#top"])  # fmt: skip
def test_compile_refuses_a_bad_runbook_base(
    base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.compile_([], tmp_path / "out", {}, runbook_base=base) == 2
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert "--runbook-base-url" in err
    assert repr(base) in err


def test_compile_refuses_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, GOOD.replace("0.9", "high"))
    assert cli.compile_([bad], tmp_path / "out", {}) == 1
    assert not (tmp_path / "out").exists()
    assert f"{bad}:8: rule PoolwatchCacheTest: threshold" in capsys.readouterr().err


@pytest.mark.integration
def test_compiled_output_passes_promtool_check_rules(tmp_path: Path, prom: Prometheus) -> None:
    compiler.write(load(default_files()), tmp_path, {"release": "x"})
    manifest = yaml.safe_load((tmp_path / "poolwatch.prometheusrule.yaml").read_text())
    spec = tmp_path / "manifest-spec.yaml"
    spec.write_text(yaml.safe_dump(manifest["spec"]))
    files = [*sorted(tmp_path.glob("*.rules.yaml")), spec]
    out = subprocess.run(
        [prom.promtool, "check", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.integration
def test_shipped_unit_tests_pass_under_promtool(tmp_path: Path, prom: Prometheus) -> None:
    compiler.write(load(default_files()), tmp_path, {})
    result = cli.run_unit_tests(tmp_path, prom.promtool)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list(cli.TESTS_DIR.glob("*-test.yaml")))


def test_every_shipped_rule_has_a_unit_test_and_a_runbook() -> None:
    tests = "".join(p.read_text() for p in cli.TESTS_DIR.glob("*-test.yaml"))
    docs = (ROOT / "docs" / "rules.md").read_text()
    for item in load(default_files()):
        assert (cli.TESTS_DIR / f"{item.path.stem}-test.yaml").exists()
        for rule in item.group.rules:
            assert re.search(rf"alertname: {rule.name}\n\s+exp_alerts:", tests), rule.name
            assert f"### {rule.name}\n" in docs
            assert rule.annotations.runbook == f"docs/rules.md#{rule.name.lower()}"


def seed_ids() -> list[str]:
    with (FIXTURES / "spec" / "seed-alarms.csv").open(encoding="utf-8") as f:
        return [row["id"] for row in csv.DictReader(f)]


def test_docs_account_for_every_seed_alarm_exactly_once() -> None:
    ids = seed_ids()
    assert len(ids) == 90
    docs = (ROOT / "docs" / "rules.md").read_text()
    for seed in ids:
        count = len(re.findall(rf"(?<![\w-]){re.escape(seed)}(?![\w-])", docs))
        assert count == 1, f"{seed} appears {count} times in docs/rules.md"


def test_shipped_rules_name_real_seed_ids_and_docs_agree() -> None:
    ids = set(seed_ids())
    docs = (ROOT / "docs" / "rules.md").read_text()
    for item in load(default_files()):
        for rule in item.group.rules:
            assert set(rule.seed) <= ids, rule.name
            for seed in rule.seed:
                assert re.search(rf"\| {seed} \| `{rule.name}` \|", docs), (seed, rule.name)


def test_cli_check_names_file_line_and_rule(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "group: g\ninterval: 1m\nrules:\n  - name: PoolwatchX\n"
        "    expr: poolwatch_collector_up\n    op: '<'\n    threshold: one\n    for: 1m\n"
        "    severity: warning\n    annotations: {summary: s, description: d, runbook: r}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "poolwatch", "rules", "check", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert f"{bad}:7" in text
    assert "PoolwatchX" in text
    assert "threshold" in text
