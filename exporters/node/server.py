"""The HTTP endpoint: /metrics (gzip when asked), /healthz, and a short index at /.

Why not prometheus-client's start_http_server: its server listens with a backlog of 5, and with
ten concurrent scrapers the rest wait for a SYN retry (p99 ≈ 1 s measured, DESIGN.md). This one
listens with a backlog of 128, serves pre-rendered bytes from the store, does the TLS handshake in
the connection's own thread (a slow client never stalls accept), and checks basic-auth bcrypt
hashes once per distinct credential, not once per scrape (`poolwatch.core.web.auth`, shared by
every poolwatch server). The cluster exporter serves through the same handler, adding its own
routes and index.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Protocol

from poolwatch.core.web.config import WebConfig
from poolwatch.core.web.server import METRICS_TYPE, accepts_gzip
from poolwatch.core.web.server import Handler as BaseHandler
from poolwatch.core.web.server import Server as BaseServer

log = logging.getLogger(__name__)

CONTENT_TYPE = METRICS_TYPE  # the exposition's content type, the same on every poolwatch server

INDEX = b"""<!doctype html><html><head><title>poolwatch node exporter</title></head><body>
<h1>poolwatch node exporter</h1>
<p><a href="/metrics">/metrics</a> &mdash; Prometheus exposition, from the last collection</p>
<p><a href="/healthz">/healthz</a> &mdash; 200 while collection is live</p>
</body></html>
"""


_Server = BaseServer  # the shared threaded server: backlog 128, TLS handshake per connection


class Exposition(Protocol):
    """What /metrics serves from: the node exporter's store, the cluster exporter's store."""

    def body(self, gzipped: bool = False) -> bytes: ...


#: An extra GET route: called with the handler and the query string, it sends the answer.
Route = Callable[[BaseHandler, str], None]


def make_handler(
    store: Exposition,
    health: Callable[[], tuple[bool, str]],
    routes: Mapping[str, Route] | None = None,
    index: bytes = INDEX,
) -> type[BaseHTTPRequestHandler]:
    """/healthz (open), /metrics, `index` at / and any extra `routes` (path -> Route), all
    behind the server's `auth`."""
    routes_ = dict(routes or {})

    class Handler(BaseHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # an idle keep-alive connection gives its thread back after this

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/healthz":  # open: the kubelet's probes carry no credentials
                ok, text = health()
                self.send_body(200 if ok else 503, text.encode(), "text/plain; charset=utf-8")
                return
            if not self.authorized():
                return
            if path == "/metrics":
                gz = accepts_gzip(self.headers.get("Accept-Encoding"))
                extra = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if gz else {}
                self.send_body(200, store.body(gzipped=gz), CONTENT_TYPE, extra)
            elif path in routes_:
                routes_[path](self, query)
            elif path == "/":
                self.send_body(200, index, "text/html; charset=utf-8")
            else:
                self.send_body(404, b"not found\n", "text/plain")

    return Handler


def serve_until_signalled(
    httpd: ThreadingHTTPServer,
    web: WebConfig,
    on_stop: Callable[[], None],
    ready: threading.Event | None = None,
) -> None:
    """Log the URL, serve until SIGTERM/SIGINT (or until `httpd.shutdown()`), then stop the
    caller's background work and close the socket. Shared by both exporters' `run()`."""
    host, port = httpd.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    scheme = "https" if web.tls_server_config else "http"
    log.info("serving metrics at %s://%s:%s/metrics", scheme, shown, port)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, shutting down", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    if ready is not None:
        ready.set()
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        on_stop()
        httpd.server_close()


def serve(
    store: Exposition,
    address: tuple[str, int],
    web: WebConfig,
    health: Callable[[], tuple[bool, str]],
    routes: Mapping[str, Route] | None = None,
    index: bytes = INDEX,
) -> BaseServer:
    """Bind and return the server (not yet serving); port 0 picks a free port. `routes` and
    `index` as in make_handler (the cluster exporter adds /events)."""
    handler = make_handler(store, health, routes, index)
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    server_cls = type("Server", (_Server,), {"address_family": family})
    httpd = server_cls(address, handler)
    httpd.tls = web.ssl_context()
    httpd.auth = web.auth()
    return httpd
