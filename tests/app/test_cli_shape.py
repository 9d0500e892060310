"""One command shape: `poolwatch <part> <verb>`, each part declaring its own verbs, every serving
verb taking --listen, --config and POOLWATCH_* the same way. Before, the node and cluster
exporters had no verb, and `rules run` and `api serve` read neither a file nor the environment."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from poolwatch.app.cli import PARTS, parser

ROOT = Path(__file__).parents[2]
SERVING = [("node-exporter", "run"), ("cluster-exporter", "run"), ("rules", "run"),
           ("alerts", "serve"), ("controller", "run"), ("api", "serve")]  # fmt: skip


def _verbs(part: str) -> dict[str, argparse.ArgumentParser]:
    top = parser()
    parts = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    sub = parts.choices[part]
    verbs = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
    return dict(verbs.choices)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POOLWATCH_")}
    return subprocess.run([sys.executable, "-m", "poolwatch", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**clean, **(env or {})},
                          timeout=60)  # fmt: skip


def test_every_part_registers_its_own_verbs() -> None:
    names = {getattr(r, "func", r).__module__ for r in PARTS}
    assert "poolwatch.exporters.node.cli" in names  # the node exporter declares its own
    for part in ("node-exporter", "cluster-exporter", "rules", "alerts", "controller", "api",
                 "dashboards", "catalog"):  # fmt: skip
        assert _verbs(part), part


@pytest.mark.parametrize(("part", "verb"), SERVING)
def test_every_serving_verb_takes_listen_and_config(part: str, verb: str) -> None:
    options = {o for a in _verbs(part)[verb]._actions for o in a.option_strings}
    assert {"--listen", "--config"} <= options, options


@pytest.mark.parametrize("part", ["node-exporter", "cluster-exporter", "catalog"])
def test_a_part_without_its_verb_says_which_verbs_it_has(part: str) -> None:
    out = _cli(part)
    assert out.returncode == 2
    assert "<verb>" in out.stderr


def test_the_node_exporters_collector_flags_come_from_its_settings() -> None:
    from poolwatch.exporters.node.settings import Collectors

    options = {o for a in _verbs("node-exporter")["run"]._actions for o in a.option_strings}
    for name in Collectors.model_fields:
        assert f"--collector.{name.replace('_', '-')}" in options


def test_rules_run_reads_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(yaml.safe_dump({"source": "local", "targets": ["node=http://127.0.0.1:1/m"],
                                   "state": str(tmp_path / "s.db"), "interval": "1m",
                                   "grace": "2m", "timeout": "3s"}))  # fmt: skip
    out = _cli("rules", "run", "--config", str(cfg), "--timeout", "4s", "--print-config",
               env={"POOLWATCH_GRACE": "7m", "POOLWATCH_TIMEOUT": "5s"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["interval"] == 60.0  # the file
    assert doc["grace"] == 420.0  # the environment over the file
    assert doc["timeout"] == 4.0  # the flag over both
    assert doc["targets"] == ["node=http://127.0.0.1:1/m"]
    assert doc["listen"] == "0.0.0.0:9480"


def test_rules_run_names_the_origin_of_a_bad_value(tmp_path: Path) -> None:
    out = _cli("rules", "run", "--source", "local", "--state", str(tmp_path / "s.db"),
               "--print-config", env={"POOLWATCH_INTERVAL": "soon"})  # fmt: skip
    assert out.returncode == 2
    assert "POOLWATCH_INTERVAL" in out.stderr
    assert "interval" in out.stderr
    missing = _cli("rules", "run", "--print-config")
    assert missing.returncode == 2
    assert "source" in missing.stderr
    assert "state" in missing.stderr


def test_api_serve_reads_its_settings_from_a_file(tmp_path: Path) -> None:
    cfg = tmp_path / "api.yaml"
    cfg.write_text("prometheus: http://prom:9090\ntoken_file: /run/token\nbackend: simulated\n")
    out = _cli("api", "serve", "--config", str(cfg), "--listen", "127.0.0.1:9999",
               "--print-config")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["prometheus"] == "http://prom:9090"
    assert doc["backend"] == "simulated"
    assert doc["listen"] == "127.0.0.1:9999"
    bad = _cli("api", "serve", "--config", str(cfg), "--print-config",
               env={"POOLWATCH_BACKEND": "mainframe"})  # fmt: skip
    assert bad.returncode == 2
    assert "POOLWATCH_BACKEND" in bad.stderr
