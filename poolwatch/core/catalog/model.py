"""The shape of a catalog entry: one metric family, its canonical name and its seed aliases.

Why a catalog at all: exporters, rules, dashboards and docs all name metrics. If each wrote names by
hand, a panel could query a series nothing exports. Every family is declared here once; collectors
build their families from it (`new_family`), and the other parts are checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

MetricType = Literal["gauge", "counter", "info"]
Transform = Literal["scale", "rate", "per"]


@dataclass(frozen=True)
class Alias:
    """A seed name that a canonical family also answers to, in the seed's own unit.

    `transform` says how the alias value is derived from the canonical samples:
    - ``scale``: value x `scale` (MB from bytes, % from a ratio, 32-bit words from bytes);
    - ``rate``: per-second rate of the canonical counter between two collections, x `scale`
      (the seed's "KB/s" and "Bytes/s" gauges); absent on the first collection and on a reset;
    - ``per``: Δcanonical / Δ`per` between two collections, x `scale` (e.g. the average NFS RTT in
      ms per operation over the last interval); 0 when the denominator did not move.
    `match` keeps only samples whose labels carry these values (e.g. ``purpose="cache"``).
    `model_re` keeps only samples whose `model` label matches this regular expression (searched,
    case-insensitive): a seed name whose meaning depends on the chip class, such as
    ``ma_node_npu_memory_util`` (HBM on 910-class Ascend chips, DDR on 310-class ones), is an
    alias of two families, one per class, and the two halves never overlap.
    """

    name: str
    compat: str
    unit: str
    type: Literal["gauge", "counter", "info"] = "gauge"
    scale: float = 1.0
    transform: Transform = "scale"
    match: tuple[tuple[str, str], ...] = ()
    per: str = ""
    note: str = ""
    model_re: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """One metric family as it appears in the exposition.

    `name` is the full exposed name (``…_total`` for counters, ``…_info`` for info series);
    `family_name` is what prometheus-client's family types want before they add the suffix.
    Info series are exposed as gauges of value 1 (as node_exporter's ``node_uname_info``), so
    their family name is the full name.
    `labels` are the labels a collector sets; the runner adds `node` and `pool` to every series.
    """

    name: str
    type: MetricType
    unit: str
    help: str
    labels: tuple[str, ...]
    collector: str
    aliases: tuple[Alias, ...] = field(default=())

    @property
    def family_name(self) -> str:
        if self.type == "counter":
            return self.name.removesuffix("_total")
        return self.name


def read_every(spec: MetricSpec, tool: str, group: str, seconds: float) -> MetricSpec:
    """`spec` with its help saying how old its value can be when its group is read less often
    than every collection (the series is served from the last reading in between)."""
    if seconds <= 0:
        return spec
    note = (
        f"; {tool} group {group}, read every {seconds:g} s by default, so up to that old "
        "between readings"
    )
    return replace(spec, help=spec.help.removesuffix(").") + note + ").")


@dataclass(frozen=True)
class Unproduced:
    """A seed metric poolwatch does not (yet) produce, and why."""

    name: str
    reason: str
    issue: int | None  # the issue that will add it; None when it cannot be produced at all


MODELARTS = "modelarts"  # the compat set of the ModelArts seed tables (DCGM_FI_* names included)
MIB = 1.0 / 1048576  # the seeds' "MB" read as MiB, as Linux tools print it
KIB = 1.0 / 1024  # and "KB" as KiB


def seed(name: str, unit: str, **kw: object) -> Alias:
    """A ModelArts seed alias (the shorthand every catalog table uses)."""
    return Alias(name=name, compat=MODELARTS, unit=unit, **kw)  # type: ignore[arg-type]


def family(
    name: str, typ: str, unit: str, help_: str, labels: tuple[str, ...], collector: str, *al: Alias
) -> MetricSpec:
    """A catalog entry, positional as the tables are written."""
    return MetricSpec(name, typ, unit, help_, labels, collector, tuple(al))  # type: ignore[arg-type]
