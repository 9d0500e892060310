"""Which Prometheus and Alertmanager the demo runs: the pinned builds of scripts/tools.sh when
they exist (never building them), else the Debian packages on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from poolwatch.app.demo_monitoring import Program, alertmanager_config
from poolwatch.app.demo_procs import find_program


def test_a_built_pinned_program_wins_over_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian = shutil.which("prometheus")
    if debian is None:
        pytest.skip("Debian package prometheus missing")
    (tmp_path / "bin").mkdir()
    os.symlink(debian, tmp_path / "bin" / "prometheus")  # stands in for the built binary's path
    monkeypatch.setenv("POOLWATCH_TOOLS_DIR", str(tmp_path))
    assert find_program("prometheus") == (str(tmp_path / "bin" / "prometheus"),
                                          "built from source by scripts/tools.sh")  # fmt: skip
    program = Program.find("prometheus")
    assert program.version.startswith("2.")  # it asks the binary itself


def test_without_a_build_the_debian_programs_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POOLWATCH_TOOLS_DIR", str(tmp_path))  # empty: nothing built
    path, origin = find_program("alertmanager", "prometheus-alertmanager")
    if shutil.which("prometheus-alertmanager") is None:
        assert (path, origin) == (None, "missing")
    else:
        assert path == shutil.which("prometheus-alertmanager")
        assert origin == "from PATH (the Debian package)"


def test_alertmanager_waits_scale_with_the_speed_but_not_below_a_second() -> None:
    text = alertmanager_config("http://127.0.0.1:1", 20)
    assert "group_wait: 1s" in text
    assert "group_interval: 15s" in text
    assert "url: http://127.0.0.1:1/alertmanager" in text
    assert "group_wait: 10s" in alertmanager_config("http://127.0.0.1:1", 1)
