"""The server every poolwatch HTTP endpoint runs on (node and cluster exporter, alerts receiver,
rule engine, controller, demo site; the pool API's uvicorn gets the same guards from `asgi`).

Each part serves a handful of paths and wants the same things from the standard library's
handler: a response with an exact Content-Length in one call, request logging at debug level
(the default writes every request to stderr, which drowns the logs of a scraped endpoint), and
the protection every server exposed on a network needs, applied once here:

- an idle timeout: a keep-alive connection that sends nothing gives its thread back;
- a read deadline: once a request has started, its line, headers and body must all arrive within
  `read_timeout`, however slowly they trickle (a per-`recv` timeout alone lets a client that sends
  one byte every few seconds hold a thread forever);
- a write timeout, so a client that never reads its answer cannot hold a thread either;
- a body limit per server (`Handler.read_body`): a body over it is never read;
- a Content-Length that is not plain ASCII digits (`abc`, `²`, which Python's `str.isdigit`
  accepts) and a request carrying both Transfer-Encoding and Content-Length (the classic request
  smuggling shape) are answered 400; chunked bodies are not read by any poolwatch server, so a
  Transfer-Encoding alone is answered 411 instead of being parsed as the next request;
- who may call it: `Server.auth` (`poolwatch.core.web.auth.Auth`, open by default), checked by
  the handler's `authorized()` on every path but the ones a server leaves open (health probes);
- TLS: `Server.tls`, a context from the web configuration (`poolwatch.core.web.config`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .auth import Auth, Verdict

log = logging.getLogger("poolwatch.http")
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
         b"Connection: close\r\nRetry-After: 1\r\n\r\nbusy\n")  # fmt: skip
_LENGTH = re.compile(r"[0-9]{1,15}")  # ASCII digits only; 15 digits is far above any body limit
# Text format 0.0.4, on every /metrics poolwatch serves: what every Prometheus since 2.0 (Debian's
# 2.42 included) reads. Our names are all legacy-valid, so prometheus-client's renderer output is
# the same under either version tag.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# handler attribute <- server attribute (`timeout` on a server is socketserver's poll timeout)
_SERVER_SETTINGS = (("timeout", "idle_timeout"), ("read_timeout", "read_timeout"),
                    ("write_timeout", "write_timeout"))  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    # Defaults; a `Server` (below) overrides them with its own attributes, so a test or an
    # operator-facing setting can change them per server without a handler subclass.
    timeout = 30.0  # idle: seconds a connection may wait, sending nothing, for its next request
    read_timeout = 30.0  # a started request must arrive whole (line, headers, body) within this
    write_timeout = 30.0  # an answer must be taken by the client within this

    _deadline = 0.0
    _started = False

    def setup(self) -> None:
        for mine, theirs in _SERVER_SETTINGS:
            value = getattr(self.server, theirs, None)
            if isinstance(value, int | float) and value > 0:
                setattr(self, mine, float(value))
        super().setup()
        plain, self.rfile = self.rfile, io.BufferedReader(_DeadlineReader(self))
        plain.close()  # drops the socket's reference from the standard reader we replace

    def handle_one_request(self) -> None:
        self._deadline, self._started = time.monotonic() + self.timeout, False
        try:
            super().handle_one_request()
        except TimeoutError as err:  # the idle timeout or the read deadline passed mid-request
            log.debug("closing %s: %s", self.address_string(), err)
            self.close_connection = True

    def parse_request(self) -> bool:
        """The standard parsing, then the framing checks every poolwatch server needs."""
        if not super().parse_request():
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            if lengths:
                self.send_error(400, "both Transfer-Encoding and Content-Length")
            else:
                self.send_error(411, "Content-Length required (chunked bodies are not read)")
            return False
        if lengths and (len(set(lengths)) > 1 or not _LENGTH.fullmatch(lengths[0].strip())):
            self.send_error(400, "Content-Length must be one decimal number")
            return False
        return True

    def content_length(self) -> int:
        """The request's body length (0 without one); parse_request has already checked it."""
        return int((self.headers.get("Content-Length") or "0").strip())

    def read_body(self, limit: int) -> bytes | None:
        """The request's body (empty without one), or None when its Content-Length is over
        `limit` bytes: then the body stays unread (reading it would cost what the limit is
        there to spare) and the connection closes after the answer the caller sends."""
        length = self.content_length()
        if length > limit:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.connection.settimeout(self.write_timeout)  # reading is over: the write timeout
        super().send_response(code, message)

    def send_body(
        self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        """Status, Content-Type, Content-Length, any `extra` headers, then `body`."""
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_exposition(self, body: bytes) -> None:
        """A /metrics answer: the text exposition, gzipped when the client accepts it."""
        if accepts_gzip(self.headers.get("Accept-Encoding")):
            import gzip

            extra = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            self.send_body(200, gzip.compress(body, 6), METRICS_TYPE, extra)
        else:
            self.send_body(200, body, METRICS_TYPE)

    def authorized(self, auth: Auth | None = None) -> bool:
        """Whether `auth` (default: the server's) lets this request pass; when not, the request
        has been answered 401 (`refuse_unauthorized`) and the handler must stop."""
        auth = auth if auth is not None else getattr(self.server, "auth", None)
        if auth is None:
            return True
        verdict = auth.verdict(self.headers.get("Authorization"))
        if verdict is Verdict.OK:
            return True
        self.refuse_unauthorized(verdict, auth.challenge())
        return False

    def refuse_unauthorized(self, verdict: Verdict, challenge: str) -> None:
        """Answer 401; a server whose errors have their own shape (JSON) overrides this."""
        self.send_body(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": challenge})

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _DeadlineReader(io.RawIOBase):
    """The connection's raw reader: each `recv` may wait only until the handler's deadline.

    The deadline is the idle timeout until the first byte of a request arrives, then the read
    deadline counted from that byte."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.sock = handler, handler.connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        h = self.handler
        left = h._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("read deadline passed")
        self.sock.settimeout(left)
        n = self.sock.recv_into(buffer)
        if n and not h._started:
            h._started, h._deadline = True, time.monotonic() + h.read_timeout
        return n


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header accepts gzip: listed (or `*`) with a q-value above 0,
    so `gzip;q=0` means no (RFC 9110 12.5.3)."""
    best: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding:
            best[coding.lower()] = q
    if "gzip" in best:
        return best["gzip"] > 0
    return best.get("*", 0.0) > 0


class Server(ThreadingHTTPServer):
    """A threaded server with a listen backlog of 128 (the standard library's 5 makes a burst
    of scrapers wait a second for a SYN retry, DESIGN.md) and optional TLS whose handshake runs
    in the connection's thread, so one slow client never stalls `accept`. `timeout` (idle),
    `read_timeout` and `write_timeout` apply to every connection (see Handler)."""

    request_queue_size = 128
    daemon_threads = True
    tls: ssl.SSLContext | None = None
    auth: Auth | None = None  # None: open; see Handler.authorized
    # None: the handler class's own defaults; a number (seconds) overrides them for this server.
    # (`timeout` itself is socketserver's poll timeout for handle_request, so not reused here.)
    idle_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    # Connections served at once (one thread each); one more is answered 503 and closed at once,
    # so a flood costs a bounded number of threads and a legitimate client a fast, clear refusal.
    max_connections = 512
    _active = 0
    _active_lock = threading.Lock()

    # A thread whose connection ended waits IDLE_THREAD_S for the next one before it ends: in a
    # burst (ten scrapers at once, each on a new connection) a connection handed to a waiting
    # thread costs no thread start, and `accept` does not wait for a new thread to be scheduled
    # before it takes the next connection (measured: about a fifth of a scrape's CPU). Short, so
    # a burst leaves no threads behind for long; never more threads than connections at once.
    IDLE_THREAD_S = 2.0
    _idle = 0  # threads waiting for a connection that no connection has been promised to
    _jobs: queue.SimpleQueue[tuple[Any, Any] | None]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._active_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
                spare = self._idle > 0
                if spare:  # promised to this connection
                    self._idle -= 1
                elif "_jobs" not in vars(self):
                    self._jobs = queue.SimpleQueue()
        if full:
            log.warning("refusing a connection from %s: %d connections open", client_address,
                        self.max_connections)  # fmt: skip
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        if spare:
            self._jobs.put((request, client_address))
            return
        thread = threading.Thread(target=self._serve_connections, args=(request, client_address),
                                  daemon=self.daemon_threads)  # fmt: skip
        thread.start()

    def _serve_connections(self, request: Any, client_address: Any) -> None:
        """Serve this connection, then the next ones handed over, until idle or server_close."""
        while True:
            self.process_request_thread(request, client_address)
            with self._active_lock:
                self._idle += 1
            while True:
                try:
                    job = self._jobs.get(timeout=self.IDLE_THREAD_S)
                    break
                except queue.Empty:
                    with self._active_lock:
                        if self._idle > 0:  # nobody was promised a thread: this one ends
                            self._idle -= 1
                            return
                    # a connection was promised to a waiting thread: it is on its way
            if job is None:  # server_close
                return
            request, client_address = job

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active -= 1

    def server_close(self) -> None:
        super().server_close()
        with self._active_lock:
            waiting, self._idle = self._idle, 0
        for _ in range(waiting):
            self._jobs.put(None)

    # Lingering close: after the answer, read and discard what the client is still sending, for
    # at most LINGER_S and LINGER_BYTES, before closing. A client still writing a body we refused
    # unread (413, 401) otherwise gets a reset instead of our answer, which it may never read.
    LINGER_S = 1.0
    LINGER_BYTES = 4 << 20

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            request.shutdown(socket.SHUT_WR)  # the answer is complete: the client sees EOF
            deadline, left = time.monotonic() + self.LINGER_S, self.LINGER_BYTES
            while left > 0:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                request.settimeout(wait)
                chunk = request.recv(min(left, 65536))
                if not chunk:  # the client has closed its side too
                    break
                left -= len(chunk)
        self.close_request(request)

    def server_bind(self) -> None:
        """Bind, naming the address in the error: "Address already in use" alone does not say
        which of a command's addresses is taken."""
        try:
            super().server_bind()
        except OSError as err:
            host, port = self.server_address[:2]
            where = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
            raise OSError(err.errno, f"cannot serve on {where}: {err.strerror}") from None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10.0)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as err:
                log.debug("TLS handshake with %s failed: %s", client_address, err)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished is routine (debug); anything else is a bug worth a traceback
        in the log, not on stderr as socketserver does."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            log.debug("connection from %s ended: %r", client_address, err)
        else:
            log.warning("request from %s failed", client_address, exc_info=True)
