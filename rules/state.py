"""Alert states and the SQLite file that keeps them across restarts.

One table keyed by fingerprint. The engine saves every transition before it hands a notification
to anyone ("record first, act after"), and marks a notification done only once the caller
confirms it was sent, so a crash in between re-sends (at least once) rather than forgetting.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Literal

State = Literal["pending", "firing", "resolved", "inactive"]
STATES: tuple[State, ...] = ("pending", "firing", "resolved", "inactive")


def _frozen(labels: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(labels.items())))


@dataclass(frozen=True)
class AlertState:
    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: State
    fingerprint: str
    active_since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    last_notified: float | None = None
    #: the last notification confirmed: "firing" (a reminder counts as one) or "resolved"
    notified: str | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))

    def to_json(self) -> str:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc |= {"labels": dict(self.labels), "annotations": dict(self.annotations)}
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        return cls(**json.loads(text))


class StateStore:
    """alerts(fingerprint PRIMARY KEY, rule, state, doc JSON) in a WAL-mode SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS alerts (fingerprint TEXT PRIMARY KEY, rule TEXT NOT NULL,"
            " state TEXT NOT NULL, doc TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, outcome TEXT NOT NULL,"
            " detail TEXT NOT NULL, at REAL NOT NULL)"
        )

    def load(self) -> dict[str, AlertState]:
        rows = self._db.execute("SELECT doc FROM alerts").fetchall()
        states = (AlertState.from_json(doc) for (doc,) in rows)
        return {s.fingerprint: s for s in states}

    def save(self, changed: Iterable[AlertState], deleted: Iterable[str] = ()) -> None:
        """Write `changed` and delete `deleted` fingerprints in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts (fingerprint, rule, state, doc) VALUES (?,?,?,?)",
                [(s.fingerprint, s.rule, s.state, s.to_json()) for s in changed],
            )
            self._db.executemany(
                "DELETE FROM alerts WHERE fingerprint = ?", [(fp,) for fp in deleted]
            )

    def action_keys(self) -> set[str]:
        """Keys of the actions a sink has accepted (any outcome but failed)."""
        return {key for (key,) in self._db.execute("SELECT key FROM actions")}

    def record_action(self, key: str, outcome: str, detail: str, at: float) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO actions (key, outcome, detail, at) VALUES (?,?,?,?)",
                (key, outcome, detail, at),
            )

    def prune_actions(self, before: float) -> None:
        """Forget action records older than `before` (their alerts are long gone)."""
        with self._db:
            self._db.execute("DELETE FROM actions WHERE at < ?", (before,))

    def close(self) -> None:
        self._db.close()
