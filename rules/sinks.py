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

from poolwatch.core.actions import ActionResult, AlertMessage, NodeAction
from poolwatch.core.webhook import RECEIVER, WebhookNotifier, endpoint, post_json, webhook_body

__all__ = ["RECEIVER", "HttpActionSink", "LogActionSink", "LogNotifier", "WebhookNotifier",
           "read_token", "webhook_body"]  # fmt: skip

log = logging.getLogger(__name__)
_OUTCOMES = ("done", "already", "deferred", "refused", "dry-run", "failed")
# the webhook client is shared with the controller, so it lives in the core
_endpoint, _post = endpoint, post_json


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
