"""Wiring of the cluster exporter: backend.watch() -> store -> HTTP (/metrics, /events, /healthz).

Two daemon threads feed the store: the watch loop applies every watch event (and restarts a
stream that ends or fails, with a doubling back-off, re-listing from scratch), and the health
loop polls `backend.healthy()` so a scrape never calls the backend. The HTTP server is the node
exporter's (backlog 128, TLS and basic auth from the web config), with /events and its own index
added in a handler subclass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from poolwatch.cluster.backend import ClusterBackend
from poolwatch.exporters.node.server import _Auth, serve, serve_until_signalled
from poolwatch.exporters.node.webconfig import WebConfig

from .events import to_json
from .settings import ClusterExporterSettings
from .store import ClusterStore

log = logging.getLogger(__name__)

INDEX = b"""<!doctype html><html><head><title>poolwatch cluster exporter</title></head><body>
<h1>poolwatch cluster exporter</h1>
<p><a href="/metrics">/metrics</a> &mdash; pools, nodes, training jobs, quotas, event counters</p>
<p><a href="/events">/events</a> &mdash; the most recent events as JSON
(?limit=N&amp;pool=&amp;kind=&amp;reason=&amp;type=)</p>
<p><a href="/healthz">/healthz</a> &mdash; 200 while the watch loop runs</p>
</body></html>
"""
EVENT_FILTERS = ("pool", "kind", "reason", "type", "namespace", "name", "source")


class ClusterExporter:
    """The watch and health loops around a store."""

    def __init__(
        self,
        backend: ClusterBackend,
        settings: ClusterExporterSettings | None = None,
        store: ClusterStore | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or ClusterExporterSettings()
        self.store = store or ClusterStore(self.settings)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, target in (("watch", self._watch_loop), ("health", self._health_loop)):
            t = threading.Thread(target=target, name=f"cluster-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Ask the loops to end; a watch blocked inside the backend ends with the process."""
        self._stop.set()

    def _watch_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self.store.watch_started()
            try:
                for ev in self.backend.watch():
                    if self._stop.is_set():
                        return
                    self.store.apply(ev)
                    if ev.type == "SYNCED":
                        backoff = 0.5
                log.warning("watch stream of backend %r ended; listing again", self.backend.name)
            except Exception as err:  # noqa: BLE001 - isolation boundary: log, count, retry
                log.warning("watch of backend %r failed: %r", self.backend.name, err)
            self.store.watch_failed()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.settings.watch_backoff_max)

    def _health_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ok = bool(self.backend.healthy())
            except Exception as err:  # noqa: BLE001 - a failing health check means unhealthy
                log.debug("backend health check failed: %r", err)
                ok = False
            self.store.set_healthy(ok)
            self._copy_backend_skipped()
            self._stop.wait(self.settings.health_interval)

    def _copy_backend_skipped(self) -> None:
        counts = getattr(self.backend, "skipped", None)
        if not isinstance(counts, Mapping):
            return
        try:
            snapshot = dict(counts)
        except RuntimeError:  # changed while copied (another thread counts): next round
            return
        self.store.set_backend_skipped(snapshot)

    def health(self) -> tuple[bool, str]:
        """200 while the watch loop runs: a scrape must still get `poolwatch_cluster_up 0`
        when the API is down, so an unreachable API does not make the exporter unready."""
        alive = bool(self._threads) and self._threads[0].is_alive()
        st = self.store.status()
        lines = [
            f"{'ok' if alive else 'stopped'}: watch loop {'runs' if alive else 'is not running'}",
            f"backend {self.backend.name}: {'reachable' if st['healthy'] else 'unreachable'}, "
            f"{'synced' if st['synced'] else 'listing'}; serving figures: {st['up']}",
            f"watch restarts: {st['restarts']}, objects skipped: {st['skipped']}",
        ]
        return alive, "\n".join(lines) + "\n"


def serve_cluster(
    exporter: ClusterExporter, address: tuple[str, int], web: WebConfig
) -> ThreadingHTTPServer:
    """Bind the node exporter's server to the store, and add /events and the index."""
    httpd = serve(exporter.store, address, web, exporter.health)  # type: ignore[arg-type]
    base = httpd.RequestHandlerClass
    auth = _Auth(web.basic_auth_users)

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path not in ("/", "/events"):
                super().do_GET()
                return
            if not auth.check(self.headers.get("Authorization")):
                self.send_body(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": "Basic"})
            elif url.path == "/":
                self.send_body(200, INDEX, "text/html; charset=utf-8")
            else:
                self._events(parse_qs(url.query))

        def _events(self, query: dict[str, list[str]]) -> None:
            limit: int | None = None
            if "limit" in query:
                try:
                    limit = int(query["limit"][0])
                except ValueError:
                    limit = -1
                if limit < 0:
                    self.send_body(400, b"limit: expected a whole number >= 0\n", "text/plain")
                    return
            match = {k: query[k][0] for k in EVENT_FILTERS if k in query}
            body = to_json(exporter.store.recent_events(limit, **match))
            self.send_body(200, body, "application/json")

    httpd.RequestHandlerClass = Handler
    return httpd


def run(
    backend: ClusterBackend,
    listen: tuple[str, int],
    web: WebConfig,
    settings: ClusterExporterSettings | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or until `ready`'s owner shuts the server down)."""
    exporter = ClusterExporter(backend, settings)
    httpd = serve_cluster(exporter, listen, web)
    log.info("poolwatch cluster exporter, backend %r", backend.name)
    exporter.start()
    serve_until_signalled(httpd, web, exporter.stop, ready)


__all__ = ["ClusterExporter", "run", "serve_cluster"]
