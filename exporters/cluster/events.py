"""The event log: counters by (pool, kind, reason, type) and the most recent events for /events.

A re-listed event (same uid, no newer time) is not counted again, so a watch restart does not
inflate the counters. A Kubernetes event that repeats keeps its uid and gets a later time and a
higher `count` (the backend passes it in `extra["count"]`): it adds the growth of that count, or
one occurrence when the backend gives none.
The most recent `kept` events by time are held in a heap, so an initial list of thousands of
old events costs O(log kept) each and /events shows the newest, whatever the arrival order.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from poolwatch.cluster.model import Event

from .generators import Sample

SEEN_CAP = 200_000  # uids remembered for de-duplication; Kubernetes keeps events for 1 h


@dataclass(frozen=True)
class Record:
    time: float
    kind: str
    name: str
    namespace: str
    pool: str
    reason: str
    type: str
    message: str
    source: str  # "backend" or "derived" (PoolStatusChange/PoolResourcesStatusChange)
    uid: str


class EventLog:
    def __init__(self, kept: int) -> None:
        self.kept = kept
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # uid -> time, count
        self._recent: list[tuple[float, int, Record]] = []
        self._seq = itertools.count()

    def record(self, ev: Event, source: str = "backend") -> bool:
        """Count and keep an event; False when this occurrence was counted before."""
        count = _count(ev)
        last = self._seen.get(ev.uid)
        if last is not None and ev.time <= last[0]:
            return False
        self._seen[ev.uid] = (ev.time, count)
        self._seen.move_to_end(ev.uid)
        if len(self._seen) > SEEN_CAP:
            self._seen.popitem(last=False)
        grew = count if last is None else max(1, count - last[1])
        self.counts[(ev.pool, ev.kind, ev.reason, ev.type)] += grew
        if self.kept > 0:
            rec = Record(ev.time, ev.kind, ev.name, ev.namespace, ev.pool, ev.reason, ev.type,
                         ev.message, source, ev.uid)  # fmt: skip
            item = (ev.time, next(self._seq), rec)
            if len(self._recent) < self.kept:
                heapq.heappush(self._recent, item)
            elif item > self._recent[0]:
                heapq.heapreplace(self._recent, item)
        return True

    def samples(self) -> list[Sample]:
        return [(key, float(n)) for key, n in sorted(self.counts.items())]

    def recent(self, limit: int | None = None, **match: str) -> list[Record]:
        """Newest first; `match` keeps records whose fields equal the given values."""
        out: list[Record] = []
        uids: set[str] = set()
        if limit == 0:
            return out
        for _t, _s, rec in sorted(self._recent, reverse=True):
            if rec.uid in uids or any(getattr(rec, k) != v for k, v in match.items()):
                continue
            uids.add(rec.uid)
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
        return out


def _count(ev: Event) -> int:
    try:
        return max(1, int(ev.extra.get("count", 1)))
    except (TypeError, ValueError, AttributeError):
        return 1


def to_json(records: list[Record]) -> bytes:
    docs = []
    for rec in records:
        doc = asdict(rec)
        doc["occurred_at"] = datetime.fromtimestamp(rec.time, UTC).isoformat(timespec="seconds")
        docs.append(doc)
    return (json.dumps({"events": docs}, ensure_ascii=False, indent=1) + "\n").encode()
