"""Dashboard scaffolding shared by every board: variables, the grid, links, the common frame.

Every board has a `datasource` variable (any Prometheus) and most an `accel` variable (GPU or
NPU, see panels.py) and a resource `pool` chained to it, as the ModelArts templates offer a data
source and a resource pool drop-down [000:L1449]. Query variables refresh on time-range change so
a pool created a minute ago appears without reloading.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Dashboard, DashboardLink, GridPos, Panel, Template, Templating, Time

from .panels import DS

GRID_WIDTH = 24
REFRESH_ON_TIME_RANGE = 2


def datasource_var() -> Template:
    return Template(name="datasource", query="prometheus", type="datasource", label="Data source",
                    default="Prometheus")  # fmt: skip


def accel_var() -> Template:
    """GPU (vendor nvidia) or NPU (vendor huawei): the text goes in titles, the value in queries."""
    options = [
        {"selected": True, "text": "GPU", "value": "nvidia"},
        {"selected": False, "text": "NPU", "value": "huawei"},
    ]
    return Template(name="accel", query="GPU : nvidia,NPU : huawei", type="custom",
                    label="Device type", options=options, default="nvidia")  # fmt: skip


def query_var(
    name: str,
    query: str,
    label: str,
    multi: bool = True,
    regex: str | None = None,
) -> Template:
    """A variable from `label_values(...)`; multi-value ones include All (regex .*)."""
    return Template(
        name=name,
        query=query,
        label=label,
        dataSource=DS,
        includeAll=multi,
        multi=multi,
        allValue=".*" if multi else None,
        default="$__all" if multi else None,
        refresh=REFRESH_ON_TIME_RANGE,
        regex=regex,
    )


def pool_var(multi: bool = True) -> Template:
    """Resource pools that have devices of the chosen kind."""
    return query_var("pool", 'label_values(poolwatch_node_accelerators{vendor="$accel"}, pool)',
                     "Resource pool", multi=multi)  # fmt: skip


def link(title: str, uid: str, tooltip: str = "") -> DashboardLink:
    """A top-right link to another poolwatch dashboard, carrying time range and variables."""
    return DashboardLink(type="link", title=title, uri=f"/d/{uid}", includeVars=True,
                         keepTime=True, tooltip=tooltip or title, icon="dashboard")  # fmt: skip


Row = tuple[int, Sequence[tuple[Panel, int]]]  # (height, [(panel, width), ...])


def place(rows: Sequence[Row]) -> list[Panel]:
    """Lay rows of panels out top to bottom; a row's widths must add up to at most 24."""
    out: list[Panel] = []
    y = 0
    for height, panels in rows:
        x = 0
        for panel, width in panels:
            if x + width > GRID_WIDTH:
                raise ValueError(f"row at y={y} is wider than {GRID_WIDTH} at {panel.title!r}")
            panel.gridPos = GridPos(h=height, w=width, x=x, y=y)
            out.append(panel)
            x += width
        y += height
    return out


def board(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    variables: list[Template],
    rows: Sequence[Row],
    links: list[DashboardLink] = (),  # type: ignore[assignment]
    refresh: str = "1m",
    time_from: str = "now-6h",
) -> Dashboard:
    return Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["poolwatch", *tags],
        templating=Templating(list=[datasource_var(), *variables]),
        panels=place(rows),
        links=list(links),
        refresh=refresh,
        time=Time(time_from, "now"),
        timezone="browser",
        editable=True,
    ).auto_panel_ids()
