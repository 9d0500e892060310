"""Real parts for the alerts tests: an SMTP server (aiosmtpd), an HTTP sink for json:// and
form:// webhooks, the receiver in a thread, and Alertmanager-shaped payloads."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from poolwatch.alerts.receiver import Credentials, make_server
from poolwatch.alerts.service import AlertService
from poolwatch.alerts.settings import AlertsSettings
from poolwatch.core.actions import AlertMessage

# shared/captures/alertmanager/am_webhook_v4_firing_single_docker.json, verbatim: a real webhook
# body from a docker-compose Prometheus + Alertmanager (see its .source.txt there)
CAPTURED = """{
  "receiver": "webhook_receiver",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "HighValue",
        "instance": "api:8000",
        "job": "api",
        "severity": "high"
      },
      "annotations": {
        "summary": "poc_metric above 0.5"
      },
      "startsAt": "2022-10-04T13:32:56.014Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://9ef78e326c1f:9090/graph?g0.expr=poc_metric+%3E+0.5&g0.tab=1",
      "fingerprint": "948c667b1fc76492"
    }
  ],
  "groupLabels": {},
  "commonLabels": {
    "alertname": "HighValue",
    "instance": "api:8000",
    "job": "api",
    "severity": "high"
  },
  "commonAnnotations": {
    "summary": "poc_metric above 0.5"
  },
  "externalURL": "http://601cad658ee0:9093",
  "version": "4",
  "groupKey": "{}:{}",
  "truncatedAlerts": 0
}"""

SEVERITIES = ("critical", "warning", "info")


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str
    at: float = 0.0  # time.monotonic() when the server accepted it


class _SmtpHandler:
    def __init__(
        self,
        box: list[Mail],
        lock: threading.Lock,
        delay: float = 0.0,
        bounce: frozenset[str] = frozenset(),
    ) -> None:
        self.box, self.lock, self.delay, self.bounce = box, lock, delay, bounce

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.bounce:  # as a real MTA answers for an unknown mailbox
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:  # a slow server: keeps a delivery in flight for a while
            import asyncio

            await asyncio.sleep(self.delay)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = html = ""
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                text = part.get_content()
            elif part.get_content_type() == "text/html":
                html = part.get_content()
        with self.lock:
            self.box.append(
                Mail(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    str(msg["Subject"]),
                    text,
                    html,
                    time.monotonic(),
                )
            )
        return "250 OK"


@dataclass
class SmtpSink:
    """A real SMTP server on 127.0.0.1 (plain, no auth), restartable on the same port."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None
    delay: float = 0.0
    bounce: frozenset[str] = frozenset()  # addresses answered with 550 at RCPT

    def start(self) -> None:
        handler = _SmtpHandler(self.mails, self.lock, self.delay, self.bounce)
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, to: str = "ops@example.org", sender: str = "alerts@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}"

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)


class HttpSink:
    """A real HTTP server that records every POST body (apprise json:// and form://)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []  # the accepted ones
        self.requests: list[str] = []  # the path of every POST, accepted or not
        self.fail = False
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.requests.append(self.path)
                if sink.fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ctype = self.headers.get("Content-Type", "")
                doc = json.loads(body) if "json" in ctype else {"form": body.decode()}
                sink.bodies.append({**doc, "_path": self.path})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def receiver(
    settings: AlertsSettings, token: str | None = None, users: dict[str, str] | None = None
) -> Iterator[tuple[AlertService, str]]:
    """The service and its HTTP receiver in this process: (service, base URL)."""
    service = AlertService(settings)
    httpd = make_server(service, ("127.0.0.1", 0), Credentials(token, users or {}))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    service.start()
    try:
        yield service, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()


def settings(tmp: Path, targets: list[dict[str, Any]], **kw: Any) -> AlertsSettings:
    base: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "outbox": str(tmp / "outbox.sqlite"),
        "cluster_name": "atlas",
        "group_wait": 0.2,
        "targets": targets,
        "retry": {"initial_backoff": 0.1, "max_backoff": 0.5, "deadline": 60},
    }
    base.update(kw)
    return AlertsSettings.model_validate(base)


def alert(
    i: int,
    severity: str = "critical",
    status: str = "firing",
    node: str | None = None,
    **labels: str,
) -> AlertMessage:
    return AlertMessage(
        kind=status,  # type: ignore[arg-type]
        fingerprint=f"fp{i:06d}",
        labels={
            "alertname": "PoolwatchCacheDirAlmostFull",
            "severity": severity,
            "node": node or f"node-{i}",
            "pool": "pool-a",
            **labels,
        },
        annotations={"summary": f"/cache on node-{i} is 95% full"},
        starts_at=1_700_000_000.0 + i,
        ends_at=None if status == "firing" else 1_700_000_600.0 + i,
    )


def post(
    base: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/alertmanager",
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def get_json(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(cond: Callable[[], bool], deadline_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {deadline_s}s")
