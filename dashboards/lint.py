"""Checks on the generated Grafana JSON: PromQL, catalog names, ids, grid, links, variables.

They run on the JSON models (not the grafanalib objects) so they check what Grafana will load.
Used by the test suite and by `poolwatch dashboards check`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import yaml

from poolwatch.core.catalog import CatalogError, all_alias_names, by_name

from .thresholds import rules_dir

GRID_WIDTH = 24
#: values Grafana gives its built-in variables, as PromQL would see them
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
            "__all": ".*"}  # fmt: skip
#: builtins allowed outside queries (links, titles)
OTHER_BUILTINS = ("__data", "__url_time_range", "__field", "__value", "__series", "__from", "__to")
ID = r"[A-Za-z_]\w*"  # "$1" in label_replace is a capture group, not a variable
VAR = re.compile(rf"\$\{{({ID})(?:[.:][^}}]*)?\}}|\$({ID})|\[\[({ID})\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in model.get("panels", []):
        yield p
        yield from p.get("panels", [])


def queries(model: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of every panel."""
    for p in panels(model):
        for t in p.get("targets", []):
            yield p, t


def variable_names(model: dict[str, Any]) -> set[str]:
    return {v["name"] for v in model.get("templating", {}).get("list", [])}


def substitute(expr: str, values: dict[str, str]) -> str:
    """`expr` with `$var`, `${var}`, `${var:fmt}` and Grafana's builtins replaced by values."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(name)

    return VAR.sub(one, expr)


def used_variables(text: str) -> set[str]:
    return {m.group(1) or m.group(2) or m.group(3) for m in VAR.finditer(text)}


def metric_names(expr: str) -> set[str]:
    """Metric names the (substituted) PromQL expression selects."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def recorded_names() -> set[str]:
    """Series produced by recording rules in the shipped rule files."""
    out: set[str] = set()
    for path in rules_dir().glob("*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        groups = doc.get("groups") or [doc]
        for g in groups:
            out |= {
                r["record"] for r in g.get("rules") or [] if isinstance(r, dict) and "record" in r
            }
    return out


def known_metric(name: str, recorded: set[str]) -> bool:
    if name in recorded or name in all_alias_names():
        return True
    try:
        by_name(name)
    except CatalogError:
        return False
    return True


def variable_queries(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable, PromQL) of each query variable; label_values(expr, label) yields expr."""
    for v in model.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        m = LABEL_VALUES.match(v["query"])
        yield v["name"], (m.group(1) if m else v["query"])


def sample_values(model: dict[str, Any]) -> dict[str, str]:
    """A valid value for each variable, for parsing: its default or a placeholder."""
    return dict.fromkeys(variable_names(model), "x")


def check(model: dict[str, Any], uids: set[str], recorded: set[str]) -> list[str]:
    """Every problem with one dashboard, each naming the dashboard and the panel."""
    uid = model["uid"]
    problems: list[str] = []
    names = variable_names(model)
    values = sample_values(model)
    exprs = [
        (f"panel {p.get('title')!r} query {t.get('refId')}", t["expr"]) for p, t in queries(model)
    ]
    exprs += [(f"variable {n!r}", q) for n, q in variable_queries(model)]
    for where, expr in exprs:
        try:
            parsed = substitute(expr, values)
            found = metric_names(parsed)
        except KeyError as err:
            problems.append(f"{uid}: {where}: undefined variable ${err.args[0]}")
            continue
        except (ValueError, TypeError) as err:
            problems.append(f"{uid}: {where}: not PromQL: {err}")
            continue
        problems += [f"{uid}: {where}: {n} is not in the catalog nor recorded by a shipped rule"
                     for n in sorted(found) if not known_metric(n, recorded)]  # fmt: skip
    texts = [p.get("title", "") for p in panels(model)] + [v.get("query", "") for v in
             model["templating"]["list"] if v.get("type") == "query"]  # fmt: skip
    for text in texts:
        for var in used_variables(text) - names - set(BUILTINS):
            problems.append(f"{uid}: {text!r} uses undefined variable ${var}")
    problems += _check_ids_and_grid(model)
    problems += _check_links(model, uids)
    return problems


def _check_ids_and_grid(model: dict[str, Any]) -> list[str]:
    uid, problems = model["uid"], []
    ids = [p.get("id") for p in panels(model)]
    if None in ids or len(set(ids)) != len(ids):
        problems.append(f"{uid}: panel ids are missing or not unique: {ids}")
    cells: dict[tuple[int, int], str] = {}
    for p in panels(model):
        g = p.get("gridPos") or {}
        x, y, w, h = g.get("x", -1), g.get("y", -1), g.get("w", 0), g.get("h", 0)
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > GRID_WIDTH:
            problems.append(f"{uid}: panel {p.get('title')!r} gridPos {g} is outside 24 columns")
            continue
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    problems.append(f"{uid}: panel {p.get('title')!r} overlaps "
                                    f"{cells[(cx, cy)]!r} at x={cx} y={cy}")  # fmt: skip
                    break
                cells[(cx, cy)] = p.get("title", "")
            else:
                continue
            break
    return problems


def link_targets(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, url) of every dashboard link and data link."""
    for lk in model.get("links", []):
        yield "dashboard link", lk.get("url", "")
    for p in panels(model):
        for lk in p.get("links", []):
            yield f"panel {p.get('title')!r}", lk.get("url", "")
        for o in p.get("fieldConfig", {}).get("overrides", []):
            for prop in o.get("properties", []):
                if prop.get("id") == "links":
                    for lk in prop["value"]:
                        yield (
                            f"panel {p.get('title')!r} column {o['matcher']['options']!r}",
                            lk["url"],
                        )


def _check_links(model: dict[str, Any], uids: set[str]) -> list[str]:
    uid, problems = model["uid"], []
    names = variable_names(model)
    for where, url in link_targets(model):
        m = re.match(r"^/d/([\w-]+)", url)
        if not m or m.group(1) not in uids:
            problems.append(f"{uid}: {where} links to {url!r}, not a poolwatch dashboard")
        for var in used_variables(url) - names - set(BUILTINS) - set(OTHER_BUILTINS):
            problems.append(f"{uid}: {where} link uses undefined variable ${var}")
    return problems


def check_all(models: dict[str, dict[str, Any]]) -> list[str]:
    recorded = recorded_names()
    uids = set(models)
    problems: list[str] = []
    for model in models.values():
        problems += check(model, uids, recorded)
    titles = [m["title"] for m in models.values()]
    if len(set(titles)) != len(titles):
        problems.append(f"dashboard titles are not unique: {titles}")
    return problems
