"""`poolwatch dashboards render`: every dashboard drawn from live Prometheus data, as static HTML.

For a machine without Grafana (the demo, a laptop, an air-gapped bastion): one HTML file per
dashboard plus an index, each panel where the Grafana grid puts it, with the same title, queries,
unit and thresholds as the Grafana JSON (read from the same model, see render_data). Charts are
drawn by matplotlib into inline SVG, so a page needs nothing but itself: no script, no font or
library from the network. A time series is a line chart with its thresholds as dashed lines; a
stat is its last value, coloured by its thresholds; a table is an HTML table.

Loading the JSON into a real Grafana stays the way to run poolwatch in production (live
refresh, variables you can change, zoom); these pages are snapshots of one moment.
"""

from __future__ import annotations

import html
import io
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from poolwatch.core.prometheus import PrometheusClient, PrometheusError, Series

from . import lint, registry
from .render_data import (
    legend,
    table_rows,
    variable_texts,
    variables,
)

log = logging.getLogger(__name__)
ROW_PX, PAGE_PX = 34, 1400  # one Grafana grid row; the page's width (24 columns)
COLORS = {"green": "#2f9e44", "red": "#e03131", "orange": "#f08c00", "yellow": "#f2c200",
          "blue": "#1c7ed6", "purple": "#9c36b5", "text": "#1d2330"}  # fmt: skip
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def fmt_value(value: float, unit: str) -> str:
    """A value as Grafana shows it in `unit` (percentunit, bytes, Bps, h, celsius, watt, ...)."""
    if value is None or math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit in ("bytes", "Bps"):
        size, i = abs(value), 0
        while size >= 1024 and i < len(_BINARY) - 1:
            size, i = size / 1024, i + 1
        text = f"{math.copysign(size, value):.3g} {_BINARY[i]}"
        return text + ("/s" if unit == "Bps" else "")
    suffix = {"h": " h", "celsius": " °C", "watt": " W", "s": " s", "percent": "%"}.get(unit, "")
    if abs(value) >= 1e6 and not suffix:
        return f"{value / 1e6:.3g} M"
    if abs(value) >= 1e4 and not suffix:
        return f"{value / 1e3:.3g} k"
    return f"{value:.3g}{suffix}" if value != int(value) else f"{int(value)}{suffix}"


def _color(name: str | None) -> str:
    return COLORS.get(name or "", name or COLORS["text"])


def threshold_color(value: float, steps: list[dict[str, Any]]) -> str:
    """The colour of the highest threshold step `value` reaches (Grafana's absolute mode)."""
    color = COLORS["text"]
    for step in steps:
        if step.get("value") is None or value >= step["value"]:
            color = _color(step.get("color"))
    return color


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def draw_timeseries(panel: dict[str, Any], series: list[tuple[str, Series]], unit: str,
                    size: tuple[float, float]) -> str:  # fmt: skip
    """A line chart (inline SVG) with the panel's threshold steps as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    ax = fig.add_subplot()
    for name, s in series[:12]:  # beyond a dozen lines nobody reads a legend
        xs = [datetime.fromtimestamp(t) for t, _ in s.points]
        ax.plot(xs, [v for _, v in s.points], linewidth=1.2, label=name[:48])
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    for step in defaults.get("thresholds", {}).get("steps", []):
        if step.get("value") is not None:
            ax.axhline(step["value"], color=_color(step.get("color")), linestyle="--",
                       linewidth=1)  # fmt: skip
    if defaults.get("min") is not None:
        ax.set_ylim(bottom=defaults["min"])
    if defaults.get("max") is not None:
        ax.set_ylim(top=defaults["max"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v, unit)))
    times = [t for _, s in series for t, _ in s.points]
    short = times and max(times) - min(times) < 3 * 3600
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if short else "%H:%M"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if series:  # beside the chart, as Grafana's legend table, so it never hides a line
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(fig)


_TITLE_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def title_text(text: str, values: dict[str, str], texts: dict[str, str]) -> str:
    """A panel title with its variables as Grafana shows them (`${accel:text}` -> GPU)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if m.group(2) == "text" and name in texts:
            return texts[name]
        return values.get(name, m.group(0))

    return _TITLE_VAR.sub(one, text)


def _queries(panel: dict[str, Any], values: dict[str, str]) -> list[tuple[dict[str, Any], str]]:
    return [(t, lint.substitute(t["expr"], values)) for t in panel.get("targets", [])
            if not t.get("hide")]  # fmt: skip


def render_panel(panel: dict[str, Any], prom: PrometheusClient, values: dict[str, str],
                 end: float, span: float) -> str:  # fmt: skip
    """One panel's HTML (its chart, value or table), or the reason it has none."""
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit") or ""
    steps = defaults.get("thresholds", {}).get("steps", [])
    kind = panel.get("type")
    w, h = panel["gridPos"]["w"] * PAGE_PX / 24, panel["gridPos"]["h"] * ROW_PX
    try:
        if kind == "timeseries":
            step = max(1.0, span / 200)
            lines = [(legend(t.get("legendFormat", ""), s.labels), s)
                     for t, expr in _queries(panel, values)
                     for s in prom.query_range(expr, end - span, end, step)]  # fmt: skip
            if not lines:
                return '<p class="nodata">No data</p>'
            return draw_timeseries(panel, lines, unit, (w - 16, h - 40))
        if kind == "stat":
            found = [(legend(t.get("legendFormat", ""), s.labels), s)
                     for t, expr in _queries(panel, values)
                     for s in prom.query(expr, end)]  # fmt: skip
            if not found:
                return '<p class="nodata">No data</p>'
            cells = []
            for name, s in found[:6]:
                v = s.points[-1][1]
                label = f'<div class="sub">{html.escape(name)}</div>' if len(found) > 1 else ""
                cells.append(f'<div class="stat" style="color:{threshold_color(v, steps)}">'
                             f"{html.escape(fmt_value(v, unit))}{label}</div>")  # fmt: skip
            return "".join(cells)
        if kind == "table":
            results = {t["refId"]: prom.query(expr, end) for t, expr in _queries(panel, values)}
            header, rows = table_rows(panel, results)
            if not rows:
                return '<p class="nodata">No data</p>'
            head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_cell(c, unit))}</td>" for c in row) + "</tr>"
                for row in rows[:200]
            )
            return f"<table><tr>{head}</tr>{body}</table>"
    except PrometheusError as err:
        return f'<p class="error">{html.escape(str(err))}</p>'
    return f'<p class="nodata">panel type {html.escape(str(kind))} is not drawn here</p>'


def _cell(value: str | float, unit: str) -> str:
    return fmt_value(value, unit) if isinstance(value, float) else str(value)


CSS = (
    "body{font-family:system-ui,sans-serif;margin:1em;color:#1d2330;background:#f4f5f7}"
    f".grid{{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:{ROW_PX}px;"
    f"gap:6px;width:{PAGE_PX}px}}"
    ".panel{background:#fff;border:1px solid #d8dde6;border-radius:4px;padding:4px 8px;"
    "overflow:auto}.panel h3{font-size:13px;margin:2px 0 4px}.panel svg{max-width:100%;"
    "height:auto}.stat{font-size:28px;font-weight:600;display:inline-block;margin-right:1em}"
    ".sub{font-size:11px;font-weight:400;color:#555}.nodata{color:#888}.error{color:#c92a2a}"
    "table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #e3e6eb;"
    "padding:2px 6px;text-align:left}th{background:#eef1f5}a{color:#1a5fb4}"
)


def render_board(model: dict[str, Any], prom: PrometheusClient, end: float, span: float) -> str:
    """One dashboard as a whole HTML page."""
    values = variables(model, prom, end)
    texts = variable_texts(model, values)
    cells = []
    for panel in lint.panels(model):
        g = panel["gridPos"]
        style = f"grid-column:{g['x'] + 1}/span {g['w']};grid-row:{g['y'] + 1}/span {g['h']}"
        title = html.escape(title_text(panel.get("title", ""), values, texts))
        desc = html.escape(panel.get("description") or "")
        body = render_panel(panel, prom, values, end, span)
        cells.append(f'<div class="panel" style="{style}" title="{desc}" data-type='
                     f'"{panel.get("type")}"><h3>{title}</h3>{body}</div>')  # fmt: skip
    shown = ", ".join(f"{k} = {v or '(none)'}" for k, v in values.items())
    heading = html.escape(title_text(model["title"], values, texts))
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(end))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
        f"<style>{CSS}</style></head><body>"
        f'<p><a href="index.html">all dashboards</a></p><h1>{heading}</h1>'
        f"<p>{html.escape(model.get('description', ''))}</p><p>Data of the {span / 60:g} minutes "
        f"up to {when} from {html.escape(prom.url)}; variables: {html.escape(shown)}.</p>"
        f'<div class="grid">{"".join(cells)}</div></body></html>\n'
    )


def index_page(models: dict[str, dict[str, Any]], link: Callable[[str], str]) -> str:
    items = "".join(
        f'<li><a href="{link(uid)}">{html.escape(m["title"])}</a>: '
        f"{html.escape(m.get('description', ''))}</li>"
        for uid, m in models.items()
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>poolwatch dashboards'
        f"</title><style>{CSS}</style></head><body><h1>poolwatch dashboards</h1><p>Each page "
        "draws one dashboard from live Prometheus data, with the panels, queries, units and "
        f"thresholds of the Grafana dashboard of the same name.</p><ul>{items}</ul></body></html>\n"
    )


def render_all(prometheus: str, out: Path, span: float = 3600.0,
               end: float | None = None) -> list[Path]:  # fmt: skip
    """Write `<uid>.html` per dashboard and `index.html` into `out`; returns the files."""
    try:
        prom = PrometheusClient(prometheus, timeout=15.0)
    except ValueError as err:
        raise ValueError(f"--prometheus: {err}") from None
    end = time.time() if end is None else end
    prom.query("vector(1)", end)  # unreachable: one clear error, not a page of failed panels
    out.mkdir(parents=True, exist_ok=True)
    models = registry.dashboards()
    written = []
    for uid, model in models.items():
        path = out / f"{uid}.html"
        path.write_text(render_board(model, prom, end, span), encoding="utf-8")
        written.append(path)
    index = out / "index.html"
    index.write_text(index_page(models, lambda uid: f"{uid}.html"), encoding="utf-8")
    return [*written, index]
