"""The rule engine's HTTP clients against the real other side: the alerts receiver's payload
parser accepts what WebhookNotifier sends, and the controller's server answers HttpActionSink."""

from __future__ import annotations

from helpers import free_port

from poolwatch.core.actions import AlertMessage, NodeAction
from poolwatch.rules.engine import message
from poolwatch.rules.sinks import HttpActionSink, webhook_body
from poolwatch.rules.state import AlertState


def _state(**kw: object) -> AlertState:
    base = {"rule": "PoolwatchX", "labels": {"alertname": "PoolwatchX", "node": "n1"},
            "annotations": {"summary": "s"}, "state": "firing", "fingerprint": "00ab",
            "active_since": 100.0, "fired_at": 160.0, "last_notified": 160.0}  # fmt: skip
    return AlertState(**(base | kw))  # type: ignore[arg-type]


def test_the_alerts_receiver_parses_the_engines_webhook() -> None:
    import json

    from poolwatch.alerts.payload import parse

    firing = message("firing", _state(), 3600)
    reminder = message("reminder", _state(), 3600)
    resolved = message("resolved", _state(state="resolved", resolved_at=500.0), 3600)
    got = parse(json.dumps(webhook_body([firing, reminder, resolved])).encode())
    assert [m.status for m in got] == ["firing", "firing", "resolved"]
    assert got[0].starts_at == 160.0
    assert got[2].ends_at == 500.0
    assert got[1].annotations["reminder_at"] == "1970-01-01T01:02:40Z"
    assert {m.fingerprint for m in got} == {"00ab"}
    assert all(isinstance(m, AlertMessage) for m in got)


def test_the_controller_answers_the_engines_action_sink() -> None:
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.controller.server import ControllerServer, serve
    from poolwatch.controller.service import PoolController

    cluster = SimulatedCluster()
    node = next(n for n in cluster.nodes() if n.pool)
    ctl = PoolController(cluster)
    server = ControllerServer(("127.0.0.1", free_port()), ctl, "tok", lambda: True, lambda: None)
    serve(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        action = NodeAction("isolate", "fp:isolate:t0", node=node.name, pool=node.pool,
                            fault_code="A050101", reason="test", dry_run=True)  # fmt: skip
        result = HttpActionSink(url, "tok").submit(action)
        assert result.outcome == "dry-run"  # the rule's dry_run reaches the controller
        assert node.name in result.detail
        assert HttpActionSink(url, "wrong").submit(action).outcome == "refused"
    finally:
        server.shutdown()
        server.server_close()
