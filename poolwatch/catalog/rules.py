"""Catalog entries of the rule engine's own metrics (`poolwatch rules run --listen`)."""

from __future__ import annotations

from poolwatch.core.catalog.model import MetricSpec
from poolwatch.core.catalog.model import family as _spec

# fmt: off
RULES_SPECS: list[MetricSpec] = [
    _spec("poolwatch_rules_evaluations_total", "counter", "",
          "Evaluations of the whole rule set, each rule queried once (rules_engine).", (),
          "rules_engine"),
    _spec("poolwatch_rules_evaluation_duration_seconds_total", "counter", "seconds",
          "Time spent evaluating; over evaluations_total, the mean cycle (rules_engine).", (),
          "rules_engine"),
    _spec("poolwatch_rules_last_evaluation_duration_seconds", "gauge", "seconds",
          "Time the last evaluation of the rule set took (rules_engine).", (), "rules_engine"),
    _spec("poolwatch_rules_evaluation_failures_total", "counter", "",
          "Failed evaluations of a rule: the source did not answer or the expression raised "
          "on this data (rules_engine).",
          ("rule",), "rules_engine"),
    _spec("poolwatch_rules_alerts", "gauge", "",
          "Alerts the engine holds, by state pending, firing or resolved (rules_engine).",
          ("state",), "rules_engine"),
]
# fmt: on
