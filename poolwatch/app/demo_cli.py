"""`poolwatch demo [run|inject|heal]`: the whole stack on this machine over a simulated pool.

`poolwatch demo run` runs it, and so does `poolwatch demo` alone: it is the first command a new
user types, so it stays the shortest. `inject` and `heal` act on a demo that is running.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from poolwatch.core.cliutil import add_log_level
from poolwatch.core.ports import BASE, SPAN

log = logging.getLogger("poolwatch.app.demo")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole stack on this machine with a simulated pool",
        description=(
            "Start the whole stack on 127.0.0.1 over a simulated GPU/NPU pool and tell its "
            "story: within a minute a GPU falls off the bus on a node that runs a training "
            "job; the rules fire, a notification reaches the demo's inbox, the controller "
            "isolates the node, swaps in the pool's spare and restarts the job; other faults "
            "follow every few minutes, among them a training job that hangs. Open the printed "
            "demo home page (port N+8) first: it links every part (Prometheus and "
            "Alertmanager when installed, the dashboards drawn live, the inbox, the pool, the "
            "pool API). Ctrl-C (or closing the terminal) stops everything; a restart resumes "
            "the pool saved under --data-dir."
        ),
        epilog="While it runs: `poolwatch demo inject FAULT NODE` strikes a fault, "
        "`poolwatch demo inject hang NODE|JOB` hangs a training job, "
        "`poolwatch demo heal NODE|JOB` repairs either.",
    )
    _run_options(p, defaults=True)
    p.set_defaults(func=run)
    verbs = p.add_subparsers(dest="demo_verb", metavar="[run|inject|heal]")
    from poolwatch.cluster.simulated.spec import FAULTS, JOB_FAULTS

    faults = (*FAULTS, *JOB_FAULTS)
    _run_options(verbs.add_parser("run", help="run the demo (the same as no verb)"), False)

    inj = verbs.add_parser(
        "inject", help="strike a fault on a node, or hang a training job, of the running demo",
        description="Strike FAULT on TARGET of the demo running on --data-dir. Node faults "
        "(TARGET is a node): " + ", ".join(FAULTS) + ". hang (TARGET is a training job, or a "
        "node: the first job running there): the job stops computing and doing I/O, as a "
        "job stuck in a deadlocked collective or a blocked data loader does, while Kubernetes "
        "still shows it Running. The rule PoolwatchJobHang fires once the job's I/O has been "
        "unchanged for its hang detection time (MA_HANG_DETECT_TIME; every demo job has the "
        "minimum, 10 minutes) with its accelerators' utilisation flat: 11 to 17 simulated "
        "minutes after the hang (with --speed 10, one to two real minutes). The "
        "controller then restarts the job; `poolwatch demo heal TARGET` ends the hang sooner.",
    )  # fmt: skip
    inj.add_argument("fault", metavar="FAULT", choices=faults, help=", ".join(faults))
    inj.add_argument("node", metavar="TARGET", help="a node, e.g. gpu-a-node-02; for hang "
                     "also a training job, e.g. team-a/resnet50-0003 (or its name)")  # fmt: skip
    inj.add_argument("--device", type=int, help="which accelerator (device faults only)")
    heal = verbs.add_parser(
        "heal", help="repair a node, or end a job's hang, in the running demo",
        description="Repair TARGET in the demo running on --data-dir: a node (its faults, and "
        "the hang of any job running there) or a training job (its hang: it computes and does "
        "I/O again, its counters going on from where they stopped, and the hang alert "
        "resolves).",
    )  # fmt: skip
    heal.add_argument("node", metavar="TARGET", help="a node, or a training job "
                      "(namespace/name, or its name alone)")  # fmt: skip
    heal.add_argument("fault", metavar="FAULT", nargs="?", choices=faults,
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
    if args.demo_verb == "inject":
        doc = {"fault": args.fault, "node": args.node, "device": args.device}
        return send_fault(args.data_dir, "inject", doc)
    if args.demo_verb == "heal":
        return send_fault(args.data_dir, "heal", {"node": args.node, "fault": args.fault})
    return run_demo(args.port_base, args.data_dir, not args.no_prometheus, args.seed, args.speed)


def run_demo(port_base: int, data_dir: Path, prometheus: bool, seed: int, speed: float) -> int:
    """`poolwatch demo`: start, print the URLs, run until a signal, stop everything."""
    from poolwatch.app.demo import Demo
    from poolwatch.app.demo_procs import DemoError

    demo = Demo(port_base, data_dir, prometheus, seed, speed, acting=True, scenario=True)
    # apprise logs two lines per delivery; the inbox logs one per notification it receives
    logging.getLogger("apprise").setLevel(logging.WARNING)
    done = threading.Event()
    # SIGHUP too: closing the terminal must stop the demo and its children like Ctrl-C
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    try:
        demo.start()
    except DemoError as err:
        log.error("%s", err)
        return 1
    except OSError as err:
        demo.stop()
        log.error("cannot start the demo: %s (is another program using ports %d-%d? try "
                  "--port-base)", err, port_base, port_base + 9)  # fmt: skip
        return 1
    sys.stdout.write(_banner(demo))
    sys.stdout.flush()
    while not done.wait(0.5):
        for name, child in list(demo.children.items()):
            if child.exited() is not None:
                log.warning("%s exited (%s); see %s", name, child.exited(), child.log_path)
                del demo.children[name]
    log.info("stopping")
    demo.stop()
    return 0


def _banner(demo: Any) -> str:
    urls = demo.urls()
    width = max(map(len, urls))
    state = "resumed the simulated pool" if demo.resumed else "a new simulated pool"
    home = urls["demo home (start here)"]
    lines = [f"poolwatch demo is running ({state}; data in {demo.data_dir}); Ctrl-C stops it.",
             f"Open {home} first: it links every part below."]  # fmt: skip
    lines += [f"  {name:<{width}}  {url}" for name, url in urls.items()]
    lines += [f"  {p.describe()}" for p in demo.programs.values()]
    return "\n".join(lines) + "\n"


def send_fault(data_dir: Path, verb: str, doc: dict[str, Any]) -> int:
    """`poolwatch demo inject|heal`: ask the demo running on `data_dir` over its HTTP API."""
    import urllib.error
    import urllib.request

    try:
        from poolwatch.app.demo import INFO_FILE

        info = json.loads((data_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.error("no running demo found in %s (start one with `poolwatch demo`, or pass the "
                  "--data-dir it uses)", data_dir)  # fmt: skip
        return 1
    url = f"{info['site']}/api/{verb}"
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, json.dumps(doc).encode(), headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the demo's 127.0.0.1
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        log.error("%s", json.loads(err.read() or b"{}").get("error", f"HTTP {err.code}"))
        return 2 if err.code in (400, 404) else 1
    except OSError as err:
        log.error("the demo at %s does not answer (%s); is it still running?", info["site"], err)
        return 1
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0
