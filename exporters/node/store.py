"""The exposition store: the last rendering of each collector, joined on scrape.

Why: rendering costs about 15 µs per series (DESIGN.md), so it is paid once per collection, not per
scrape. Compressing is paid there too: each collector's rendering is gzipped once, by the
collector's own thread when it stores a new body, and a gzip scrape (what Prometheus asks for)
joins those members. A concatenation of gzip members is one valid gzip stream (RFC 1952 2.2),
which Go's reader (so Prometheus) and Python's read whole. Both joins are cached until the next
collection changes something. Each family has one owning collector (the catalog enforces it), so
the joined parts form one valid exposition.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field

from poolwatch import catalog
from poolwatch.exposition import Families as _Families  # noqa: F401 - re-exported for tests
from poolwatch.exposition import render

# zlib's default: a 1.5 MB exposition shrinks about 20x in some 8 ms, paid once per collection.
GZIP_LEVEL = 6


def gzip_member(data: bytes) -> bytes:
    """`data` as one gzip member (mtime 0: the same bytes give the same member); b"" for b""."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if data else b""


@dataclass
class CollectorState:
    name: str
    interval: float
    timeout: float
    body: bytes = b""
    gzipped: bytes = b""  # `body` as one gzip member, made when `body` was stored
    up: bool = False
    duration: float = 0.0
    errors: int = 0
    last_success: float | None = None  # wall clock, for the timestamp series
    last_success_mono: float = 0.0
    last_tick_mono: float = field(default_factory=time.monotonic)
    last_error: str = ""
    runs: int = 0
    fresh: bool = False  # body comes from the latest run (a partial run counts)
    body_at_mono: float = 0.0


class ExpositionStore:
    """Thread-safe map collector -> state, and the cached scrape body."""

    def __init__(self, identity: dict[str, str], stale_grace: float = 0.0) -> None:
        self.identity = identity
        self.stale_grace = stale_grace
        self._lock = threading.Lock()
        self._states: dict[str, CollectorState] = {}
        self._version = 0
        self._cache_key: tuple[object, ...] | None = None
        self._cache_plain = b""
        self._cache_gzip = b""

    def register(self, name: str, interval: float, timeout: float) -> None:
        with self._lock:
            self._states[name] = CollectorState(name, interval, timeout)
            self._version += 1

    def put(self, name: str, body: bytes | None, ok: bool, took: float, error: str = "") -> None:
        """Record a run. `body` None drops the collector's series (after the stale grace).

        A partial run (ok False, body given) serves what it measured: those values are fresh.
        The body is gzipped here, in the collector's thread and outside the lock, so no scrape
        ever waits for a compression; a body equal to the last one keeps its member."""
        zipped = b""
        if body:
            last = self._states[name]  # a racy read only costs a compression
            zipped = last.gzipped if last.body == body and last.gzipped else gzip_member(body)
        now_mono, now = time.monotonic(), time.time()
        with self._lock:
            st = self._states[name]
            st.runs += 1
            st.up, st.duration, st.last_tick_mono = ok, took, now_mono
            st.last_error = error
            if ok:
                st.last_success, st.last_success_mono = now, now_mono
            else:
                st.errors += 1
            st.fresh = body is not None
            if body is not None:
                st.body, st.gzipped, st.body_at_mono = body, zipped, now_mono
            elif self.stale_grace <= 0:
                st.body, st.gzipped = b"", b""
            self._version += 1

    def states(self) -> list[CollectorState]:
        with self._lock:
            return [CollectorState(**vars(s)) for s in self._states.values()]

    def body(self, gzipped: bool = False) -> bytes:
        """The whole exposition, plain or as gzip members (each collector's, then the health
        series'); cached until a collection or the stale grace changes it."""
        now = time.monotonic()
        with self._lock:
            served = [
                s
                for s in self._states.values()
                if s.body and (s.fresh or now - s.body_at_mono <= self.stale_grace)
            ]
            key = (self._version, len(served))
            if key != self._cache_key:
                self._cache_key = key
                health = self._health()
                self._cache_plain = b"".join([*(s.body for s in served), health])
                # a member per collector, so a compression is paid only when its body changes
                self._cache_gzip = b"".join([*(s.gzipped for s in served), gzip_member(health)])
            return self._cache_gzip if gzipped else self._cache_plain

    def _health(self) -> bytes:
        ident = [self.identity.get(k, "") for k in catalog.IDENTITY_LABELS]
        up, dur, last, errs = (
            catalog.new_family(n, catalog.IDENTITY_LABELS)
            for n in (
                "poolwatch_collector_up",
                "poolwatch_collector_duration_seconds",
                "poolwatch_collector_last_success_timestamp_seconds",
                "poolwatch_collector_errors_total",
            )
        )
        for s in self._states.values():
            lv = [*ident, s.name]
            up.add_metric(lv, 1.0 if s.up else 0.0)
            dur.add_metric(lv, s.duration)
            if s.last_success is not None:
                last.add_metric(lv, s.last_success)
            errs.add_metric(lv, float(s.errors))
        return render([up, dur, last, errs])

    def live(self, slack: float = 5.0) -> tuple[bool, list[str]]:
        """Collection is live when every collector finished a run within interval+timeout+slack.

        A hung collector still ticks (the runner gives up on it at its timeout), so liveness
        fails only when the scheduling itself stopped; `up` says whether the data is good."""
        now = time.monotonic()
        late = []
        with self._lock:
            for s in self._states.values():
                if now - s.last_tick_mono > s.interval + s.timeout + slack:
                    late.append(s.name)
        return not late, late
