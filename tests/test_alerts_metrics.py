"""The receiver's own /metrics: every family is the catalog's, and promtool finds nothing."""

from __future__ import annotations

from pathlib import Path

from alerts_support import alert, settings
from helpers import parse, promtool_findings, value
from prom_versions import Prometheus

from poolwatch.alerts.metrics import exposition
from poolwatch.alerts.service import AlertService
from poolwatch.core.catalog import families_of


def test_exposition_matches_catalog_and_counts(tmp_path: Path, prom: Prometheus) -> None:
    service = AlertService(settings(tmp_path, [{"name": "chat", "url": "json://127.0.0.1:1/x"}]))
    service.accept([alert(1), alert(2)], source="webhook")
    service.accept([alert(1)], source="webhook")
    service.count_rejected(422)
    body = exposition(service)
    series = parse(body)
    assert value(series, "poolwatch_alerts_received_total", source="webhook") == 3
    assert value(series, "poolwatch_alerts_duplicates_total") == 1
    assert value(series, "poolwatch_alerts_requests_rejected_total", code="422") == 1
    assert value(series, "poolwatch_alerts_outbox_notifications", target="chat",
                 state="queued") == 2  # fmt: skip
    assert value(series, "poolwatch_alerts_oldest_queued_age_seconds") >= 0
    declared = {s.name for c in ("alerts_receiver", "alerts_delivery") for s in families_of(c)}
    assert {n for n, _ in series} == declared  # every family, each named as the catalog says
    assert promtool_findings(body, prom.promtool) == set()
