"""Why a delivery failed, and what that means for the notification.

apprise reports a failure as False plus log lines, not as an exception, so the reason is read
from the log entries apprise collected during that one send (`AppriseResult.logs()`), and
`classify` sorts it:

- `target`: the target cannot be reached, says it is unavailable or refuses us rather than the
  message (connection refused or timed out, TLS or SMTP login failure, SMTP 421, HTTP 401, 403,
  404, 407, 408, 429, 502, 503, 504). Every message would fail alike, so the
  whole target backs off and, when it is back, the most urgent notification goes first.
- `permanent`: the target answered that this message will never be accepted (an SMTP 5xx for a
  recipient or the data, HTTP 400/413/414/415/422), or the message cannot be built (a template
  error, text that cannot be encoded). Retrying cannot help: the notification is dead at once,
  with the reason.
- `message`: anything else the target answered (HTTP 500, an SMTP 4xx), or no answer to this
  message in time (an HTTP read timeout, an SMTP timeout after the connection was made: a
  webhook that hangs on one payload). Only this notification
  waits for its own retry (its own backoff, sent alone from then on); the others keep flowing.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Literal

Kind = Literal["target", "permanent", "message"]

#: answers that say the target, not this message, is the problem (unavailable, or our credentials
#: or URL are wrong: every message would get the same)
TARGET_HTTP = {401, 403, 404, 407, 408, 429, 502, 503, 504}
TARGET_SMTP = {421}
PERMANENT_HTTP = {400, 413, 414, 415, 422}
_HTTP = re.compile(r"error=(\d{3})\b")
_SMTP = re.compile(r"\((\d{3}), b['\"]|was refused: (\d{3})\b")
#: the connection never got to the message: apprise's SMTP connect/login phase and every HTTP
#: RequestException say "Connection error"; a read timeout is the one HTTP case that did
_UNREACHABLE = ("Connection error", "Connection refused", "Name or service")
_READ_TIMEOUT = "Read timed out"
_KEEP = ("Socket Exception", "error=", "refused", "failed", "Failed", "Connection error")


def classify(why: str) -> Kind:
    """The kind of a failure from apprise's log lines of one send (see the module docstring)."""
    if _READ_TIMEOUT in why:  # connected and sent, but no answer to this message in time
        return "message"
    if any(marker in why for marker in _UNREACHABLE):
        return "target"  # includes SMTP login/STARTTLS failures: apprise reports them so
    http = _HTTP.search(why)
    if http:
        code = int(http.group(1))
        if code in TARGET_HTTP:
            return "target"
        return "permanent" if code in PERMANENT_HTTP else "message"
    smtp = _SMTP.search(why)
    if smtp:
        code = int(smtp.group(1) or smtp.group(2))
        if code in TARGET_SMTP:
            return "target"
        return "permanent" if code >= 500 else "message"
    return "message"


class _Forward(logging.Handler):
    """apprise's logger runs at DEBUG so that a send's result carries the SMTP reply code (it is
    only logged at debug level); this handler passes on to the log only what the operator's
    log level asks for."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if record.levelno >= root.getEffectiveLevel():
            root.handle(record)


_FORWARD = _Forward()
_SETUP = threading.Lock()


def prepare_apprise_logging() -> None:
    """Idempotent: apprise's logger at DEBUG, not propagating, forwarding through `_Forward`."""
    with _SETUP:
        logger = logging.getLogger("apprise")
        if _FORWARD not in logger.handlers:
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger.addHandler(_FORWARD)


def reason(lines: list[str]) -> str:
    """The informative part of a failed send's log lines, for the operator."""
    kept = [line.strip() for line in lines if any(k in line for k in _KEEP)]
    return "; ".join(kept[-3:]) or "delivery failed"
