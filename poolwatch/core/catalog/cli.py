"""`poolwatch catalog markdown|json|budget`: the metric catalog as a reference, as data, and as
a series budget. Registered by the `poolwatch` CLI; the catalog loads inside the command.
"""

from __future__ import annotations

import argparse
import sys

from poolwatch.core.cliutil import add_part


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_part(
        sub,
        "catalog",
        "the metric catalog: reference, JSON, series budget",
        "Every metric family poolwatch exports and the platform (ModelArts) metric "
        "names it also answers to.",
    )
    verbs.add_parser("markdown", help="the reference (docs/metrics.md)").set_defaults(func=run)
    verbs.add_parser("json", help="machine-readable").set_defaults(func=run)
    b = verbs.add_parser(
        "budget",
        help="how many series a node exporter of a given shape exports, per GPU, NPU chip, "
        "container, NIC port, mount",
    )
    b.add_argument(
        "--shape",
        default="",
        metavar="K=N,...",
        help="the node, e.g. gpus=8,npu_chips=0,containers=50,ib_ports=8 "
        "(unset keys: an 8-GPU, 16-NPU-chip, 200-container node)",
    )
    b.add_argument("--compat", default="", metavar="SET", help="compat sets, e.g. modelarts")
    b.add_argument(
        "--container-views",
        default="needed",
        choices=["needed", "all", "none"],
        help="the node exporter's collectors.accelerator.container_views",
    )
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poolwatch.core.catalog import ALL_SPECS, budget, render

    if args.verb == "budget":
        try:
            shape = budget.Shape.parse(args.shape)
        except ValueError as err:
            sys.stderr.write(f"poolwatch catalog budget: {err}\n")
            return 2
        compat = [c.strip() for c in args.compat.split(",") if c.strip()]
        sys.stdout.write(budget.markdown(ALL_SPECS, shape, compat, args.container_views))
        return 0
    sys.stdout.write(render.markdown() if args.verb == "markdown" else render.json_text())
    return 0
