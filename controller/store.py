"""The controller's durable state in SQLite: what was done (by key), replacements in flight,
job restart counts, re-queued jobs, pool marks, the notification outbox, the audit trail, and
which of a backend's own pool events were notified already (by uid and time).

Why record first and act after: a replacement row names its spare before any write goes out, so a
controller that dies mid-replacement resumes with the same spare and never takes a second one;
writes to the cluster are idempotent (a label or taint set twice is one change), so replaying the
steps of a recorded replacement does nothing twice. One connection, guarded by a lock: the HTTP
handler threads and the reconcile loop share it. `:memory:` when no path is configured.

Bounded: the audit trail keeps its newest `audit_keep` records, the log of delivered notices its
newest `notices_keep`, the outbox its newest `outbox_keep` undelivered ones (a notifier that is
down for days must not grow the state, in memory or on disk, without end); each insert prunes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, kind TEXT, outcome TEXT, detail TEXT,
    at REAL);
CREATE TABLE IF NOT EXISTS replacements (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT,
    pool TEXT, node TEXT, spare TEXT, fault_code TEXT, state TEXT, queued_at REAL,
    started_at REAL, finished_at REAL, detail TEXT);
CREATE TABLE IF NOT EXISTS restarts (job TEXT PRIMARY KEY, total INTEGER, streak INTEGER,
    hang_streak INTEGER, last_at REAL);
CREATE TABLE IF NOT EXISTS requeued (job TEXT PRIMARY KEY, since REAL, state TEXT,
    evicted TEXT DEFAULT '[]');
CREATE TABLE IF NOT EXISTS pools (name TEXT PRIMARY KEY, upgrading INTEGER DEFAULT 0,
    breaker_open INTEGER DEFAULT 0, breaker_since REAL DEFAULT 0, abnormal INTEGER DEFAULT 0,
    status TEXT DEFAULT '', counts TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL,
    operation TEXT, target TEXT, outcome TEXT, detail TEXT, key TEXT);
CREATE TABLE IF NOT EXISTS notices (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, message TEXT);
CREATE TABLE IF NOT EXISTS told_events (uid TEXT PRIMARY KEY, at REAL);
CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT);
"""
DETAIL_CHARS = 2000  # an audit record's detail is cut here: a request's reason is not a document
ACTIVE = ("queued", "starting", "running")  # replacement states that are not over


@dataclass(frozen=True)
class Replacement:
    id: int
    key: str
    pool: str
    node: str
    spare: str
    fault_code: str
    state: str  # queued | starting | running | done | failed
    queued_at: float
    started_at: float
    finished_at: float
    detail: str


@dataclass(frozen=True)
class AuditRecord:
    at: float
    operation: str  # the seed's CTS trace name where there is one (CreatePoolV2, ...)
    target: str
    outcome: str
    detail: str
    key: str


class Store:
    def __init__(
        self, path: Path | None = None, audit_keep: int = 10_000, notices_keep: int = 1_000,
        outbox_keep: int = 10_000,
    ) -> None:  # fmt: skip
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of tx() in the thread that holds the lock
        self.audit_keep, self.notices_keep, self.outbox_keep = audit_keep, notices_keep, outbox_keep
        self.outbox_dropped = 0  # undelivered notices pruned since start (logged, counted)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed on success (the lock makes it one at a time). A `tx`
        inside another joins it: what a caller groups in one `with store.tx():` (a notice and
        the state change it reports) is committed together or not at all."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self._db:
                    yield self._db
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- actions by key ----------------------------------------------------------------------
    def action(self, key: str) -> tuple[str, str] | None:
        with self.tx() as db:
            row = db.execute("SELECT outcome, detail FROM actions WHERE key=?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def record_action(self, key: str, kind: str, outcome: str, detail: str, at: float) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO actions VALUES (?,?,?,?,?)",
                       (key, kind, outcome, detail, at))  # fmt: skip

    def forget_action(self, key: str) -> None:
        """Drop the record of `key` (a restart that evicted nothing: the re-send decides anew)."""
        with self.tx() as db:
            db.execute("DELETE FROM actions WHERE key=?", (key,))

    def actions_with(self, kind: str, outcome: str) -> list[tuple[str, str]]:
        """(key, detail) of the recorded actions of `kind` with `outcome`, oldest first."""
        with self.tx() as db:
            rows = db.execute("SELECT key, detail FROM actions WHERE kind=? AND outcome=? "
                              "ORDER BY at", (kind, outcome)).fetchall()  # fmt: skip
        return [(r[0], r[1]) for r in rows]

    # -- replacements ------------------------------------------------------------------------
    def add_replacement(self, key: str, pool: str, node: str, code: str, at: float) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO replacements (key, pool, node, spare, fault_code, state, queued_at,"
                " started_at, finished_at, detail) VALUES (?,?,?,'',?,'queued',?,0,0,'')",
                (key, pool, node, code, at),
            )
            return int(cur.lastrowid or 0)

    def update_replacement(self, rid: int, **fields: Any) -> None:
        cols = ", ".join(f"{name}=?" for name in fields)
        with self.tx() as db:
            db.execute(f"UPDATE replacements SET {cols} WHERE id=?", (*fields.values(), rid))  # noqa: S608

    def replacements(self, pool: str | None = None, active: bool = False) -> list[Replacement]:
        sql, args = "SELECT * FROM replacements WHERE 1=1", []
        if pool is not None:
            sql, args = sql + " AND pool=?", [pool]
        if active:
            sql += f" AND state IN ({','.join('?' * len(ACTIVE))})"
            args += list(ACTIVE)
        with self.tx() as db:
            return [Replacement(*row) for row in db.execute(sql + " ORDER BY id", args)]

    # -- jobs --------------------------------------------------------------------------------
    def restarts(self, job: str) -> tuple[int, int, int, float]:
        """(total, unconditional streak, hang streak, last restart time) of a job."""
        with self.tx() as db:
            row = db.execute("SELECT total, streak, hang_streak, last_at FROM restarts "
                             "WHERE job=?", (job,)).fetchone()  # fmt: skip
        return (0, 0, 0, 0.0) if row is None else (row[0], row[1], row[2], row[3])

    def set_restarts(self, job: str, total: int, streak: int, hang: int, at: float) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO restarts VALUES (?,?,?,?,?)",
                       (job, total, streak, hang, at))  # fmt: skip

    def requeue(self, job: str, at: float, evicted: list[str]) -> None:
        """The job was re-issued at `at` by evicting the pods with the uids `evicted`."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO requeued VALUES (?,?,'waiting',?)",
                       (job, at, json.dumps(sorted(evicted))))  # fmt: skip

    def requeued(self) -> list[tuple[str, float, list[str]]]:
        """(job, since, evicted pod uids) of the re-issued jobs still waiting to run again."""
        with self.tx() as db:
            rows = db.execute("SELECT job, since, evicted FROM requeued "
                              "WHERE state='waiting'").fetchall()  # fmt: skip
        return [(r[0], r[1], json.loads(r[2] or "[]")) for r in rows]

    def end_requeue(self, job: str, state: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE requeued SET state=? WHERE job=?", (state, job))

    def requeued_in(self, state: str) -> list[tuple[str, float]]:
        """(job, since) of the re-issued jobs in `state` (`stopping`: given up on, not yet
        stopped; a restarted controller finishes those)."""
        with self.tx() as db:
            rows = db.execute("SELECT job, since FROM requeued WHERE state=?",
                              (state,)).fetchall()  # fmt: skip
        return [(r[0], r[1]) for r in rows]

    def first_seen(self, name: str, now: float) -> float:
        """When `name` (a failure without a time of its own) was first seen: `now` the first
        time it is asked, kept in the state, so a restarted controller does not wait anew."""
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO marks VALUES (?,?)", (f"seen:{name}", repr(now)))
            row = db.execute("SELECT value FROM marks WHERE name=?", (f"seen:{name}",)).fetchone()
        return float(row[0])

    def forget_seen(self, keep: set[str]) -> None:
        """Drop the first-seen times of everything but `keep` (decided, or gone)."""
        with self.tx() as db:
            names = [r[0] for r in db.execute("SELECT name FROM marks WHERE name LIKE 'seen:%'")]
            gone = [(n,) for n in names if n.removeprefix("seen:") not in keep]
            db.executemany("DELETE FROM marks WHERE name=?", gone)

    # -- pools -------------------------------------------------------------------------------
    def pool(self, name: str) -> dict[str, Any]:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO pools (name) VALUES (?)", (name,))
            row = db.execute("SELECT upgrading, breaker_open, breaker_since, abnormal, status,"
                             " counts FROM pools WHERE name=?", (name,)).fetchone()  # fmt: skip
        return dict(zip(("upgrading", "breaker_open", "breaker_since", "abnormal", "status",
                         "counts"), row, strict=True))  # fmt: skip

    def set_pool(self, name: str, **fields: Any) -> None:
        self.pool(name)
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE pools SET {cols} WHERE name=?", (*fields.values(), name))  # noqa: S608

    def pool_names(self) -> list[str]:
        with self.tx() as db:
            return [r[0] for r in db.execute("SELECT name FROM pools ORDER BY name")]

    # -- a backend's own events, told ---------------------------------------------------------
    def told_events(self) -> dict[str, float] | None:
        """uid -> time of the backend events told (or taken as history); None before the first
        look at the backend's events (see `baseline_events`)."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM marks WHERE name='events_baseline'").fetchone() is None:
                return None
            return {r[0]: r[1] for r in db.execute("SELECT uid, at FROM told_events")}

    def baseline_events(self, seen: list[tuple[str, float]]) -> None:
        """The first look: the events the backend holds now are history, never told."""
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO told_events VALUES (?,?)", seen)
            db.execute("INSERT OR REPLACE INTO marks VALUES ('events_baseline', '1')")

    def mark_told(self, uid: str, at: float) -> None:
        """The backend event `uid` (recorded at `at`) is told."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO told_events VALUES (?,?)", (uid, at))

    def forget_told(self, uids: list[str]) -> None:
        """Drop events the backend no longer holds (expired: they never come back)."""
        with self.tx() as db:
            db.executemany("DELETE FROM told_events WHERE uid=?", [(u,) for u in uids])

    # -- notification outbox -----------------------------------------------------------------
    def queue_message(self, message: dict[str, Any]) -> int:
        """Queue one notice; returns how many of the oldest undelivered were pruned for it."""
        with self.tx() as db:
            cur = db.execute("INSERT INTO outbox (message) VALUES (?)", (json.dumps(message),))
            gone = _prune(db, "outbox", int(cur.lastrowid or 0), self.outbox_keep)
        self.outbox_dropped += gone
        return gone

    def messages(self, limit: int = -1) -> list[tuple[int, dict[str, Any]]]:
        """The oldest `limit` undelivered notices (all with -1), oldest first."""
        with self.tx() as db:
            rows = db.execute("SELECT id, message FROM outbox ORDER BY id LIMIT ?",
                              (limit,)).fetchall()  # fmt: skip
        return [(r[0], json.loads(r[1])) for r in rows]

    def outbox_size(self) -> int:
        with self.tx() as db:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def drop_messages(self, ids: list[int]) -> None:
        with self.tx() as db:
            db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in ids])

    def mark_sent(self, ids: list[int], at: float) -> None:
        """Move delivered notices from the outbox to the (bounded) log of delivered ones."""
        with self.tx() as db:
            last = 0
            for i in ids:
                cur = db.execute("INSERT INTO notices (at, message) SELECT ?, message FROM outbox "
                                 "WHERE id=?", (at, i))  # fmt: skip
                last = int(cur.lastrowid or last)
                db.execute("DELETE FROM outbox WHERE id=?", (i,))
            _prune(db, "notices", last, self.notices_keep)

    def sent_messages(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest `limit` delivered notices, oldest first."""
        with self.tx() as db:
            rows = db.execute("SELECT message FROM notices ORDER BY id DESC LIMIT ?",
                              (limit,)).fetchall()  # fmt: skip
        return [json.loads(r[0]) for r in reversed(rows)]

    def count(self, table: str) -> int:
        """Rows in one of the bounded tables (audit, notices, outbox): tests and /metrics."""
        if table not in ("audit", "notices", "outbox"):
            raise ValueError(f"not a bounded table: {table}")
        with self.tx() as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    # -- audit -------------------------------------------------------------------------------
    def audit(self, rec: AuditRecord) -> int:
        """Add a record; its id (for `audit_end` when `rec` is an intent, outcome `started`)."""
        with self.tx() as db:
            cur = db.execute("INSERT INTO audit (at, operation, target, outcome, detail, key) "
                             "VALUES (?,?,?,?,?,?)", (rec.at, rec.operation, rec.target[:253],
                                                      rec.outcome, rec.detail[:DETAIL_CHARS],
                                                      rec.key[:DETAIL_CHARS]))  # fmt: skip
            rid = int(cur.lastrowid or 0)
            _prune(db, "audit", rid, self.audit_keep)
        return rid

    def audit_end(self, rid: int, outcome: str, detail: str) -> bool:
        """Complete the intent `rid` with its outcome; False when it is no longer kept."""
        with self.tx() as db:
            cur = db.execute("UPDATE audit SET outcome=?, detail=? WHERE id=?",
                             (outcome, detail[:DETAIL_CHARS], rid))  # fmt: skip
        return cur.rowcount > 0

    def interrupt_started(self, why: str) -> int:
        """Mark every intent without an outcome (`started`: its controller stopped before the
        action ended) `interrupted`, `why` before what it said; how many."""
        with self.tx() as db:
            cur = db.execute("UPDATE audit SET outcome='interrupted', detail=substr(? || detail, "
                             "1, ?) WHERE outcome='started'", (why, DETAIL_CHARS))  # fmt: skip
        return cur.rowcount

    def audit_trail(self, limit: int = 1000) -> list[AuditRecord]:
        with self.tx() as db:
            rows = db.execute("SELECT at, operation, target, outcome, detail, key FROM audit "
                              "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()  # fmt: skip
        return [AuditRecord(*r) for r in reversed(rows)]


def _prune(db: sqlite3.Connection, table: str, last_id: int, keep: int) -> int:
    """Delete the rows of `table` older than its newest `keep` (ids grow by one per insert, so
    this is one range delete on the primary key); returns how many went."""
    cur = db.execute(f"DELETE FROM {table} WHERE id <= ?", (last_id - keep,))  # noqa: S608
    return cur.rowcount
