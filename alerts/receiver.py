"""The HTTP receiver: `POST /alertmanager`, `GET /status`, `GET /healthz`, `GET /metrics`.

A `ThreadingHTTPServer` with a listen backlog of 128 (DESIGN.md: the default 5 makes a burst of
webhook connections wait a second for a SYN retry). Every refusal is a JSON `{"error": ...}`
with the status code that says why, and happens before anything is written:
401 no credentials, 403 wrong credentials, 400 unreadable body,
411 no Content-Length, 413 too large, 415 not JSON, 422 not an Alertmanager v4 payload.
503 when the outbox cannot be written (Alertmanager retries). Every refusal is counted by code
(`/status` "rejected", `poolwatch_alerts_requests_rejected_total`). Credentials are compared in
constant time. `/healthz` is open (kubelet probes carry no credentials) and answers 503, naming
the outbox file and the error, while the outbox cannot be written; `/status` and `/metrics` need
the same credentials as the webhook when auth is on.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import ssl
from http.server import BaseHTTPRequestHandler
from typing import Any

from poolwatch.core import pages
from poolwatch.core.httpbase import Handler as BaseHandler
from poolwatch.core.httpbase import Server as BaseServer

from .metrics import exposition
from .payload import PayloadError, parse
from .service import AlertService

log = logging.getLogger(__name__)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: `/` for a person with a browser (no credentials needed: it names endpoints, nothing more)
INDEX = pages.index(
    "poolwatch alerts receiver",
    "Receives Alertmanager's webhooks, keeps each notification in its outbox until every target "
    "has it, and delivers through apprise (email, webhooks, chat). The pages below may need "
    "the receiver's credentials.",
    [("/status", "what is firing, and each target's delivery state (JSON)"),
     ("/metrics", "the receiver's own metrics for Prometheus"),
     ("/healthz", "ok while the receiver runs")],
)  # fmt: skip


class Credentials:
    def __init__(self, token: str | None, users: dict[str, str]) -> None:
        self.token = token
        self.users = users

    @property
    def required(self) -> bool:
        return bool(self.token or self.users)

    def check(self, header: str | None) -> bool:
        if not self.required:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = self.users.get(user)
            return expected is not None and hmac.compare_digest(
                password.encode(), expected.encode()
            )
        return False


class ReceiverServer(BaseServer):
    allow_reuse_address = True


def make_server(
    service: AlertService,
    address: tuple[str, int],
    creds: Credentials,
    tls: ssl.SSLContext | None = None,
) -> ReceiverServer:
    handler = _handler(service, creds, service.settings.max_body_bytes)
    httpd = ReceiverServer(address, handler)
    httpd.tls = tls
    return httpd


def _handler(service: AlertService, creds: Credentials, limit: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":  # a liveness probe: 503 while the outbox cannot be written
                problem = service.health()
                if problem:  # not a refused request: not counted in `rejected`
                    self.send_body(503, f"{problem}\n".encode(), "text/plain; charset=utf-8")
                else:
                    self.send_body(200, b"ok\n", "text/plain")
                return
            if path == "/":
                self.send_body(200, INDEX, "text/html; charset=utf-8")
                return
            if not self._authorized():
                return
            if path == "/status":
                self._json(200, service.status())
            elif path == "/metrics":
                self.send_body(200, exposition(service), METRICS_TYPE)
            else:
                service.count_rejected(404)
                self._json(404, {"error": f"no such endpoint {path}"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path != "/alertmanager":
                self._drain()
                service.count_rejected(404)
                self._json(404, {"error": f"no such endpoint {path}"})
                return
            self._drain_if_refused = True
            if not self._authorized():
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._drain()
                self._refuse(415, f"Content-Type must be application/json, got {ctype!r}")
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._refuse(411, "Content-Length required", close=True)
                return
            if int(length) > limit:
                self._refuse(
                    413, f"body of {length} bytes is over the limit of {limit}", close=True
                )
                return
            body = self.rfile.read(int(length))
            try:
                messages = parse(body)
            except PayloadError as err:
                self._refuse(err.status, str(err))
                return
            try:
                new, dup = service.accept(messages, source="webhook")
            except Exception as err:  # noqa: BLE001 isolation boundary: outbox unwritable, AM retries
                log.error("cannot write %d alerts to the outbox: %s", len(messages), err)
                service.count_rejected(503)
                self._json(503, {"error": "outbox unavailable; retry"})
                return
            self._json(200, {"accepted": len(messages), "new": new, "duplicates": dup})

        _drain_if_refused = False

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization")
            if creds.check(header):
                return True
            if self._drain_if_refused:
                self._drain()
            if header:
                self._refuse(403, "wrong credentials")
            else:
                self._refuse(401, "credentials required (bearer token or basic auth)")
            return False

        def _drain(self) -> None:
            length = self.headers.get("Content-Length") or "0"
            if length.isdigit() and int(length) <= limit:
                self.rfile.read(int(length))
            else:
                self.close_connection = True

        def _refuse(self, code: int, why: str, close: bool = False) -> None:
            service.count_rejected(code)
            log.info("refused a request from %s: %d %s", self.address_string(), code, why)
            extra = {"WWW-Authenticate": 'Bearer realm="poolwatch"'} if code == 401 else {}
            if close:
                self.close_connection = True
                extra["Connection"] = "close"
            self._json(code, {"error": why}, extra)

        def _json(self, code: int, doc: Any, extra: dict[str, str] | None = None) -> None:
            self.send_body(code, json.dumps(doc).encode() + b"\n", "application/json", extra)

    return Handler
