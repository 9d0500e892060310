"""The rule engine's own web pages, on the port it serves its metrics from (9480 by default).

`/` names the engine and links the rest; `/alerts` lists every pending and firing alert (labels,
value, since when, the rule's file:line); `/status` lists every rule with its failed evaluations
and last error (and the rules the source refused, with the reason); `/silences` the local
silences. `/api/alerts`, `/api/status` and `/api/silences` are the same as JSON
(`poolwatch rules alerts` reads `/api/alerts`). `/metrics` and `/healthz` as before.

Everything shown comes from the rule files and the alerts' labels, so every value is escaped.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

from poolwatch.core.httpbase import Handler, Server

log = logging.getLogger(__name__)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TITLE = "poolwatch rule engine"


class EngineView(Protocol):
    def active_alerts(self) -> list[dict[str, Any]]: ...
    def rule_status(self) -> list[dict[str, Any]]: ...
    def health(self, interval: float) -> tuple[bool, str]: ...


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return ""
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ago = max(0.0, now - ts)
    span = (
        f"{ago / 3600:.1f}h" if ago >= 3600 else f"{ago / 60:.0f}m" if ago >= 60 else f"{ago:.0f}s"
    )
    return f"{stamp} ({span} ago)"


def _page(title: str, body: str) -> bytes:
    nav = " · ".join(
        f'<a href="{p}">{n}</a>'
        for p, n in (("/", "home"), ("/alerts", "alerts"), ("/status", "rules"),
                     ("/silences", "silences"), ("/metrics", "metrics"))
    )  # fmt: skip
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
        ".firing{color:#b00}.pending{color:#a60}code{font-size:90%}</style></head><body>"
        f"<p>{nav}</p><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    ).encode()


def _labels(labels: dict[str, str]) -> str:
    return " ".join(
        f"<code>{html.escape(k)}={html.escape(json.dumps(v, ensure_ascii=False))}</code>"
        for k, v in sorted(labels.items())
        if k != "alertname"
    )


def _value(v: float | None) -> str:
    return "" if v is None else html.escape(f"{v:g}")


def alerts_page(alerts: Sequence[dict[str, Any]], now: float) -> bytes:
    if not alerts:
        return _page(f"{TITLE}: alerts", "<p>No alert is pending or firing.</p>")
    rows = "".join(
        f'<tr class="{html.escape(a["state"])}"><td>{html.escape(a["alertname"])}</td>'
        f"<td>{html.escape(a['state'])}{' (silenced)' if a.get('silenced') else ''}</td>"
        f"<td>{_labels(a['labels'])}</td><td>{_value(a['value'])}</td>"
        f"<td>{_when(a['active_since'], now)}</td><td>{_when(a['fired_at'], now)}</td>"
        f"<td><code>{html.escape(a['rule_file'])}</code></td></tr>"
        for a in alerts
    )
    firing = sum(1 for a in alerts if a["state"] == "firing")
    body = (
        f"<p>{firing} firing, {len(alerts) - firing} pending.</p><table><tr><th>alert</th>"
        "<th>state</th><th>labels</th><th>value</th><th>active since</th><th>firing since</th>"
        f"<th>rule</th></tr>{rows}</table>"
    )
    return _page(f"{TITLE}: alerts", body)


def status_page(rules: Sequence[dict[str, Any]], now: float) -> bytes:
    rows = "".join(
        f"<tr><td>{html.escape(r['rule'])}</td><td><code>{html.escape(r['rule_file'])}</code></td>"
        f"<td>{html.escape(r['state'])}</td><td>{r['failures']}</td>"
        f"<td>{html.escape(r['last_error'])}</td><td>{_when(r['last_error_at'], now)}</td></tr>"
        for r in rules
    )
    failing = sum(1 for r in rules if r["failures"])
    body = (
        f"<p>{len(rules)} rules; {failing} with failed evaluations.</p><table><tr><th>rule</th>"
        "<th>file</th><th>state</th><th>failed evaluations</th><th>last error</th><th>at</th>"
        f"</tr>{rows}</table>"
    )
    return _page(f"{TITLE}: rules", body)


def silences_page(silences: Sequence[dict[str, Any]], now: float) -> bytes:
    if not silences:
        return _page(f"{TITLE}: silences", "<p>No silence is active.</p>")
    rows = "".join(
        f"<tr><td>{html.escape(s['id'])}</td><td><code>{html.escape(', '.join(s['matchers']))}"
        f"</code></td><td>{_when(s['starts_at'], now)}</td><td>{_when(s['ends_at'], now)}</td>"
        f"<td>{html.escape(s['author'])}</td><td>{html.escape(s['comment'])}</td></tr>"
        for s in silences
    )
    body = (
        "<table><tr><th>id</th><th>matchers</th><th>from</th><th>until</th><th>by</th>"
        f"<th>comment</th></tr>{rows}</table>"
    )
    return _page(f"{TITLE}: silences", body)


def index_page() -> bytes:
    body = (
        "<p>Evaluates poolwatch's alert rules and sends their notifications and actions.</p><ul>"
        '<li><a href="/alerts">/alerts</a>: pending and firing alerts</li>'
        '<li><a href="/status">/status</a>: every rule, its failed evaluations and last error</li>'
        '<li><a href="/silences">/silences</a>: silences in effect</li>'
        '<li><a href="/metrics">/metrics</a>: the engine\'s own metrics</li>'
        '<li><a href="/healthz">/healthz</a>: 200 while evaluations keep coming</li>'
        '<li>JSON: <a href="/api/alerts">/api/alerts</a>, <a href="/api/status">/api/status'
        '</a>, <a href="/api/silences">/api/silences</a></li></ul>'
    )
    return _page(TITLE, body)


def make_handler(
    engine: EngineView,
    metrics: Callable[[], bytes],
    interval: float,
    silences: Callable[[], list[dict[str, Any]]] = list,
    clock: Callable[[], float] = time.time,
) -> type[Handler]:
    class EngineHandler(Handler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            now = clock()
            page = "text/html; charset=utf-8"
            data = "application/json"
            if path == "/metrics":
                self.send_body(200, metrics(), METRICS_TYPE)
            elif path == "/healthz":
                ok, text = engine.health(interval)
                self.send_body(200 if ok else 503, text.encode(), "text/plain; charset=utf-8")
            elif path == "/":
                self.send_body(200, index_page(), page)
            elif path == "/alerts":
                self.send_body(200, alerts_page(engine.active_alerts(), now), page)
            elif path == "/status":
                self.send_body(200, status_page(engine.rule_status(), now), page)
            elif path == "/silences":
                self.send_body(200, silences_page(silences(), now), page)
            elif path == "/api/alerts":
                self.send_body(200, json.dumps({"alerts": engine.active_alerts()}).encode(), data)
            elif path == "/api/status":
                self.send_body(200, json.dumps({"rules": engine.rule_status()}).encode(), data)
            elif path == "/api/silences":
                self.send_body(200, json.dumps({"silences": silences()}).encode(), data)
            else:
                self.send_body(404, b"not found\n", "text/plain")

    return EngineHandler


def serve(
    engine: EngineView,
    metrics: Callable[[], bytes],
    address: tuple[str, int],
    interval: float,
    silences: Callable[[], list[dict[str, Any]]] = list,
) -> ThreadingHTTPServer:
    """Bind (not yet serving); port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    server_cls = type("EngineServer", (Server,), {"address_family": family})
    return server_cls(address, make_handler(engine, metrics, interval, silences))
