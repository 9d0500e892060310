"""The runner: each collector on its own schedule, in a worker thread, under a deadline.

Why a thread per run and not a pool: a collector stuck in the kernel (statvfs on a dead NFS server,
a hung npu-smi) cannot be cancelled from Python. The runner stops waiting at the timeout, marks the
collector down and drops its series; the stuck thread is left to finish on its own, and no new run
of that collector starts until it has (so at most one thread per collector is ever stuck). Threads
are cheap next to the 15 s interval. This is the isolation boundary: a broad `except` here is
logged with the collector's name and counted in `poolwatch_collector_errors_total`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import Metric

from .collector import Collector, PartialFailure
from .compat import CompatExpander
from .store import ExpositionStore, render

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """What one worker thread hands back; owned by that run only, so a late result is ignored."""

    families: list[Metric] = field(default_factory=list)
    error: str = ""
    partial: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Runner:
    def __init__(
        self,
        collectors: Iterable[Collector],
        store: ExpositionStore,
        compat: Iterable[str] = (),
    ) -> None:
        self.collectors = list(collectors)
        self.store = store
        self._compat = {c.name: CompatExpander(compat) for c in self.collectors}
        self._workers: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._loops: list[threading.Thread] = []
        for c in self.collectors:
            store.register(c.name, c.interval, c.timeout)

    # -- scheduling ---------------------------------------------------------------------------
    def start(self) -> None:
        n = len(self.collectors)
        for i, c in enumerate(self.collectors):
            # Every collector runs at once at start (the first scrape has everything), then
            # their schedules are spread over the interval: eight collections at the same
            # instant made a scrape share the GIL with eight threads at once.
            phase = c.interval * i / n
            t = threading.Thread(target=self._loop, args=(c, phase), name=f"collector-{c.name}")
            t.daemon = True
            t.start()
            self._loops.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._loops:
            t.join(timeout=1.0)

    def _loop(self, c: Collector, phase: float = 0.0) -> None:
        # the first run now; the second `phase` later (a full interval for phase 0)
        due = time.monotonic() + (phase or c.interval) - c.interval
        self._run_safely(c)
        while not self._stop.is_set():
            due += c.interval
            now = time.monotonic()
            if due < now:  # a run overran: skip the missed slots instead of bunching up
                due = now + c.interval
            if self._stop.wait(due - now):
                return
            self._run_safely(c)

    def _run_safely(self, c: Collector) -> None:
        """One scheduled run; nothing it raises ends the schedule."""
        try:
            self.run_once(c)
        except Exception as err:  # the schedule outlives any one run
            log.exception("collector %s: run failed outside the collector", c.name)
            try:
                self._fail(c, f"{type(err).__name__}: {err}", 0.0)
            except Exception:  # the store itself failed: try at the next interval
                log.exception("collector %s: could not record the failure", c.name)

    # -- one run --------------------------------------------------------------------------------
    def run_once(self, c: Collector) -> bool:
        """Run `c` once under its timeout and store the result; True if it succeeded."""
        started = time.monotonic()
        previous = self._workers.get(c.name)
        if previous is not None and previous.is_alive():
            self._fail(c, "previous run still hung; not starting another", 0.0)
            return False
        run = _Run()
        worker = threading.Thread(target=self._work, args=(c, run), name=f"run-{c.name}")
        worker.daemon = True
        self._workers[c.name] = worker
        worker.start()
        if not run.done.wait(c.timeout):
            self._fail(c, f"timed out after {c.timeout:g}s", time.monotonic() - started)
            return False
        took = time.monotonic() - started
        if run.error and not run.partial:
            self._fail(c, run.error, took)
            return False
        try:
            body = self._render(c, run.families)
        except Exception as err:  # noqa: BLE001 - a value the renderer cannot write: a failed run
            self._fail(c, f"rendering failed: {type(err).__name__}: {err}", took)
            return False
        if run.partial:
            self._log_failure(c, run.error)  # before put: it compares with the previous run
        self.store.put(c.name, body, ok=not run.partial, took=took, error=run.error)
        return not run.partial

    @staticmethod
    def _work(c: Collector, run: _Run) -> None:
        try:
            for family in c.collect():
                run.families.append(family)
        except PartialFailure as err:
            run.error, run.partial = str(err), True
        except Exception as err:  # noqa: BLE001 - isolation boundary: one collector, not the process
            run.error = f"{type(err).__name__}: {err}"
        finally:
            run.done.set()

    def _render(self, c: Collector, families: list[Metric]) -> bytes:
        aliases = self._compat[c.name].expand(families, time.time())
        # Families with no sample are left out, as node_exporter does: a node without GPUs
        # should not carry fifty HELP/TYPE lines for them.
        kept = [f for f in (*families, *aliases) if f.samples]
        return render(kept, self.store.identity)

    def _fail(self, c: Collector, error: str, took: float) -> None:
        self._log_failure(c, error)
        self.store.put(c.name, None, ok=False, took=took, error=error)

    def _log_failure(self, c: Collector, error: str) -> None:
        # Warn when a collector starts failing or fails differently; repeat at debug, so a node
        # without a cache disk does not fill the log every 15 seconds.
        states = {s.name: s for s in self.store.states()}
        st = states.get(c.name)
        repeated = st is not None and st.runs > 0 and not st.up and st.last_error == error
        level = logging.DEBUG if repeated else logging.WARNING
        log.log(level, "collector %s failed: %s", c.name, error, extra={"collector": c.name})
