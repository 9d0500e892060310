"""The SQLite outbox: every notification is written here before the sender hears "200".

Tables
- `notifications`: one row per distinct notification, unique on its dedup key (fingerprint, kind,
  the firing episode's start and, for reminders, the time the reminder was due). A retried
  webhook, an Alertmanager repeat or a producer that re-sends after a crash hits the unique key
  and adds nothing.
- `deliveries`: one row per (notification, target[, job owner]); state `queued` -> `sending` ->
  `sent`, or `dead` once undelivered past the retry deadline or refused for good. A failed
  attempt puts the row back to `queued` with `attempts + 1` (that is what status calls
  "failing"). Retry state is per row: a message the target refused (`rejections`) waits for its
  own `next_try` and is sent alone from then on, so one bad notification never holds back the
  others (alerts/failures.py says which failures are whose).
- `active`: alerts that fire now, for reminders (see `due_reminders`).

Integrity: the file is checked (`PRAGMA quick_check`) when it is opened, and a damaged or
foreign file is refused with an `OutboxError` naming it; while running, any SQLite error is kept
as the outbox's `fault` (shown by `/healthz` and `/status`, and the receiver answers 503 so
Alertmanager keeps the alerts), and `check()` repeats the integrity check from a fresh
connection (an open connection's page cache can hide a damaged page).

This module is longer than most because it is the one outbox backend: schema, writes, claims,
retry state and integrity all work on the same tables in the same transactions.

Restart safety: rows are marked `sending` (with a batch id) in a committed transaction before the
message goes out and `sent` right after. A graceful stop finishes the batch in flight. After a
hard kill, rows still `sending` are queued again on start: that one batch may be sent a second
time (at-least-once), which we prefer to losing it; it is logged and counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from poolwatch.core.actions import AlertMessage
from poolwatch.core.config import ConfigError

from .settings import severity_rank

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
  id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
  fingerprint TEXT NOT NULL, rank INTEGER NOT NULL, alert TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY, notification INTEGER NOT NULL REFERENCES notifications(id),
  target TEXT NOT NULL, recipient TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, done_at REAL,
  batch TEXT, last_error TEXT NOT NULL DEFAULT '',
  next_try REAL NOT NULL DEFAULT 0, rejections INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries(target, state, id);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS active (
  fingerprint TEXT PRIMARY KEY, alert TEXT NOT NULL, source TEXT NOT NULL,
  last_notified REAL NOT NULL, last_seen REAL NOT NULL);
"""


#: how long an outbox error keeps /healthz failing after the last one (a retry may succeed)
FAULT_HOLD = 60.0
#: a row `sending` for longer than this is not in flight any more (sends time out well before)
STUCK_AFTER = 600.0


class OutboxError(ConfigError):
    """The outbox file cannot be used (damaged, not an outbox, unreadable); names the file."""


@dataclass(frozen=True)
class Route:
    """Where one notification goes: a target name and, for job owners, the owner's address."""

    target: str
    recipient: str = ""


@dataclass(frozen=True)
class Row:
    """One delivery of one notification, as the delivery worker reads it."""

    id: int
    target: str
    recipient: str
    kind: str
    rank: int
    alert: dict
    attempts: int
    created: float
    rejections: int = 0


def dedup_key(msg: AlertMessage) -> str:
    """`AlertMessage.dedup_key` plus the episode start: the same alert firing again after it was
    resolved is a new notification, an Alertmanager repeat of the same episode is not."""
    start = "" if msg.starts_at is None else f"{msg.starts_at:.3f}"
    return f"{msg.dedup_key}:{start}"


def _alert_doc(msg: AlertMessage) -> str:
    doc = msg.to_alertmanager()
    doc["kind"] = msg.kind
    return json.dumps(doc, sort_keys=True)


class Outbox:
    """Thread-safe: a SQLite connection per thread, WAL, synchronous=FULL (200 means on disk)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._local = threading.local()
        self.fault = ""  # the last SQLite error, for /healthz; see `problem()`
        self._fault_at = 0.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            damage = self._quick_check(self._db())
            if damage:
                raise OutboxError(
                    f"outbox {path} is damaged ({damage}); move it aside to start with an "
                    "empty outbox, or restore it from a backup"
                )
            self._db().executescript(SCHEMA)  # executescript manages its own transaction
            self._migrate()
            self.requeued = self._requeue_interrupted()
        except (sqlite3.DatabaseError, OSError) as err:
            raise OutboxError(f"outbox {path} cannot be used: {err}") from None

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def _tx(self) -> _Transaction:
        return _Transaction(self._db(), self._record_fault)

    def _record_fault(self, err: BaseException) -> None:
        self.fault = f"{type(err).__name__}: {err}"
        self._fault_at = time.monotonic()
        log.error("outbox %s: %s", self.path, self.fault)

    @staticmethod
    def _quick_check(db: sqlite3.Connection) -> str:
        """'' when SQLite finds the file sound, else its first complaints."""
        rows = [r[0] for r in db.execute("PRAGMA quick_check(5)").fetchall()]
        return "" if rows == ["ok"] else "; ".join(" ".join(r.split()) for r in rows)[:300]

    def check(self) -> str:
        """Check the file from a fresh connection (the page caches of the open ones can hide a
        damaged page); a finding becomes the `fault`. Returns it, '' when sound."""
        try:
            db = sqlite3.connect(self.path, timeout=30.0)
            try:
                damage = self._quick_check(db)
            finally:
                db.close()
        except sqlite3.DatabaseError as err:
            damage = str(err)
        if damage:
            self._record_fault(sqlite3.DatabaseError(f"integrity check failed: {damage}"))
        return damage

    def recent_fault(self) -> str:
        """The last outbox error if it happened less than FAULT_HOLD seconds ago, else ''."""
        if self.fault and time.monotonic() - self._fault_at < FAULT_HOLD:
            return self.fault
        return ""

    def problem(self) -> str:
        """Why the outbox is not usable now, '' when it is: a probe write fails, or an outbox
        error happened recently (`recent_fault`)."""
        with contextlib.suppress(sqlite3.Error), self._tx() as db:  # an error: recorded as fault
            db.execute("INSERT OR REPLACE INTO health(id, at) VALUES (1, ?)", (self.clock(),))
        return self.recent_fault()

    def requeue_stuck(self) -> int:
        """Rows claimed `sending` more than STUCK_AFTER ago (a worker that died, or whose
        mark-as-sent failed for good) go back to the queue: at-least-once, never lost."""
        now = self.clock()
        with self._tx() as db:
            rows = db.execute("SELECT id, batch FROM deliveries WHERE state='sending'").fetchall()
            stuck = [i for i, batch in rows if now - _claimed(batch) > STUCK_AFTER]
            db.executemany(
                "UPDATE deliveries SET state='queued', batch=NULL WHERE id=?", [(i,) for i in stuck]
            )
        if stuck:
            log.warning("%d deliveries were stuck in flight; queued again", len(stuck))
        return len(stuck)

    def _migrate(self) -> None:
        """Add the per-row retry columns to an outbox written by an older version."""
        have = {row[1] for row in self._db().execute("PRAGMA table_info(deliveries)")}
        with self._tx() as db:
            for column, decl in (("next_try", "REAL NOT NULL DEFAULT 0"),
                                 ("rejections", "INTEGER NOT NULL DEFAULT 0")):  # fmt: skip
                if column not in have:
                    db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {decl}")

    def _requeue_interrupted(self) -> int:
        with self._tx() as db:
            n = db.execute(
                "UPDATE deliveries SET state='queued', batch=NULL WHERE state='sending'"
            ).rowcount
        if n:
            log.warning("%d deliveries were in flight when the receiver stopped; sending again", n)
        return n

    # -- writing -------------------------------------------------------------------------------

    def add(
        self,
        messages: Iterable[tuple[AlertMessage, list[Route]]],
        source: str,
    ) -> tuple[int, int]:
        """Store notifications and their deliveries in one transaction: (new, duplicates).

        Also keeps `active` current: a firing alert is (re)marked seen, a resolved one dropped."""
        now = self.clock()
        new = dup = 0
        with self._tx() as db:
            for msg, routes in messages:
                cur = db.execute(
                    "INSERT OR IGNORE INTO notifications(dedup, kind, fingerprint, rank, alert, "
                    "created) VALUES (?,?,?,?,?,?)",
                    (
                        dedup_key(msg),
                        msg.kind,
                        msg.fingerprint,
                        severity_rank(msg.labels.get("severity")),
                        _alert_doc(msg),
                        now,
                    ),
                )
                inserted = cur.rowcount == 1
                if inserted:
                    new += 1
                    db.executemany(
                        "INSERT INTO deliveries(notification, target, recipient, state, created) "
                        "VALUES (?,?,?,'queued',?)",
                        [(cur.lastrowid, r.target, r.recipient, now) for r in routes],
                    )
                else:
                    dup += 1
                self._track(db, msg, source, inserted, now)
        return new, dup

    @staticmethod
    def _track(
        db: sqlite3.Connection, msg: AlertMessage, source: str, inserted: bool, now: float
    ) -> None:
        if msg.kind == "resolved":
            db.execute("DELETE FROM active WHERE fingerprint=?", (msg.fingerprint,))
            return
        if inserted:  # a new episode or a new reminder: told now
            db.execute(
                "INSERT INTO active(fingerprint, alert, source, last_notified, last_seen) "
                "VALUES (?,?,?,?,?) ON CONFLICT(fingerprint) DO UPDATE SET alert=excluded.alert, "
                "source=excluded.source, last_notified=excluded.last_notified, last_seen=?",
                (msg.fingerprint, _alert_doc(msg), source, now, now, now),
            )
        else:  # a repeat of what we already told: still firing
            db.execute("UPDATE active SET last_seen=? WHERE fingerprint=?", (now, msg.fingerprint))

    def due_reminders(self, wait: float, source: str = "webhook") -> list[AlertMessage]:
        """Reminders for alerts from `source` told more than `wait` ago and seen since.

        "Seen within `wait`" is how we know an Alertmanager alert still fires: Alertmanager
        repeats it every `repeat_interval` (amconfig sets that below `wait`), and each repeat
        is deduplicated here but refreshes `last_seen`. In-process producers (the rule engine)
        send their own reminders (kind "reminder"), so their alerts are not reminded here."""
        now = self.clock()
        rows = (
            self._db()
            .execute(
                "SELECT alert, last_notified FROM active WHERE source=? AND last_notified<=? "
                "AND last_seen>=?",
                (source, now - wait, now - wait),
            )
            .fetchall()
        )
        out = []
        for alert_json, last in rows:
            doc = json.loads(alert_json)
            due = last + wait
            out.append(
                AlertMessage(
                    kind="reminder",
                    fingerprint=doc["fingerprint"],
                    labels=doc["labels"],
                    annotations={**doc["annotations"], "reminder_at": f"{due:.0f}"},
                    starts_at=_epoch(doc["startsAt"]),
                    generator_url=doc["generatorURL"],
                )
            )
        return out

    # -- delivering ----------------------------------------------------------------------------

    def next_batch(self, target: str, group_wait: float, limit: int) -> list[Row]:
        """The most urgent group of due rows for `target`, claimed as `sending`; empty when
        nothing is due. A group is rows never refused, of one recipient, kind and severity rank;
        it becomes due when its oldest row has waited `group_wait`, so a burst goes out as one
        message. A row the target refused before is a group of its own, due at its `next_try`:
        it can only fail itself."""
        now = self.clock()
        with self._tx() as db:
            head = db.execute(
                "SELECT d.recipient, n.kind, n.rank, CASE WHEN d.rejections>0 THEN d.id ELSE 0 "
                "END AS solo, MIN(d.created) FROM deliveries d JOIN notifications n ON "
                "n.id=d.notification WHERE d.target=? AND d.state='queued' AND d.next_try<=? "
                "GROUP BY 1, 2, 3, 4 ORDER BY n.rank, MIN(d.id) LIMIT 1",
                (target, now),
            ).fetchone()
            if head is None or (not head[3] and head[4] > now - group_wait):
                return []
            select = (
                "SELECT d.id, d.target, d.recipient, n.kind, n.rank, n.alert, d.attempts, "
                "d.created, d.rejections FROM deliveries d JOIN notifications n ON "
                "n.id=d.notification "
            )
            if head[3]:
                rows = db.execute(select + "WHERE d.id=?", (head[3],)).fetchall()
            else:
                rows = db.execute(
                    select + "WHERE d.target=? AND d.state='queued' AND d.recipient=? AND "
                    "n.kind=? AND n.rank=? AND d.rejections=0 AND d.next_try<=? "
                    "ORDER BY d.id LIMIT ?",
                    (target, head[0], head[1], head[2], now, limit),
                ).fetchall()
            batch = f"{target}:{rows[0][0]}:{now}"
            db.executemany(
                "UPDATE deliveries SET state='sending', batch=? WHERE id=?",
                [(batch, r[0]) for r in rows],
            )
        return [Row(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) for r in rows]

    def mark_sent(self, rows: list[Row]) -> None:
        now = self.clock()
        with self._tx() as db:
            db.executemany(
                "UPDATE deliveries SET state='sent', done_at=?, last_error='' WHERE id=?",
                [(now, r.id) for r in rows],
            )

    def mark_failed(
        self,
        rows: list[Row],
        error: str,
        deadline: float,
        kind: str = "target",
        backoff: Callable[[int], float] = lambda _n: 0.0,
    ) -> int:
        """Record a failed attempt; returns how many rows died.

        `kind` (alerts/failures.py): "permanent" kills the rows at once; "message" counts a
        rejection and sets each row's own `next_try` (`backoff(rejections)` from now);
        "target" only counts the attempt (the worker backs off the whole target). Any row past
        `deadline` since it arrived dies."""
        now = self.clock()
        updates = []
        for r in rows:
            dead = kind == "permanent" or now - r.created >= deadline
            rejections = r.rejections + (kind == "message")
            wait = backoff(rejections) if kind == "message" else 0.0
            updates.append(
                (
                    "dead" if dead else "queued",
                    error[:500],
                    now if dead else None,
                    rejections,
                    now + wait,
                    r.id,
                )
            )
        with self._tx() as db:
            db.executemany(
                "UPDATE deliveries SET state=?, attempts=attempts+1, last_error=?, batch=NULL, "
                "done_at=?, rejections=?, next_try=? WHERE id=?",
                updates,
            )
        return sum(1 for u in updates if u[0] == "dead")

    def prune(self, retention: float) -> int:
        """Forget sent and dead deliveries older than `retention`, and notifications nobody
        needs any more. A notification of an alert that still fires is kept whatever its age:
        it is the dedup key that absorbs Alertmanager's repeats of a long-firing alert. An
        alert not seen for `retention` (Alertmanager lost it) stops counting as firing."""
        cutoff = self.clock() - retention
        with self._tx() as db:
            n = db.execute("DELETE FROM deliveries WHERE state IN ('sent','dead') AND done_at<?",
                           (cutoff,)).rowcount  # fmt: skip
            db.execute("DELETE FROM active WHERE last_seen<?", (cutoff,))
            db.execute(
                "DELETE FROM notifications WHERE created<? AND id NOT IN "
                "(SELECT notification FROM deliveries) AND fingerprint NOT IN "
                "(SELECT fingerprint FROM active)", (cutoff,),
            )  # fmt: skip
        return n

    # -- reporting -----------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """{target: {queued, failing, sending, sent, dead}} (failing: queued after a failure)."""
        out: dict[str, dict[str, int]] = {}
        for target, state, failed, n in self._db().execute(
            "SELECT target, state, attempts>0, COUNT(*) FROM deliveries GROUP BY 1, 2, 3"
        ):
            c = out.setdefault(
                target, dict.fromkeys(("queued", "failing", "sending", "sent", "dead"), 0)
            )
            c[state] = c.get(state, 0) + n
            if state == "queued" and failed:
                c["failing"] += n
        return out

    def oldest_queued(self) -> float | None:
        row = (
            self._db()
            .execute("SELECT MIN(created) FROM deliveries WHERE state IN ('queued','sending')")
            .fetchone()
        )
        return None if row[0] is None else self.clock() - row[0]

    def last_errors(self) -> dict[str, str]:
        rows = self._db().execute(
            "SELECT target, last_error FROM deliveries WHERE last_error!='' AND id IN "
            "(SELECT MAX(id) FROM deliveries WHERE last_error!='' GROUP BY target)"
        )
        return dict(rows.fetchall())


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers queue on the lock, never fail.
    A SQLite error inside, or at BEGIN or COMMIT, is reported to `on_error` and re-raised."""

    def __init__(self, db: sqlite3.Connection, on_error: Callable[[BaseException], None]) -> None:
        self.db = db
        self.on_error = on_error

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self.on_error(err)
            raise
        return self.db

    def __exit__(self, exc_type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is not None:
            if isinstance(exc, sqlite3.Error):
                self.on_error(exc)
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            self.on_error(err)
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise


def _claimed(batch: str | None) -> float:
    """The claim time in a batch id (`target:first-id:time`); 0 when unreadable."""
    try:
        return float((batch or "").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0.0


def _epoch(value: str) -> float | None:
    from .payload import parse_time

    return parse_time(value, "startsAt")
