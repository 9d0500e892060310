"""The local source: the engine scrapes the exporters itself and keeps a short history in memory.

This is the embedded default (no Prometheus): `poolwatch rules run --source local --target URL`.
Each scrape parses the text exposition, keeps only the metrics some loaded rule reads, and keeps
each metric only as long as the longest range a rule reads it over (plus the 5-minute lookback),
so a 24-hour `increase` costs history for that one counter, not for every series. A rule that
needs more than `history` is refused at load with the reason, as is any expression outside the
PromQL subset of rules/promql/.

Scraping follows Prometheus with `honor_labels: true`: every series gets the target's `job` and
`instance` labels unless it carries its own, a series that vanished from its target or a target
that failed gets Prometheus' stale marker (it has no value from then on, as in Prometheus; a
sample whose value is NaN is a value, not a stale marker), and each scrape
writes `up{job, instance}` 1 or 0. Samples are stamped with the scrape's start time; timestamps
in the exposition are ignored (poolwatch's exporters send none).

Fetching and parsing a target is rules/scrape.py; the history of samples, its staleness and its
retention rules/history.py; this module plans the rules, sets the retention, answers the
engine's queries and runs the scrape loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from .history import History
from .model import format_duration
from .promql import Ctx, Query, Unsupported
from .scrape import SELF_TARGET, Scraped, Target, _fetch, parse_exposition
from .sources import Sample, SourceError

log = logging.getLogger(__name__)


class LocalSource:
    """Scrapes `targets` every `scrape_interval` seconds and answers instant queries from the
    history (a `rules.sources.Source`). `prepare` is called by the engine with the expressions it
    will query: it plans them, refuses what it cannot evaluate, and sets the retention."""

    def __init__(
        self,
        targets: Sequence[Target],
        scrape_interval: float = 15.0,
        history: float = 25 * 3600.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str, float], str] = _fetch,
        freeze_gc: bool = False,
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.history_ms = round(history * 1000)
        self.timeout = timeout
        self.clock = clock
        self.fetch = fetch
        self.store = History()
        self._queries: dict[str, Query | Unsupported] = {}
        self._lock = threading.Lock()
        self._ctx: tuple[int, int, Ctx] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_errors: dict[str, str] = {}
        self.freeze_gc = freeze_gc
        self._frozen_at = 0

    # -- rules -------------------------------------------------------------------------------

    def _plan(self, expr: str) -> Query | Unsupported:
        q = self._queries.get(expr)
        if q is None:
            try:
                q = Query.parse(expr)
                longest = max(q.needs.values(), default=0)
                if longest > self.history_ms:
                    q = Unsupported(
                        f"reads {format_duration(longest / 1000)} of history, more than the "
                        f"local source keeps (--history {format_duration(self.history_ms / 1000)})"
                    )
            except Unsupported as err:
                q = err
            except Exception as err:  # noqa: BLE001 - a planner bug refuses that rule alone
                q = Unsupported(f"cannot be planned: {type(err).__name__}: {err}")
            self._queries[expr] = q
        return q

    def prepare(self, exprs: Iterable[str]) -> dict[str, str | None]:
        """Plan `exprs`; the reason each one is refused (None when it runs). Only the metrics
        these read are scraped into the history from now on, each kept as long as they need."""
        reasons: dict[str, str | None] = {}
        keep: dict[str, int] = {}
        for expr in exprs:
            q = self._plan(expr)
            if isinstance(q, Unsupported):
                reasons[expr] = str(q)
                continue
            reasons[expr] = None
            for name, need in q.needs.items():
                keep[name] = max(keep.get(name, 0), need + round(2000 * self.scrape_interval))
        with self._lock:
            self.store.keep = keep
        return reasons

    def query(self, expr: str, at: float) -> list[Sample]:
        q = self._plan(expr)
        if isinstance(q, Unsupported):
            raise SourceError(f"not evaluated locally: {q}")
        t = round(at * 1000)
        with self._lock:
            # selector results are shared by the rules of one evaluation at the same time
            if self._ctx is None or self._ctx[:2] != (t, self.store.ingests):
                self._ctx = (t, self.store.ingests, Ctx(self.store))
            # an error here is the rule's own (the data makes its expression fail), not the
            # source's: the engine counts it against that rule alone
            # the stored label sets themselves (read-only to the engine, which copies what it
            # keeps): the engine recognises a series it saw last cycle without hashing labels
            return q.eval(self.store, t, self._ctx[2])

    def record_self(self, samples: Iterable[tuple[str, dict[str, str], float]], at: float) -> None:
        """The engine's own series (name, labels, value) at `at`, as if Prometheus scraped
        the engine: rules about the engine (a rule that keeps failing) see them locally too."""
        keep = self.store.keep
        scraped: list[Scraped] = []
        for name, labels, value in samples:
            if name in keep:
                raw = name + repr(sorted(labels.items()))
                scraped.append((name, raw, dict(labels), value))
        with self._lock:
            self.store.ingest(SELF_TARGET, scraped, float(round(at * 1000)))

    # -- scraping ----------------------------------------------------------------------------

    def scrape_once(self, at: float | None = None) -> None:
        """Scrape every target once, stamping the samples with `at` (default: the clock).
        Targets are fetched concurrently (up to 16 at a time), so a few that time out do not
        hold up the rest past the interval."""
        t = float(round((self.clock() if at is None else at) * 1000))
        if len(self.targets) <= 1:
            for target in self.targets:
                self._scrape(target, t)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(16, len(self.targets)), "rules-scrape") as pool:
            list(pool.map(lambda target: self._scrape(target, t), self.targets))

    def _scrape(self, target: Target, t: float) -> None:
        keep = self.store.keep
        try:
            text = self.fetch(target.url, self.timeout)
            samples = list(parse_exposition(text, keep.__contains__))
        except (OSError, ValueError, UnicodeDecodeError) as err:
            if target.url not in self.last_errors:
                log.warning("scrape of %s failed: %s", target.url, err)
            self.last_errors[target.url] = str(err)
            samples = None
        else:
            if self.last_errors.pop(target.url, None) is not None:
                log.info("scrape of %s works again", target.url)
        with self._lock:
            self.store.ingest(target, samples, t)
            grew = self.store.registered != self._frozen_at
            self._frozen_at = self.store.registered
        if grew and self.freeze_gc:
            self._freeze()

    @staticmethod
    def _freeze() -> None:
        """Move everything alive now (the history's series above all) out of the garbage
        collector's sight: they live until they are trimmed, are freed by reference counting
        then, and a full collection would otherwise walk all of them, costing the evaluation
        cycle more than the rules themselves (measured with bench/rules_eval.py). Collected
        first, so no garbage is frozen; done only when new series appeared, and only where the
        process is the engine's own (`poolwatch rules run` asks for it: `freeze_gc`)."""
        import gc

        gc.collect()
        gc.freeze()

    def start(self) -> None:
        """Scrape in a background thread until `stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self.scrape_once()
                except Exception:  # one bad scrape must not end scraping
                    log.exception("scrape failed")
                self._stop.wait(max(0.0, self.scrape_interval - (time.monotonic() - began)))

        self._thread = threading.Thread(target=loop, name="rules-scrape", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def check_local(exprs: dict[str, str], history: float = 25 * 3600.0) -> dict[str, str | None]:
    """rule name -> why the local source refuses its expression (None: it runs locally)."""
    src = LocalSource([], history=history)
    reasons = src.prepare(exprs.values())
    return {name: reasons[expr] for name, expr in exprs.items()}
