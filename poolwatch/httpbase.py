"""The base of poolwatch's small HTTP servers (node exporter, alerts receiver, controller, demo).

Each part serves a handful of paths and wants the same two things from the standard library's
handler: a response with an exact Content-Length in one call, and request logging at debug level
(the default writes every request to stderr, which drowns the logs of a scraped endpoint).
"""

from __future__ import annotations

import logging
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("poolwatch.http")


class Handler(BaseHTTPRequestHandler):
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

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class Server(ThreadingHTTPServer):
    """A threaded server with a listen backlog of 128 (the standard library's 5 makes a burst
    of scrapers wait a second for a SYN retry, DESIGN.md) and optional TLS whose handshake runs
    in the connection's thread, so one slow client never stalls `accept`."""

    request_queue_size = 128
    daemon_threads = True
    tls: ssl.SSLContext | None = None

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
