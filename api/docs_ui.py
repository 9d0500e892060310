"""The pool API's own pages: `/` (what this server is, with links) and `/docs` (Swagger UI).

Why not FastAPI's default `/docs`: it loads Swagger UI's script and stylesheet from a CDN, so on a
machine without internet access (the demo's usual home, and many clusters) the page stays blank.
Swagger UI's own distribution files come from the `swagger-ui-bundle-v2` package (Apache-2.0, the
files of swagger-api/swagger-ui's `dist/`) and are served from `/docs/static`, so the page works
offline.
"""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/docs/static"


def install(app: FastAPI, base_path: str = "/v2/demo") -> None:
    """Add `/`, `/docs` and Swagger UI's files to `app` (created with `docs_url=None`)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: try it",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(index_page(app.title, base_path))


def index_page(title: str, base_path: str) -> str:
    """A small HTML page naming the server and linking what a person can open in a browser."""
    t, b = html.escape(title), html.escape(base_path)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}}</style>
</head><body>
<h1>{t}</h1>
<p>Resource pools, their nodes and monitoring figures over HTTP. Every call under
<code>{b}/</code> needs the header <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<ul>
<li><a href="/docs">/docs</a>: every operation, with a form to try it (paste the token under
"Authorize")</li>
<li><a href="/openapi.json">/openapi.json</a>: the same as an OpenAPI document</li>
<li><a href="/healthz">/healthz</a>: 200 while the cluster answers</li>
</ul>
</body></html>
"""
