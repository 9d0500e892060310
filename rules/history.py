"""The local source's history: each series' samples in parallel arrays, by metric name,
with an inverted index per label, Prometheus' staleness on ingest (a series gone from its
target, a failed scrape), `up`, and per-metric retention set from the loaded rules."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from .promql import STALE, LabelSet, is_stale
from .scrape import Scraped, Target


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
