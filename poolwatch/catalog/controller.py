"""Catalog entries of the controller's own metrics (`poolwatch controller run`, GET /metrics).

Per-pool families carry `pool` as an identity label, prepended like the runner's (so it is not
listed in `labels`). `kind` is the action or request (isolate, replace, restart-job,
CreatePoolV2, ...), `outcome` one of done, already, deferred, refused, dry-run, failed
(`poolwatch.actions.ActionOutcome`)."""

from __future__ import annotations

from poolwatch.core.catalog.model import MetricSpec
from poolwatch.core.catalog.model import family as _spec

# fmt: off
CONTROLLER_SPECS: list[MetricSpec] = [
    _spec("poolwatch_controller_actions_total", "counter", "",
          "Actions and requests the controller answered, by kind and outcome (controller).",
          ("kind", "outcome"), "controller"),
    _spec("poolwatch_controller_replacements_total", "counter", "",
          "HA replacements that ended, by result done or failed (failed: not finished within 24 h, "
          "ModelArts' limit) (controller).", ("result",), "controller"),
    _spec("poolwatch_controller_replacements_in_flight", "gauge", "",
          "Nodes being replaced from the pool's HA spares now (ModelArts' limit: at most 5 % of "
          "the pool at once) (controller).", (), "controller"),
    _spec("poolwatch_controller_replacements_queued", "gauge", "",
          "Replacements waiting for a spare, the replacement limits (20 % of the pool a day, "
          "5 % at once) or a conflict (controller).",
          (), "controller"),
    _spec("poolwatch_controller_breaker_open", "gauge", "",
          "1 while the pool's circuit breaker is open: no isolation in the pool (controller).",
          (), "controller"),
    _spec("poolwatch_controller_leader", "gauge", "",
          "1 while this controller holds the leader Lease and acts; 0 on standby (controller).",
          (), "controller"),
    _spec("poolwatch_controller_notifications_queued", "gauge", "",
          "Notices waiting in the controller's outbox for the notifier (controller).", (),
          "controller"),
    _spec("poolwatch_controller_notifications_dropped_total", "counter", "",
          "Undelivered notices dropped, oldest first, from an outbox at its outbox_limit while "
          "the notifier was down (controller).", (), "controller"),
    _spec("poolwatch_controller_view_current", "gauge", "",
          "1 while the controller's view of the cluster is current: its informers list and watch "
          "and show its own last writes; 0 while it takes no decision (controller).", (),
          "controller"),
    _spec("poolwatch_controller_view_stale_total", "counter", "",
          "Decisions not taken because the controller's view of the cluster was not current "
          "within view_timeout (controller).", (), "controller"),
    _spec("poolwatch_controller_last_reconcile_timestamp_seconds", "gauge", "seconds",
          "When the last control-loop step finished (controller).", (), "controller"),
]
# fmt: on
