"""`poolwatch dashboards build|check|render`: write the Grafana JSON, fail when it is stale, or
draw every dashboard from live Prometheus data into static HTML pages.

Module-level imports stay light: grafanalib and the board modules load inside the commands.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from poolwatch.core.cliutil import add_part

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    verbs = add_part(sub, "dashboards", "Grafana dashboards: build the JSON, check it, render it",
                     "The Grafana dashboards poolwatch ships (grafanalib): build their JSON, check "
                     "them against the metric catalog, render them from live data without "
                     "Grafana. See docs/dashboards.md.")  # fmt: skip
    b = verbs.add_parser("build", help="write dashboards/generated/*.json, provisioning.yaml "
                         "and docs/dashboards.md")  # fmt: skip
    b.add_argument("--out", type=Path, default=None,
                   help="directory for the JSON and provisioning file "
                        "(default: dashboards/generated; docs/dashboards.md only then)")  # fmt: skip  # noqa: E501
    b.set_defaults(func=build)
    c = verbs.add_parser("check", help="exit 1 when the committed JSON or docs are out of date, "
                         "or a dashboard fails its checks")  # fmt: skip
    c.set_defaults(func=check)
    r = verbs.add_parser(
        "render",
        help="draw every dashboard from live Prometheus data into static HTML pages",
        description="Query Prometheus and write one self-contained HTML page per dashboard "
        "(charts as inline SVG, nothing loaded from the network) plus index.html into --out. "
        "The panels, queries, units and thresholds are those of the Grafana dashboards; load "
        "the Grafana JSON into Grafana for live, interactive dashboards.",
    )
    r.add_argument("--prometheus", required=True, metavar="URL",
                   help="Prometheus to query, e.g. http://127.0.0.1:9090")  # fmt: skip
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    r.add_argument("--range", default="1h", metavar="DURATION",
                   help="how much history the charts show, e.g. 15m, 1h, 6h (1h)")  # fmt: skip
    r.set_defaults(func=render)


def build(args: argparse.Namespace) -> int:
    from . import docs, lint, registry

    models = registry.dashboards()
    problems = lint.check_all(models)
    if problems:
        sys.stderr.write("\n".join(problems) + "\n")
        return 1
    out = args.out or registry.GENERATED
    written = registry.write(out)
    if args.out is None:
        docs.DOC.write_text(docs.render(models), encoding="utf-8")
        written.append(docs.DOC)
    sys.stdout.write(f"wrote {len(written)} files to {out}\n")
    return 0


def render(args: argparse.Namespace) -> int:
    from poolwatch.core.prometheus import PrometheusError

    from . import render as renderer

    span = _seconds(args.range)
    if span is None:
        sys.stderr.write(
            f"--range: expected a duration such as 15m, 1h or 6h, got {args.range!r}\n"
        )
        return 2
    try:
        written = renderer.render_all(args.prometheus, args.out, span)
    except ValueError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    except PrometheusError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    sys.stdout.write(f"wrote {len(written)} pages to {args.out} (open {args.out / 'index.html'})\n")
    return 0


def _seconds(text: str) -> float | None:
    import re

    m = re.fullmatch(r"(\d+)(s|m|h|d)", text.strip())
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)] if m else None


def check(args: argparse.Namespace) -> int:
    from . import docs, lint, registry

    models = registry.dashboards()
    problems = lint.check_all(models) + registry.stale(registry.GENERATED)
    if not docs.DOC.exists() or docs.DOC.read_text(encoding="utf-8") != docs.render(models):
        problems.append(f"{docs.DOC}: out of date")
    if problems:
        sys.stderr.write("\n".join(problems) + "\n"
                         "run `poolwatch dashboards build` and commit the result\n")  # fmt: skip
        return 1
    sys.stdout.write(f"{len(models)} dashboards, generated files current\n")
    return 0
