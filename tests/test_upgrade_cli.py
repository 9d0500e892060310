"""`poolwatch controller upgrade` end to end on the simulated backend (in-process CLI)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from poolwatch.app.cli import main


@pytest.fixture(autouse=True)
def _keep_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command installs SIGINT/SIGTERM handlers; pytest keeps its own."""
    monkeypatch.setattr(signal, "signal", lambda *_: None)


def upgrade(*args: str) -> int:
    return main(["controller", "upgrade", "--backend", "simulated", "--poll", "0.05s", *args])


def test_a_forcible_upgrade_of_the_npu_pool(capsys: pytest.CaptureFixture[str]) -> None:
    rc = upgrade("--pool", "npu-b", "--version", "24.1.rc3", "--mode", "forcible",
                 "--batch-percent", "50")  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("done: forcible upgrade to 24.1.rc3: 4 nodes, 2 per batch")
    for i in range(4):
        assert f"npu-b-node-{i:02d} done" in out
    assert out.rstrip().splitlines()[-1].startswith("done: 4 nodes upgraded to 24.1.rc3")


def test_a_step_command_that_fails_stops_the_rollout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "step.sh"
    script.write_text('#!/bin/sh\necho "no driver package for $POOLWATCH_NODE"\nexit 4\n')
    script.chmod(0o755)
    rc = upgrade("--pool", "gpu-a", "--version", "560.35.03", "--mode", "forcible", "--batch-nodes",
                 "1", "--step-command", str(script))  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "failed (exit 4: no driver package for gpu-a-node-" in out
    assert "0 nodes upgraded to 560.35.03, 1 failed" in out


@pytest.mark.parametrize(("args", "code"), [
    (("--pool", "nope", "--version", "535.161.08"), 3),
    (("--pool", "gpu-a", "--version", "535.161.08", "--batch-percent", "0"), 2),
    (("--pool", "gpu-a", "--version", "535.161.08", "--wait-timeout", "soon"), 2),
    (("--pool", "gpu-a", "--version", "535.54.03", "--backend", "kubernetes"), 2),  # no step cmd
    (("--pool", "gpu-a"), 2),  # no --version
    (("--pool", "gpu-a", "--abort"), 3),  # not being upgraded
])  # fmt: skip
def test_refusals_and_bad_arguments(args: tuple[str, ...], code: int) -> None:
    assert upgrade(*args) == code
