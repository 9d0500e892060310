"""The rule engine (`poolwatch rules run`): the same rule files Prometheus gets, evaluated here.

Per rule, one instant query of the compiled expression (rules/compile.py) at `at`. Each series
that comes back is an alert, labelled as Prometheus labels it (series labels without __name__,
the rule's labels, severity, seed_ids, alertname) and fingerprinted as Alertmanager does:

* new match: pending, or firing at once when the hold time is 0;
* pending for at least the hold time (`for`, or `periods` as compile.hold_for reckons it): firing;
* pending and no longer matching: dropped (Prometheus never notifies a pending alert);
* firing and no longer matching: resolved, kept until the resolve notification is confirmed;
* firing and `reminder_wait` since the last notification: a reminder is due.

`clear` (hysteresis): the compiled expression reads Prometheus' own ALERTS series, which a server
that does not run these rules lacks, so the engine queries the hold expression `(EXPR) OP CLEAR`
(the same builder, with the clear value as threshold) and applies the threshold itself to series
that are not already active.

Every transition is saved to SQLite before `evaluate` returns; `due_notifications` lists what to
send and `ack` marks it sent, so a restart neither re-fires nor forgets. A source error skips that
rule (counted; its alerts keep their state); once queries have failed for `grace` seconds without
a fully successful evaluation in between, the internal alert PoolwatchRuleEngineFailing fires.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prometheus_client.core import (
    Metric,
)

from poolwatch.core import catalog
from poolwatch.core.actions import ActionResult, ActionSink, AlertMessage, NodeAction, Notifier
from poolwatch.core.catalog.rules import RULES_SPECS

from . import compile as compiler
from .fingerprint import fingerprint
from .loader import LoadedGroup, RuleFileError
from .model import Group, Isolate, Rule, duration_seconds
from .overrides import load_all
from .silences import SilenceStore
from .sinks import LogActionSink, LogNotifier
from .sources import Source, SourceError
from .state import STATES, AlertState, StateStore
from .templates import expand_all

log = logging.getLogger(__name__)

ENGINE_ALERT = "PoolwatchRuleEngineFailing"
#: how long an accepted controller request is remembered (its key holds the firing time, so
#: only an alert firing without a break for longer could be asked again; the controller
#: deduplicates by key as well)
ACTION_MEMORY = 90 * 86400.0
Kind = Literal["firing", "reminder", "resolved"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip


def _since(start: float | None, at: float) -> float:
    return 0.0 if start is None else at - start


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    query: str
    hold_s: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    #: "file:line" of the rule's entry ("" for a rule built in code)
    where: str = ""
    #: id(series labels) -> (those labels, alert labels, fingerprint): a source that returns
    #: the same label objects every cycle (the local one) is not re-hashed every cycle
    seen: dict[int, tuple[object, dict[str, str], str]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, rule: Rule, interval: str, where: str = "", runbook_base: str = "") -> CompiledRule:
        alert = compiler.alert(rule, interval, runbook_base)
        query = alert["expr"]
        if rule.clear is not None:
            query = compiler.expression(
                rule.model_copy(update={"threshold": rule.clear, "clear": None})
            )
        hold = compiler.hold_for(rule, interval)
        return cls(rule, query, duration_seconds(hold) if hold else 0.0, alert["labels"],
                   alert["annotations"], where)  # fmt: skip

    def alert_labels(self, series: Mapping[str, str]) -> dict[str, str]:
        out = {k: v for k, v in series.items() if k != "__name__"}
        return out | dict(self.labels) | {"alertname": self.rule.name}

    def node_actions(self, s: AlertState) -> list[NodeAction]:
        """The controller requests of this rule for the firing alert `s`; the key is the
        fingerprint, the kind and the firing time, so a re-sent request is the same request and
        a later firing of the same series is a new one."""
        out = []
        labels = s.labels
        job = ""
        if labels.get("namespace") and labels.get("training_job"):
            job = f"{labels['namespace']}/{labels['training_job']}"
        reason = f"{self.rule.name}: {self.annotations.get('summary', '')}"
        for a in self.rule.actions:
            if a == "notify":
                continue
            kind = "isolate" if isinstance(a, Isolate) else a
            out.append(NodeAction(
                kind=kind, key=f"{s.fingerprint}:{kind}:{_iso(s.fired_at)}",
                node=labels.get("node", ""), pool=labels.get("pool", ""),
                fault_code=a.isolate if isinstance(a, Isolate) else "", job=job, reason=reason,
                dry_run=self.rule.dry_run, labels=dict(labels),
            ))  # fmt: skip
        return out


def _iso(ts: float | None) -> str:
    """Alertmanager's RFC 3339 time (its zero time for 'not set')."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def message(kind: Kind, s: AlertState, reminder_wait: float) -> AlertMessage:
    """The notification about `s`: starts at its firing time (as Prometheus sends it), ends at
    the resolve; a reminder carries the time it became due in `annotations['reminder_at']`."""
    annotations = dict(s.annotations)
    if kind == "reminder" and s.last_notified is not None:
        annotations["reminder_at"] = _iso(s.last_notified + reminder_wait)
    return AlertMessage(
        kind=kind, fingerprint=s.fingerprint, labels=dict(s.labels), annotations=annotations,
        starts_at=s.fired_at if s.fired_at is not None else s.active_since,
        ends_at=s.resolved_at if kind == "resolved" else None, value=s.value,
    )  # fmt: skip


def compile_groups(
    groups: Iterable[Group | LoadedGroup], runbook_base: str = ""
) -> list[CompiledRule]:
    out = []
    for g in groups:
        if isinstance(g, LoadedGroup):
            out.extend(CompiledRule.of(r, g.group.interval, g.where(r.name), runbook_base)
                       for r in g.group.rules)  # fmt: skip
        else:
            out.extend(CompiledRule.of(r, g.interval, runbook_base=runbook_base) for r in g.rules)
    return out


class Engine:
    """Evaluates `groups` against `source`, keeping alert states in `store`."""

    def __init__(
        self,
        groups: Iterable[Group | LoadedGroup],
        source: Source,
        store: StateStore,
        clock: Callable[[], float] = time.time,
        reminder_wait: float = 4 * 3600.0,
        grace: float = 300.0,
        timer: Callable[[], float] = time.perf_counter,
        silences: SilenceStore | None = None,
        runbook_base: str = "",
    ) -> None:
        self.source = source
        #: joined to relative runbook paths (compile.check_runbook_base; "" leaves them relative)
        self.runbook_base = compiler.check_runbook_base(runbook_base)
        self.silences = silences
        self.refused: dict[str, str] = {}  # rule -> why the source cannot evaluate it
        self.refused_where: dict[str, str] = {}
        self.rules = self._supported(compile_groups(groups, self.runbook_base))
        self.store = store
        self.clock = clock
        self.reminder_wait = reminder_wait
        self.grace = grace
        self.timer = timer
        self._lock = threading.Lock()
        self.alerts: dict[str, AlertState] = store.load()
        self.failures: Counter[str] = Counter()
        #: rule -> (when, what) of its last failed evaluation, shown on the status page
        self.last_errors: dict[str, tuple[float, str]] = {}
        self._down: set[str] = set()  # rules whose last query failed (log once per outage)
        self.evaluations = 0
        self.duration_sum = 0.0
        self.last_duration = 0.0
        self._sent_actions: set[str] = store.action_keys()
        self._pruned_at = 0.0
        self._last_cycle = time.monotonic()  # start-up counts as a cycle for /healthz

    def _supported(self, rules: list[CompiledRule]) -> list[CompiledRule]:
        """Drop the rules the source refuses (the local source evaluates a subset of PromQL);
        each is logged once with the reason and listed in `refused`."""
        prepare = getattr(self.source, "prepare", None)
        if prepare is None:
            return rules
        reasons: dict[str, str | None] = prepare([c.query for c in rules])
        refused = {c.rule.name: r for c in rules if (r := reasons.get(c.query)) is not None}
        self.refused_where = {c.rule.name: c.where for c in rules if c.rule.name in refused}
        for name, reason in sorted(refused.items()):
            if self.refused.get(name) != reason:
                log.error("rule %s refused by the %s source: %s", name,
                          type(self.source).__name__, reason)  # fmt: skip
        self.refused = refused
        return [c for c in rules if c.rule.name not in refused]

    def set_groups(self, groups: Iterable[Group | LoadedGroup]) -> None:
        """Swap in reloaded rules; alerts of rules that are gone resolve at the next evaluation."""
        with self._lock:
            self.rules = self._supported(compile_groups(groups, self.runbook_base))

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, at: float | None = None) -> list[AlertState]:
        """Evaluate every rule at `at` (default: the clock); the active and resolved alerts."""
        at = self.clock() if at is None else at
        start = self.timer()
        with self._lock:
            changed: dict[str, AlertState] = {}
            deleted: set[str] = set()
            failed = False
            names = {c.rule.name for c in self.rules}
            by_rule: dict[str, list[AlertState]] = {}
            for s in self.alerts.values():
                by_rule.setdefault(s.rule, []).append(s)
            for compiled in self.rules:
                name = compiled.rule.name
                # each rule's changes are its own until it has finished: a rule that fails half
                # way leaves its alerts as they were, and the other rules are not touched
                mine: dict[str, AlertState] = {}
                gone: set[str] = set()
                try:
                    samples = self.source.query(compiled.query, at)
                    self._apply(compiled, samples, at, mine, gone, by_rule.get(name, []))
                except SourceError as err:
                    failed = True
                    self._rule_failed(name, err, at)
                    continue
                except Exception as err:  # noqa: BLE001 - isolation: one rule's bug is its own
                    self._rule_failed(name, err, at)
                    continue
                self._down.discard(name)
                changed.update(mine)
                deleted |= gone
            # alerts of rules that no longer exist go the way of an alert that stopped matching
            orphans = [s for s in self.alerts.values() if s.rule not in names | {ENGINE_ALERT}]
            for s in orphans:
                self._gone(s, at, changed, deleted)
            self._engine_alert(failed, at, changed, deleted)
            self.store.save(changed.values(), deleted)  # record first ...
            for fp in deleted:
                self.alerts.pop(fp, None)
            self.alerts.update(changed)
            self.evaluations += 1
            self.last_duration = self.timer() - start
            self._last_cycle = time.monotonic()
            self.duration_sum += self.last_duration
            result = sorted(self.alerts.values(), key=lambda s: (s.rule, s.fingerprint))
        record = getattr(self.source, "record_self", None)
        if record is not None:  # the local source sees the engine's series as Prometheus would
            try:
                record(self.self_samples(), at)
            except Exception:  # never the end of the cycle: its alerts are saved
                log.exception("the engine's own series were not recorded")
        return result

    def self_samples(self) -> list[tuple[str, dict[str, str], float]]:
        """The engine's own series as (name, labels, value), as a scrape of /metrics has them."""
        return [(s.name, dict(s.labels), s.value) for fam in self.collect() for s in fam.samples]

    def _rule_failed(self, name: str, err: BaseException, at: float) -> None:
        """Count a failed evaluation of rule `name` and keep its error for the status page.
        The first failure of a run of failures is a warning; the rest of it is debug, so a
        Prometheus that is down does not log every rule every interval."""
        self.failures[name] += 1
        text = str(err) if isinstance(err, SourceError) else f"{type(err).__name__}: {err}"
        self.last_errors[name] = (at, text)
        first = name not in self._down
        self._down.add(name)
        log.log(logging.WARNING if first else logging.DEBUG,
                "rule %s: evaluation failed: %s", name, text)  # fmt: skip

    def _apply(
        self,
        c: CompiledRule,
        samples: Sequence[tuple[Mapping[str, str], float]],
        at: float,
        changed: dict[str, AlertState],
        deleted: set[str],
        current: list[AlertState],
    ) -> None:
        """`current`: this rule's alerts before this evaluation."""
        seen: set[str] = set()
        known = c.seen
        if len(known) > 2 * len(samples) + 1000:  # series come and go; forget the old ones
            known.clear()
        for series, value in samples:
            hit = known.get(id(series))
            if hit is not None and hit[0] is series:
                labels, fp = hit[1], hit[2]
            else:
                labels = c.alert_labels(series)
                fp = fingerprint(labels)
                known[id(series)] = (series, labels, fp)
            old = self.alerts.get(fp)
            active = old is not None and old.state in ("pending", "firing")
            if (
                c.rule.clear is not None
                and not active
                and not _OPS[c.rule.op](value, c.rule.threshold)
            ):
                continue  # in the hysteresis band, and not firing: nothing to hold
            seen.add(fp)
            if (
                active
                and old.value == value  # type: ignore[union-attr]
                and not (old.state == "pending" and _since(old.active_since, at) >= c.hold_s)  # type: ignore[union-attr]
            ):
                continue  # the same series, the same value: the same alert, nothing to write
            # as Prometheus renders them: the series' labels and this evaluation's value
            annotations = expand_all(c.annotations, series, value)
            if old is not None and active:
                new = dataclasses.replace(old, value=value, annotations=annotations)
                if old.state == "pending" and _since(old.active_since, at) >= c.hold_s:
                    new = dataclasses.replace(new, state="firing", fired_at=at)
            else:  # new, or back after a resolve: a fresh alert, its old notification forgotten
                firing = c.hold_s <= 0
                new = AlertState(
                    rule=c.rule.name, labels=labels, annotations=annotations,
                    state="firing" if firing else "pending", fingerprint=fp,
                    active_since=at, fired_at=at if firing else None, value=value,
                    # a resolve not yet sent is superseded: the receiver still thinks it fires
                    notified=old.notified if old is not None and old.notified == "firing" else None,
                    last_notified=old.last_notified if old is not None else None,
                )  # fmt: skip
            if new != old:
                changed[fp] = new
        for s in current:
            if s.fingerprint not in seen:
                self._gone(s, at, changed, deleted)

    @staticmethod
    def _gone(s: AlertState, at: float, changed: dict[str, AlertState], deleted: set[str]) -> None:
        if s.state == "firing":
            changed[s.fingerprint] = dataclasses.replace(s, state="resolved", resolved_at=at)
        elif s.state == "pending" or (s.state == "resolved" and s.notified != "firing"):
            deleted.add(s.fingerprint)  # nothing was ever sent about it, or its resolve was

    def _engine_alert(
        self, failed: bool, at: float, changed: dict[str, AlertState], deleted: set[str]
    ) -> None:
        labels = {"alertname": ENGINE_ALERT, "severity": "critical"}
        fp = fingerprint(labels)
        old = self.alerts.get(fp)
        if not failed:
            if old is not None:
                self._gone(old, at, changed, deleted)
            return
        if old is None or old.state not in ("pending", "firing"):
            annotations = {
                "summary": "The poolwatch rule engine cannot query its source.",
                "description": "Rule evaluations have been failing; alerts keep their last state.",
                "runbook_url": compiler.runbook_url(
                    "docs/rules.md#poolwatchruleenginefailing", self.runbook_base
                ),
                "actions": "notify",
                "dry_run": "false",
            }
            firing = self.grace <= 0
            changed[fp] = AlertState(
                rule=ENGINE_ALERT, labels=labels, annotations=annotations,
                state="firing" if firing else "pending", fingerprint=fp, active_since=at,
                fired_at=at if firing else None,
                notified=old.notified if old is not None else None,
                last_notified=old.last_notified if old is not None else None,
            )  # fmt: skip
        elif old.state == "pending" and _since(old.active_since, at) >= self.grace:
            changed[fp] = dataclasses.replace(old, state="firing", fired_at=at)

    # -- notifications ------------------------------------------------------------------------

    def due_notifications(self, at: float | None = None) -> list[tuple[Kind, AlertState]]:
        """What to send now: new firing alerts, reminders, resolves. Nothing is marked sent
        until `ack`, so a crash before it re-sends rather than losing the notification."""
        at = self.clock() if at is None else at
        due: list[tuple[Kind, AlertState]] = []
        try:
            muted = self.silences.active(at) if self.silences is not None else []
        except sqlite3.Error as err:  # unknown silences: send nothing now, all of it later
            log.warning("silences unreadable, notifications wait: %s", err)
            return []
        with self._lock:
            for s in sorted(self.alerts.values(), key=lambda s: (s.rule, s.fingerprint)):
                if muted and any(m.matches(s.labels, at) for m in muted):
                    continue  # silenced: nothing is sent; it stays due for after the silence
                if s.state == "firing" and s.notified != "firing":
                    due.append(("firing", s))
                elif s.state == "firing" and _since(s.last_notified, at) >= self.reminder_wait:
                    due.append(("reminder", s))
                elif s.state == "resolved" and s.notified == "firing":
                    due.append(("resolved", s))
        return due

    def ack(self, kind: Kind, state: AlertState, at: float | None = None) -> None:
        """The notification `kind` about `state` was sent: record it (a resolve drops it)."""
        at = self.clock() if at is None else at
        with self._lock:
            current = self.alerts.get(state.fingerprint)
            if current is None:
                return
            if kind == "resolved":
                if current.state == "resolved":
                    self.store.save([], [current.fingerprint])
                    del self.alerts[current.fingerprint]
                return
            new = dataclasses.replace(current, notified="firing", last_notified=at)
            self.store.save([new])
            self.alerts[new.fingerprint] = new

    def due_actions(self) -> list[NodeAction]:
        """Controller requests of firing alerts not yet accepted by a sink (a restart reads the
        accepted ones from the state file, so nothing accepted is asked twice)."""
        by_name = {c.rule.name: c for c in self.rules}
        out = []
        with self._lock:
            for s in sorted(self.alerts.values(), key=lambda s: (s.rule, s.fingerprint)):
                c = by_name.get(s.rule)
                if s.state != "firing" or c is None:
                    continue
                out += [a for a in c.node_actions(s) if a.key not in self._sent_actions]
        return out

    def dispatch(
        self,
        notifiers: Sequence[Notifier],
        sinks: Sequence[ActionSink],
        at: float | None = None,
    ) -> None:
        """Send what is due: notifications as one batch to every notifier (acked only when all
        of them took it; a retry is deduplicated downstream by `dedup_key`), then controller
        requests to every sink (recorded once none answered `failed`; retried otherwise)."""
        at = self.clock() if at is None else at
        if at - self._pruned_at > 3600:  # hourly: forget requests of alerts long resolved
            self.store.prune_actions(at - ACTION_MEMORY)
            self._pruned_at = at
            with self._lock:
                self._sent_actions = self.store.action_keys()
        due = self.due_notifications(at)
        if due:
            batch = [message(kind, s, self.reminder_wait) for kind, s in due]
            sent = [_notify(n, batch) for n in notifiers]  # every notifier gets its try
            if all(sent):
                for kind, s in due:
                    self.ack(kind, s, at)
        for action in self.due_actions():
            results = [_submit(sink, action) for sink in sinks]
            failed = [r.detail for r in results if r.outcome == "failed"]
            if failed:
                log.warning("action %s for %s failed (will retry): %s", action.kind,
                            action.node or action.job, "; ".join(failed))  # fmt: skip
                continue
            outcome = ",".join(sorted({r.outcome for r in results})) or "none"
            detail = "; ".join(r.detail for r in results if r.detail)
            self.store.record_action(action.key, outcome, detail, at)
            with self._lock:
                self._sent_actions.add(action.key)
            log.info("action %s %s: %s %s", action.kind, action.node or action.job, outcome,
                     detail)  # fmt: skip

    def health(self, interval: float) -> tuple[bool, str]:
        """/healthz: fine while evaluations keep coming (within 3 intervals, at least a minute);
        a wedged loop answers 503 so Kubernetes restarts it."""
        idle = time.monotonic() - self._last_cycle
        limit = max(3 * interval, 60.0)
        if idle > limit:
            return False, f"no evaluation for {idle:.0f}s (limit {limit:.0f}s)\n"
        return True, f"ok: {len(self.rules)} rules, {self.evaluations} evaluations\n"

    # -- what an operator sees ----------------------------------------------------------------

    def active_alerts(self) -> list[dict[str, object]]:
        """Every pending and firing alert: its rule, labels, value, since when (active and
        firing), and the rule's file:line; firing first, then by rule."""
        where = {c.rule.name: c.where for c in self.rules}
        now = self.clock()
        muted = self.silences.active(now) if self.silences is not None else []
        with self._lock:
            active = [s for s in self.alerts.values() if s.state in ("pending", "firing")]
        active.sort(key=lambda s: (s.state != "firing", s.rule, s.fingerprint))
        return [{
            "alertname": s.rule, "state": s.state, "labels": dict(s.labels), "value": s.value,
            "active_since": s.active_since, "fired_at": s.fired_at,
            "rule_file": where.get(s.rule, ""), "fingerprint": s.fingerprint,
            "summary": s.annotations.get("summary", ""),
            "silenced": any(m.matches(s.labels, now) for m in muted),
        } for s in active]  # fmt: skip

    def rule_status(self) -> list[dict[str, object]]:
        """Every rule: where it is, whether it runs, its failed evaluations and last error."""
        out: list[dict[str, object]] = []
        with self._lock:
            for c in self.rules:
                name = c.rule.name
                when, error = self.last_errors.get(name, (None, ""))
                out.append({"rule": name, "rule_file": c.where, "state": "running",
                            "failures": self.failures[name], "last_error": error,
                            "last_error_at": when, "query": c.query})  # fmt: skip
            for name, reason in sorted(self.refused.items()):
                out.append({"rule": name, "rule_file": self.refused_where.get(name, ""),
                            "state": "refused", "failures": 0, "last_error": reason,
                            "last_error_at": None, "query": ""})  # fmt: skip
        return out

    # -- self-metrics -------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The engine's own metrics, fresh families from the catalog on every call."""
        fams = {spec.name: catalog.new_family(spec.name) for spec in RULES_SPECS}
        with self._lock:
            fams["poolwatch_rules_evaluations_total"].add_metric([], self.evaluations)
            fams["poolwatch_rules_evaluation_duration_seconds_total"].add_metric(
                [], self.duration_sum
            )
            if self.evaluations:
                fams["poolwatch_rules_last_evaluation_duration_seconds"].add_metric(
                    [], self.last_duration
                )
            failures = fams["poolwatch_rules_evaluation_failures_total"]
            for rule in sorted({c.rule.name for c in self.rules} | set(self.failures)):
                failures.add_metric([rule], self.failures[rule])
            by_state = Counter(s.state for s in self.alerts.values())
            for state in STATES:
                fams["poolwatch_rules_alerts"].add_metric([state], by_state[state])
        yield from fams.values()

    # -- the loop -----------------------------------------------------------------------------

    def run(
        self,
        interval: float,
        notifiers: Sequence[Notifier],
        stop: threading.Event,
        before: Callable[[], object] | None = None,
        sinks: Sequence[ActionSink] = (),
    ) -> None:
        """Evaluate every `interval` seconds until `stop` is set and `dispatch` what is due.
        `before` runs at the start of each cycle (the rule files' reload check)."""
        while not stop.is_set():
            began = time.monotonic()
            try:
                if before is not None:
                    before()
                self.evaluate()
                self.dispatch(notifiers, sinks)
            except Exception:  # one bad cycle must not end the engine
                log.exception("rule evaluation failed")
            stop.wait(max(0.0, interval - (time.monotonic() - began)))


def _notify(notifier: Notifier, batch: list[AlertMessage]) -> bool:
    try:
        return bool(notifier.notify(batch))
    except Exception:  # a broken notifier is a notification not sent, retried next cycle
        log.exception("notifier %s failed", type(notifier).__name__)
        return False


def _submit(sink: ActionSink, action: NodeAction) -> ActionResult:
    try:
        return sink.submit(action)
    except Exception as err:  # the protocol says refuse, not raise; a raise is a retry
        log.exception("action sink %s failed", type(sink).__name__)
        return ActionResult("failed", str(err))


class RuleFiles:
    """The rule files an engine runs, reloaded when one changes or on request (SIGHUP).

    A reload that fails (a broken file) is logged with its file:line errors and changes nothing:
    the rules already loaded keep running. Files are compared by modification time, checked at
    the start of each evaluation cycle."""

    def __init__(self, paths: Sequence[Path], overrides: Path | None = None) -> None:
        self.paths = list(paths)
        self.overrides = overrides
        self.requested = threading.Event()  # set by the SIGHUP handler
        self._stamp = self._mtimes()

    def _mtimes(self) -> tuple[tuple[str, int | None], ...]:
        files = [*self.paths, *([self.overrides] if self.overrides is not None else [])]
        return tuple((str(p), p.stat().st_mtime_ns if p.exists() else None) for p in files)

    def load(self) -> list[LoadedGroup]:
        return load_all(self.paths, self.overrides)

    def maybe_reload(self, engine: Engine) -> bool:
        stamp = self._mtimes()
        if stamp == self._stamp and not self.requested.is_set():
            return False
        self.requested.clear()
        self._stamp = stamp
        try:
            groups = self.load()
        except RuleFileError as err:
            log.error("rule files not reloaded; the previous rules keep running:\n%s", err)
            return False
        engine.set_groups(groups)
        log.info("rule files reloaded: %d groups", len(groups))
        return True


def run_files(
    paths: Sequence[Path],
    source: Source,
    state_path: Path,
    interval: float,
    stop: threading.Event,
    notifiers: Sequence[Notifier] | None = None,
    reminder_wait: float = 4 * 3600.0,
    grace: float = 300.0,
    reload: threading.Event | None = None,
    on_start: Callable[[Engine], object] | None = None,
    sinks: Sequence[ActionSink] | None = None,
    overrides: Path | None = None,
    runbook_base: str = "",
) -> Engine:
    """Load `paths` (RuleFileError if invalid), then evaluate them every `interval` until `stop`,
    reloading them when they change or when `reload` is set (the CLI sets it on SIGHUP)."""
    files = RuleFiles(paths, overrides)
    if reload is not None:
        files.requested = reload
    engine = Engine(files.load(), source, StateStore(state_path), reminder_wait=reminder_wait,
                    grace=grace, silences=SilenceStore(state_path),
                    runbook_base=runbook_base)  # fmt: skip
    if on_start is not None:
        on_start(engine)  # e.g. the CLI serving the engine's own metrics
    engine.run(
        interval, [LogNotifier()] if notifiers is None else notifiers, stop,
        before=lambda: files.maybe_reload(engine),
        sinks=[LogActionSink()] if sinks is None else sinks,
    )  # fmt: skip
    return engine
