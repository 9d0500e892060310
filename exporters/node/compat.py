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
        # (alias, canonical family) -> series -> its previous point; rebuilt by every expansion,
        # so a series that vanished (a device unplugged, a mount gone) is forgotten: bounded
        self._prev: dict[tuple[str, str], dict[LabelKey, _Point]] = {}

    def expand(self, families: list[Metric], at: float) -> list[Metric]:
        """Alias families for `families` (canonical, identity labels already applied)."""
        if not self.compat:
            return []
        by_name = {self._exposed(f): f for f in families}
        out: list[Metric] = []
        prev, self._prev = self._prev, {}
        for fam in families:
            spec = catalog.by_name(self._exposed(fam))
            for alias in spec.aliases:
                if alias.compat in self.compat:
                    state = (alias.name, fam.name)
                    old, self._prev[state] = prev.get(state, {}), {}
                    out.append(self._alias(alias, spec, fam, by_name, at, old, self._prev[state]))
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
        old: dict[LabelKey, _Point],
        new: dict[LabelKey, _Point],
    ) -> Metric:
        """The alias family of `fam`; rates and averages read `old` points, write `new` ones."""
        labels = [*catalog.IDENTITY_LABELS, *spec.labels]
        target = catalog.alias_family(alias, spec, labels)
        match = dict(alias.match)
        name = self._sample_name(target, alias)
        model = _model_re(alias.model_re) if alias.model_re else None
        k = alias.scale
        if alias.transform == "scale" and not match and model is None:  # most: one multiplication
            target.samples = [
                Sample(name, s.labels, s.value * k)
                for s in fam.samples
                if not s.name.endswith("_created")
            ]
            return target
        if alias.transform == "rate" and not match and model is None:  # per-container traffic
            samples = target.samples
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                # within one family every sample has the same label names in the same order,
                # so the unsorted items are a key
                key, value = tuple(s.labels.items()), s.value
                new[key] = _Point(at, value, at)
                p = old.get(key)
                # first sight, or a counter reset: no honest value yet
                if p is not None and value >= p.value and at > p.at:
                    samples.append(Sample(name, s.labels, (value - p.value) / (at - p.at) * k))
            return target
        per_values: dict[LabelKey, float] = {}
        if alias.transform == "per":
            per_values = {
                _key(s.labels): s.value
                for s in by_name[alias.per].samples
                if s.name.endswith("_total")
            }
        for sample in fam.samples:
            if sample.name.endswith("_created"):
                continue
            if match and any(sample.labels.get(k) != v for k, v in match.items()):
                continue
            if model is not None and not model.search(sample.labels.get("model", "")):
                continue
            value = self._value(alias, sample, per_values, at, old, new)
            if value is not None:
                target.samples.append(Sample(name, sample.labels, value))
        return target

    @staticmethod
    def _sample_name(target: Metric, alias: Alias) -> str:
        return target.name + "_total" if alias.type == "counter" else target.name

    @staticmethod
    def _value(
        alias: Alias,
        sample: Sample,
        per_values: dict[LabelKey, float],
        at: float,
        old: dict[LabelKey, _Point],
        new: dict[LabelKey, _Point],
    ) -> float | None:
        if alias.transform == "scale":
            return sample.value * alias.scale
        # within one family every sample has the same label names in the same order, so the
        # unsorted items are a key; `per` looks values up in another family: sorted there
        key = _key(sample.labels) if alias.transform == "per" else tuple(sample.labels.items())
        per = per_values.get(key, 0.0) if alias.transform == "per" else at
        prev = old.get(key)
        new[key] = _Point(at, sample.value, per)
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
