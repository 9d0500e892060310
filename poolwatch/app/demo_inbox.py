"""The demo inbox: the notifications the alerts layer delivered, kept in DATA/inbox.sqlite.

Why SQLite and not a list in memory: the inbox is what an operator trying the demo reads to see
what the stack would have sent; a restart must not empty it (the alerts layer will not send a
notification twice, so a lost one is gone for good).

The alerts layer delivers through apprise's `json://` target, so each message arrives as
apprise's JSON document: {"title", "message", "type", ...}. The title is the alerts layer's
subject line, "[cluster] FIRING CRITICAL PoolwatchAcceleratorLost on node-3"; `parse_title`
reads the kind, severity and alert name back from it for the HTML page.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEEP = 1000  # messages kept; older ones are dropped
# "[cluster] FIRING CRITICAL NameA, NameB on node (2 alerts)": the names of a grouped message
_TITLE = re.compile(r"^\[[^\]]*\]\s+(FIRING|REMINDER|RESOLVED)\s+(\w+)\s+([^\s,]+(?:, [^\s,]+)*)")


@dataclass(frozen=True)
class Message:
    id: int
    received: float
    title: str
    text: str
    kind: str  # firing | reminder | resolved | "" (a title the alerts layer did not write)
    severity: str
    alertname: str  # every alert name of a grouped message, ", "-separated, as in the subject
    body: Any  # the document as it arrived

    @property
    def alertnames(self) -> list[str]:
        return self.alertname.split(", ") if self.alertname else []

    def as_dict(self) -> dict[str, Any]:
        keys = ("id", "received", "title", "kind", "severity", "alertname", "body")
        return {k: getattr(self, k) for k in keys}


def parse_title(title: str) -> tuple[str, str, str]:
    """(kind, severity, alert names) from the alerts layer's subject; ("", "", "") otherwise."""
    m = _TITLE.match(title)
    if m is None:
        return "", "", ""
    return m.group(1).lower(), m.group(2).lower(), m.group(3)


class Inbox:
    """Thread-safe store; one connection guarded by a lock (the demo's traffic is tiny)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "received REAL NOT NULL, body TEXT NOT NULL)"
        )
        self._db.commit()

    def add(self, doc: Any) -> Message:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO message (received, body) VALUES (?, ?)", (now, json.dumps(doc))
            )
            self._db.execute(
                "DELETE FROM message WHERE id <= (SELECT MAX(id) FROM message) - ?", (KEEP,)
            )
            self._db.commit()
            return _message(int(cur.lastrowid or 0), now, doc)

    def messages(self, limit: int = 200) -> list[Message]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, received, body FROM message ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_message(i, t, json.loads(b)) for i, t, b in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM message").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _message(id_: int, received: float, doc: Any) -> Message:
    title = text = ""
    if isinstance(doc, dict):
        title, text = str(doc.get("title") or ""), str(doc.get("message") or doc.get("body") or "")
    kind, severity, alertname = parse_title(title)
    return Message(id_, received, title, text, kind, severity, alertname, doc)
