"""Catalog entries of the alerts part's own metrics (`poolwatch alerts serve`, GET /metrics).

`target` is the configured target's name (never its URL, which may carry credentials)."""

from __future__ import annotations

from poolwatch.core.catalog.model import MetricSpec
from poolwatch.core.catalog.model import family as _spec

# fmt: off
ALERTS_SPECS: list[MetricSpec] = [
    _spec("poolwatch_alerts_received_total", "counter", "",
          "Alerts accepted into the outbox, by source webhook or inprocess (alerts_receiver).",
          ("source",), "alerts_receiver"),
    _spec("poolwatch_alerts_duplicates_total", "counter", "",
          "Alerts absorbed as duplicates of a stored notification: Alertmanager repeats, retried "
          "webhooks (alerts_receiver).", (), "alerts_receiver"),
    _spec("poolwatch_alerts_requests_rejected_total", "counter", "",
          "Webhook requests refused, by HTTP status code; nothing of them is stored "
          "(alerts_receiver).", ("code",), "alerts_receiver"),
    _spec("poolwatch_alerts_messages_total", "counter", "",
          "Messages (each one group of notifications) handed to a target, by outcome sent or "
          "failed (alerts_delivery).", ("target", "outcome"), "alerts_delivery"),
    _spec("poolwatch_alerts_notifications_total", "counter", "",
          "Notifications in those messages, by outcome sent, failed (will be retried) or dead "
          "(past the retry deadline) (alerts_delivery).", ("target", "outcome"), "alerts_delivery"),
    _spec("poolwatch_alerts_outbox_notifications", "gauge", "",
          "Deliveries in the outbox by state queued, failing, sending, sent, dead "
          "(alerts_delivery).", ("target", "state"), "alerts_delivery"),
    _spec("poolwatch_alerts_oldest_queued_age_seconds", "gauge", "seconds",
          "Age of the oldest undelivered notification; 0 when none waits (alerts_delivery).",
          (), "alerts_delivery"),
]
# fmt: on
