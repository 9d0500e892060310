"""The HTTP endpoint: /metrics (gzip when asked), /healthz, and a short index at /.

Why not prometheus-client's start_http_server: its server listens with a backlog of 5, and with
ten concurrent scrapers the rest wait for a SYN retry (p99 ≈ 1 s measured, DESIGN.md). This one
listens with a backlog of 128, serves pre-rendered bytes from the store, does the TLS handshake in
the connection's own thread (a slow client never stalls accept), and checks basic-auth bcrypt
hashes once per distinct credential, not once per scrape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from poolwatch.core.httpbase import Handler as BaseHandler
from poolwatch.core.httpbase import Server as BaseServer
from poolwatch.core.httpbase import accepts_gzip

from .store import ExpositionStore
from .webconfig import WebConfig

log = logging.getLogger(__name__)

# Text format 0.0.4: what every Prometheus since 2.0 (Debian's 2.42 included) reads. Our names are
# all legacy-valid, so prometheus-client's renderer output is the same under either version tag.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

INDEX = b"""<!doctype html><html><head><title>poolwatch node exporter</title></head><body>
<h1>poolwatch node exporter</h1>
<p><a href="/metrics">/metrics</a> &mdash; Prometheus exposition, from the last collection</p>
<p><a href="/healthz">/healthz</a> &mdash; 200 while collection is live</p>
</body></html>
"""


class _Auth:
    """Basic auth against bcrypt hashes, remembering credentials that already verified.

    An unknown user is checked against a dummy hash of the same cost as the real ones, so the
    answer takes as long as for a wrong password and the time does not tell which users exist.
    At most `BCRYPT_AT_ONCE` bcrypt checks run at a time (each costs tens of milliseconds of
    CPU): a flood of wrong passwords waits its turn and leaves the other cores to the scrapes,
    whose credentials verified once are answered from memory."""

    BCRYPT_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._dummy = _dummy_hash(next(iter(users.values()), "")) if users else b""
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()
        self._bcrypt = threading.BoundedSemaphore(self.BCRYPT_AT_ONCE)

    def check(self, header: str | None) -> bool:
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            self._bcrypt_check(password, self._dummy)  # same cost as a wrong password
            return False
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(token, t) for t in self._ok):
                return True
        if not self._bcrypt_check(password, hashed.encode()):
            return False
        with self._lock:
            self._ok.add(token)
        return True

    def _bcrypt_check(self, password: str, hashed: bytes) -> bool:
        import bcrypt

        with self._bcrypt:
            return bool(bcrypt.checkpw(password.encode(), hashed))


def _dummy_hash(like: str) -> bytes:
    """A bcrypt hash of a random password with the cost of `like` (a configured hash)."""
    import secrets

    import bcrypt

    try:
        rounds = int(like.split("$")[2])
    except (IndexError, ValueError):
        rounds = 12
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(min(max(rounds, 4), 31)))


_Server = BaseServer  # the shared threaded server: backlog 128, TLS handshake per connection


def make_handler(
    store: ExpositionStore, auth: _Auth, health: Callable[[], tuple[bool, str]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # an idle keep-alive connection gives its thread back after this

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":  # open: the kubelet's probes carry no credentials
                ok, text = health()
                self.send_body(200 if ok else 503, text.encode(), "text/plain; charset=utf-8")
                return
            if not auth.check(self.headers.get("Authorization")):
                self.send_body(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": "Basic"})
                return
            if path == "/metrics":
                gz = accepts_gzip(self.headers.get("Accept-Encoding"))
                extra = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if gz else {}
                self.send_body(200, store.body(gzipped=gz), CONTENT_TYPE, extra)
            elif path == "/":
                self.send_body(200, INDEX, "text/html; charset=utf-8")
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
    store: ExpositionStore,
    address: tuple[str, int],
    web: WebConfig,
    health: Callable[[], tuple[bool, str]],
) -> ThreadingHTTPServer:
    """Bind and return the server (not yet serving); port 0 picks a free port."""
    handler = make_handler(store, _Auth(web.basic_auth_users), health)
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    server_cls = type("Server", (_Server,), {"address_family": family})
    httpd = server_cls(address, handler)
    httpd.tls = web.ssl_context()
    return httpd
