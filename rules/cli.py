"""`poolwatch rules check|compile|test|run|alerts|silence`: the rule engine's commands,
registered by the `poolwatch` CLI; what each verb does is in verbs.py.

Imports stay light at module level (`poolwatch --help` imports this): the engine, the PromQL
evaluator and the web pages load inside the command functions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from poolwatch.core.cliutil import add_part, add_serving_options, config_path, flag_settings
from poolwatch.core.ports import port


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_part(
        sub,
        "rules",
        "check, compile, test and run alert rules",
        "The alarms of the ModelArts and Apulis documentation as rule files "
        "(rules/default/*.yaml): check them, "
        "compile them to Prometheus rule files and a PrometheusRule, run their promtool tests, "
        "and evaluate them (against Prometheus, or locally over the exporters) with "
        "notifications to the alerts receiver and actions to the controller. See docs/rules.md.",
        run=run,
    )
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
    r = verbs.add_parser(
        "run",
        help="evaluate the rules on a schedule (Prometheus or local)",
        description="Evaluate the rules every --interval against Prometheus, or locally over "
        "exporters it scrapes itself, keep alert states in --state, send notifications to the "
        "alerts receiver and actions to the controller. Every flag is also a setting of the "
        "--config file and a POOLWATCH_* environment variable (--notify-url: notify_url, "
        "POOLWATCH_NOTIFY_URL); flags win over the environment, which wins over the file.",
    )
    r.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="rule files (default: the shipped ones)")  # fmt: skip
    add_serving_options(r, "rules", listen_note="; off: no pages and no /metrics")
    r.add_argument("--overrides", type=Path, metavar="FILE", help=overrides_help)
    r.add_argument("--runbook-base-url", metavar="URL", help=runbook_help)
    r.add_argument("--source", metavar="prometheus=URL|local",
                   help="query Prometheus, or scrape --target exporters locally "
                   "(required)")  # fmt: skip
    r.add_argument("--target", dest="targets", action="append", metavar="[JOB=]URL",
                   help="local source: an exporter's /metrics (repeat; job label default "
                   "'poolwatch')")  # fmt: skip
    r.add_argument("--scrape-interval", help="local source: scrape every (15s)")
    r.add_argument("--history",
                   help="local source: most history kept; rules needing more are refused "
                   "(25h)")  # fmt: skip
    r.add_argument("--notify-url", metavar="URL",
                   help="alerts receiver (POST /alertmanager); default: log only")  # fmt: skip
    r.add_argument("--notify-token-file", metavar="FILE", help="bearer token for --notify-url")
    r.add_argument("--controller-url", metavar="URL",
                   help="controller (POST /actions); default: log only")  # fmt: skip
    r.add_argument("--controller-token-file", metavar="FILE",
                   help="bearer token for --controller-url")  # fmt: skip
    r.add_argument("--state", type=Path, metavar="FILE",
                   help="SQLite file that keeps alert states across restarts "
                   "(required)")  # fmt: skip
    r.add_argument("--web-config-file", type=Path, metavar="FILE",
                   help="TLS and basic-auth settings for --listen, in the Prometheus exporter "
                   "format")  # fmt: skip
    r.add_argument("--interval", help="evaluation interval (30s)")
    r.add_argument("--reminder-wait", help="re-notify a firing alert after (4h)")
    r.add_argument("--grace", help="failing queries before the engine alerts (5m)")
    r.add_argument("--timeout", help="per-query timeout (10s)")
    a = verbs.add_parser("alerts", help="list the running engine's pending and firing alerts")
    engine_url = f"http://127.0.0.1:{port('rules')}"
    a.add_argument("--url", default=engine_url,
                   help=f"the engine's address ({engine_url})")  # fmt: skip
    a.add_argument("--json", action="store_true", help="machine-readable")
    a.add_argument("--user", metavar="NAME",
                   help="a user of the engine's web config file, for an engine that asks "
                        "for one (with --password-file)")  # fmt: skip
    a.add_argument("--password-file", type=Path, metavar="FILE",
                   help="a file holding that user's password (not its hash)")  # fmt: skip
    a.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help="certificate authority for an https --url (default: the system's)",
    )
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


def run(args: argparse.Namespace) -> int:
    """Dispatch a `poolwatch rules` verb."""
    from poolwatch.rules import verbs as rules_cli

    if args.verb == "check":
        return rules_cli.check(args.files, local=args.local, overrides=args.overrides)
    if args.verb == "compile":
        labels = dict(kv.split("=", 1) for kv in args.rule_label if "=" in kv)
        return rules_cli.compile_(args.files, args.out, labels, overrides=args.overrides,
                                  runbook_base=args.runbook_base_url)  # fmt: skip
    if args.verb == "test":
        return rules_cli.unit_tests(args.tests, args.rules, args.overrides, args.promtool)
    if args.verb == "alerts":
        if (args.user is None) != (args.password_file is None):
            sys.stderr.write("poolwatch rules alerts: --user and --password-file go together\n")
            return 2
        return rules_cli.alerts(args.url, args.json, user=args.user,
                                password_file=args.password_file, ca_file=args.ca_file)  # fmt: skip
    if args.verb == "silence":
        if args.action == "add":
            return rules_cli.silence_add(args.state, args.matchers, args.duration, args.author,
                                         args.comment, args.alertmanager)  # fmt: skip
        if args.action == "list":
            return rules_cli.silence_list(args.state, args.all, args.alertmanager)
        return rules_cli.silence_expire(args.state, args.id, args.alertmanager)
    return run_engine(args)


def run_engine(args: argparse.Namespace) -> int:
    """`poolwatch rules run`: settings from --config, POOLWATCH_* and flags; then the engine."""
    from poolwatch.core.config import ConfigError, dump, load
    from poolwatch.rules import verbs as rules_cli
    from poolwatch.rules.loader import RuleFileError
    from poolwatch.rules.runner import run_files
    from poolwatch.rules.settings import RuleEngineSettings

    logger = logging.getLogger("poolwatch")
    flags = flag_settings(args, FLAGS, FLAGS)
    try:
        settings = load(RuleEngineSettings, config_path(args), os.environ, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return 0
        runbook_base = settings.runbook_base_url  # checked by the settings
        from poolwatch.core.web.config import load_web_config

        web = load_web_config(settings.web_config_file)
        seconds = {k: getattr(settings, k) for k in SECONDS}
        source, stop_source = rules_cli.source(settings.source, settings.targets, seconds)
        notifiers, sinks = rules_cli.outputs(
            settings.notify_url, _str(settings.notify_token_file), settings.controller_url,
            _str(settings.controller_token_file), seconds["timeout"],
        )  # fmt: skip
    except (ValueError, OSError, ConfigError) as err:
        logger.error("%s", err)
        return 2
    listen = settings.listen
    stop, reload = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())  # reload the rule files
    try:
        run_files(
            rules_cli._files(settings.files), source, settings.state, seconds["interval"], stop,
            notifiers, reminder_wait=seconds["reminder_wait"], grace=seconds["grace"],
            reload=reload, sinks=sinks, overrides=settings.overrides, runbook_base=runbook_base,
            on_start=(lambda e: serve_engine(e, listen, seconds["interval"], web))
            if listen not in ("", "off") else None,
        )  # fmt: skip
    except RuleFileError as err:
        logger.error("%s", err)
        return 1
    except OSError as err:  # the --listen address is taken
        logger.error("cannot serve on %s: %s", listen, err)
        return 1
    finally:
        stop_source()
    return 0


#: the settings that are durations, in seconds
SECONDS = ("interval", "reminder_wait", "grace", "timeout", "scrape_interval", "history")
#: settings key -> its flag, for the error that names where a bad value came from
FLAGS = {
    "files": "FILE", "overrides": "--overrides", "runbook_base_url": "--runbook-base-url",
    "source": "--source", "targets": "--target", "scrape_interval": "--scrape-interval",
    "history": "--history", "notify_url": "--notify-url",
    "notify_token_file": "--notify-token-file", "controller_url": "--controller-url",
    "controller_token_file": "--controller-token-file", "state": "--state",
    "interval": "--interval", "reminder_wait": "--reminder-wait", "grace": "--grace",
    "timeout": "--timeout", "listen": "--listen", "web_config_file": "--web-config-file",
}  # fmt: skip


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


class EngineMetrics:
    """The rule engine's few series, rendered on scrape (a handful of lines, no hardware)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def body(self, gzipped: bool = False) -> bytes:
        import gzip

        from poolwatch.core.exposition import render

        text = render(list(self.engine.collect()))
        return gzip.compress(text) if gzipped else text


def serve_engine(engine: Any, listen: str, interval: float = 30.0, web: Any = None) -> Any:
    """Serve the engine's pages, /metrics and /healthz from a daemon thread; returns the server.
    `web`: its TLS and basic auth (a WebConfig; none: plain HTTP, open)."""
    import time

    from poolwatch.core.config import check_listen, split_listen
    from poolwatch.rules.web import serve

    address = split_listen(check_listen(listen))

    def silences() -> list[dict[str, Any]]:
        store = engine.silences
        return [] if store is None else [s.to_dict() for s in store.active(time.time())]

    httpd = serve(engine, EngineMetrics(engine).body, address, interval, silences, web)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="rules-web").start()
    logging.getLogger("poolwatch").info("rule engine at %s://%s:%d/ (alerts, rules, metrics)",
                                        "https" if httpd.tls else "http", *address)  # fmt: skip
    return httpd
