"""`poolwatch cluster-exporter run`: the cluster exporter's command, registered by `poolwatch`.

Imports stay light at module level (`poolwatch --help` imports this); the exporter and the
Kubernetes client load inside the command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from poolwatch.core.cliutil import (
    add_part,
    add_serving_options,
    config_path,
    exit_status,
    flag_settings,
)


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_part(
        sub,
        "cluster-exporter",
        "serve pools, nodes, training jobs, quotas and pool events for Prometheus",
        "The cluster exporter: training jobs, pools, quotas and pool events from the "
        "Kubernetes API (or the simulated pool), for Prometheus.",
    )
    p = verbs.add_parser(
        "run",
        help="watch the cluster and serve /metrics and /events",
        description=(
            "Watch the cluster (Kubernetes API, or the simulated pool) and serve pool, node, "
            "training-job, quota and event metrics at /metrics, the last events as JSON at "
            "/events. Per-object lines are kept ready as watch events arrive: a scrape only "
            "joins them."
        ),
    )
    add_serving_options(p, "cluster-exporter")
    p.add_argument("--backend", choices=["kubernetes", "simulated"],
                   help="where objects come from (kubernetes)")  # fmt: skip
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig (default: in-cluster service account)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poolwatch.core.config import dump, load, split_listen
    from poolwatch.core.web.config import load_web_config
    from poolwatch.exporters.cluster.app import run as serve
    from poolwatch.exporters.cluster.settings import ClusterExporterSettings

    flags = flag_settings(args, ("listen", "backend", "kubeconfig"))

    def body() -> None:
        settings = load(ClusterExporterSettings, config_path(args), os.environ, flags)
        if args.print_config:
            sys.stdout.write(dump(settings))
            return
        web = load_web_config(settings.web_config_file)
        serve(_cluster_backend(settings), split_listen(settings.listen), web, settings)

    return exit_status(body)


def _cluster_backend(settings: Any) -> Any:
    from poolwatch.cluster.factory import open_backend

    return open_backend(settings.backend, settings.kubeconfig)[0]
