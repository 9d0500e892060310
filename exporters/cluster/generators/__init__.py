"""Family generators: one catalog family, a pure function from an object to samples, and the
precomputed header and line template that turn those samples into exposition bytes.

As kube-state-metrics' `FamilyGenerator` (`pkg/metric_generator/generator.go`), the header is
computed once and each object's lines are rendered when its watch event arrives, so a scrape only
joins bytes. A sample is `(label values, value)`, the values in the order of `labels`: the
collector's identity labels (`CLUSTER_IDENTITY`) first, then the spec's own labels. Label names
come from the catalog and are valid by construction; only values are escaped, and only when they
hold a backslash, quote or newline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.utils import floatToGoString

from poolwatch.core.catalog.cluster import CLUSTER_IDENTITY, CLUSTER_SPECS
from poolwatch.core.catalog.model import MetricSpec

Sample = tuple[tuple[str, ...], float]
SampleFn = Callable[[Any], Iterable[Sample]]

_SPECS = {s.name: s for s in CLUSTER_SPECS}
# the values most samples have (state sets, info series, small counts), formatted once
_FORMATTED = {float(i): floatToGoString(float(i)) for i in range(0, 129)}


@dataclass(frozen=True)
class FamilyGen:
    spec: MetricSpec
    labels: tuple[str, ...]
    fn: SampleFn
    header: bytes
    template: str

    @property
    def name(self) -> str:
        return self.spec.name

    def render(self, obj: object) -> bytes:
        """The family's lines for one object (no header); b"" when it has no samples."""
        samples = list(self.fn(obj))
        if not samples:
            return b""
        template = self.template
        if _needs_escape([v for values, _ in samples for v in values]):
            samples = [(tuple(_escape(v) for v in values), x) for values, x in samples]
        return "".join(
            [template % (*values, _FORMATTED.get(x) or floatToGoString(x)) for values, x in samples]
        ).encode("utf-8")

    def render_samples(self, samples: Iterable[Sample]) -> bytes:
        """Header and lines of samples computed elsewhere (the per-scrape counters)."""
        return self.header + self.render(samples)


def family(name: str, fn: SampleFn) -> FamilyGen:
    """A generator for a catalog name of the cluster exporter."""
    spec = _SPECS[name]
    labels = (*CLUSTER_IDENTITY[spec.collector], *spec.labels)
    return FamilyGen(spec, labels, fn, header(spec), template(spec.name, labels))


def passthrough(name: str) -> FamilyGen:
    """A generator whose `render` takes the samples themselves."""
    return family(name, lambda samples: samples)


def header(spec: MetricSpec) -> bytes:
    """# HELP / # TYPE as prometheus-client writes them (info families are gauges of value 1)."""
    typ = "counter" if spec.type == "counter" else "gauge"
    doc = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {spec.name} {doc}\n# TYPE {spec.name} {typ}\n".encode()


def template(name: str, labels: tuple[str, ...]) -> str:
    if not labels:
        return name + " %s\n"
    return name + "{" + ",".join(f'{k}="%s"' for k in labels) + "} %s\n"


def _needs_escape(values: Iterable[str]) -> bool:
    text = "".join(values)
    return "\\" in text or '"' in text or "\n" in text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def state_set(current: str, states: Iterable[str], prefix: tuple[str, ...]) -> list[Sample]:
    """One 0/1 sample per state, 1 for `current` (kube-state-metrics' state-set shape)."""
    return [((*prefix, s), 1.0 if s == current else 0.0) for s in states]


# -- checks shared by the kinds: a reason string for an odd object, None for a good one ---------
def odd_quantities(*groups: Iterable[tuple[str, float]]) -> str | None:
    """`negative_quantity` or `bad_quantity` (not a finite number) for resource lists."""
    for pairs in groups:
        for _resource, quantity in pairs:
            if not isinstance(quantity, int | float) or quantity != quantity:
                return "bad_quantity"
            if quantity < 0:
                return "negative_quantity"
            if quantity == float("inf"):
                return "bad_quantity"
    return None


def odd_time(*values: float | None) -> str | None:
    for v in values:
        if v is None:
            continue
        if not isinstance(v, int | float) or v != v or v < 0 or v == float("inf"):
            return "bad_timestamp"
    return None


def missing(**fields: object) -> str | None:
    """`missing_<field>` for the first empty or non-string field."""
    for name, v in fields.items():
        if not isinstance(v, str) or not v:
            return f"missing_{name}"
    return None
