"""What `poolwatch rules check|compile|test|alerts|silence` do; rules/cli.py declares the
commands and wires them here (`run` too, through `source` and `outputs`).

Each returns the process exit status: 0 on success, 1 when the rules are invalid, a test fails or
the engine cannot be reached, 2 when a tool it needs (promtool) is missing or an argument is bad
(and when a silence belongs to an Alertmanager instead).
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
from .loader import DEFAULT_DIR, RuleFileError, default_files

TESTS_DIR = DEFAULT_DIR / "tests"


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") or not text else text + "\n")


def _files(paths: Sequence[Path]) -> list[Path]:
    return [Path(p) for p in paths] if paths else default_files()


def _load(paths: Sequence[Path], overrides: Path | None) -> list[Any]:
    from .overrides import load_all

    return load_all(_files(paths), overrides)


def check(paths: Sequence[Path], local: bool = False, overrides: Path | None = None) -> int:
    """Validate rule files (the shipped ones when `paths` is empty) and `overrides`; print each
    problem. With `local`, also list the rules the local source refuses, with the reason."""
    try:
        loaded = _load(paths, overrides)
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
                        seconds["history"], seconds["timeout"], freeze_gc=True)  # fmt: skip
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


def compile_(
    paths: Sequence[Path],
    out: Path,
    rule_labels: Mapping[str, str],
    overrides: Path | None = None,
    runbook_base: str = "",
) -> int:
    """Write Prometheus rule files and the PrometheusRule manifest for `paths` (with
    `overrides` applied) into `out`; relative runbook paths are joined to `runbook_base`."""
    try:
        base = compiler.check_runbook_base(runbook_base)
    except ValueError as err:
        _err(f"--runbook-base-url: {err}")
        return 2
    try:
        loaded = _load(paths, overrides)
    except RuleFileError as err:
        _err(str(err))
        return 1
    for path in compiler.write(loaded, Path(out), rule_labels, runbook_base=base):
        _out(str(path))
    return 0


def run_unit_tests(
    rule_dir: Path, promtool: str = "promtool", tests: Sequence[Path] = ()
) -> subprocess.CompletedProcess[str]:
    """Run promtool unit-test files `tests` (default: every shipped `*-test.yaml`) with
    `promtool test rules` against the compiled rule files in `rule_dir` (the tests name their
    rule files by base name, `<group>.rules.yaml`, so they are copied next to them)."""
    tests = list(tests) or sorted(TESTS_DIR.glob("*-test.yaml"))
    names = []
    for i, test in enumerate(tests):
        name = test.name if len({t.name for t in tests}) == len(tests) else f"{i}-{test.name}"
        shutil.copy(test, rule_dir / name)
        names.append(str(rule_dir / name))
    cmd = [promtool, "test", "rules", *names]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


def unit_tests(
    tests: Sequence[Path] = (),
    rules: Sequence[Path] = (),
    overrides: Path | None = None,
    promtool: str | None = None,
) -> int:
    """Compile rule files (`rules`, default the shipped ones; `overrides` applied) into a
    temporary directory and run promtool unit tests against them: `tests` (an operator's own
    test files), or the shipped tests. promtool must be Prometheus 3's (the engine follows
    Prometheus 3's semantics)."""
    tool = promtool or shutil.which("promtool")
    if tool is None:
        _err("promtool not found on PATH (Prometheus 3 or later); name it with --promtool")
        return 2
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False,
                             timeout=30).stdout.split()  # fmt: skip
    found = version[2] if len(version) > 2 and version[1] == "version" else ""
    if found[:2] in ("1.", "2."):
        _err(f"{tool} is promtool {found}; the rules follow Prometheus 3's semantics "
             "(left-open windows), so their tests need Prometheus 3's promtool: name it with "
             "--promtool")  # fmt: skip
        return 2
    missing = [str(t) for t in tests if not Path(t).is_file()]
    if missing:
        _err(f"no such test file: {', '.join(missing)}")
        return 2
    try:
        loaded = _load(rules, overrides)
    except RuleFileError as err:
        _err(str(err))
        return 1
    with tempfile.TemporaryDirectory(prefix="poolwatch-rules-") as tmp:
        compiler.write(loaded, Path(tmp), {})
        result = run_unit_tests(Path(tmp), tool, [Path(t) for t in tests])
    _out(result.stdout)
    _err(result.stderr)
    return 0 if result.returncode == 0 else 1


# -- what an operator sees ---------------------------------------------------------------------


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alerts(
    url: str,
    as_json: bool = False,
    timeout: float = 10.0,
    user: str | None = None,
    password_file: Path | None = None,
    ca_file: Path | None = None,
) -> int:
    """Print the running engine's pending and firing alerts (its /api/alerts).

    An engine started with a web config file asks for one of its users: `user` and the file
    holding that user's password (the plain one; the web config keeps only its hash). An https
    address is verified against the system's certificate authorities, or `ca_file`'s."""
    import base64
    import json
    import ssl
    import urllib.error
    import urllib.request

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        _err(f"--url must be an http:// or https:// address, not {url!r}")
        return 2
    request = urllib.request.Request(f"{base}/api/alerts")  # noqa: S310 (scheme checked)
    if user is not None:
        try:
            password = password_file.read_text().rstrip("\n") if password_file else ""
        except OSError as err:
            _err(f"cannot read the password file {password_file}: {err.strerror}")
            return 2
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        context = ssl.create_default_context(cafile=ca_file) if base.startswith("https") else None
    except (OSError, ssl.SSLError) as err:
        _err(f"cannot use the CA file {ca_file}: {err}")
        return 2
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        if err.code == 401:
            who = (f"refused the credentials of user {user!r}" if user is not None
                   else "asks for credentials: give --user and --password-file (a user of "
                   "its web config file)")  # fmt: skip
            _err(f"the rule engine at {base} {who}")
        else:
            _err(f"cannot read the rule engine's alerts at {base}/api/alerts: {err}")
        return 1
    except (OSError, ValueError) as err:
        _err(f"cannot read the rule engine's alerts at {base}/api/alerts: {err}")
        return 1
    items = doc.get("alerts", []) if isinstance(doc, dict) else []
    if as_json:
        _out(json.dumps(items, indent=2, sort_keys=True))
        return 0
    if not items:
        _out("no alert is pending or firing")
        return 0
    for a in items:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k != "alertname")
        state = a["state"] + (" (silenced)" if a.get("silenced") else "")
        value = "-" if a.get("value") is None else f"{a['value']:g}"
        since = _fmt_time(a.get("fired_at") or a.get("active_since"))
        _out(f"{a['alertname']}  {state}  value={value}  since={since}  {a.get('rule_file', '')}")
        _out(f"    {{{labels}}}")
    return 0


# -- silences ----------------------------------------------------------------------------------


def _defer(alertmanager: str | None) -> int | None:
    """With an Alertmanager, silences are its job: say so (exit 2) instead of storing one."""
    if not alertmanager:
        return None
    _err(
        f"Notifications go through the Alertmanager at {alertmanager}; silence alerts there "
        f"(its web UI, or: amtool silence add --alertmanager.url={alertmanager} alertname=NAME "
        "--duration 2h --comment WHY). poolwatch's own silences apply only when the rule engine "
        "sends the notifications itself (local mode)."
    )
    return 2


def silence_add(
    state: Path, matchers: Sequence[str], duration: str, author: str, comment: str,
    alertmanager: str | None = None,
) -> int:  # fmt: skip
    import time

    from .model import _DURATION, duration_seconds
    from .silences import SilenceStore

    deferred = _defer(alertmanager)
    if deferred is not None:
        return deferred
    if not _DURATION.match(duration):
        _err(f"--duration: expected a duration such as 30m or 2h, got {duration!r}")
        return 2
    try:
        s = SilenceStore(state).add(matchers, duration_seconds(duration), time.time(), author,
                                    comment)  # fmt: skip
    except ValueError as err:
        _err(str(err))
        return 2
    _out(f"{s.id}  until {_fmt_time(s.ends_at)}  {', '.join(map(str, s.matchers))}")
    return 0


def silence_list(
    state: Path, include_expired: bool = False, alertmanager: str | None = None
) -> int:
    import time

    from .silences import SilenceStore

    deferred = _defer(alertmanager)
    if deferred is not None:
        return deferred
    now = time.time()
    shown = [s for s in SilenceStore(state).all() if include_expired or s.active(now)]
    if not shown:
        _out("no silence is active")
    for s in shown:
        status = "active" if s.active(now) else "expired" if s.ends_at <= now else "pending"
        span = f"{_fmt_time(s.starts_at)} .. {_fmt_time(s.ends_at)}"
        who = f"by {s.author or '-'}: {s.comment or '-'}"
        _out(f"{s.id}  {status}  {span}  {', '.join(map(str, s.matchers))}  {who}")
    return 0


def silence_expire(state: Path, silence_id: str, alertmanager: str | None = None) -> int:
    import time

    from .silences import SilenceStore

    deferred = _defer(alertmanager)
    if deferred is not None:
        return deferred
    if not SilenceStore(state).expire(silence_id, time.time()):
        _err(f"no active silence with id {silence_id!r} in {state}")
        return 1
    _out(f"{silence_id} expired")
    return 0
