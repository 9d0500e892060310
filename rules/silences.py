"""Silences for the local mode: with no Alertmanager, an operator can still mute alerts.

A silence is a set of Alertmanager-style matchers (`alertname=X`, `node=~"n1|n2"`,
`severity!=info`, `pool!~"test.*"`; regular expressions are RE2 and anchored, as Alertmanager's)
and a time range. While one matches an alert, the engine sends no notification about it: not
the firing one, no reminder, no resolve. When the silence ends or is expired, whatever is still
due goes out (a still-firing alert is notified then). Controller actions are not silenced: a
silence is about people, not about the pool's fault handling.

Silences are stored in the engine's state file (table `silences`), so `poolwatch rules silence`
and the running engine share them and they survive a restart. Where an Alertmanager sends the
notifications, silences belong there (amtool, its UI), and poolwatch says so instead.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .promql import Unsupported, compile_regex

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name=value`, `name!=value`, `name=~regex`, `name!~regex`; the value may be in
        double quotes. ValueError naming the problem."""
        m = _MATCHER.match(text)
        if m is None:
            raise ValueError(
                f"matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"
            )
        name, op, value = m.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"matcher {text!r}: badly quoted value") from None
        if op in ("=~", "!~"):
            try:
                compile_regex(value)
            except Unsupported as err:
                raise ValueError(f"matcher {text!r}: {err}") from None
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = compile_regex(self.value).match(have) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    comment: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["matchers"] = [str(m) for m in self.matchers]
        return out


class SilenceStore:
    """silences(id, matchers JSON, starts_at, ends_at, author, comment) in the state file."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, matchers TEXT NOT NULL,"
            " starts_at REAL NOT NULL, ends_at REAL NOT NULL, author TEXT NOT NULL,"
            " comment TEXT NOT NULL)"
        )

    def add(
        self, matchers: Sequence[str], seconds: float, now: float, author: str, comment: str
    ) -> Silence:
        """A new silence from `now` for `seconds`; ValueError for a bad matcher or none."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if seconds <= 0:
            raise ValueError("a silence needs a duration longer than 0s")
        parsed = tuple(Matcher.parse(m) for m in matchers)
        if all(m.matches({}) for m in parsed):
            raise ValueError("these matchers match every alert; name at least one label value")
        s = Silence(uuid.uuid4().hex[:12], parsed, now, now + seconds, author, comment)
        with self._db:
            self._db.execute(
                "INSERT INTO silences VALUES (?,?,?,?,?,?)",
                (s.id, json.dumps([[m.name, m.op, m.value] for m in parsed]), s.starts_at,
                 s.ends_at, author, comment),
            )  # fmt: skip
        return s

    def all(self) -> list[Silence]:
        rows = self._db.execute(
            "SELECT id, matchers, starts_at, ends_at, author, comment FROM silences"
            " ORDER BY starts_at"
        ).fetchall()
        return [
            Silence(i, tuple(Matcher(*m) for m in json.loads(ms)), a, b, who, why)
            for i, ms, a, b, who, why in rows
        ]

    def active(self, now: float) -> list[Silence]:
        return [s for s in self.all() if s.active(now)]

    def expire(self, silence_id: str, now: float) -> bool:
        """End silence `silence_id` now; False when no active silence has that id."""
        with self._db:
            cur = self._db.execute(
                "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
                (now, silence_id, now),
            )
        return cur.rowcount > 0

    def close(self) -> None:
        self._db.close()
