"""The metric catalog: every family poolwatch exports, declared once.

Exporters build their families with `new_family(name)` (help, type, unit and label names come from
here, so the exposition cannot drift from the docs); rules, dashboards and docs are checked against
`by_name`. Each family has exactly one owning collector, which is what lets the node exporter
concatenate per-collector renderings into one valid exposition.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from poolwatch.core.catalog.accelerator import ACCELERATOR_SPECS
from poolwatch.core.catalog.alerts import ALERTS_SPECS
from poolwatch.core.catalog.cluster import CLUSTER_SPECS
from poolwatch.core.catalog.container import CONTAINER_SPECS
from poolwatch.core.catalog.controller import CONTROLLER_SPECS
from poolwatch.core.catalog.hccn import HCCN_SPECS
from poolwatch.core.catalog.model import Alias, MetricSpec, Unproduced
from poolwatch.core.catalog.node import NODE_SPECS
from poolwatch.core.catalog.npu import NPU_SPECS
from poolwatch.core.catalog.rules import RULES_SPECS
from poolwatch.core.catalog.seeds import pending

__all__ = [
    "ALL_SPECS",
    "UNPRODUCED",
    "Alias",
    "CatalogError",
    "MetricSpec",
    "Unproduced",
    "alias_family",
    "by_name",
    "families_of",
    "new_family",
]

#: the label set every node series carries; the runner adds it, collectors never do
IDENTITY_LABELS = ("node", "pool")


class CatalogError(ValueError):
    """A name that is not in the catalog, or a catalog that contradicts itself."""


def _index(specs: Iterable[MetricSpec]) -> dict[str, MetricSpec]:
    out: dict[str, MetricSpec] = {}
    aliases: dict[str, tuple[str, Alias]] = {}
    for spec in specs:
        if spec.name in out or spec.name in aliases:
            raise CatalogError(f"metric {spec.name} is declared twice")
        out[spec.name] = spec
        for alias in spec.aliases:
            owner, first = aliases.setdefault(alias.name, (spec.name, alias))
            # a name may have two owners only when each keeps its own chip class (model_re)
            split = (owner != spec.name and first.model_re and alias.model_re
                     and first.model_re != alias.model_re)  # fmt: skip
            if (owner != spec.name and not split) or alias.name in out:
                raise CatalogError(f"alias {alias.name} has two owners ({owner}, {spec.name})")
    return out


ALL_SPECS: list[MetricSpec] = [
    *NODE_SPECS, *ACCELERATOR_SPECS, *NPU_SPECS, *HCCN_SPECS, *CONTAINER_SPECS, *CLUSTER_SPECS,
    *RULES_SPECS, *ALERTS_SPECS, *CONTROLLER_SPECS,
]  # fmt: skip
_BY_NAME = _index(ALL_SPECS)
#: seed metrics not produced yet (those that became aliases drop out of the list by themselves)
UNPRODUCED: dict[str, Unproduced] = pending({a.name for s in ALL_SPECS for a in s.aliases})


def by_name(name: str) -> MetricSpec:
    """The spec of an exposed canonical name; raises CatalogError for anything undeclared."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise CatalogError(f"{name} is not in the poolwatch metric catalog") from None


def families_of(collector: str) -> list[MetricSpec]:
    """The families one collector owns, in catalog order."""
    return [s for s in ALL_SPECS if s.collector == collector]


def all_alias_names() -> dict[str, MetricSpec]:
    """Every seed alias name with the canonical family it derives from."""
    return {a.name: s for s in ALL_SPECS for a in s.aliases}


def _make(name: str, typ: str, help_: str, labels: Iterable[str], unit: str) -> Metric:
    labels = list(labels)
    if typ == "counter":
        return CounterMetricFamily(name, help_, labels=labels, unit=unit)
    return GaugeMetricFamily(name, help_, labels=labels, unit=unit)


def _exposed_unit(name: str, unit: str) -> str:
    # prometheus-client appends a unit that the name does not end with; ours always does, except
    # for rates like *_bytes_per_second, where the unit is informative only.
    base = name.removesuffix("_total")
    return unit if unit and base.endswith("_" + unit) else ""


def new_family(name: str, extra_labels: Iterable[str] = ()) -> Metric:
    """An empty family for a catalog name, labelled `extra_labels` + the spec's labels.

    `extra_labels` are the identity labels the runner prepends (node, pool)."""
    spec = by_name(name)
    return _make(
        spec.family_name,
        spec.type,
        spec.help,
        [*extra_labels, *spec.labels],
        _exposed_unit(spec.name, spec.unit),
    )


def alias_family(alias: Alias, canonical: MetricSpec, labels: Iterable[str]) -> Metric:
    """An empty family for a seed alias (its own name and type, the canonical's labels)."""
    help_ = f"Platform name for {canonical.name} in {alias.unit} ({alias.compat} compatibility)."
    if alias.type == "counter":
        return CounterMetricFamily(alias.name.removesuffix("_total"), help_, labels=list(labels))
    return GaugeMetricFamily(alias.name, help_, labels=list(labels))
