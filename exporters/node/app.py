"""Wiring of the node exporter: settings -> collectors -> runner -> store -> HTTP server."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys
import threading

from poolwatch.core.config import split_listen
from poolwatch.core.web.config import load_web_config

from . import collectors as _collectors  # noqa: F401 - importing registers every collector
from .collector import REGISTRY, Collector
from .runner import Runner
from .server import serve, serve_until_signalled
from .settings import NodeExporterSettings
from .store import ExpositionStore, render

log = logging.getLogger(__name__)


def build_collectors(settings: NodeExporterSettings) -> list[Collector]:
    """Every enabled collector, in registry order."""
    return [reg.factory(settings) for reg in REGISTRY.values() if reg.settings(settings).enabled]


def build(settings: NodeExporterSettings) -> tuple[Runner, ExpositionStore]:
    identity = {"node": settings.node_name(), "pool": settings.pool_name()}
    store = ExpositionStore(identity, settings.stale_grace)
    runner = Runner(build_collectors(settings), store, settings.compat)
    return runner, store


def collect_once(settings: NodeExporterSettings) -> bytes:
    """One synchronous round of every collector, rendered (`--once`)."""
    runner, store = build(settings)
    for c in runner.collectors:
        runner.run_once(c)
    return store.body()


def health_text(store: ExpositionStore) -> tuple[bool, str]:
    ok, late = store.live()
    lines = [f"{'ok' if ok else 'stalled'}: collection {'is live' if ok else 'stopped'}"]
    for s in store.states():
        state = "up" if s.up else "down"
        detail = f" ({s.last_error})" if s.last_error else ""
        lines.append(f"{s.name}: {state}, last run {s.duration:.3f}s{detail}")
    if late:
        lines.append("late: " + ", ".join(late))
    return ok, "\n".join(lines) + "\n"


# Python hands the GIL to a waiting thread after this long (default 5 ms). A scrape needs it a
# handful of times (accept, parse, headers, write); while a collection renders in the
# background, each hand-off waited up to 5 ms, which set the accelerator node's p99 scrape
# latency. 0.5 ms costs nothing measurable when only one thread runs.
SWITCH_INTERVAL = 0.0005
M_ARENA_MAX = -8  # glibc mallopt parameter


def _tune_process() -> None:
    """Scrape latency and memory settings for this long-running, many-threaded process.

    glibc gives each new thread its own malloc arena (up to 8 per core); every collector run is
    a fresh thread, so a busy node's exporter spread its small objects over dozens of arenas and
    its RSS grew past 80 MB. Two arenas hold it near what one collection needs."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    libc_name = ctypes.util.find_library("c")
    if sys.platform != "linux" or not libc_name:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        log.debug("mallopt unavailable; malloc arenas left as they are")


def _settle_garbage_collector() -> None:
    """Freeze what start-up made, so that no later collection scans it again.

    Python's cyclic collector, left as it is, scanned every object of the process in each full
    collection (the imports included: gRPC, pydantic, the catalog), about 60 ms with the GIL
    held on the accelerator node, so the scrapes that came meanwhile waited for it; with the
    start-up objects frozen the same collection took 17 ms. They live as long as the process,
    so scanning them could never free anything."""
    gc.collect()
    gc.freeze()


def run(settings: NodeExporterSettings, ready: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT. Config errors surface before anything starts."""
    _tune_process()
    web = load_web_config(settings.web_config_file)
    runner, store = build(settings)
    httpd = serve(store, split_listen(settings.listen), web, lambda: health_text(store))
    _settle_garbage_collector()
    log.info(
        "poolwatch node exporter on node %r pool %r, collectors: %s",
        store.identity["node"], store.identity["pool"],
        ", ".join(c.name for c in runner.collectors),
    )  # fmt: skip
    runner.start()
    serve_until_signalled(httpd, web, runner.stop, ready)


__all__ = ["build", "build_collectors", "collect_once", "render", "run"]
