"""Small HTML pages every poolwatch server can serve at `/`: what it is, and links to its parts.

Why: a person who opens a server's address in a browser should learn what answers there, not get
a JSON error. The page has no scripts and loads nothing from elsewhere, so it works offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

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
