"""`poolwatch rules check|compile|test`: the functions poolwatch/cli.py wires to subcommands.

Each returns the process exit status: 0 on success, 1 when the rules are invalid or a test fails,
2 when a tool it needs (promtool) is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import compile as compiler
from .loader import DEFAULT_DIR, RuleFileError, default_files, load

TESTS_DIR = DEFAULT_DIR / "tests"


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") or not text else text + "\n")


def _files(paths: Sequence[Path]) -> list[Path]:
    return [Path(p) for p in paths] if paths else default_files()


def check(paths: Sequence[Path], local: bool = False) -> int:
    """Validate rule files (the shipped ones when `paths` is empty); print each problem. With
    `local`, also list the rules the local source refuses, with the reason."""
    try:
        loaded = load(_files(paths))
    except RuleFileError as err:
        _err(str(err))
        _err(f"{len(err.problems)} problem(s) found")
        return 1
    count = sum(len(item.group.rules) for item in loaded)
    _out(f"{len(loaded)} file(s), {count} rule(s): OK")
    if local:
        from .engine import compile_groups
        from .local import check_local

        reasons = check_local({c.rule.name: c.query for c in compile_groups(loaded)})
        refused = {name: r for name, r in reasons.items() if r is not None}
        _out(f"local source: {len(reasons) - len(refused)} rule(s) run, {len(refused)} refused")
        for name, reason in sorted(refused.items()):
            _out(f"  {name}: {reason}")
    return 0


def source(spec: str, targets: Sequence[str], seconds: Mapping[str, float]) -> tuple[Any, Any]:
    """The engine's source for `--source prometheus=URL|local` and its stop function;
    ValueError with the flag's name when the flags do not make one."""
    from .local import LocalSource, Target
    from .sources import PrometheusSource

    kind, _, url = spec.partition("=")
    if kind == "prometheus" and url:
        if targets:
            raise ValueError("--target is for --source local")
        return PrometheusSource(url, seconds["timeout"]), lambda: None
    if spec != "local":
        raise ValueError(f"--source: expected prometheus=URL or local, got {spec!r}")
    if not targets:
        raise ValueError("--source local needs at least one --target URL")
    local = LocalSource([Target.parse(t) for t in targets], seconds["scrape_interval"],
                        seconds["history"], seconds["timeout"])  # fmt: skip
    local.start()
    return local, local.stop


def outputs(
    notify_url: str | None,
    notify_token_file: str | None,
    controller_url: str | None,
    controller_token_file: str | None,
    timeout: float,
) -> tuple[list[Any], list[Any]]:
    """Notifiers and action sinks from the flags: HTTP ones when a URL is given, else log ones.
    OSError when a token file cannot be read, ValueError for a URL that is not http(s)."""
    from .sinks import HttpActionSink, LogActionSink, LogNotifier, WebhookNotifier, read_token

    if notify_token_file and not notify_url:
        raise ValueError("--notify-token-file needs --notify-url")
    if controller_token_file and not controller_url:
        raise ValueError("--controller-token-file needs --controller-url")
    notifiers: list[Any] = [LogNotifier()]
    if notify_url:
        notifiers = [WebhookNotifier(notify_url, read_token(notify_token_file), timeout)]
    sinks: list[Any] = [LogActionSink()]
    if controller_url:
        sinks = [HttpActionSink(controller_url, read_token(controller_token_file), timeout)]
    return notifiers, sinks


def compile_(paths: Sequence[Path], out: Path, rule_labels: Mapping[str, str]) -> int:
    """Write Prometheus rule files and the PrometheusRule manifest for `paths` into `out`."""
    try:
        loaded = load(_files(paths))
    except RuleFileError as err:
        _err(str(err))
        return 1
    for path in compiler.write(loaded, Path(out), rule_labels):
        _out(str(path))
    return 0


def run_unit_tests(rule_dir: Path, promtool: str = "promtool") -> subprocess.CompletedProcess[str]:
    """Run every shipped `*-test.yaml` with `promtool test rules` against the rule files in
    `rule_dir` (the tests name their rule files by base name, so they are copied next to them)."""
    tests = sorted(TESTS_DIR.glob("*-test.yaml"))
    for test in tests:
        shutil.copy(test, rule_dir / test.name)
    cmd = [promtool, "test", "rules", *(str(rule_dir / t.name) for t in tests)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


def test() -> int:
    """Compile the shipped rules into a temporary directory and run their promtool unit tests."""
    promtool = shutil.which("promtool")
    if promtool is None:
        _err("promtool not found on PATH (Prometheus 2.42 or later)")
        return 2
    try:
        loaded = load(default_files())
    except RuleFileError as err:
        _err(str(err))
        return 1
    with tempfile.TemporaryDirectory(prefix="poolwatch-rules-") as tmp:
        compiler.write(loaded, Path(tmp), {})
        result = run_unit_tests(Path(tmp), promtool)
    _out(result.stdout)
    _err(result.stderr)
    return 0 if result.returncode == 0 else 1
