"""`poolwatch alerts status`: ask a running receiver for its /status and print it."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from typing import Any

from .settings import AlertsSettings


def base_url(settings: AlertsSettings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host, _, port = settings.listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"{'https' if settings.tls else 'http'}://{host}:{port}"


def auth_header(settings: AlertsSettings) -> str | None:
    token, users = settings.auth.secrets()
    if token:
        return f"Bearer {token}"
    if users:
        user, password = next(iter(users.items()))
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


def fetch_status(settings: AlertsSettings, url: str | None = None) -> dict[str, Any]:
    full = (url or base_url(settings)).rstrip("/") + "/status"
    if not full.startswith(("http://", "https://")):
        raise OSError(f"not an http(s) URL: {full}")
    req = urllib.request.Request(full)  # noqa: S310 (scheme checked above)
    header = auth_header(settings)
    if header:
        req.add_header("Authorization", header)
    ctx = ssl.create_default_context() if req.full_url.startswith("https") else None
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:  # noqa: S310
        return json.loads(resp.read())


def format_status(doc: dict[str, Any]) -> str:
    lines = [
        f"cluster {doc['cluster']}; oldest undelivered: "
        f"{doc['oldest_queued_seconds'] or 0:.0f}s; duplicates absorbed: {doc['duplicates']}",
        f"{'target':<16} {'pending':>7} {'failing':>7} {'sent':>7} {'dead':>6}  url / last error",
    ]
    for name, t in doc["targets"].items():
        pending = t["queued"] + t["sending"]  # undelivered, in flight or not
        lines.append(
            f"{name:<16} {pending:>7} {t['failing']:>7} {t['sent']:>7} {t['dead']:>6}  {t['url']}"
        )
        if t["last_error"]:
            lines.append(f"{'':<16} last error: {t['last_error']}")
    fault = doc.get("outbox", {}).get("fault")
    if fault:
        lines.append(f"OUTBOX {doc['outbox']['path']} FAILING: {fault}")
    return "\n".join(lines) + "\n"
