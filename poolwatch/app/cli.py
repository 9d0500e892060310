"""The `poolwatch` command (`poolwatch <part> [options]`): the one place that wires parts.

The `rules` command (its verbs, and serving the running engine) is in cli_rules.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from poolwatch import __version__
from poolwatch.app.cli_rules import _rules_parser
from poolwatch.core.cliutil import add_log_level, config_path, exit_status

PARTS = """\
parts of the stack:
  node-exporter     per-node metrics: GPUs (NVML), NPUs (npu-smi) and who holds them, host,
                    disks, /cache, InfiniBand, NFS, containers
  catalog           the metric catalog: --markdown (docs/metrics.md), --json, or --budget
                    (series a node of a given shape exports)
  cluster-exporter  jobs, pools, quotas and pool events (Kubernetes or simulated backend)
  demo              the whole stack on this machine over a simulated pool, telling its
                    story; open the home page it prints (start here)
  rules             rule files: check, compile to Prometheus rules, promtool tests, and the
                    engine that evaluates them (against Prometheus or local samples)
  alerts            Alertmanager webhook receiver; notifications by email, webhook, chat
  dashboards        Grafana dashboards: build the JSON, check it, render it to HTML
  controller        isolate faulty nodes, replace them from spares, restart jobs, upgrades
  api               the pool REST API (pools, nodes, usage, monitoring, driver upgrades)

Settings come from --config FILE (YAML), then POOLWATCH_* environment variables
(POOLWATCH_COLLECTORS__NFS__TIMEOUT=3s), then flags. See README.md.
"""

COLLECTORS = (
    "host", "filesystem", "cache_dir", "infiniband", "nfs", "accelerator", "pod_resources",
    "container",
)  # fmt: skip


_add_log_level = add_log_level
_config_path = config_path


def _node_exporter_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "node-exporter",
        help="serve this node's metrics for Prometheus",
        description=(
            "Collect accelerator (GPU/NPU), pod attribution, container, host, filesystem, "
            "cache-directory, InfiniBand and NFS metrics in the "
            "background, each collector on its own interval and timeout, and serve the last "
            "collection at /metrics. A scrape never waits for hardware; a collector that fails "
            "or hangs shows as poolwatch_collector_up 0 and its series go away."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "collectors (all on by default): " + ", ".join(COLLECTORS) + "\n"
            "  --collector.NAME / --no-collector.NAME switch one on or off (cache_dir: cache-dir)\n"
            "endpoints: /metrics (gzip when asked), /healthz (200 while collection is live), /\n"
            "exit status: 0 on SIGTERM/SIGINT, 2 on a configuration error"
        ),
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML settings file (default: $POOLWATCH_CONFIG, else built-in defaults)",
    )
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="address to serve on (default 0.0.0.0:9476)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        metavar="PATH",
        help="the cache directory to watch; its filesystem series carry "
        'purpose="cache" (default /cache)',
    )
    p.add_argument("--node", help="node label (default $NODE_NAME, else the hostname)")
    p.add_argument("--pool", help="pool label (default: config `pool` or `pool_file`)")
    p.add_argument(
        "--compat",
        metavar="LIST",
        help="also emit a platform's metric names, e.g. 'modelarts' (ModelArts' ma_node_* "
        "names in its units)",
    )
    p.add_argument(
        "--gpu",
        choices=["auto", "on", "off"],
        help="NVIDIA GPUs through NVML: auto (default: on if the library loads), "
        "on (a missing NVML is an error), off",
    )
    p.add_argument(
        "--npu",
        choices=["auto", "on", "off"],
        help="Ascend NPUs through npu-smi: auto (default), on, off",
    )
    p.add_argument(
        "--npu-smi",
        metavar="PATH",
        help="the npu-smi executable (default: npu-smi on PATH); a wrapper works too",
    )
    p.add_argument(
        "--web-config-file",
        type=Path,
        metavar="FILE",
        help="TLS and basic-auth settings, in the Prometheus exporter format",
    )
    p.add_argument(
        "--path.procfs",
        dest="procfs",
        type=Path,
        metavar="DIR",
        help="procfs mount point (default /proc; /host/proc in a container)",
    )
    p.add_argument(
        "--path.sysfs",
        dest="sysfs",
        type=Path,
        metavar="DIR",
        help="sysfs mount point (default /sys)",
    )
    p.add_argument(
        "--path.rootfs",
        dest="rootfs",
        type=Path,
        metavar="DIR",
        help="host root for filesystem paths (default /)",
    )
    for name in COLLECTORS:
        flag = name.replace("_", "-")
        p.add_argument(
            f"--collector.{flag}",
            dest=f"enable_{name}",
            action="store_true",
            default=None,
            help=f"enable the {name} collector",
        )
        p.add_argument(
            f"--no-collector.{flag}",
            dest=f"enable_{name}",
            action="store_false",
            help=argparse.SUPPRESS,
        )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration as YAML and exit",
    )
    p.add_argument(
        "--once", action="store_true", help="collect once, print the exposition to stdout and exit"
    )
    _add_log_level(p)
    p.set_defaults(func=_run_node_exporter)


def _demo_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--port-base", type=int, default=9476, metavar="N",
                   help="first of the ten ports N..N+9 (9476)")  # fmt: skip
    p.add_argument("--data-dir", type=Path, default=Path("var/demo"), metavar="DIR",
                   help="where the simulated pool, Prometheus data and SQLite state live; "
                   "one demo per directory (var/demo)")  # fmt: skip
    p.add_argument("--no-prometheus", action="store_true", help="run without Prometheus")
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulated pool (1)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second; the rules' periods scale with "
                   "it, so 10 tells a ten-minute story in one minute (1.0)")  # fmt: skip
    _add_log_level(p)
    p.set_defaults(func=_run_demo)
    verbs = p.add_subparsers(dest="demo_verb", metavar="{inject,heal}")
    from poolwatch.cluster.simulated.spec import FAULTS

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
        _add_log_level(verb)


def _run_demo(args: argparse.Namespace) -> int:
    from poolwatch.app import demo_cli as demo

    if args.demo_verb == "inject":
        doc = {"fault": args.fault, "node": args.node, "device": args.device}
        return demo.send_fault(args.data_dir, "inject", doc)
    if args.demo_verb == "heal":
        return demo.send_fault(args.data_dir, "heal", {"node": args.node, "fault": args.fault})
    return demo.run(args.port_base, args.data_dir, not args.no_prometheus, args.seed, args.speed)


def _cluster_exporter_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cluster-exporter",
        help="serve pools, nodes, training jobs, quotas and pool events for Prometheus",
        description=(
            "Watch the cluster (Kubernetes API, or the simulated pool) and serve pool, node, "
            "training-job, quota and event metrics at /metrics, the last events as JSON at "
            "/events. Per-object lines are kept ready as watch events arrive: a scrape only "
            "joins them."
        ),
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML settings file")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (0.0.0.0:9477)")
    p.add_argument("--backend", choices=["kubernetes", "simulated"],
                   help="where objects come from (kubernetes)")  # fmt: skip
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    p.add_argument("--print-config", action="store_true", help="print the effective config")
    _add_log_level(p)
    p.set_defaults(func=_run_cluster_exporter)


def _run_cluster_exporter(args: argparse.Namespace) -> int:
    from poolwatch.core.config import dump, load
    from poolwatch.exporters.cluster.app import run
    from poolwatch.exporters.cluster.settings import ClusterExporterSettings
    from poolwatch.exporters.node.webconfig import load_web_config

    flags = {
        (key,): (str(value), f"flag --{key}")
        for key, value in (("listen", args.listen), ("backend", args.backend),
                           ("kubeconfig", args.kubeconfig))
        if value is not None
    }  # fmt: skip

    def body() -> None:
        settings = load(ClusterExporterSettings, _config_path(args), os.environ, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return
        web = load_web_config(settings.web_config_file)
        run(_cluster_backend(settings), settings.listen_address(), web, settings)

    return exit_status(body)


def _cluster_backend(settings: Any) -> Any:
    from poolwatch.cluster.factory import open_backend

    return open_backend(settings.backend, settings.kubeconfig)[0]


def _catalog_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog",
        help="print the metric catalog",
        description="Print every metric family poolwatch exports and the platform (ModelArts) "
        "metric names it also answers to.",
    )
    fmt = p.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--markdown", action="store_true", help="the reference in docs/metrics.md")
    fmt.add_argument("--json", action="store_true", help="machine-readable")
    fmt.add_argument(
        "--budget",
        action="store_true",
        help="how many series a node exporter of a given shape exports, per GPU, NPU chip, "
        "container, NIC port, mount (see --shape)",
    )
    p.add_argument(
        "--shape",
        default="",
        metavar="K=N,...",
        help="with --budget: the node, e.g. gpus=8,npu_chips=0,containers=50,ib_ports=8 "
        "(unset keys: an 8-GPU, 16-NPU-chip, 200-container node)",
    )
    p.add_argument(
        "--compat", default="", metavar="SET", help="with --budget: compat sets, e.g. modelarts"
    )
    p.add_argument(
        "--container-views",
        default="needed",
        choices=["needed", "all", "none"],
        help="with --budget: the node exporter's collectors.accelerator.container_views",
    )
    p.set_defaults(func=_run_catalog)


def _flags(args: argparse.Namespace) -> dict[tuple[str, ...], tuple[Any, str]]:
    simple = {
        "listen": ("listen",), "cache_dir": ("cache_dir",), "node": ("node",),
        "pool": ("pool",), "compat": ("compat",), "web_config_file": ("web_config_file",),
        "gpu": ("gpu",), "npu": ("npu",), "npu_smi": ("npu_smi",),
        "procfs": ("roots", "procfs"), "sysfs": ("roots", "sysfs"), "rootfs": ("roots", "rootfs"),
    }  # fmt: skip
    out: dict[tuple[str, ...], tuple[Any, str]] = {}
    for attr, path in simple.items():
        value = getattr(args, attr)
        if value is not None:
            flag = "--" + {
                "procfs": "path.procfs",
                "sysfs": "path.sysfs",
                "rootfs": "path.rootfs",
            }.get(attr, attr.replace("_", "-"))
            out[path] = (str(value), f"flag {flag}")
    for name in COLLECTORS:
        value = getattr(args, f"enable_{name}")
        if value is not None:
            out[("collectors", name, "enabled")] = (value, f"flag --collector.{name}")
    return out


def _run_node_exporter(args: argparse.Namespace) -> int:
    from poolwatch.core.config import dump, load
    from poolwatch.exporters.node import app
    from poolwatch.exporters.node.settings import NodeExporterSettings

    def body() -> None:
        settings = load(NodeExporterSettings, _config_path(args), os.environ, _flags(args))
        if args.print_config:
            sys.stdout.write(dump(settings))
        elif args.once:
            sys.stdout.buffer.write(app.collect_once(settings))
        else:
            app.run(settings)

    return exit_status(body)


def _run_catalog(args: argparse.Namespace) -> int:
    from poolwatch.core.catalog import ALL_SPECS, budget, render

    if args.budget:
        try:
            shape = budget.Shape.parse(args.shape)
        except ValueError as err:
            sys.stderr.write(f"poolwatch catalog: {err}\n")
            return 2
        compat = [c.strip() for c in args.compat.split(",") if c.strip()]
        sys.stdout.write(budget.markdown(ALL_SPECS, shape, compat, args.container_views))
        return 0
    sys.stdout.write(render.markdown() if args.markdown else render.json_text())
    return 0


#: parts that declare their own subcommand: module -> its `register(subparsers)`. Each module
#: keeps its imports light (heavy ones inside the command's function) so `--help` stays fast.
PART_CLIS = (
    "poolwatch.alerts.cli",
    "poolwatch.dashboards.cli",
    "poolwatch.controller.cli",
    "poolwatch.controller.api.cli",
)


def _register_parts(sub: argparse._SubParsersAction) -> None:
    import importlib

    for name in PART_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and name.startswith(err.name):
                continue  # that part is not built yet
            raise
        module.register(sub)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="poolwatch",
        description="Monitoring, alerting and fault handling for GPU/NPU training pools.",
        epilog=PARTS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"poolwatch {__version__}")
    sub = p.add_subparsers(dest="part", metavar="<part>")
    _node_exporter_parser(sub)
    _cluster_exporter_parser(sub)
    _demo_parser(sub)
    _rules_parser(sub)
    _catalog_parser(sub)
    _register_parts(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return 2
    level = getattr(args, "log_level", "info").upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
