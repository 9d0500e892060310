"""`poolwatch alerts status`: ask a running receiver for its /status and print it."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import AlertsSettings

if TYPE_CHECKING:
    from poolwatch.core.web.config import WebConfig


def web_config(settings: AlertsSettings) -> WebConfig:
    """The receiver's web config file as a client sees it (empty when none): its TLS and user
    names. Its key is never loaded here: a client need not be able to read the key."""
    from pydantic import ValidationError

    from poolwatch.core.config import ConfigError, read_yaml
    from poolwatch.core.web.config import WebConfig

    if settings.web_config_file is None:
        return WebConfig()
    data, _ = read_yaml(settings.web_config_file)
    try:
        return WebConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid web config in {settings.web_config_file}: {err}") from None


def server_cert(settings: AlertsSettings) -> Path | None:
    """The certificate the receiver serves: its `tls.cert_file`, else its web config file's
    `tls_server_config.cert_file`; None when it serves plain HTTP."""
    if settings.tls is not None:
        return settings.tls.cert_file
    tls = web_config(settings).tls_server_config
    return tls.cert_file if tls is not None else None


def base_url(settings: AlertsSettings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host, _, port = settings.listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"{'https' if server_cert(settings) else 'http'}://{host}:{port}"


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth_header(
    settings: AlertsSettings, user: str | None = None, password_file: Path | None = None
) -> str | None:
    """The Authorization header for the receiver: `user` with the password in `password_file`
    when given (a user of the web config file, whose password only its hash records), else the
    receiver's own bearer token, else its first `auth.basic_users` user."""
    if user is not None:
        from poolwatch.core.config import ConfigError

        try:
            password = password_file.read_text().rstrip("\n") if password_file else ""
        except OSError as err:
            raise ConfigError(
                f"--password-file: cannot read {password_file}: {err.strerror}"
            ) from None
        return basic_header(user, password)
    token, users = settings.auth.secrets()
    if token:
        return f"Bearer {token}"
    if users:
        first, password = next(iter(users.items()))
        return basic_header(first, password)
    return None


def fetch_status(
    settings: AlertsSettings,
    url: str | None = None,
    user: str | None = None,
    password_file: Path | None = None,
    ca_file: Path | None = None,
) -> dict[str, Any]:
    """GET /status. An https address is verified against the system's certificate
    authorities, or `ca_file`'s."""
    full = (url or base_url(settings)).rstrip("/") + "/status"
    if not full.startswith(("http://", "https://")):
        raise OSError(f"not an http(s) URL: {full}")
    req = urllib.request.Request(full)  # noqa: S310 (scheme checked above)
    header = auth_header(settings, user, password_file)
    if header:
        req.add_header("Authorization", header)
    ctx = None
    if req.full_url.startswith("https"):
        try:
            ctx = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as err:
            from poolwatch.core.config import ConfigError

            raise ConfigError(f"--ca-file: cannot use {ca_file}: {err}") from None
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
