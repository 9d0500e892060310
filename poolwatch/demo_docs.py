"""The repository's docs/*.md as HTML pages on the demo's site (`/docs/`).

The rules' runbook links are paths into this repository (`docs/rules.md#<alert>`); the demo sets
its own address as the runbook base URL, so a link in a demo notification opens here, on a
machine without internet access. Python-Markdown (already installed with apprise) draws the
pages; its `toc` extension gives each heading the id GitHub gives it
(`### PoolwatchCacheDirAlmostFull` -> `#poolwatchcachediralmostfull`), so the same links work on
GitHub and here.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from poolwatch.core.pages import page

#: the checkout's docs/ (absent from an installed wheel: the pages then say so)
DOCS = Path(__file__).resolve().parent.parent / "docs"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.md$")  # a file directly in docs/, nothing else


def runbook_base(site_url: str) -> str:
    """The runbook base URL that makes `docs/<file>.md#anchor` open on the demo's site."""
    return site_url.rstrip("/")


def index(docs: Path = DOCS) -> bytes:
    names = sorted(p.name for p in docs.glob("*.md")) if docs.is_dir() else []
    if not names:
        return page("poolwatch docs", "<p>The docs are not part of this installation: they are "
                    "the <code>docs/</code> folder of a poolwatch checkout.</p>")  # fmt: skip
    items = "\n".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in names)
    return page("poolwatch docs", f"<p>The reference and the runbooks.</p>\n<ul>\n{items}\n</ul>")


def render(name: str, docs: Path = DOCS) -> bytes | None:
    """`docs/<name>` as an HTML page, or None when there is no such file (or `name` is not
    a plain file name: no path ever leaves docs/)."""
    import markdown

    if not _NAME.match(name):
        return None
    path = docs / name
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"],
                             output_format="html")  # fmt: skip
    title = next((line.lstrip("# ").strip() for line in text.splitlines()
                  if line.startswith("# ")), name)  # fmt: skip
    body = re.sub(r"^<h1[^>]*>.*?</h1>\n?", "", body, count=1)  # page() prints the title
    return page(title, f'<p><a href="./">all docs</a></p>\n{body}')
