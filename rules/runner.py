"""Running rule files: `RuleFiles` reloads them when one changes or on SIGHUP, keeping the
previous rules when a reload fails; `run_files` is the `poolwatch rules run` loop (load,
evaluate every interval, dispatch)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from poolwatch.core.actions import ActionSink, Notifier

from .engine import Engine
from .loader import LoadedGroup, RuleFileError
from .overrides import load_all
from .silences import SilenceStore
from .sinks import LogActionSink, LogNotifier
from .sources import Source
from .state import StateStore

log = logging.getLogger(__name__)


class RuleFiles:
    """The rule files an engine runs, reloaded when one changes or on request (SIGHUP).

    A reload that fails (a broken file) is logged with its file:line errors and changes nothing:
    the rules already loaded keep running. Files are compared by modification time, checked at
    the start of each evaluation cycle."""

    def __init__(self, paths: Sequence[Path], overrides: Path | None = None) -> None:
        self.paths = list(paths)
        self.overrides = overrides
        self.requested = threading.Event()  # set by the SIGHUP handler
        self._stamp = self._mtimes()

    def _mtimes(self) -> tuple[tuple[str, int | None], ...]:
        files = [*self.paths, *([self.overrides] if self.overrides is not None else [])]
        return tuple((str(p), p.stat().st_mtime_ns if p.exists() else None) for p in files)

    def load(self) -> list[LoadedGroup]:
        return load_all(self.paths, self.overrides)

    def maybe_reload(self, engine: Engine) -> bool:
        stamp = self._mtimes()
        if stamp == self._stamp and not self.requested.is_set():
            return False
        self.requested.clear()
        self._stamp = stamp
        try:
            groups = self.load()
        except RuleFileError as err:
            log.error("rule files not reloaded; the previous rules keep running:\n%s", err)
            return False
        engine.set_groups(groups)
        log.info("rule files reloaded: %d groups", len(groups))
        return True


def run_files(
    paths: Sequence[Path],
    source: Source,
    state_path: Path,
    interval: float,
    stop: threading.Event,
    notifiers: Sequence[Notifier] | None = None,
    reminder_wait: float = 4 * 3600.0,
    grace: float = 300.0,
    reload: threading.Event | None = None,
    on_start: Callable[[Engine], object] | None = None,
    sinks: Sequence[ActionSink] | None = None,
    overrides: Path | None = None,
    runbook_base: str = "",
) -> Engine:
    """Load `paths` (RuleFileError if invalid), then evaluate them every `interval` until `stop`,
    reloading them when they change or when `reload` is set (the CLI sets it on SIGHUP)."""
    files = RuleFiles(paths, overrides)
    if reload is not None:
        files.requested = reload
    engine = Engine(files.load(), source, StateStore(state_path), reminder_wait=reminder_wait,
                    grace=grace, silences=SilenceStore(state_path),
                    runbook_base=runbook_base)  # fmt: skip
    if on_start is not None:
        on_start(engine)  # e.g. the CLI serving the engine's own metrics
    engine.run(
        interval, [LogNotifier()] if notifiers is None else notifiers, stop,
        before=lambda: files.maybe_reload(engine),
        sinks=[LogActionSink()] if sinks is None else sinks,
    )  # fmt: skip
    return engine
