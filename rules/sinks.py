"""Where the engine's notifications and actions go: across processes over HTTP, or to the log.

The parts may not import each other (DESIGN.md), so the engine talks to the alerts receiver and to
the controller through `poolwatch.actions` only: in one process any `Notifier` / `ActionSink`
object plugs in; across processes these HTTP clients speak the receiver's Alertmanager webhook
(`POST /alertmanager`, version 4) and the controller's `POST /actions`.

Both receivers are idempotent (same `dedup_key` / `NodeAction.key`, same effect), so a client
that is not sure whether a request arrived simply reports failure and the engine sends again.
Tokens are sent as `Authorization: Bearer ...` and never logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from poolwatch.actions import ActionResult, AlertMessage, NodeAction

log = logging.getLogger(__name__)
RECEIVER = "poolwatch-rules"
_OUTCOMES = ("done", "already", "deferred", "refused", "dry-run", "failed")


def _endpoint(url: str, path: str) -> str:
    """`url` as given when it names a path, else `url` + `path` (http://a:9481 -> /alertmanager)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url if parts.path not in ("", "/") else url.rstrip("/") + path


def webhook_body(messages: Sequence[AlertMessage]) -> dict[str, Any]:
    """Alertmanager's webhook document (version 4) carrying `messages` as one group."""
    firing = any(m.status == "firing" for m in messages)
    return {
        "version": "4",
        "groupKey": '{}:{receiver="' + RECEIVER + '"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": RECEIVER,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [m.to_alertmanager() for m in messages],
    }


def _post(url: str, doc: dict[str, Any], token: str | None, timeout: float) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(doc).encode(), headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class WebhookNotifier:
    """POSTs each batch as one Alertmanager webhook to the alerts receiver."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = _endpoint(url, "/alertmanager")
        self.token = token
        self.timeout = timeout

    def notify(self, messages: list[AlertMessage]) -> bool:
        if not messages:
            return True
        try:
            status, body = _post(self.url, webhook_body(messages), self.token, self.timeout)
        except OSError as err:
            log.warning("notification to %s not sent (will retry): %s", self.url, err)
            return False
        if not 200 <= status < 300:
            log.warning("notification to %s refused with HTTP %d (will retry): %s", self.url,
                        status, body[:200].decode(errors="replace"))  # fmt: skip
            return False
        return True


class HttpActionSink:
    """POSTs each action as `NodeAction.to_json()` to the controller's `/actions`; the answer is
    `{"outcome": ..., "detail": ...}`. Never raises: an unreachable or confused controller is a
    `failed` result, which the engine retries with the same key."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = _endpoint(url, "/actions")
        self.token = token
        self.timeout = timeout

    def submit(self, action: NodeAction) -> ActionResult:
        try:
            status, body = _post(self.url, action.to_json(), self.token, self.timeout)
        except OSError as err:
            return ActionResult("failed", f"{self.url}: {err}")
        try:
            doc = json.loads(body)
            outcome, detail = doc["outcome"], str(doc.get("detail", ""))
        except (ValueError, KeyError, TypeError):
            return ActionResult("failed", f"{self.url}: HTTP {status}, not an action result")
        if outcome not in _OUTCOMES:
            return ActionResult("failed", f"{self.url}: unknown outcome {outcome!r}")
        return ActionResult(outcome, detail)


class LogNotifier:
    """The default notifier: one log line per message (nothing else is told)."""

    def notify(self, messages: list[AlertMessage]) -> bool:
        for m in messages:
            log.warning("%s %s %s %s", m.kind, m.labels.get("alertname", ""), m.fingerprint,
                        dict(m.labels))  # fmt: skip
        return True


class LogActionSink:
    """The default action sink: logs what the controller would be asked, changes nothing."""

    def submit(self, action: NodeAction) -> ActionResult:
        log.warning("action %s node=%s pool=%s job=%s code=%s dry_run=%s key=%s (%s)",
                    action.kind, action.node, action.pool, action.job, action.fault_code,
                    action.dry_run, action.key, action.reason)  # fmt: skip
        return ActionResult("dry-run", "no controller configured: logged only")


def read_token(path: str | None) -> str | None:
    """A bearer token from a file (trailing newline stripped); None without a path."""
    if not path:
        return None
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip() or None
