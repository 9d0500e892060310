"""Configuration: defaults, precedence, and errors that name the field and where it came from."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from poolwatch.core.config import ConfigError, load, parse_duration
from poolwatch.exporters.node.settings import NodeExporterSettings

ROOT = Path(__file__).parent.parent


def test_defaults_are_usable() -> None:
    s = load(NodeExporterSettings, None, {})
    assert s.listen_address() == ("0.0.0.0", 9476)
    assert s.cache_dir == Path("/cache")
    assert s.filesystem_paths()[0].purpose == "cache"
    assert s.filesystem_paths()[0].required
    assert s.collectors.cache_dir.interval == 60


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "pw.yaml"
    f.write_text("cache_dir: /from/file\npool: file-pool\ncollectors:\n  nfs:\n    timeout: 2s\n")
    env = {"POOLWATCH_POOL": "env-pool", "POOLWATCH_COLLECTORS__NFS__INTERVAL": "30s"}
    flags = {("cache_dir",): ("/from/flag", "flag --cache-dir")}
    s = load(NodeExporterSettings, f, env, flags)
    assert s.cache_dir == Path("/from/flag")
    assert s.pool == "env-pool"
    assert s.collectors.nfs.timeout == 2.0
    assert s.collectors.nfs.interval == 30.0


def test_error_names_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "pw.yaml"
    f.write_text("pool: a\ncollectors:\n  nfs:\n    timeout: soon\n")
    with pytest.raises(ConfigError) as err:
        load(NodeExporterSettings, f, {})
    text = str(err.value)
    assert "collectors.nfs.timeout" in text
    assert f"{f}:4" in text
    assert "not a duration" in text


def test_unknown_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "pw.yaml"
    f.write_text("collectors:\n  nfs:\n    intervall: 5\n")
    with pytest.raises(ConfigError, match=rf"collectors\.nfs\.intervall: .*{f}:3"):
        load(NodeExporterSettings, f, {})


def test_error_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment variable POOLWATCH_LISTEN"):
        load(NodeExporterSettings, None, {"POOLWATCH_LISTEN": "nonsense"})


def test_process_variables_are_not_settings() -> None:
    """POOLWATCH_LOG_LEVEL (--log-level's default) and POOLWATCH_CONFIG are read by the command
    itself; a loader that took them for settings would refuse to start (unknown key)."""
    env = {"POOLWATCH_LOG_LEVEL": "debug", "POOLWATCH_CONFIG": "/nonexistent.yaml"}
    assert load(NodeExporterSettings, None, env).listen_address() == ("0.0.0.0", 9476)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "pw.yaml"
    f.write_text("pool: a\ncollectors: [\n")
    with pytest.raises(ConfigError, match=rf"{f}:\d+: invalid YAML"):
        load(NodeExporterSettings, f, {})


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match="timeout must not exceed interval"):
        load(NodeExporterSettings, None, {"POOLWATCH_COLLECTORS__HOST__TIMEOUT": "30s"})
    with pytest.raises(ConfigError, match="include or exclude, not both"):
        load(NodeExporterSettings, None, {
            "POOLWATCH_COLLECTORS__NFS__INCLUDE": "a", "POOLWATCH_COLLECTORS__NFS__EXCLUDE": "b",
        })  # fmt: skip
    with pytest.raises(ConfigError, match="regular expression"):
        load(NodeExporterSettings, None, {"POOLWATCH_COLLECTORS__NFS__INCLUDE": "("})


def test_durations() -> None:
    assert parse_duration("15s") == 15
    assert parse_duration("2m") == 120
    assert parse_duration("500ms") == 0.5
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError, match="duration"):
        parse_duration("fast")


def test_pool_from_label_file(tmp_path: Path) -> None:
    f = tmp_path / "pool"
    f.write_text("pool-a\n")
    assert load(NodeExporterSettings, None, {"POOLWATCH_POOL_FILE": str(f)}).pool_name() == "pool-a"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip


def test_print_config_shows_the_effective_settings(tmp_path: Path) -> None:
    out = _cli(
        "node-exporter", "--print-config", "--cache-dir", str(tmp_path), "--no-collector.nfs"
    )
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["cache_dir"] == str(tmp_path)
    assert doc["collectors"]["nfs"]["enabled"] is False
    assert doc["collectors"]["host"]["interval"] == 15.0


def test_bad_config_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("listen: 9476\n")
    out = _cli("node-exporter", "--config", str(f), "--print-config")
    assert out.returncode == 2
    assert str(f) in out.stderr
    assert "listen" in out.stderr


def test_help_lists_parts_and_options() -> None:
    top = _cli("--help")
    assert top.returncode == 0
    for part in ("node-exporter", "catalog", "rules", "alerts", "dashboards", "controller"):
        assert part in top.stdout
    ne = _cli("node-exporter", "--help")
    for opt in ("--listen", "--config", "--cache-dir", "--web-config-file", "--print-config"):
        assert opt in ne.stdout


def test_cross_field_error_names_the_variable_that_caused_it() -> None:
    with pytest.raises(
        ConfigError, match="environment variable POOLWATCH_COLLECTORS__HOST__TIMEOUT"
    ):
        load(NodeExporterSettings, None, {"POOLWATCH_COLLECTORS__HOST__TIMEOUT": "30s"})
