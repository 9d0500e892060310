"""The controller run as an operator would run it, hardened: it refuses to listen beyond this host
without a token, says loudly when it acts for real, keeps its notices and audit trail in its
SQLite state within bounds, and sends its notices through the alerts receiver (the real one, in
this process, on 127.0.0.1) when one is configured."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from alerts_support import HttpSink, receiver, settings, wait_for
from helpers import free_port, parse, value
from test_controller_support import Recorder, controller, sim

from poolwatch.controller import notices
from poolwatch.controller.metrics import exposition
from poolwatch.controller.server import ControllerServer, ExposedWithoutToken, is_loopback
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("", False), ("::", False),
     ("10.0.0.7", False), ("ctl.example.org", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host or "0.0.0.0") is loopback


def test_it_will_not_listen_beyond_this_host_without_a_token() -> None:
    """Before: it listened on 0.0.0.0:9482 with no token and carried out anonymous actions."""
    assert ControllerSettings().listen == "127.0.0.1:9482"
    with pytest.raises(ExposedWithoutToken, match="needs a bearer token"):
        ControllerServer(("0.0.0.0", free_port()), controller(sim()), None,
                         lambda: True, lambda: None)  # fmt: skip
    server = ControllerServer(("0.0.0.0", free_port()), controller(sim()), "t",
                              lambda: True, lambda: None)  # fmt: skip
    server.server_close()


def test_the_command_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "poolwatch", "controller", "run", "--backend", "simulated",
         "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "needs a bearer token: set token_file (--token-file FILE)" in out.stderr
    assert "or listen on 127.0.0.1" in out.stderr


def _run_briefly(s: ControllerSettings) -> None:
    from poolwatch.controller.runner import run

    stop = threading.Event()
    t = threading.Thread(target=run, args=(s, stop), daemon=True)
    t.start()
    time.sleep(0.5)
    stop.set()
    t.join(10)
    assert not t.is_alive()


def test_acting_for_real_is_a_warning(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, "controller")
    base = {"backend": "simulated", "listen": f"127.0.0.1:{free_port()}", "interval": 0.2,
            "lease": {"renew": 0.2}, "state_path": tmp_path / "s.db"}  # fmt: skip
    _run_briefly(ControllerSettings(**base))
    runner = "poolwatch.controller.runner"
    assert not [r for r in caplog.records if r.name == runner and r.levelno >= logging.WARNING]
    _run_briefly(ControllerSettings(**{**base, "dry_run": False}))
    warned = [r.getMessage() for r in caplog.records
              if r.name == runner and r.levelno == logging.WARNING]  # fmt: skip
    assert any("dry-run is OFF" in m for m in warned), warned


def _dry_runs(ctl, start: int, count: int, reason: str) -> None:
    for i in range(start, start + count):
        node = f"p0-node-0{i % 7}"
        ctl.submit(NodeAction("isolate", f"k{i}", node=node, fault_code="A050104", reason=reason))


def test_a_thousand_large_dry_runs_stay_bounded() -> None:
    """Before: every notice stayed in a Python list forever (RSS 42 -> 171 MB after 1,000 large
    dry-run actions) and the audit table grew without end."""
    reason = "PoolwatchTest: " + "x" * 20_000
    ctl = controller(sim(), dry_run=True)
    _dry_runs(ctl, 0, 50, reason)  # warm up caches before measuring
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        _dry_runs(ctl, 50, 1000, reason)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 2_000_000, f"heap grew {grown} bytes over 1,000 dry runs"
    store = ctl.store
    assert store.count("notices") == 1000  # the default retention: the newest 1,000 delivered
    assert len(ctl.notices.sent) == 1000
    assert len(ctl.notices.sent[-1].annotations["description"]) <= notices.TEXT_CHARS

    small = controller(sim(), dry_run=True, audit_retention=100, notice_retention=10,
                       outbox_limit=100)  # fmt: skip
    _dry_runs(small, 0, 1000, reason)
    assert (small.store.count("audit"), small.store.count("notices")) == (100, 10)
    assert small.store.audit_trail(1)[0].key == "k999"  # the newest are the ones kept
    assert all(len(r.detail) <= 2000 for r in small.store.audit_trail(100))


def test_the_outbox_is_bounded_and_goes_out_in_batches(tmp_path: Path) -> None:
    rec = Recorder()
    rec.down = True
    ctl = controller(sim(), rec, dry_run=True, outbox_limit=250, state_path=tmp_path / "s.db")
    _dry_runs(ctl, 0, 300, "PoolwatchTest: down")
    assert ctl.store.outbox_size() == 250  # the 50 oldest went, with a warning
    assert ctl.store.outbox_dropped == 50
    series = parse(exposition(ctl, True, None))
    assert value(series, "poolwatch_controller_notifications_dropped_total") == 50
    assert value(series, "poolwatch_controller_notifications_queued") == 250
    batches: list[int] = []
    rec.down = False
    real = rec.notify
    rec.notify = lambda msgs: batches.append(len(msgs)) or real(msgs)  # type: ignore[method-assign]
    assert ctl.notices.flush() == 0
    assert batches == [100, 100, 50]
    assert [m.labels["alertname"] for m in rec.messages][:1] == ["PoolwatchControllerDryRun"]


def test_a_failing_notifier_is_not_called_on_every_action() -> None:
    calls = []

    class Hung:
        def notify(self, msgs):  # a receiver that times out
            calls.append(len(msgs))
            return False

    ctl = controller(sim(), Hung(), dry_run=True)  # type: ignore[arg-type]
    _dry_runs(ctl, 0, 20, "PoolwatchTest: hung")
    assert len(calls) == 1  # then only the control loop retries, every RETRY_AFTER
    ctl.notices.flush()
    assert len(calls) == 2
    assert ctl.store.outbox_size() == 20


def test_standalone_run_sends_notices_through_the_alerts_receiver(tmp_path: Path) -> None:
    """Before: `controller run` had no notifier; NoSpare, BreakerOpen ... reached the log only."""
    sink = HttpSink()
    token_file = tmp_path / "notify-token"
    token_file.write_text("recv-token\n")
    try:
        with receiver(settings(tmp_path, [{"name": "ops", "url": sink.url()}]),
                      token="recv-token") as (_service, url):  # noqa: S106  # fmt: skip
            _breaker_trip(tmp_path, url, token_file)
            wait_for(lambda: any("circuit breaker open" in json.dumps(b) for b in sink.bodies),
                     20, "the BreakerOpen notice at the receiver's target")  # fmt: skip
    finally:
        sink.close()


def _breaker_trip(tmp_path: Path, notify_url: str, token_file: Path) -> None:
    """Run the controller on the simulated backend, acting, and isolate gpu-a nodes over HTTP
    until its circuit breaker opens."""
    from poolwatch.controller.runner import run
    from poolwatch.rules.sinks import HttpActionSink

    port = free_port()
    ctl_token = tmp_path / "ctl-token"
    ctl_token.write_text("ctl\n")
    s = ControllerSettings(backend="simulated", listen=f"127.0.0.1:{port}", dry_run=False,
                           token_file=ctl_token, notify_url=notify_url,
                           notify_token_file=token_file, interval=0.2,
                           lease={"renew": 0.2})  # fmt: skip
    stop = threading.Event()
    t = threading.Thread(target=run, args=(s, stop), daemon=True)
    t.start()
    try:
        sink = HttpActionSink(f"http://127.0.0.1:{port}", token="ctl")  # noqa: S106
        details = []
        deadline = time.monotonic() + 20
        for i in range(8):
            while time.monotonic() < deadline:
                result = sink.submit(NodeAction("isolate", f"b{i}", node=f"gpu-a-node-0{i}",
                                                fault_code="A050801"))  # fmt: skip
                if result.outcome != "deferred" and "Connection refused" not in result.detail:
                    break
                time.sleep(0.1)
            details.append(result.detail)
            if "circuit breaker" in result.detail:
                break
        assert "circuit breaker" in details[-1], details
    finally:
        stop.set()
        t.join(10)
