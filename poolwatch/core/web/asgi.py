"""What every poolwatch HTTP server does at the connection level, for the pool API's uvicorn.

The threaded servers get it from `poolwatch.core.web.server`; uvicorn needs its own: out of the
box it closes an idle keep-alive connection after a request, but a connection that never
completes its first request (nothing sent, or headers trickled a byte at a time) stays open for
ever, and a request with both Transfer-Encoding and Content-Length is framed by the former (a
proxy in front may frame it by the latter: the request smuggling shape). So:

- `GuardedH11Protocol`: a connection must start a request within `IDLE_TIMEOUT` and deliver it
  whole (line, headers, body) within `READ_TIMEOUT` of its first byte, or it is closed;
- `reject_ambiguous_framing`: ASGI middleware answering 400 (and closing) to a request that
  carries both headers;
- `settings()`: the uvicorn settings that use them, with a concurrency cap, and the TLS of a
  web-config file (`poolwatch.core.web.config`): the same context the threaded servers use.

Who may call is the application's business (FastAPI answers in its own error shape), but it asks
the same `poolwatch.core.web.auth.Auth` as every other server.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

IDLE_TIMEOUT = 30.0  # seconds a connection may wait, sending nothing, for its next request
READ_TIMEOUT = 30.0  # a started request must arrive whole within this
KEEP_ALIVE = 5.0  # uvicorn's own idle timeout after an answer (its default)
MAX_CONNECTIONS = 256  # beyond this, new requests get 503 at once instead of queueing


class GuardedH11Protocol(H11Protocol):
    idle_timeout = IDLE_TIMEOUT
    read_timeout = READ_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None
    _started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if data and not self._started:
            self._started = True
            self._arm(self.read_timeout)
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the request arrived whole: the app and the write side take over

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._started = False
            self._arm(self.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def reject_ambiguous_framing(app: Any) -> Any:
    """ASGI middleware: 400 and close for Transfer-Encoding together with Content-Length."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            names = {name.lower() for name, _ in scope.get("headers", [])}
            if b"transfer-encoding" in names and b"content-length" in names:
                body = b'{"error_code":"PW.0100","error_msg":"both Transfer-Encoding and ' \
                       b'Content-Length","parameter":""}'  # fmt: skip
                await send({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"), (b"connection", b"close"),
                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def settings(tls: ssl.SSLContext | None = None) -> dict[str, Any]:
    """The uvicorn settings (for `uvicorn.run` or `uvicorn.Config`) that apply the guards, and
    serve HTTPS with `tls` (a context from `WebConfig.ssl_context()`); wrap the app in
    `reject_ambiguous_framing` too."""
    out: dict[str, Any] = {"http": GuardedH11Protocol, "timeout_keep_alive": int(KEEP_ALIVE),
                           "limit_concurrency": MAX_CONNECTIONS}  # fmt: skip
    if tls is not None:
        out["ssl_context_factory"] = lambda _config, _default: tls
    return out
