"""`poolwatch dashboards build|check`: write the Grafana JSON, or fail when it is stale.

Module-level imports stay light: grafanalib and the board modules load inside the commands.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dashboards", help="Grafana dashboards: build the JSON, check it is current")
    verbs = p.add_subparsers(dest="verb", required=True)
    b = verbs.add_parser("build", help="write dashboards/generated/*.json, provisioning.yaml "
                         "and docs/dashboards.md")  # fmt: skip
    b.add_argument("--out", type=Path, default=None,
                   help="directory for the JSON and provisioning file "
                        "(default: dashboards/generated; docs/dashboards.md only then)")  # fmt: skip  # noqa: E501
    b.set_defaults(func=build)
    c = verbs.add_parser("check", help="exit 1 when the committed JSON or docs are out of date, "
                         "or a dashboard fails its checks")  # fmt: skip
    c.set_defaults(func=check)


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
