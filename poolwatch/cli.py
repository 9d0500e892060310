"""The `poolwatch` command (`poolwatch <part> [options]`): the one place that wires parts."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from poolwatch import __version__
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
    from poolwatch.app import demo

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


def _rules_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rules",
        help="check, compile, test and run alert rules",
        description="The alarms of the ModelArts and Apulis documentation as rule files "
        "(rules/default/*.yaml): check them, "
        "compile them to Prometheus rule files and a PrometheusRule, run their promtool tests, "
        "and evaluate them (against Prometheus, or locally over the exporters) with "
        "notifications to the alerts receiver and actions to the controller. See docs/rules.md.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="<verb>")
    c = verbs.add_parser("check", help="validate rule files (default: the shipped ones)")
    c.add_argument("files", nargs="*", type=Path, metavar="FILE")
    k = verbs.add_parser("compile", help="write Prometheus rule files and a PrometheusRule")
    k.add_argument("files", nargs="*", type=Path, metavar="FILE")
    overrides_help = ("thresholds, timing, severity, labels and actions of rules by name, or "
                      "disabled: true (see docs/rules.md)")  # fmt: skip
    k.add_argument("--out", type=Path, required=True, metavar="DIR")
    k.add_argument("--rule-label", action="append", default=[], metavar="KEY=VALUE",
                   help="PrometheusRule metadata label, e.g. release=kps")  # fmt: skip
    runbook_help = ("where the runbooks live: relative runbook links (docs/rules.md#...) "
                    "become absolute URLs under it, e.g. "
                    "https://github.com/ORG/poolwatch/blob/v0.1.0 (env "
                    "POOLWATCH_RUNBOOK_BASE_URL; default: links stay relative)")  # fmt: skip
    runbook_default = os.environ.get("POOLWATCH_RUNBOOK_BASE_URL", "")
    k.add_argument("--runbook-base-url", metavar="URL", default=runbook_default,
                   help=runbook_help)  # fmt: skip
    t = verbs.add_parser("test", help="run promtool unit tests (yours, or the shipped ones)")
    t.add_argument("tests", nargs="*", type=Path, metavar="FILE",
                   help="promtool unit-test files naming <group>.rules.yaml "
                   "(default: the shipped rules' tests)")  # fmt: skip
    t.add_argument("--rules", action="append", default=[], type=Path, metavar="FILE",
                   help="rule files the tests exercise (repeat; default: the shipped "
                   "ones)")  # fmt: skip
    t.add_argument("--promtool", metavar="PATH", help="Prometheus 3's promtool (default: PATH)")
    c.add_argument("--local", action="store_true",
                   help="also list the rules the local source refuses, and why")  # fmt: skip
    for sub_parser in (c, k, t):
        sub_parser.add_argument("--overrides", type=Path, metavar="FILE", help=overrides_help)
    r = verbs.add_parser("run", help="evaluate the rules on a schedule (Prometheus or local)")
    r.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="rule files (default: the shipped ones)")  # fmt: skip
    r.add_argument("--overrides", type=Path, metavar="FILE", help=overrides_help)
    r.add_argument("--runbook-base-url", metavar="URL", default=runbook_default,
                   help=runbook_help)  # fmt: skip
    r.add_argument("--source", required=True, metavar="prometheus=URL|local",
                   help="query Prometheus, or scrape --target exporters locally")  # fmt: skip
    r.add_argument("--target", action="append", default=[], metavar="[JOB=]URL",
                   help="local source: an exporter's /metrics (repeat; job label default "
                   "'poolwatch')")  # fmt: skip
    r.add_argument("--scrape-interval", default="15s", help="local source: scrape every (15s)")
    r.add_argument("--history", default="25h",
                   help="local source: most history kept; rules needing more are refused "
                   "(25h)")  # fmt: skip
    r.add_argument("--notify-url", metavar="URL",
                   help="alerts receiver (POST /alertmanager); default: log only")  # fmt: skip
    r.add_argument("--notify-token-file", metavar="FILE", help="bearer token for --notify-url")
    r.add_argument("--controller-url", metavar="URL",
                   help="controller (POST /actions); default: log only")  # fmt: skip
    r.add_argument("--controller-token-file", metavar="FILE",
                   help="bearer token for --controller-url")  # fmt: skip
    r.add_argument("--state", required=True, type=Path, metavar="FILE",
                   help="SQLite file that keeps alert states across restarts")  # fmt: skip
    r.add_argument("--interval", default="30s", help="evaluation interval (30s)")
    r.add_argument("--reminder-wait", default="4h", help="re-notify a firing alert after (4h)")
    r.add_argument("--grace", default="5m", help="failing queries before the engine alerts (5m)")
    r.add_argument("--timeout", default="10s", help="per-query timeout (10s)")
    r.add_argument("--listen", metavar="HOST:PORT", default="0.0.0.0:9480",
                   help="serve the alerts and rules pages, /metrics and /healthz "
                   "(0.0.0.0:9480; 'off': none)")  # fmt: skip
    add_log_level(r)
    a = verbs.add_parser("alerts", help="list the running engine's pending and firing alerts")
    a.add_argument("--url", default="http://127.0.0.1:9480",
                   help="the engine's address (http://127.0.0.1:9480)")  # fmt: skip
    a.add_argument("--json", action="store_true", help="machine-readable")
    s = verbs.add_parser("silence", help="mute alerts in local mode (add, list, expire)")
    sv = s.add_subparsers(dest="action", required=True, metavar="<add|list|expire>")
    for name, text in (("add", "silence alerts matching every MATCHER for a while"),
                       ("list", "list the silences in effect"),
                       ("expire", "end a silence now")):  # fmt: skip
        x = sv.add_parser(name, help=text)
        x.add_argument("--state", required=True, type=Path, metavar="FILE",
                       help="the engine's --state file (silences are kept there)")  # fmt: skip
        x.add_argument("--alertmanager", metavar="URL",
                       default=os.environ.get("POOLWATCH_ALERTMANAGER_URL"),
                       help="an Alertmanager that sends the notifications: silences belong "
                       "there, and the command says how "
                       "(env POOLWATCH_ALERTMANAGER_URL)")  # fmt: skip
        if name == "add":
            x.add_argument("matchers", nargs="+", metavar="MATCHER",
                           help='name=value, name!=value, name=~regex or name!~regex '
                           '(e.g. alertname=PoolwatchCacheAlmostFull node=~"n1|n2")')  # fmt: skip
            x.add_argument("--duration", default="2h", help="how long (2h)")
            x.add_argument("--author", default=os.environ.get("USER", ""), help="who")
            x.add_argument("--comment", default="", help="why")
        elif name == "list":
            x.add_argument("--all", action="store_true", help="expired ones too")
        else:
            x.add_argument("id", help="the silence's id (from add or list)")
    p.set_defaults(func=_run_rules)


def _run_rules(args: argparse.Namespace) -> int:
    from poolwatch.rules import cli as rules_cli

    if args.verb == "check":
        return rules_cli.check(args.files, local=args.local, overrides=args.overrides)
    if args.verb == "compile":
        labels = dict(kv.split("=", 1) for kv in args.rule_label if "=" in kv)
        return rules_cli.compile_(args.files, args.out, labels, overrides=args.overrides,
                                  runbook_base=args.runbook_base_url)  # fmt: skip
    if args.verb == "test":
        return rules_cli.unit_tests(args.tests, args.rules, args.overrides, args.promtool)
    if args.verb == "alerts":
        return rules_cli.alerts(args.url, args.json)
    if args.verb == "silence":
        if args.action == "add":
            return rules_cli.silence_add(args.state, args.matchers, args.duration, args.author,
                                         args.comment, args.alertmanager)  # fmt: skip
        if args.action == "list":
            return rules_cli.silence_list(args.state, args.all, args.alertmanager)
        return rules_cli.silence_expire(args.state, args.id, args.alertmanager)
    return _run_rule_engine(args)


def _run_rule_engine(args: argparse.Namespace) -> int:
    from poolwatch.core.config import ConfigError, check_listen, parse_duration
    from poolwatch.rules import cli as rules_cli
    from poolwatch.rules.engine import run_files
    from poolwatch.rules.loader import RuleFileError

    logger = logging.getLogger("poolwatch")
    try:
        from poolwatch.rules.compile import check_runbook_base

        try:
            runbook_base = check_runbook_base(args.runbook_base_url)
        except ValueError as err:
            raise ValueError(f"--runbook-base-url: {err}") from None
        if args.listen not in ("", "off"):
            check_listen(args.listen)
        seconds = {k: float(parse_duration(getattr(args, k))) for k in  # type: ignore[arg-type]
                   ("interval", "reminder_wait", "grace", "timeout", "scrape_interval",
                    "history")}  # fmt: skip
        source, stop_source = rules_cli.source(args.source, args.target, seconds)
        notifiers, sinks = rules_cli.outputs(
            args.notify_url, args.notify_token_file, args.controller_url,
            args.controller_token_file, seconds["timeout"],
        )  # fmt: skip
    except (ValueError, OSError, ConfigError) as err:
        logger.error("%s", err)
        return 2
    stop, reload = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())  # reload the rule files
    try:
        run_files(
            rules_cli._files(args.files), source, args.state, seconds["interval"], stop,
            notifiers, reminder_wait=seconds["reminder_wait"], grace=seconds["grace"],
            reload=reload, sinks=sinks, overrides=args.overrides, runbook_base=runbook_base,
            on_start=(lambda e: _serve_engine(e, args.listen, seconds["interval"]))
            if args.listen not in ("", "off") else None,
        )  # fmt: skip
    except RuleFileError as err:
        logger.error("%s", err)
        return 1
    except OSError as err:  # the --listen address is taken
        logger.error("cannot serve on %s: %s", args.listen, err)
        return 1
    finally:
        stop_source()
    return 0


class _EngineMetrics:
    """The rule engine's few series, rendered on scrape (a handful of lines, no hardware)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def body(self, gzipped: bool = False) -> bytes:
        import gzip

        from poolwatch.core.exposition import render

        text = render(list(self.engine.collect()))
        return gzip.compress(text) if gzipped else text


def _serve_engine(engine: Any, listen: str, interval: float = 30.0) -> Any:
    """Serve the engine's pages, /metrics and /healthz from a daemon thread; returns the server."""
    import time

    from poolwatch.core.config import check_listen, split_listen
    from poolwatch.rules.web import serve

    address = split_listen(check_listen(listen))

    def silences() -> list[dict[str, Any]]:
        store = engine.silences
        return [] if store is None else [s.to_dict() for s in store.active(time.time())]

    httpd = serve(engine, _EngineMetrics(engine).body, address, interval, silences)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="rules-web").start()
    logging.getLogger("poolwatch").info("rule engine at http://%s:%d/ (alerts, rules, metrics)",
                                        *address)  # fmt: skip
    return httpd


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
    "poolwatch.api.cli",
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
