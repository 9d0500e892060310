"""Delivery: one worker thread per target, draining the outbox through apprise.

Why a thread per target: a target that is down (backoff) or slow (a webhook that times out) must
not hold back the others, and within one target the order must be kept: most urgent first. Each
worker claims the most urgent due group (`Outbox.next_batch`), renders one message for it, sends
it through one `apprise.Apprise` holding exactly this target (so its result is this target's
result), and records the outcome. What a failure does depends on whose it is
(alerts/failures.py): a target that cannot be reached backs off as a whole, exponentially, so
when it comes back the most urgent group goes first again; a message the target refuses waits
for its own retry (or is dead at once when no retry can help) while the worker goes on with the
next group, so one bad notification never delays the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .failures import Kind, classify, prepare_apprise_logging, reason
from .messages import TemplateError, Templates
from .outbox import Outbox, Row
from .redact import install, redact, scrub, secrets_in, usable
from .routing import is_email, with_recipient
from .settings import AlertsSettings, Target

log = logging.getLogger(__name__)


@dataclass
class Counters:
    """Counters for /metrics, by target; reset on restart as counters may."""

    messages: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, outcome)
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, target: str, outcome: str, rows: int) -> None:
        with self.lock:
            key = (target, outcome)
            self.messages[key] = self.messages.get(key, 0) + 1
            self.notifications[key] = self.notifications.get(key, 0) + rows


def send(url: str, subject: str, text: str, html: str) -> tuple[bool, str]:
    """Send one message to one apprise URL: (delivered, why not). The reason is what apprise
    logged during this send (it reports connection, HTTP and SMTP errors there, not as
    exceptions); `failures.classify` reads it."""
    import apprise

    target = apprise.Apprise(
        asset=apprise.AppriseAsset(app_id="poolwatch", app_desc="poolwatch", async_mode=False)
    )
    if not target.add(url):
        return False, "apprise cannot parse the target URL"
    body, fmt = (html, apprise.NotifyFormat.HTML) if is_email(url) else (text, "text")
    prepare_apprise_logging()
    result = target.notify(title=subject, body=body, body_format=fmt, log_level=logging.DEBUG)
    if result:
        return True, ""
    return False, reason([entry.message for entry in result.logs()])


def check_url(name: str, url: str) -> None:
    """Refuse at start a target URL that apprise cannot use (an unknown scheme, a malformed
    URL): found only at the first send, it would turn every notification for that target into a
    dead letter while the receiver looked healthy."""
    from poolwatch.core.config import ConfigError

    if not usable(url):
        raise ConfigError(
            f"targets.{name}: apprise cannot use the URL {redact(url)} "
            "(an unknown scheme or a malformed URL; apprise's documentation lists the forms)"
        )


class TargetWorker(threading.Thread):
    def __init__(
        self,
        target: Target,
        outbox: Outbox,
        settings: AlertsSettings,
        templates: Templates,
        counters: Counters,
        stop: threading.Event,
        sender: Callable[[str, str, str, str], tuple[bool, str]] = send,
    ) -> None:
        super().__init__(name=f"deliver-{target.name}", daemon=True)
        self.target = target
        self.url = target.resolve_url()
        if sender is send:  # tests that deliver through a fake sender may use fake schemes
            check_url(target.name, self.url)
        self.outbox, self.settings, self.templates = outbox, settings, templates
        self.counters, self.stop_event, self.sender = counters, stop, sender
        self.wake = threading.Event()
        self.tokens = float(target.rate_limit.messages)
        self._refilled = time.monotonic()
        self.backoff = 0.0
        self._unrecorded: list[Row] = []
        self._secrets = secrets_in(self.url)
        install(self._secrets, log)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                outcome = self.step()
            except Exception:  # isolation boundary: one bad batch must not end delivery
                log.exception("delivery to %s failed unexpectedly", self.target.name)
                outcome = "failed"
            if outcome == "failed":  # back off on the stop event: new work must not cut it short
                self.stop_event.wait(self.backoff or self.settings.retry.initial_backoff)
            elif outcome == "limited":
                self.stop_event.wait(self.target.rate_limit.per / self.target.rate_limit.messages)
            elif outcome == "idle":
                self.wake.wait(max(0.05, min(self.settings.group_wait, 0.5)))
                self.wake.clear()
        if self._unrecorded:  # stopping: one last try, or the restart sends these again
            try:
                self.outbox.mark_sent(self._unrecorded)
            except Exception:  # isolation boundary: logged; the restart re-queues them
                log.exception("could not record %d sent notifications", len(self._unrecorded))

    def _has_token(self) -> bool:
        """Token bucket: `messages` per `per` seconds, refilled continuously."""
        rate = self.target.rate_limit
        now = time.monotonic()
        self.tokens = min(
            rate.messages, self.tokens + (now - self._refilled) * rate.messages / rate.per
        )
        self._refilled = now
        return self.tokens >= 1.0

    def step(self) -> str:
        """Send the most urgent due batch: "sent", "failed" (the target is unreachable: back
        off), "rejected" (this message failed: go on with the next), "limited" or "idle"."""
        if self._unrecorded:  # sent, but not yet recorded: record it before sending anything
            self.outbox.mark_sent(self._unrecorded)  # raises while the outbox still fails
            self.counters.add(self.target.name, "sent", len(self._unrecorded))
            self._unrecorded = []
        if not self._has_token():
            return "limited"
        rows = self.outbox.next_batch(
            self.target.name, self.settings.group_wait, self.settings.group_max
        )
        if not rows:
            return "idle"
        self.tokens -= 1.0
        try:
            ok, why, kind = self._deliver(rows)
        except Exception as err:  # isolation boundary: the claimed rows must go back, not hang
            log.exception("sending to %s raised", self.target.name)
            ok, why, kind = False, f"unexpected {type(err).__name__} while sending", "message"
        if ok:
            self.backoff = 0.0
            self._unrecorded = rows  # until the outbox has it: a failed mark is retried first,
            self.outbox.mark_sent(rows)  # so the rows never wait in `sending` to be sent again
            self.counters.add(self.target.name, "sent", len(rows))
            self._unrecorded = []
            return "sent"
        return self._failed(rows, self._scrub(why), kind)

    def _failed(self, rows: list[Row], why: str, kind: Kind) -> str:
        retry = self.settings.retry
        dead = self.outbox.mark_failed(rows, why, retry.deadline, kind, self._row_backoff)
        self.counters.add(self.target.name, "failed", len(rows))
        if dead:
            self.counters.add(self.target.name, "dead", dead)
            log.error(
                "%d notification(s) to %s are dead (%s): %s",
                dead,
                self.target.name,
                "refused for good" if kind == "permanent" else f"past {retry.deadline:.0f}s",
                why,
            )
        if kind != "target":  # only this message failed: the others go on at once
            if kind == "message":
                log.warning("delivery of one message to %s failed (%s)", self.target.name, why)
            return "rejected"
        self.backoff = min(retry.max_backoff, max(retry.initial_backoff, self.backoff * 2))
        log.warning(
            "delivery to %s failed (%s); next try in %.1fs", self.target.name, why, self.backoff
        )
        return "failed"

    def _row_backoff(self, rejections: int) -> float:
        retry = self.settings.retry
        return min(retry.max_backoff, retry.initial_backoff * 2 ** max(0, rejections - 1))

    def _deliver(self, rows: list[Row]) -> tuple[bool, str, Kind]:
        """Render and send one message: (delivered, why not, kind of failure). A message that
        cannot be rendered or encoded is a permanent failure: no retry can fix it."""
        try:
            msg = self.templates.render(
                rows[0].kind, [r.alert for r in rows], self.settings.cluster_name
            )
            for part in (msg.subject, msg.text, msg.html):
                part.encode("utf-8")
        except TemplateError as err:
            return False, str(err), "permanent"
        except UnicodeError as err:
            return False, f"the message cannot be encoded: {err}", "permanent"
        ok, why = self.sender(
            with_recipient(self.url, rows[0].recipient), msg.subject, msg.text, msg.html
        )
        if ok:
            return True, "", "message"
        return False, why or "delivery failed", classify(why)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)
