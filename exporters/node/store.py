"""The exposition store: the last rendering of each collector, joined on scrape.

Why: rendering costs about 15 µs per series (DESIGN.md), so it is paid once per collection, not per
scrape. Compressing is paid there too: each collector's rendering is deflated once, by the
collector's own thread when it stores a new body, and a gzip scrape (what Prometheus asks for)
gets those pieces joined into one gzip stream (`poolwatch.core.gzip_join`, which says why one
stream and not one gzip member per collector). Both joins are cached until
the next collection changes something. Each family has one owning collector (the catalog
enforces it), so the joined parts form one valid exposition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from poolwatch.core import catalog, gzip_join
from poolwatch.core.exposition import Families as _Families  # noqa: F401 - re-exported for tests
from poolwatch.core.exposition import render

# zlib's default: a 1.5 MB exposition shrinks about 20x in some 8 ms, paid once per collection.
GZIP_LEVEL = 6


def deflate_piece(data: bytes) -> bytes:
    """`data` compressed as a piece of the joined gzip stream (poolwatch.core.gzip_join)."""
    return gzip_join.deflate_piece(data, GZIP_LEVEL)


@dataclass
class CollectorState:
    name: str
    interval: float
    timeout: float
    body: bytes = b""
    deflated: bytes = b""  # deflate_piece(body), made when `body` was stored
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
        self._parts: list[bytes] = []
        self._pieces: list[bytes] = []
        self._cache_plain: bytes | None = None
        self._cache_gzip: bytes | None = None

    def register(self, name: str, interval: float, timeout: float) -> None:
        with self._lock:
            self._states[name] = CollectorState(name, interval, timeout)
            self._version += 1

    def put(self, name: str, body: bytes | None, ok: bool, took: float, error: str = "") -> None:
        """Record a run. `body` None drops the collector's series (after the stale grace).

        A partial run (ok False, body given) serves what it measured: those values are fresh.
        The body is deflated here, in the collector's thread and outside the lock, so no scrape
        ever waits for a compression; a body equal to the last one keeps its piece."""
        piece = b""
        if body:
            with self._lock:  # the pair as stored together; compared outside the lock
                last_body, last_piece = self._states[name].body, self._states[name].deflated
            piece = last_piece if last_piece and last_body == body else deflate_piece(body)
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
                st.body, st.deflated, st.body_at_mono = body, piece, now_mono
            elif self.stale_grace <= 0:
                st.body, st.deflated = b"", b""
            self._version += 1

    def states(self) -> list[CollectorState]:
        with self._lock:
            return [CollectorState(**vars(s)) for s in self._states.values()]

    def body(self, gzipped: bool = False) -> bytes:
        """The whole exposition, plain or gzipped (each collector's deflated piece, then the
        health series'); cached until a collection or the stale grace changes it."""
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
                self._parts = [*(s.body for s in served), health]
                # only the small health part is compressed here; the rest was, once, by put()
                self._pieces = [*(s.deflated for s in served), deflate_piece(health)]
                self._cache_plain = self._cache_gzip = None
            # each form is joined only when asked for: Prometheus asks for gzip only, and a
            # plain join would copy the whole exposition once more per collection
            if gzipped:
                if self._cache_gzip is None:
                    self._cache_gzip = gzip_join.gzip_stream(self._pieces, self._parts)
                return self._cache_gzip
            if self._cache_plain is None:
                self._cache_plain = b"".join(self._parts)
            return self._cache_plain

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
