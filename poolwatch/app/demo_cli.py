"""`poolwatch demo [run|inject|heal]`: the whole stack on this machine over a simulated pool.

`poolwatch demo run` runs it, and so does `poolwatch demo` alone: it is the first command a new
user types, so it stays the shortest. `inject` and `heal` act on a demo that is running.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from poolwatch.core.cliutil import add_log_level
from poolwatch.core.ports import BASE, SPAN


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole stack on this machine with a simulated pool",
        description=(
            "Start the whole stack on 127.0.0.1 over a simulated GPU/NPU pool and tell its "
            "story: within a minute a GPU falls off the bus on a node that runs a training "
            "job; the rules fire, a notification reaches the demo's inbox, the controller "
            "isolates the node, swaps in the pool's spare and restarts the job; other faults "
            "follow every few minutes. Open the printed demo home page (port N+8) first: it "
            "links every part (Prometheus and Alertmanager when installed, the dashboards "
            "drawn live, the inbox, the pool, the pool API). Ctrl-C (or closing the terminal) "
            "stops everything; a restart resumes the pool saved under --data-dir."
        ),
        epilog="While it runs: `poolwatch demo inject FAULT NODE` strikes a fault, "
        "`poolwatch demo heal NODE` repairs one.",
    )
    _run_options(p, defaults=True)
    p.set_defaults(func=run)
    verbs = p.add_subparsers(dest="demo_verb", metavar="[run|inject|heal]")
    from poolwatch.cluster.simulated.spec import FAULTS

    _run_options(verbs.add_parser("run", help="run the demo (the same as no verb)"), False)

    inj = verbs.add_parser("inject", help="strike a fault on a node of the running demo",
                           description="Strike FAULT on NODE of the demo running on "
                           "--data-dir. Faults: " + ", ".join(FAULTS) + ".")  # fmt: skip
    inj.add_argument("fault", metavar="FAULT", choices=FAULTS, help=", ".join(FAULTS))
    inj.add_argument("node", metavar="NODE", help="a node name, e.g. gpu-a-node-02")
    inj.add_argument("--device", type=int, help="which accelerator (device faults only)")
    heal = verbs.add_parser("heal", help="repair a node of the running demo")
    heal.add_argument("node", metavar="NODE")
    heal.add_argument("fault", metavar="FAULT", nargs="?", choices=FAULTS,
                      help="only this fault (default: every fault on the node)")  # fmt: skip
    for verb in (inj, heal):
        verb.add_argument("--data-dir", type=Path, default=Path("var/demo"), metavar="DIR",
                          help="the running demo's --data-dir (var/demo)")  # fmt: skip
        add_log_level(verb)


def _run_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """The demo's options, on `demo` itself and on `demo run`; the verb's copies have no
    defaults, so `poolwatch demo --speed 10 run` keeps the 10 given before the verb."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--port-base", type=int, default=default(BASE), metavar="N",
                   help=f"first of the {SPAN} ports N..N+{SPAN - 1}, in the order of every "
                   f"part's own default port ({BASE})")  # fmt: skip
    p.add_argument("--data-dir", type=Path, default=default(Path("var/demo")), metavar="DIR",
                   help="where the simulated pool, Prometheus data and SQLite state live; "
                   "one demo per directory (var/demo)")  # fmt: skip
    p.add_argument("--no-prometheus", action="store_true", default=default(False),
                   help="run without Prometheus")  # fmt: skip
    p.add_argument("--seed", type=int, default=default(1),
                   help="random seed of the simulated pool (1)")  # fmt: skip
    p.add_argument("--speed", type=float, default=default(1.0),
                   help="simulated seconds per real second; the rules' periods scale with "
                   "it, so 10 tells a ten-minute story in one minute (1.0)")  # fmt: skip
    if defaults:
        add_log_level(p)
    else:
        levels = ["debug", "info", "warning", "error"]
        p.add_argument("--log-level", default=argparse.SUPPRESS, choices=levels,
                       help="default info")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from poolwatch.app import demo

    if args.demo_verb == "inject":
        doc = {"fault": args.fault, "node": args.node, "device": args.device}
        return demo.send_fault(args.data_dir, "inject", doc)
    if args.demo_verb == "heal":
        return demo.send_fault(args.data_dir, "heal", {"node": args.node, "fault": args.fault})
    return demo.run(args.port_base, args.data_dir, not args.no_prometheus, args.seed, args.speed)
