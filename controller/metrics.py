"""The controller's own metrics, fresh families from the catalog on every scrape (a few series
per pool, read from the service's counters and the store)."""

from __future__ import annotations

from poolwatch.core.catalog import new_family
from poolwatch.core.exposition import render

from .service import PoolController

REPLACE_KINDS = ("done", "failed")
POOL = ("pool",)  # identity label, prepended as the runner does


def exposition(ctl: PoolController, leader: bool, last_reconcile: float | None) -> bytes:
    actions = new_family("poolwatch_controller_actions_total")
    replaced = new_family("poolwatch_controller_replacements_total")
    with ctl.lock:  # the HTTP handlers' submits count concurrently
        stats = sorted(ctl.stats.items())
    for (kind, outcome), n in stats:
        if kind in ("replacement", "view"):
            continue
        actions.add_metric([kind, outcome], n)
    for result in REPLACE_KINDS:
        replaced.add_metric([result], ctl.stats.get(("replacement", result), 0))
    flight = new_family("poolwatch_controller_replacements_in_flight", POOL)
    queued = new_family("poolwatch_controller_replacements_queued", POOL)
    breaker = new_family("poolwatch_controller_breaker_open", POOL)
    active = ctl.store.replacements(active=True)
    for pool in sorted({*ctl.store.pool_names(), *(r.pool for r in active)}):
        flight.add_metric([pool], sum(r.pool == pool and r.state != "queued" for r in active))
        queued.add_metric([pool], sum(r.pool == pool and r.state == "queued" for r in active))
        breaker.add_metric([pool], float(ctl.breaker_open(pool)))
    lead = new_family("poolwatch_controller_leader")
    lead.add_metric([], float(leader))
    outbox = new_family("poolwatch_controller_notifications_queued")
    outbox.add_metric([], ctl.store.outbox_size())
    dropped = new_family("poolwatch_controller_notifications_dropped_total")
    dropped.add_metric([], ctl.store.outbox_dropped)
    current = new_family("poolwatch_controller_view_current")
    current.add_metric([], float(ctl.view_current))
    stale = new_family("poolwatch_controller_view_stale_total")
    stale.add_metric([], ctl.stats.get(("view", "stale"), 0))
    fams = [actions, replaced, flight, queued, breaker, lead, outbox, dropped, current, stale]
    if last_reconcile is not None:
        last = new_family("poolwatch_controller_last_reconcile_timestamp_seconds")
        last.add_metric([], last_reconcile)
        fams.append(last)
    return render(fams)
