"""`poolwatch alerts import-apulis`: the Apulis repair-manager alert settings as poolwatch config.

Reads `ClusterBootstrap/config.yaml` (`repair-manager.cluster_name`, `repair-manager.alert.
{smtp_url, login, password, sender, receiver}`) and optionally `RepairManager/config/
rule-alerts.yaml` (`ecc_rule.{alerts_enabled, reminders_enabled, reminder_wait_time,
alert_job_owners}`), both as the seed prints them (shared/spec/alert-config.md §1.2, §1.4).

The seed names no SMTP port or TLS; we choose `mailtos://` (apprise: STARTTLS on 587), which
smtp.qq.com and smtp.office365.com both offer. The URL holds the password, so it goes to a
secret file (`--secrets-dir`), never into the printed config.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from poolwatch.core.config import ConfigError, read_yaml


def _block(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: object, field: str, path: Path) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise ConfigError(f"{path}: {field}: expected a string, got {type(value).__name__}")
    return str(value).strip()


def _read(files: list[Path]) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(repair-manager block, ecc_rule block, the file the mail settings came from)."""
    rm: dict[str, Any] = {}
    rule: dict[str, Any] = {}
    source = files[0]
    for path in files:
        data, _lines = read_yaml(path)
        if "repair-manager" in data:
            rm, source = _block(data, "repair-manager"), path
        if (
            "ecc_rule" in data
            and isinstance(data["ecc_rule"], dict)
            and ("reminder_wait_time" in data["ecc_rule"] or "alerts_enabled" in data["ecc_rule"])
        ):
            rule = data["ecc_rule"]
    if not rm:
        raise ConfigError(
            f"{files[0]}: no repair-manager block (expected the Apulis "
            "ClusterBootstrap/config.yaml)"
        )
    return rm, rule, source


def mail_url(alert: dict[str, Any], path: Path) -> tuple[str, list[str], list[str]]:
    """(apprise URL, receivers, notes) from the seed's alert block."""
    notes: list[str] = []
    host = _text(alert.get("smtp_url"), "repair-manager.alert.smtp_url", path)
    if not host:
        raise ConfigError(f"{path}: repair-manager.alert.smtp_url: required")
    host = host.removeprefix("smtp://").removeprefix("smtps://").rstrip("/")
    login = _text(alert.get("login"), "repair-manager.alert.login", path)
    password = _text(alert.get("password"), "repair-manager.alert.password", path)
    sender = _text(alert.get("sender"), "repair-manager.alert.sender", path) or login
    raw = alert.get("receiver") or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: repair-manager.alert.receiver: expected a list of addresses")
    receivers = [r.strip() for r in raw if isinstance(r, str) and r.strip()]
    if not receivers:
        notes.append("repair-manager.alert.receiver lists no address: add `to=` to the URL")
    if not login:
        notes.append("repair-manager.alert.login is empty: the URL has no SMTP login")
    query = [
        (k, v)
        for k, v in (
            ("user", login),
            ("pass", password),
            ("from", sender),
            ("to", ",".join(receivers)),
        )
        if v
    ]
    # %20, not "+": apprise unquotes but does not read "+" as a space
    encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
    url = f"mailtos://{host}" + (f"?{encoded}" if query else "")
    return url, receivers, notes


def convert(files: list[Path], secrets_dir: Path | None) -> tuple[str, list[str]]:
    """(poolwatch alerts YAML, notes for the operator)."""
    rm, rule, source = _read(files)
    alert = _block(rm, "alert")
    url, receivers, notes = mail_url(alert, source)
    has_secret = "pass=" in url
    target: dict[str, Any] = {"name": "email"}
    if has_secret and secrets_dir is not None:
        secrets_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets_dir / "mail.url"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(url + "\n")
        target["url_file"] = str(secret)
        notes.append(f"wrote the mail URL (with the password) to {secret}")
    elif has_secret:
        target["url_file"] = "/etc/poolwatch/secrets/mail.url"
        notes.append(
            "the mail URL holds the password: rerun with --secrets-dir DIR to write it "
            "to DIR/mail.url, or write it to /etc/poolwatch/secrets/mail.url yourself"
        )
    else:
        target["url"] = url
    settings = {**rm.get("alert", {}), **rule}  # rule-alerts.yaml keys may sit in either file
    enabled = settings.get("alerts_enabled", True) is not False
    out: dict[str, Any] = {
        "cluster_name": _text(rm.get("cluster_name"), "repair-manager.cluster_name", source)
        or "poolwatch",
        "targets": [target] if enabled else [],
        "reminders": settings.get("reminders_enabled", True) is not False,
        "reminder_wait": float(settings.get("reminder_wait_time", 86400)),
    }
    if not enabled:
        notes.append("alerts_enabled is False: no targets configured")
    if settings.get("alert_job_owners") is True:
        out["job_owners"] = {"enabled": True, "label": "owner_email", "via": "email"}
    head = (
        f"# poolwatch alerts settings converted from {', '.join(map(str, files))}\n"
        f"# receivers: {', '.join(receivers) or '(none)'}\n"
    )
    return head + yaml.safe_dump(out, sort_keys=False), notes
