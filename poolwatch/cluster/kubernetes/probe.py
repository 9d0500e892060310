"""Is the API server able to answer from its store now? Its own `/readyz`, asked every few seconds.

Why the informers alone cannot tell: while etcd is down (or partitioned from the API server),
the API server keeps every open watch stream open and silent, and answers lists that allow the
watch cache from the cache. An informer then sees nothing wrong and its figures look current,
though nothing can be read or written. The API server knows: `/readyz` fails with its etcd
check. Every authenticated client may read it (the `system:public-info-viewer` role), so no
extra RBAC is needed.

What counts as not ready: no connection, a timeout, or a 5xx answer. A 401/403/404 means this
API server (or a proxy in front of it) does not offer `/readyz` to us: the probe cannot tell,
so it says nothing (logged once) and the informers' own state decides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from poolwatch.cluster.kubernetes.api import describe, failures

log = logging.getLogger(__name__)
UNKNOWN = (401, 403, 404)


class ReadyProbe:
    """Asks `/readyz` every `interval` seconds in a daemon thread; `error` is "" while ready
    (or while the probe cannot tell), else why not. `changed()` is called when `error` changes."""

    def __init__(
        self,
        client: Callable[[], Any],  # -> kubernetes.client.ApiClient
        changed: Callable[[], None],
        interval: float = 5.0,
        timeout: tuple[float, float] = (5.0, 5.0),
    ) -> None:
        self._client, self._changed = client, changed
        self.interval, self.timeout = interval, timeout
        self.error = ""
        self.checks = 0
        self._silent = False  # logged that the probe cannot tell
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apiserver-readyz", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 - the probe's thread must outlive any one look
                # a look that failed in an unforeseen way says nothing about readiness: it is
                # logged and the next look tries again (a dead probe would miss etcd going down)
                log.warning("the API server's readiness could not be checked: %s: %s",
                            type(err).__name__, err)  # fmt: skip
            self._stop.wait(self.interval)

    def check(self) -> str:
        """Ask once; returns (and keeps) the error, "" when ready."""
        error = self._ask()
        self.checks += 1
        if error != self.error:
            if error:
                log.warning("the API server is not ready (%s): serving no figures", error)
            else:
                log.info("the API server is ready again")
            self.error = error
            self._changed()
        return error

    def _ask(self) -> str:
        try:
            api = self._client()
            call = api.param_serialize("GET", "/readyz", None, None, {"Accept": "text/plain"},
                                       auth_settings=["BearerToken"])  # fmt: skip
            response = api.call_api(*call, _request_timeout=self.timeout)
            body = response.read()
        except failures() as err:
            return f"/readyz: {describe(err)}"
        status = response.status
        if status in UNKNOWN:
            if not self._silent:
                self._silent = True
                log.info("/readyz answers HTTP %s: readiness is judged by the watches alone",
                         status)  # fmt: skip
            return ""
        if status >= 500:
            failed = [ln.strip() for ln in body.decode(errors="replace").splitlines()
                      if ln.startswith("[-]")]  # fmt: skip
            return f"/readyz: HTTP {status}" + (f" ({'; '.join(failed[:3])})" if failed else "")
        return ""
