"""`poolwatch alerts amconfig`: the Alertmanager `receivers` + `route` that point at us.

Timing choices: `repeat_interval` is half the reminder wait (at most 4 h, Alertmanager's
default), so Alertmanager keeps confirming a firing alert more often than a reminder falls due;
the repeats themselves are absorbed by the outbox's dedup key (docs/alerts.md). `send_resolved`
is on because resolved notifications are a kind we send. `max_alerts: 0` (no truncation): the
receiver groups large bursts itself."""

from __future__ import annotations

from pathlib import Path

import yaml

from poolwatch.core.config import ConfigError

from .client import base_url, server_cert, web_config
from .settings import AlertsSettings


def _duration(seconds: float) -> str:
    seconds = max(60, int(seconds))
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def snippet(
    settings: AlertsSettings,
    url: str | None = None,
    inline: bool = False,
    user: str | None = None,
    password_file: Path | None = None,
) -> str:
    """The route and receiver. Alertmanager authenticates with the bearer token, else the first
    `auth.basic_users` user, else `user` with `password_file` (a user of the web config file,
    whose password the receiver knows only as a hash); `user` wins when given."""
    webhook: dict = {
        "url": (url or base_url(settings)).rstrip("/") + "/alertmanager",
        "send_resolved": True,
        "max_alerts": 0,
    }
    http: dict = {}
    auth = settings.auth
    web_users = web_config(settings).basic_auth_users
    if user is None and not auth.bearer_token_file and not auth.basic_users and web_users:
        raise ConfigError(
            f"the receiver's users are in its web config file ({settings.web_config_file}), "
            "which keeps only their hashes: give --user and --password-file for Alertmanager"
        )
    token, users = auth.secrets() if inline else (None, {})
    if user is not None:
        if inline:
            text = password_file.read_text().rstrip("\n") if password_file else ""
            secret = {"password": text}
        else:
            secret = {"password_file": str(password_file)} if password_file else {}
        http["basic_auth"] = {"username": user, **secret}
    elif auth.bearer_token_file:
        cred = (
            {"credentials": token} if inline else {"credentials_file": str(auth.bearer_token_file)}
        )
        http["authorization"] = {"type": "Bearer", **cred}
    elif auth.basic_users:
        user, path = next(iter(auth.basic_users.items()))
        secret = {"password": users[user]} if inline else {"password_file": str(path)}
        http["basic_auth"] = {"username": user, **secret}
    cert = server_cert(settings)
    if cert is not None:  # a self-signed certificate is its own CA; else give the CA's file
        http["tls_config"] = {"ca_file": str(cert)}
    if http:
        webhook["http_config"] = http
    doc = {
        "route": {
            "receiver": "poolwatch",
            "group_by": ["alertname", "pool"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": _duration(min(4 * 3600, settings.reminder_wait / 2)),
        },
        "receivers": [{"name": "poolwatch", "webhook_configs": [webhook]}],
    }
    head = (
        "# Alertmanager route and receiver for the poolwatch alerts receiver "
        "(poolwatch alerts amconfig)\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)
