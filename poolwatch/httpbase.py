"""The base of poolwatch's small HTTP servers (node exporter, alerts receiver, controller, demo).

Each part serves a handful of paths and wants the same two things from the standard library's
handler: a response with an exact Content-Length in one call, and request logging at debug level
(the default writes every request to stderr, which drowns the logs of a scraped endpoint).
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler

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
