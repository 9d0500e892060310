"""`poolwatch node-exporter run`: the node exporter's command, registered by the `poolwatch` CLI.

The collectors' on/off flags (`--collector.NAME`, `--no-collector.NAME`) come from the collector
settings themselves (`Collectors` in settings.py): a collector added there gets its flags here
without a second list, as node_exporter's collectors declare their own flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from poolwatch.core.cliutil import add_part, add_serving_options, config_path, exit_status
from poolwatch.exporters.node.settings import Collectors, NodeExporterSettings


def collectors() -> list[str]:
    """Every collector's name, in the order the settings declare them."""
    return list(Collectors.model_fields)


def register(sub: argparse._SubParsersAction) -> None:
    verbs = add_part(
        sub,
        "node-exporter",
        "serve this node's metrics for Prometheus",
        "The node exporter: accelerators (GPU through NVML, NPU through npu-smi) and "
        "who holds them, host, disks, /cache, InfiniBand, NFS and containers.",
    )
    p = verbs.add_parser(
        "run",
        help="collect in the background and serve /metrics",
        description=(
            "Collect accelerator (GPU/NPU), pod attribution, container, host, filesystem, "
            "cache-directory, InfiniBand and NFS metrics in the "
            "background, each collector on its own interval and timeout, and serve the last "
            "collection at /metrics. A scrape never waits for hardware; a collector that fails "
            "or hangs shows as poolwatch_collector_up 0 and its series go away."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "collectors (all on by default): " + ", ".join(collectors()) + "\n"
            "  --collector.NAME / --no-collector.NAME switch one on or off (cache_dir: cache-dir)\n"
            "endpoints: /metrics (gzip when asked), /healthz (200 while collection is live), /\n"
            "exit status: 0 on SIGTERM/SIGINT, 2 on a configuration error"
        ),
    )
    add_serving_options(p, "node-exporter")
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
    for name in collectors():
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
        "--once", action="store_true", help="collect once, print the exposition to stdout and exit"
    )
    p.set_defaults(func=run)


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
    for name in collectors():
        value = getattr(args, f"enable_{name}")
        if value is not None:
            out[("collectors", name, "enabled")] = (value, f"flag --collector.{name}")
    return out


def run(args: argparse.Namespace) -> int:
    from poolwatch.core.config import dump, load
    from poolwatch.exporters.node import app

    def body() -> None:
        settings = load(NodeExporterSettings, config_path(args), os.environ, _flags(args))
        if args.print_config:
            sys.stdout.write(dump(settings))
        elif args.once:
            sys.stdout.buffer.write(app.collect_once(settings))
        else:
            app.run(settings)

    return exit_status(body)
