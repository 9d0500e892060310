"""Seed-name compatibility: derive the seeds' alias families from the canonical ones.

With `compat: [modelarts]` a node also answers to the ModelArts names (`ma_node_*`, …) in the seeds'
units. The aliases are computed from the canonical samples of the same collection, so they can never
disagree with them. Rates and per-operation averages need the previous collection, which this object
keeps per series; after a restart or a counter reset the first value is simply absent, never a
spike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

from prometheus_client.core import Metric, Sample

from poolwatch.core import catalog
from poolwatch.core.catalog import Alias, MetricSpec

LabelKey = tuple[tuple[str, str], ...]


class _Point(NamedTuple):
    at: float
    value: float
    per: float


def _key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


class CompatExpander:
    """Stateful alias renderer for one collector's families."""

    def __init__(self, compat: Iterable[str]) -> None:
        self.compat = frozenset(compat)
        self._prev: dict[tuple[str, LabelKey], _Point] = {}
        self._seen: set[tuple[str, LabelKey]] = set()

    def expand(self, families: list[Metric], at: float) -> list[Metric]:
        """Alias families for `families` (canonical, identity labels already applied)."""
        if not self.compat:
            return []
        by_name = {self._exposed(f): f for f in families}
        out: list[Metric] = []
        self._seen: set[tuple[str, LabelKey]] = set()
        for fam in families:
            spec = catalog.by_name(self._exposed(fam))
            for alias in spec.aliases:
                if alias.compat in self.compat:
                    out.append(self._alias(alias, spec, fam, by_name, at))
        # forget series that vanished (a device unplugged, a mount gone): bounded memory
        self._prev = {k: v for k, v in self._prev.items() if k in self._seen}
        # a name split by chip class (model_re) comes from two families: one family out
        merged: dict[str, Metric] = {}
        for fam in out:
            if fam.name in merged:
                merged[fam.name].samples += fam.samples
            else:
                merged[fam.name] = fam
        return list(merged.values())

    @staticmethod
    def _exposed(fam: Metric) -> str:
        return fam.name + "_total" if fam.type == "counter" else fam.name

    def _alias(
        self,
        alias: Alias,
        spec: MetricSpec,
        fam: Metric,
        by_name: dict[str, Metric],
        at: float,
    ) -> Metric:
        labels = [*catalog.IDENTITY_LABELS, *spec.labels]
        target = catalog.alias_family(alias, spec, labels)
        per_values: dict[LabelKey, float] = {}
        if alias.transform == "per":
            per_values = {
                _key(s.labels): s.value
                for s in by_name[alias.per].samples
                if s.name.endswith("_total")
            }
        match = dict(alias.match)
        name = self._sample_name(target, alias)
        model = _model_re(alias.model_re) if alias.model_re else None
        if alias.transform == "scale" and not match and model is None:  # most: one multiplication
            k = alias.scale
            target.samples = [
                Sample(name, s.labels, s.value * k)
                for s in fam.samples
                if not s.name.endswith("_created")
            ]
            return target
        for sample in fam.samples:
            if sample.name.endswith("_created"):
                continue
            if any(sample.labels.get(k) != v for k, v in match.items()):
                continue
            if model is not None and not model.search(sample.labels.get("model", "")):
                continue
            value = self._value(alias, sample, per_values, at)
            if value is not None:
                target.samples.append(Sample(name, sample.labels, value))
        return target

    @staticmethod
    def _sample_name(target: Metric, alias: Alias) -> str:
        return target.name + "_total" if alias.type == "counter" else target.name

    def _value(
        self, alias: Alias, sample: Sample, per_values: dict[LabelKey, float], at: float
    ) -> float | None:
        if alias.transform == "scale":
            return sample.value * alias.scale
        # within one family every sample has the same label names in the same order, so the
        # unsorted items are a key; `per` looks values up in another family: sorted there
        key = _key(sample.labels) if alias.transform == "per" else tuple(sample.labels.items())
        per = per_values.get(key, 0.0) if alias.transform == "per" else at
        prev = self._prev.get((alias.name, key))
        self._prev[(alias.name, key)] = _Point(at, sample.value, per)
        self._seen.add((alias.name, key))
        if prev is None or sample.value < prev.value or per < prev.per:
            return None  # first sight, or a counter reset: no honest value yet
        if alias.transform == "rate":
            dt = at - prev.at
            return (sample.value - prev.value) / dt * alias.scale if dt > 0 else None
        dper = per - prev.per
        return (sample.value - prev.value) / dper * alias.scale if dper > 0 else 0.0


@cache
def _model_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)
