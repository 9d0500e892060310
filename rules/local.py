"""The local source: the engine scrapes the exporters itself and keeps a short history in memory.

This is the embedded default (no Prometheus): `poolwatch rules run --source local --target URL`.
Each scrape parses the text exposition, keeps only the metrics some loaded rule reads, and keeps
each metric only as long as the longest range a rule reads it over (plus the 5-minute lookback),
so a 24-hour `increase` costs history for that one counter, not for every series. A rule that
needs more than `history` is refused at load with the reason, as is any expression outside the
PromQL subset of rules/promql/.

Scraping follows Prometheus with `honor_labels: true`: every series gets the target's `job` and
`instance` labels unless it carries its own, a series that vanished from its target or a target
that failed gets Prometheus' stale marker (it has no value from then on, as in Prometheus; a
sample whose value is NaN is a value, not a stale marker), and each scrape
writes `up{job, instance}` 1 or 0. Samples are stamped with the scrape's start time; timestamps
in the exposition are ignored (poolwatch's exporters send none).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from .model import format_duration
from .promql import STALE, Ctx, LabelSet, Query, Unsupported, is_stale
from .sources import Sample, SourceError

log = logging.getLogger(__name__)
_LABEL = re.compile(r'[\s,]*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")
Scraped = tuple[str, str, dict[str, str], float]  # name, raw series text, labels, value


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(
    text: str, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """(name, raw series text, labels, value) of each sample in a text exposition whose name is
    wanted. Comments, TYPE/HELP lines and unwanted names are skipped before any label parsing.
    Raises ValueError on a line that is not a sample."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if not wanted(name):
                continue
            labels: dict[str, str] = {}
            pos = brace + 1
            while True:
                m = _LABEL.match(line, pos)
                if m is None:
                    break
                labels[m.group(1)] = _unescape(m.group(2))
                pos = m.end()
            end = line.find("}", pos)
            if end == -1:
                raise ValueError(f"line {lineno}: unterminated label set")
            raw, rest = line[: end + 1], line[end + 1 :]
        else:
            if space == -1:
                raise ValueError(f"line {lineno}: no value")
            name = line[:space]
            if not wanted(name):
                continue
            labels, raw, rest = {}, name, line[space:]
        fields = rest.split()
        if not fields:
            raise ValueError(f"line {lineno}: no value")
        try:
            value = float(fields[0])
        except ValueError:
            raise ValueError(f"line {lineno}: value {fields[0]!r} is not a number") from None
        yield name, raw, labels, value


class Series:
    """One series' samples: parallel arrays of millisecond timestamps and values (Prometheus'
    stale marker, `promql.STALE`, where the series went stale; any other NaN is a value)."""

    __slots__ = ("labels", "last_t", "last_v", "ts", "vs")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.ts: array[float] = array("d")
        self.vs: array[float] = array("d")
        #: the newest sample, kept apart: an instant selector reads it for every series
        self.last_t = -math.inf
        self.last_v = math.nan

    def append(self, t: float, v: float) -> None:
        if t <= self.last_t:
            return  # out of order or duplicate: Prometheus rejects it too
        self.ts.append(t)
        self.vs.append(v)
        self.last_t, self.last_v = t, v

    @property
    def stale(self) -> bool:
        return not self.vs or is_stale(self.vs[-1])


@dataclass(frozen=True)
class Target:
    url: str
    job: str = "poolwatch"

    @property
    def instance(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc

    @classmethod
    def parse(cls, spec: str) -> Target:
        """'[JOB=]URL' (the job label defaults to 'poolwatch'); ValueError when not a URL."""
        job, sep, url = spec.partition("=")
        if not sep or "://" in job:
            job, url = "poolwatch", spec
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--target: expected [JOB=]http(s)://HOST:PORT/metrics, got {spec!r}")
        return cls(url, job)


#: the engine itself, as a scrape target of its own local source
SELF_TARGET = Target("http://localhost/rules-engine", "poolwatch-rules")


class History:
    """Series by metric name, with per-name retention (`keep`, ms) set from the loaded rules."""

    def __init__(self) -> None:
        self.keep: dict[str, int] = {}
        self._names: dict[str, list[Series]] = {}
        self._versions: dict[str, int] = {}
        self._targets: dict[Target, dict[str, Series]] = {}
        self._index: dict[tuple[str, str], tuple[int, dict[str, list[Series]]]] = {}
        self.ingests = 0
        self.registered = 0  # series ever added (the source freezes the GC when it grows)
        self._newest = -math.inf
        self._manual = False

    def series_of(self, name: str) -> tuple[int, Sequence[Series]]:
        return self._versions.get(name, 0), self._names.get(name, ())

    def by_label(self, name: str, label: str, value: str) -> Sequence[Series]:
        """Series of `name` whose `label` is `value` (an index per metric and label, rebuilt
        when the metric's set of series changes), in order of first appearance."""
        version = self._versions.get(name, 0)
        hit = self._index.get((name, label))
        if hit is None or hit[0] != version:
            index: dict[str, list[Series]] = {}
            for s in self._names.get(name, ()):
                index.setdefault(s.labels.get(label, ""), []).append(s)
            hit = self._index[(name, label)] = (version, index)
        return hit[1].get(value, ())

    def _add(self, name: str, s: Series) -> None:
        """Add a series filled by the caller (tests): its samples may be newer than any
        ingest, so the evaluator no longer assumes none is (`newest` is None from now on)."""
        self._manual = True
        self._register(name, s)

    def _register(self, name: str, s: Series) -> None:
        self.registered += 1
        self._names.setdefault(name, []).append(s)
        self._versions[name] = self._versions.get(name, 0) + 1

    @property
    def newest(self) -> float | None:
        """The newest sample time stored (ms), None when unknown; a selector evaluated at or
        after it takes every series' last sample without searching."""
        return None if self._manual else self._newest

    def ingest(self, target: Target, samples: Iterable[Scraped] | None, t: float) -> None:
        """One scrape of `target` at `t` (ms); `samples` None when the scrape failed."""
        known = self._targets.setdefault(target, {})
        seen: set[str] = set()
        self._newest = max(self._newest, t)
        for name, raw, labels, value in samples or ():
            s = known.get(raw)
            if s is None:
                full = LabelSet({"job": target.job, "instance": target.instance} | labels)
                full["__name__"] = name
                s = known[raw] = Series(full)
                self._register(name, s)
            s.append(t, value)
            seen.add(raw)
        for raw, s in known.items():
            if raw not in seen and not s.stale:
                s.append(t, STALE)
        up_key = "up"
        up = known.get(up_key)
        if up is None and "up" in self.keep:
            up = known[up_key] = Series(LabelSet({"__name__": "up", "job": target.job,
                                                  "instance": target.instance}))  # fmt: skip
            self._register("up", up)
        if up is not None:
            up.append(t, 0.0 if samples is None else 1.0)
        self.ingests += 1
        if self.ingests % 16 == 0:
            self.trim(t)

    def trim(self, now: float) -> None:
        """Drop samples older than their metric's retention, and series left with none."""
        for name, series in list(self._names.items()):
            keep = self.keep.get(name)
            cutoff = now - (keep if keep is not None else 0) - 60_000
            kept = []
            for s in series:
                lo = bisect_left(s.ts, cutoff)
                if lo:
                    del s.ts[:lo]
                    del s.vs[:lo]
                if keep is not None and s.ts and not (s.stale and len(s.ts) == 1):
                    kept.append(s)
            if len(kept) != len(series):
                gone = {id(s) for s in series} - {id(s) for s in kept}
                for known in self._targets.values():
                    for raw in [r for r, s in known.items() if id(s) in gone]:
                        del known[raw]
                self._names[name] = kept
                self._versions[name] = self._versions.get(name, 0) + 1


def _fetch(url: str, timeout: float) -> str:
    req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
        return resp.read().decode("utf-8")


class LocalSource:
    """Scrapes `targets` every `scrape_interval` seconds and answers instant queries from the
    history (a `rules.sources.Source`). `prepare` is called by the engine with the expressions it
    will query: it plans them, refuses what it cannot evaluate, and sets the retention."""

    def __init__(
        self,
        targets: Sequence[Target],
        scrape_interval: float = 15.0,
        history: float = 25 * 3600.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str, float], str] = _fetch,
        freeze_gc: bool = False,
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.history_ms = round(history * 1000)
        self.timeout = timeout
        self.clock = clock
        self.fetch = fetch
        self.store = History()
        self._queries: dict[str, Query | Unsupported] = {}
        self._lock = threading.Lock()
        self._ctx: tuple[int, int, Ctx] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_errors: dict[str, str] = {}
        self.freeze_gc = freeze_gc
        self._frozen_at = 0

    # -- rules -------------------------------------------------------------------------------

    def _plan(self, expr: str) -> Query | Unsupported:
        q = self._queries.get(expr)
        if q is None:
            try:
                q = Query.parse(expr)
                longest = max(q.needs.values(), default=0)
                if longest > self.history_ms:
                    q = Unsupported(
                        f"reads {format_duration(longest / 1000)} of history, more than the "
                        f"local source keeps (--history {format_duration(self.history_ms / 1000)})"
                    )
            except Unsupported as err:
                q = err
            except Exception as err:  # noqa: BLE001 - a planner bug refuses that rule alone
                q = Unsupported(f"cannot be planned: {type(err).__name__}: {err}")
            self._queries[expr] = q
        return q

    def prepare(self, exprs: Iterable[str]) -> dict[str, str | None]:
        """Plan `exprs`; the reason each one is refused (None when it runs). Only the metrics
        these read are scraped into the history from now on, each kept as long as they need."""
        reasons: dict[str, str | None] = {}
        keep: dict[str, int] = {}
        for expr in exprs:
            q = self._plan(expr)
            if isinstance(q, Unsupported):
                reasons[expr] = str(q)
                continue
            reasons[expr] = None
            for name, need in q.needs.items():
                keep[name] = max(keep.get(name, 0), need + round(2000 * self.scrape_interval))
        with self._lock:
            self.store.keep = keep
        return reasons

    def query(self, expr: str, at: float) -> list[Sample]:
        q = self._plan(expr)
        if isinstance(q, Unsupported):
            raise SourceError(f"not evaluated locally: {q}")
        t = round(at * 1000)
        with self._lock:
            # selector results are shared by the rules of one evaluation at the same time
            if self._ctx is None or self._ctx[:2] != (t, self.store.ingests):
                self._ctx = (t, self.store.ingests, Ctx(self.store))
            # an error here is the rule's own (the data makes its expression fail), not the
            # source's: the engine counts it against that rule alone
            # the stored label sets themselves (read-only to the engine, which copies what it
            # keeps): the engine recognises a series it saw last cycle without hashing labels
            return q.eval(self.store, t, self._ctx[2])

    def record_self(self, samples: Iterable[tuple[str, dict[str, str], float]], at: float) -> None:
        """The engine's own series (name, labels, value) at `at`, as if Prometheus scraped
        the engine: rules about the engine (a rule that keeps failing) see them locally too."""
        keep = self.store.keep
        scraped: list[Scraped] = []
        for name, labels, value in samples:
            if name in keep:
                raw = name + repr(sorted(labels.items()))
                scraped.append((name, raw, dict(labels), value))
        with self._lock:
            self.store.ingest(SELF_TARGET, scraped, float(round(at * 1000)))

    # -- scraping ----------------------------------------------------------------------------

    def scrape_once(self, at: float | None = None) -> None:
        """Scrape every target once, stamping the samples with `at` (default: the clock).
        Targets are fetched concurrently (up to 16 at a time), so a few that time out do not
        hold up the rest past the interval."""
        t = float(round((self.clock() if at is None else at) * 1000))
        if len(self.targets) <= 1:
            for target in self.targets:
                self._scrape(target, t)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(16, len(self.targets)), "rules-scrape") as pool:
            list(pool.map(lambda target: self._scrape(target, t), self.targets))

    def _scrape(self, target: Target, t: float) -> None:
        keep = self.store.keep
        try:
            text = self.fetch(target.url, self.timeout)
            samples = list(parse_exposition(text, keep.__contains__))
        except (OSError, ValueError, UnicodeDecodeError) as err:
            if target.url not in self.last_errors:
                log.warning("scrape of %s failed: %s", target.url, err)
            self.last_errors[target.url] = str(err)
            samples = None
        else:
            if self.last_errors.pop(target.url, None) is not None:
                log.info("scrape of %s works again", target.url)
        with self._lock:
            self.store.ingest(target, samples, t)
            grew = self.store.registered != self._frozen_at
            self._frozen_at = self.store.registered
        if grew and self.freeze_gc:
            self._freeze()

    @staticmethod
    def _freeze() -> None:
        """Move everything alive now (the history's series above all) out of the garbage
        collector's sight: they live until they are trimmed, are freed by reference counting
        then, and a full collection would otherwise walk all of them, costing the evaluation
        cycle more than the rules themselves (measured with bench/rules_eval.py). Collected
        first, so no garbage is frozen; done only when new series appeared, and only where the
        process is the engine's own (`poolwatch rules run` asks for it: `freeze_gc`)."""
        import gc

        gc.collect()
        gc.freeze()

    def start(self) -> None:
        """Scrape in a background thread until `stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self.scrape_once()
                except Exception:  # one bad scrape must not end scraping
                    log.exception("scrape failed")
                self._stop.wait(max(0.0, self.scrape_interval - (time.monotonic() - began)))

        self._thread = threading.Thread(target=loop, name="rules-scrape", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def check_local(exprs: dict[str, str], history: float = 25 * 3600.0) -> dict[str, str | None]:
    """rule name -> why the local source refuses its expression (None: it runs locally)."""
    src = LocalSource([], history=history)
    reasons = src.prepare(exprs.values())
    return {name: reasons[expr] for name, expr in exprs.items()}
