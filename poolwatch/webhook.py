"""The Alertmanager-shaped webhook client every part that tells people uses.

The rule engine and the controller both hand their `AlertMessage`s to the alerts receiver, which
may run in another process; the parts may not import each other (DESIGN.md), so the client lives
here in the core: `WebhookNotifier` implements `poolwatch.actions.Notifier` by POSTing each batch
as one Alertmanager webhook (version 4) to the receiver's `/alertmanager`, which is idempotent by
fingerprint, so a batch that may or may not have arrived is simply sent again. Tokens travel as
`Authorization: Bearer ...` and are never logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from poolwatch.core.actions import AlertMessage

log = logging.getLogger(__name__)
RECEIVER = "poolwatch-rules"


def endpoint(url: str, path: str) -> str:
    """`url` as given when it names a path, else `url` + `path` (http://a:9481 -> /alertmanager)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url if parts.path not in ("", "/") else url.rstrip("/") + path


def webhook_body(messages: Sequence[AlertMessage], receiver: str = RECEIVER) -> dict[str, Any]:
    """Alertmanager's webhook document (version 4) carrying `messages` as one group."""
    firing = any(m.status == "firing" for m in messages)
    return {
        "version": "4",
        "groupKey": '{}:{receiver="' + receiver + '"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [m.to_alertmanager() for m in messages],
    }


def post_json(
    url: str, doc: dict[str, Any], token: str | None, timeout: float
) -> tuple[int, bytes]:
    """POST `doc` as JSON; (status, body) for any HTTP answer, OSError when none came."""
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

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 10.0, receiver: str = RECEIVER
    ) -> None:
        self.url = endpoint(url, "/alertmanager")
        self.token, self.timeout, self.receiver = token, timeout, receiver

    def notify(self, messages: list[AlertMessage]) -> bool:
        if not messages:
            return True
        try:
            status, body = post_json(
                self.url, webhook_body(messages, self.receiver), self.token, self.timeout
            )
        except OSError as err:
            log.warning("notification to %s not sent (will retry): %s", self.url, err)
            return False
        if not 200 <= status < 300:
            log.warning("notification to %s refused with HTTP %d (will retry): %s", self.url,
                        status, body[:200].decode(errors="replace"))  # fmt: skip
            return False
        return True
