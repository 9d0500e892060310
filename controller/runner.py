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
from typing import Any

from poolwatch.config import split_listen

from .leader import LeaderElector
from .server import ControllerServer, serve
from .service import PoolController
from .settings import ControllerSettings

log = logging.getLogger(__name__)


def backend_for(settings: ControllerSettings) -> tuple[Any, Callable[[], None]]:
    """The backend and how to stop it (the simulated pool's clock, the informers)."""
    from poolwatch.cluster.factory import open_backend

    cluster, stop = open_backend(settings.backend, settings.kubeconfig)
    if settings.backend == "kubernetes":
        cluster.requeue_priority_class = settings.requeue_priority_class
    return cluster, stop


def read_token(settings: ControllerSettings) -> str | None:
    if settings.token_file is None:
        return None
    token = settings.token_file.read_text().strip()
    if not token:
        raise OSError(f"{settings.token_file}: the token file is empty")
    return token


def run(settings: ControllerSettings, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    backend, close = backend_for(settings)
    ctl = PoolController(backend, settings)
    elector = LeaderElector(backend, settings.lease)
    ctl.may_act = elector.leading  # checked before every decision: a lost Lease stops it
    last: list[float] = []
    address, token = split_listen(settings.listen), read_token(settings)
    server = ControllerServer(address, ctl, token, elector.leading,
                              lambda: last[-1] if last else None)  # fmt: skip
    serve(server)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("controller serving on %s, backend %s, dry-run %s", settings.listen,
             settings.backend, "on" if settings.dry_run else "off")  # fmt: skip
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
