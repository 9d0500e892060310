"""The receiver's own metrics, built from the catalog on each scrape (a few dozen series, read
from the service's counters and one GROUP BY over the outbox)."""

from __future__ import annotations

from poolwatch.core.catalog import new_family
from poolwatch.core.exposition import render

from .service import AlertService


def exposition(service: AlertService) -> bytes:
    received = new_family("poolwatch_alerts_received_total")
    for source in ("webhook", "inprocess"):
        received.add_metric([source], service.received.get(source, 0))
    dup = new_family("poolwatch_alerts_duplicates_total")
    dup.add_metric([], service.duplicates)
    rejected = new_family("poolwatch_alerts_requests_rejected_total")
    for code, n in sorted(service.rejected.items()):
        rejected.add_metric([code], n)
    messages = new_family("poolwatch_alerts_messages_total")
    notes = new_family("poolwatch_alerts_notifications_total")
    with service.counters.lock:
        for name in service.workers:
            for outcome in ("sent", "failed"):
                messages.add_metric(
                    [name, outcome], service.counters.messages.get((name, outcome), 0)
                )
            for outcome in ("sent", "failed", "dead"):
                notes.add_metric(
                    [name, outcome], service.counters.notifications.get((name, outcome), 0)
                )
    outbox = new_family("poolwatch_alerts_outbox_notifications")
    counts = service.outbox.counts()
    for name in service.workers:
        for state, n in counts.get(name, {}).items():
            outbox.add_metric([name, state], n)
    oldest = new_family("poolwatch_alerts_oldest_queued_age_seconds")
    oldest.add_metric([], service.outbox.oldest_queued() or 0.0)
    return render([received, dup, rejected, messages, notes, outbox, oldest])
