"""What `poolwatch dashboards render` reads from Prometheus: variables, then each panel's data.

The panels, their queries, units and thresholds come from the Grafana JSON model that
`registry.dashboards()` builds from the definitions (queried with the core Prometheus client,
`poolwatch.core.prometheus`), so a rendered page and the Grafana
dashboard can never disagree about what a panel shows. Only Grafana's own parts are replaced:
template variables get values the way Grafana's defaults would pick them (every value, "All",
for a multi-value variable; the first value found otherwise; a custom variable's default) and
its builtins (`$__rate_interval`, ...) get the values the dashboards' own checks use.
"""

from __future__ import annotations

import re
from typing import Any

from poolwatch.core.prometheus import PrometheusClient, PrometheusError, Series

from . import lint


def variables(model: dict[str, Any], prom: PrometheusClient, at: float) -> dict[str, str]:
    """A value for every template variable, in order (later queries use earlier values)."""
    values: dict[str, str] = {}
    for v in model.get("templating", {}).get("list", []):
        name, kind = v["name"], v.get("type")
        if kind == "datasource":
            continue
        if kind == "custom":
            values[name] = str(v.get("current", {}).get("value") or _first_option(v))
            continue
        if v.get("multi") or v.get("includeAll"):
            values[name] = v.get("allValue") or ".*"
            continue
        m = lint.LABEL_VALUES.match(v.get("query", ""))
        found: list[str] = []
        if m:
            expr, label = lint.substitute(m.group(1), values), m.group(2)
            try:
                got = prom.query(f"group by ({label}) ({expr})", at)
                found = sorted({s.labels.get(label, "") for s in got} - {""})
            except PrometheusError:
                found = []
        values[name] = found[0] if found else ""
    return values


def variable_texts(model: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """What Grafana shows for each chosen value (`${accel:text}`: "GPU" for "nvidia")."""
    out = {}
    for v in model.get("templating", {}).get("list", []):
        name = v["name"]
        chosen = values.get(name, "")
        shown = [o["text"] for o in v.get("options") or [] if str(o.get("value")) == chosen]
        out[name] = shown[0] if shown else ("All" if chosen == ".*" else chosen)
    return out


def _first_option(v: dict[str, Any]) -> str:
    opts = v.get("options") or []
    chosen = [o for o in opts if o.get("selected")] or opts
    return str(chosen[0]["value"]) if chosen else ""


def legend(fmt: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: `{{label}}` replaced; empty format: the series' labels."""
    if not fmt:
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
    out = fmt
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return re.sub(r"\{\{\s*\w+\s*\}\}", "", out)  # a label the series lacks: empty


def table_rows(
    panel: dict[str, Any], results: dict[str, list[Series]]
) -> tuple[list[str], list[list[str | float]]]:
    """Grafana's merge, filterFieldsByName and organize transformations over instant results:
    one row per distinct label set, a `Value #<refId>` cell per query; (header, rows)."""
    merged: dict[tuple[tuple[str, str], ...], dict[str, str | float]] = {}
    for ref, series in results.items():
        for s in series:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__"))
            row = merged.setdefault(key, dict(key))
            row[f"Value #{ref}"] = s.points[-1][1] if s.points else ""
    fields: list[str] = []
    rename: dict[str, str] = {}
    for tr in panel.get("transformations", []):
        opts = tr.get("options", {})
        if tr["id"] == "filterFieldsByName":
            fields = list(opts.get("include", {}).get("names", []))
        elif tr["id"] == "organize":
            order = opts.get("indexByName", {})
            fields = sorted(fields or order, key=lambda f: order.get(f, len(order)))
            fields = [f for f in fields if not opts.get("excludeByName", {}).get(f)]
            rename = opts.get("renameByName", {})
    if not fields:
        fields = sorted({k for row in merged.values() for k in row})
    if len(results) == 1:  # one query: Grafana names its value column "Value"
        [ref] = results
        for row in merged.values():
            if f"Value #{ref}" in row:
                row["Value"] = row[f"Value #{ref}"]
    header = [rename.get(f, f) for f in fields]
    rows = [[row.get(f, "") for f in fields] for _, row in sorted(merged.items())]
    return header, rows
