"""`poolwatch controller run`: backend, leader election, the control loop and the HTTP server.

The loop: a thread acquires or renews the Lease every `lease.renew` seconds; while leading, one
`reconcile()` every `interval`, and every decision first asks whether it still leads. A standby
serves /healthz and /metrics and answers /actions with 503 `deferred`, so the rule engine sends
the action again to whoever leads.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from poolwatch.core.actions import Notifier
from poolwatch.core.config import ConfigError, split_listen
from poolwatch.core.webhook import WebhookNotifier

from .leader import LeaderElector
from .server import ControllerServer, check_exposure, serve
from .service import PoolController
from .settings import ControllerSettings

log = logging.getLogger(__name__)


def _shown(url: str | None) -> str:
    """A URL for the log: scheme, host and port only (a user, a password, a path or a query may
    carry a secret)."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/..."


def backend_for(settings: ControllerSettings) -> tuple[Any, Callable[[], None]]:
    """The backend and how to stop it (the simulated pool's clock, the informers)."""
    from poolwatch.cluster.factory import open_backend

    cluster, stop = open_backend(settings.backend, settings.kubeconfig)
    if settings.backend == "kubernetes":
        cluster.requeue_priority_class = settings.requeue_priority_class
    return cluster, stop


def read_token(settings: ControllerSettings) -> str | None:
    return _secret(settings.token_file, "token_file")


def _secret(path: Path | None, field: str) -> str | None:
    """The first line of a secret file; an unreadable or empty one is a configuration error."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{field} {path}: {err.strerror}") from None
    if not token:
        raise ConfigError(f"{field} {path}: the file is empty")
    return token.splitlines()[0].strip()


def notifier_for(settings: ControllerSettings) -> Notifier | None:
    """The alerts layer's webhook when `notify_url` is set, else none (notices reach the log)."""
    if settings.notify_url is None:
        if settings.notify_token_file is not None:
            raise ConfigError("notify_token_file: set notify_url too (--notify-url)")
        return None
    token = _secret(settings.notify_token_file, "notify_token_file")
    return WebhookNotifier(settings.notify_url, token, settings.notify_timeout,
                           receiver="poolwatch-controller")  # fmt: skip


def warn_if_acting(settings: ControllerSettings) -> None:
    """A controller that changes nodes says so at start, loudly."""
    if not settings.dry_run:
        log.warning("dry-run is OFF: this controller taints, cordons and replaces nodes and "
                    "restarts jobs in %s for real", settings.backend)  # fmt: skip
    if settings.state_path is None:
        log.warning("no state file (state_path, --state): what was done, replacements in flight "
                    "and undelivered notices are lost on restart")  # fmt: skip


def run(settings: ControllerSettings, stop: threading.Event | None = None) -> int:
    """Serve and run the control loop until `stop` (or SIGTERM/SIGINT). Refuses to start
    (ConfigError) on a non-loopback address without a token, before touching the cluster."""
    stop = stop or threading.Event()
    address, token = split_listen(settings.listen), read_token(settings)
    check_exposure(address, token)
    notifier = notifier_for(settings)
    warn_if_acting(settings)
    backend, close = backend_for(settings)
    ctl = PoolController(backend, settings, notifier=notifier)
    elector = LeaderElector(backend, settings.lease)
    ctl.may_act = elector.leading  # checked before every decision: a lost Lease stops it
    last: list[float] = []
    try:
        server = ControllerServer(address, ctl, token, elector.leading,
                                  lambda: last[-1] if last else None)  # fmt: skip
    except BaseException:
        close()
        ctl.store.close()
        raise
    serve(server)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("controller serving on %s, backend %s, dry-run %s, notices to %s", settings.listen,
             settings.backend, "on" if settings.dry_run else "off",
             _shown(settings.notify_url) if notifier else "the log only")  # fmt: skip
    election = threading.Thread(target=elector.run, args=(stop,), name="leader-election",
                                daemon=True)  # fmt: skip
    election.start()
    next_reconcile = 0.0
    try:
        while not stop.is_set():
            if elector.leading():
                now = time.monotonic()
                if now >= next_reconcile:
                    try:
                        ctl.reconcile()
                        last[:] = [time.time()]
                    except Exception:  # isolation boundary: log, try again next step
                        log.exception("reconcile failed")
                    next_reconcile = now + settings.interval
            stop.wait(min(settings.lease.renew, settings.interval))
    finally:
        stop.set()
        election.join(settings.lease.duration)
        elector.release()
        server.shutdown()
        server.server_close()
        close()
        ctl.store.close()
    return 0
