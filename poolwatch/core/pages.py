"""Small HTML pages every poolwatch server can serve at `/`: what it is, and links to its parts.

Why: a person who opens a server's address in a browser should learn what answers there, not get
a JSON error. The page has no scripts and loads nothing from elsewhere, so it works offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from socketserver import BaseServer
from typing import Any

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:1.5em auto;padding:0 1em;"
    "line-height:1.45;color:#1d2330}a{color:#1a5fb4}code{background:#eef1f5;padding:0 .2em}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #d8dde6;padding:.3em .6em;"
    "text-align:left;vertical-align:top}th{background:#eef1f5}"
)


def page(title: str, body: str, refresh: int | None = None) -> bytes:
    """A whole HTML document around `body` (already HTML); `refresh` reloads it every N s."""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    ).encode()


def index(title: str, intro: str, links: Sequence[tuple[str, str]]) -> bytes:
    """`/` of a server: `intro` (plain text) and each (path, what it is) as a link."""
    items = "\n".join(
        f'<li><a href="{html.escape(path)}">{html.escape(path)}</a>: {html.escape(what)}</li>'
        for path, what in links
    )
    return page(title, f"<p>{html.escape(intro)}</p>\n<ul>\n{items}\n</ul>")


def with_index(httpd: BaseServer, body: bytes) -> None:
    """Make `httpd` answer `/` with `body` (HTML), leaving every other path to its handler.

    For a server built by another part's `serve()` (the rule engine reuses the node exporter's
    metrics server, whose own `/` says "node exporter")."""
    base: Any = httpd.RequestHandlerClass

    class WithIndex(base):  # type: ignore[misc,valid-type]
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/":
                self.send_body(200, body, "text/html; charset=utf-8")
                return
            super().do_GET()

    httpd.RequestHandlerClass = WithIndex


#: `/` of the rule engine's metrics server
RULE_ENGINE_INDEX = index(
    "poolwatch rule engine",
    "Evaluates poolwatch's alert rules (against Prometheus, or locally over scraped samples), "
    "sends the notifications of firing and resolved alerts and hands their actions (isolate, "
    "replace, restart the job) to the controller.",
    [("/metrics", "the engine's own metrics: evaluations, alerts by state, failures"),
     ("/healthz", "200 while the rules are evaluated on schedule")],
)  # fmt: skip
