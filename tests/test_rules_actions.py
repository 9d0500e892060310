"""The engine's notifications and controller requests through poolwatch.actions, in process and
over HTTP (rules/sinks.py): what is sent, when it is acked, idempotency across a restart."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import free_port

from poolwatch.core.actions import ActionResult, AlertMessage, NodeAction
from poolwatch.rules.engine import Engine
from poolwatch.rules.model import Group
from poolwatch.rules.sinks import HttpActionSink, WebhookNotifier, read_token, webhook_body
from poolwatch.rules.state import StateStore

EXPR = "(poolwatch_accelerator_up) == 0"
SERIES = {"__name__": "poolwatch_accelerator_up", "node": "n1", "pool": "p1", "device": "0",
          "namespace": "ml", "training_job": "bert"}  # fmt: skip


def group(**rule: object) -> Group:
    base = {
        "name": "PoolwatchGpuLostForTest", "expr": "poolwatch_accelerator_up", "op": "==",
        "threshold": 0, "periods": 1, "severity": "critical",
        "annotations": {"summary": "GPU lost", "description": "d", "runbook": "r"},
        "actions": ["notify", {"isolate": "A050104"}, "replace", "restart-job"],
    }  # fmt: skip
    return Group.model_validate({"group": "g", "interval": "1m", "rules": [base | rule]})


class Source:
    def __init__(self) -> None:
        self.results: dict[str, list[tuple[dict[str, str], float]]] = {}

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        return self.results.get(expr, [])


class Notifier:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.batches: list[list[AlertMessage]] = []

    def notify(self, messages: list[AlertMessage]) -> bool:
        self.batches.append(messages)
        return self.ok


class Sink:
    def __init__(self, outcome: str = "done") -> None:
        self.outcome = outcome
        self.actions: list[NodeAction] = []

    def submit(self, action: NodeAction) -> ActionResult:
        self.actions.append(action)
        return ActionResult(self.outcome, "ok")  # type: ignore[arg-type]


def engine(tmp_path: Path, source: Source, **rule: object) -> Engine:
    return Engine([group(**rule)], source, StateStore(tmp_path / "s.db"), clock=lambda: 1000.0,
                  reminder_wait=600)  # fmt: skip


def test_firing_sends_message_and_actions_once_reminder_and_resolve(tmp_path: Path) -> None:
    src, n, sink = Source(), Notifier(), Sink()
    src.results[EXPR] = [(SERIES, 0.0)]
    e = engine(tmp_path, src)
    e.evaluate(1000)
    e.dispatch([n], [sink], 1000)
    [[fire]] = n.batches
    assert (fire.kind, fire.labels["alertname"], fire.starts_at) == ("firing", e.rules[0].rule.name,
                                                                      1000.0)  # fmt: skip
    assert [a.kind for a in sink.actions] == ["isolate", "replace", "restart-job"]
    iso = sink.actions[0]
    assert (iso.node, iso.pool, iso.fault_code, iso.job) == ("n1", "p1", "A050104", "ml/bert")
    assert iso.key == f"{fire.fingerprint}:isolate:1970-01-01T00:16:40Z"
    assert not iso.dry_run
    assert iso.reason.startswith("PoolwatchGpuLostForTest: GPU lost")
    # still firing: nothing new until the reminder is due, and no action again (not on reminders)
    e.evaluate(1300)
    e.dispatch([n], [sink], 1300)
    assert len(n.batches) == 1
    assert len(sink.actions) == 3
    e.evaluate(1600)
    e.dispatch([n], [sink], 1600)
    [rem] = n.batches[-1]
    assert rem.kind == "reminder"
    assert rem.annotations["reminder_at"] == "1970-01-01T00:26:40Z"
    assert len(sink.actions) == 3
    src.results[EXPR] = []
    e.evaluate(1700)
    e.dispatch([n], [sink], 1700)
    [res] = n.batches[-1]
    assert (res.kind, res.ends_at) == ("resolved", 1700.0)
    assert res.to_alertmanager()["status"] == "resolved"


def test_unacked_notification_is_sent_again_and_failed_action_retried(tmp_path: Path) -> None:
    src, n, sink = Source(), Notifier(ok=False), Sink("failed")
    src.results[EXPR] = [(SERIES, 0.0)]
    e = engine(tmp_path, src, actions=["replace"])
    e.evaluate(1000)
    e.dispatch([n], [sink], 1000)
    e.dispatch([n], [sink], 1010)
    assert [b[0].kind for b in n.batches] == ["firing", "firing"]
    assert len(sink.actions) == 2
    assert sink.actions[0].key == sink.actions[1].key
    n.ok, sink.outcome = True, "deferred"
    e.dispatch([n], [sink], 1020)
    e.dispatch([n], [sink], 1030)
    assert len(n.batches) == 3
    assert len(sink.actions) == 3


def test_restart_does_not_resend_accepted_actions(tmp_path: Path) -> None:
    src, n, sink = Source(), Notifier(), Sink("refused")
    src.results[EXPR] = [(SERIES, 0.0)]
    e = engine(tmp_path, src, actions=["replace"])
    e.evaluate(1000)
    e.dispatch([n], [sink], 1000)
    assert len(sink.actions) == 1
    e.store.close()
    again = engine(tmp_path, src, actions=["replace"])
    again.evaluate(1060)
    again.dispatch([n], [sink], 1060)
    assert len(sink.actions) == 1
    assert len(n.batches) == 1
    # a new firing of the same series (after a resolve) is a new request with a new key
    src.results[EXPR] = []
    again.evaluate(1120)
    src.results[EXPR] = [(SERIES, 0.0)]
    again.evaluate(1180)
    again.dispatch([n], [sink], 1180)
    assert len(sink.actions) == 2
    assert sink.actions[1].key != sink.actions[0].key


def test_dry_run_rule_marks_actions_dry_run_and_notify_only_rule_sends_none(
    tmp_path: Path,
) -> None:
    src, sink = Source(), Sink()
    src.results[EXPR] = [(SERIES, 0.0)]
    e = engine(tmp_path, src, dry_run=True, actions=["notify", {"isolate": "A050104"}])
    e.evaluate(1000)
    e.dispatch([Notifier()], [sink], 1000)
    assert [(a.kind, a.dry_run) for a in sink.actions] == [("isolate", True)]
    (tmp_path / "x").mkdir()
    plain = engine(tmp_path / "x", src, actions=["notify"])
    plain.evaluate(1000)
    sink2 = Sink()
    plain.dispatch([Notifier()], [sink2], 1000)
    assert sink2.actions == []


class _Recorder(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict[str, str], Any]]] = []
    reply: tuple[int, bytes] = (200, b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, dict(self.headers), body))
        code, out = type(self).reply
        self.send_response(code)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("H", (_Recorder,), {"calls": [], "reply": (200, b"{}")})
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_webhook_notifier_posts_alertmanager_v4(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    msg = AlertMessage("firing", "00ff", {"alertname": "A", "node": "n1"}, {"summary": "s"},
                       starts_at=0.0)  # fmt: skip
    assert WebhookNotifier(url, "sekrit").notify([msg])
    [(path, headers, body)] = handler.calls
    assert path == "/alertmanager"
    assert headers["Authorization"] == "Bearer sekrit"
    assert body == webhook_body([msg])
    assert body["version"] == "4"
    assert body["receiver"] == "poolwatch-rules"
    assert body["alerts"][0]["startsAt"] == "1970-01-01T00:00:00Z"
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    handler.reply = (503, b"busy")
    assert not WebhookNotifier(url + "/hook").notify([msg])
    assert handler.calls[-1][0] == "/hook"


def test_http_action_sink_round_trip_and_failures(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    handler.reply = (200, b'{"outcome": "deferred", "detail": "queued"}')
    action = NodeAction("replace", "k1", node="n1", pool="p1", reason="r")
    assert HttpActionSink(url, "t").submit(action) == ActionResult("deferred", "queued")
    [(path, _headers, body)] = handler.calls
    assert path == "/actions"
    assert NodeAction.from_json(body) == action
    handler.reply = (500, b"oops")
    assert HttpActionSink(url).submit(action).outcome == "failed"
    handler.reply = (200, b'{"outcome": "maybe"}')
    assert "unknown outcome" in HttpActionSink(url).submit(action).detail
    dead = HttpActionSink(f"http://127.0.0.1:{free_port()}")
    assert dead.submit(action).outcome == "failed"
    assert not WebhookNotifier(f"http://127.0.0.1:{free_port()}").notify(
        [AlertMessage("resolved", "1", {})]
    )
    with pytest.raises(ValueError, match="http"):
        HttpActionSink("ftp://x")


def test_read_token(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("abc\n")
    assert read_token(str(tmp_path / "t")) == "abc"
    assert read_token(None) is None


def test_old_action_records_are_pruned(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    store.record_action("old", "done", "", 0.0)
    store.record_action("new", "done", "", 100 * 86400.0)
    e = Engine([group()], Source(), store, clock=lambda: 100 * 86400.0)
    e.dispatch([], [], 100 * 86400.0)
    assert store.action_keys() == {"new"}
    assert e._sent_actions == {"new"}
