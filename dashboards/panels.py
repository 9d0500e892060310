"""Shared panel builders: one function per panel shape, vendor-neutral by construction.

A GPU panel and its NPU twin are the same panel: every device query selects
`vendor="$accel"` (the node exporter's label) or `resource=~".*$accel.*"` (the cluster exporter's
Kubernetes resource name, nvidia.com/gpu or huawei.com/Ascend910...), and titles say
`${accel:text}`, so the `accel` variable (GPU or NPU) turns the whole dashboard from one device
kind to the other. With the default (GPU) the titles read exactly as the seeds print them.

Tables are instant queries in table format, one query per value column, merged on their common
labels (Grafana's merge transformation keys on the fields every frame has) and then filtered and
renamed to the seed's column titles; `Col` says where each column comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grafanalib.core import Stat, Table, Target, TimeSeries

from .thresholds import steps, threshold

DS = {"type": "prometheus", "uid": "${datasource}"}
ACCEL = "${accel:text}"  # "GPU" or "NPU" in titles
DEV = 'pool=~"$pool", vendor="$accel"'  # node exporter device series of the chosen kind
RES = 'pool=~"$pool", resource=~".*$accel.*"'  # cluster exporter series of the chosen kind
REFS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Col:
    """One table column.

    `expr` alone: the query's value is the cell. `expr` and `label`: the query supplies that label
    (its value is hidden). `label` alone: the label comes from any query of the table."""

    title: str
    expr: str = ""
    label: str = ""
    unit: str = ""
    rule: str = ""  # colour the cell by this shipped rule's threshold
    mappings: tuple[dict[str, object], ...] = ()
    link: str = ""  # a data link URL (Grafana syntax, ${__data.fields[...]} allowed)
    decimals: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


def target(expr: str, ref: str, legend: str = "", table: bool = False) -> Target:
    return Target(
        expr=expr,
        refId=ref,
        legendFormat=legend,
        format="table" if table else "time_series",
        instant=table,
        datasource=DS,
    )


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    rule: str = "",
    description: str = "",
    max_value: int | None = None,
) -> TimeSeries:
    """A time series of (expr, legend) queries; a rule's threshold is drawn as a red line."""
    return TimeSeries(
        title=title,
        description=_with_rule(description, rule),
        dataSource=DS,
        targets=[target(e, REFS[i], legend) for i, (e, legend) in enumerate(queries)],
        unit=unit,
        valueMax=max_value,
        valueMin=0,
        thresholds=steps(rule) if rule else [{"color": "green", "value": None}],
        thresholdsStyleMode="line" if rule else "off",
        legendDisplayMode="table",
        legendPlacement="right" if len(queries) == 1 else "bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
    )


def stat(
    title: str,
    queries: list[tuple[str, str]],
    unit: str = "none",
    rule: str = "",
    description: str = "",
    red_from: float | None = None,
    mappings: list[dict[str, object]] | None = None,
) -> Stat:
    """Current values; coloured by a rule's threshold, or red from `red_from` (counts of bad)."""
    if rule:
        colours = steps(rule)
    elif red_from is not None:
        colours = [{"color": "green", "value": None}, {"color": "red", "value": red_from}]
    else:
        colours = [{"color": "blue", "value": None}]
    return Stat(
        title=title,
        description=_with_rule(description, rule),
        dataSource=DS,
        targets=[target(e, REFS[i], legend) for i, (e, legend) in enumerate(queries)],
        format=unit,
        reduceCalc="lastNotNull",
        thresholds=colours,
        graphMode="none",
        textMode="value_and_name" if len(queries) > 1 else "auto",
        mappings=mappings or [],
        noValue="0" if unit == "none" else "No data",  # an absent count is 0, a ratio is not
    )


def _with_rule(description: str, rule: str) -> str:
    """Say where the red line comes from, so an operator can find the rule behind it."""
    if not rule:
        return description
    t = threshold(rule)
    note = f"Red: {t.op} {t.value:g}, the threshold of rule {rule} ({t.source})."
    return f"{description} {note}".strip()


def _value_field(ref: str, single: bool) -> list[str]:
    # Grafana names a table query's value "Value" when the panel has one query, "Value #A" else
    return ["Value", f"Value #{ref}"] if single else [f"Value #{ref}"]


def table(
    title: str, cols: list[Col], description: str = "", footer: tuple[str, ...] = ()
) -> Table:
    """A table of `cols`; `footer` names the columns summed in a Total row."""
    queries = [c for c in cols if c.expr]
    single = len(queries) == 1
    refs = {c.title: REFS[i] for i, c in enumerate(queries)}
    include: list[str] = []
    rename: dict[str, str] = {}
    index: dict[str, int] = {}
    overrides: list[dict[str, object]] = []
    for pos, c in enumerate(cols):
        names = [c.label] if c.label else _value_field(refs[c.title], single)
        for name in names:
            include.append(name)
            rename[name] = c.title
            index[name] = pos
        overrides.append(_column_override(c))
    hidden = [
        f for c in queries if c.label for f in _value_field(refs[c.title], single)
    ]  # a label column's own value
    transformations: list[dict[str, object]] = []
    if not single:
        transformations.append({"id": "merge", "options": {}})
    transformations += [
        {"id": "filterFieldsByName", "options": {"include": {"names": include}}},
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(hidden, True),
                "indexByName": index,
                "renameByName": rename,
            },
        },
    ]
    extra: dict[str, object] = {}
    if footer:
        extra = {"options": {"footer": {"show": True, "reducer": ["sum"], "fields": list(footer),
                                        "countRows": False}}}  # fmt: skip
    return Table(
        title=title,
        description=description,
        dataSource=DS,
        targets=[target(c.expr, refs[c.title], table=True) for c in queries],
        transformations=transformations,
        overrides=[o for o in overrides if o["properties"]],
        thresholds=[{"color": "green", "value": None}],
        filterable=True,
        extraJson=extra or None,
    )


def _column_override(c: Col) -> dict[str, object]:
    props: list[dict[str, object]] = []
    if c.unit:
        props.append({"id": "unit", "value": c.unit})
    if c.decimals is not None:
        props.append({"id": "decimals", "value": c.decimals})
    if c.rule:
        props.append({"id": "thresholds", "value": {"mode": "absolute", "steps": steps(c.rule)}})
        props.append({"id": "custom.displayMode", "value": "color-text"})
    if c.mappings:
        props.append({"id": "mappings", "value": list(c.mappings)})
    if c.link:
        props.append({"id": "links", "value": [{"title": f"Open {c.title}", "url": c.link}]})
    props += [{"id": k, "value": v} for k, v in c.extra.items()]
    return {"matcher": {"id": "byName", "options": c.title}, "properties": props}


def value_text(*pairs: tuple[float, str, str]) -> dict[str, object]:
    """A value mapping: exact numbers to text (and colour)."""
    return {
        "type": "value",
        "options": {
            str(int(v) if float(v).is_integer() else v): {"text": text, "color": colour, "index": i}
            for i, (v, text, colour) in enumerate(pairs)
        },
    }


def range_text(low: float | None, high: float | None, text: str, colour: str) -> dict[str, object]:
    return {
        "type": "range",
        "options": {"from": low, "to": high, "result": {"text": text, "color": colour}},
    }
