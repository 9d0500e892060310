"""Target URLs without their secrets: for the log, `/status` and failure reasons.

apprise's `url(privacy=True)` masks what each plugin declares private (passwords, tokens), but
not what the generic webhooks carry wherever the operator put it: a header
(`json://h/hook?+X-Api-Key=K`), a payload or query parameter (`form://h/x?-apikey=K`,
`?token=K`), a token in the path (`json://h/hooks/3f9a...`). So on top of apprise's output we
fail closed:
- a query value is shown only when its key is one of the plugin's declared options that is not
  private (`method`, `format`, `from`, `to`, ...); every other value (headers, payload fields,
  unknown keys) is `****`;
- a path segment that looks like a token (16 characters or more, or 8 or more mixing letters
  and digits) is `****`;
- a password in the user info is `****`.
`secrets_in()` lists the raw secret strings of a URL, so free text (apprise's error messages, an
exception) can be scrubbed of them; `ScrubFilter` does that to every log record written (apprise
and urllib3 print URLs, headers and payloads at debug level).
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from typing import Any

MASK = "****"
#: apprise's generic webhooks, whose paths and parameters apprise does not know to be secret
_MIN_TOKEN, _MIN_MIXED = 16, 8


def _silent(_record: logging.LogRecord) -> bool:
    return False


def _plugin(url: str) -> Any:
    """apprise's plugin object for `url`. apprise logs the URL it loaded (with header values) at
    debug level; here that happens before the URL's secrets are known, so it is not logged."""
    import apprise

    logger = logging.getLogger("apprise")
    logger.addFilter(_silent)
    try:
        return apprise.Apprise.instantiate(url)
    finally:
        logger.removeFilter(_silent)


def _safe_keys(obj: Any) -> set[str]:
    """The query keys the plugin declares that are not private (nor aliases of private ones)."""
    cls = type(obj)
    tokens: dict[str, dict] = getattr(cls, "template_tokens", {}) or {}
    args: dict[str, dict] = getattr(cls, "template_args", {}) or {}
    safe = set()
    for key, spec in args.items():
        alias = spec.get("alias_of")
        aliases = alias if isinstance(alias, list | tuple) else [alias] if alias else []
        specs = [spec, *(tokens.get(a) or args.get(a) or {} for a in aliases)]
        if not any(s.get("private") for s in specs):
            safe.add(key.lower())
    return safe


def looks_like_token(segment: str) -> bool:
    text = urllib.parse.unquote(segment)
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    return len(text) >= _MIN_TOKEN or (len(text) >= _MIN_MIXED and mixed)


def _mask(url: str, safe: set[str]) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    path = "/".join(MASK if looks_like_token(s) else s for s in parts.path.split("/"))
    query = [
        (k, v if k.lower() in safe else MASK)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    text = urllib.parse.urlencode(query, safe="*@")
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, text, ""))


def usable(url: str) -> bool:
    """Whether apprise can build a notifier from `url` (a known scheme, well formed)."""
    return _plugin(url) is not None


def redact(url: str) -> str:
    """`url` as it may be shown: apprise's privacy form, then masked as the module says."""
    scheme = url.split("://", 1)[0]
    obj = _plugin(url)
    if obj is None:
        return f"{scheme}://(unparsable)"
    return _mask(obj.url(privacy=True), _safe_keys(obj))


def secrets_in(url: str) -> list[str]:
    """The raw secret strings of `url` (each also URL-quoted), longest first: what must never
    reach a log or `/status`. Whatever apprise or `redact` masks counts as secret."""
    obj = _plugin(url)
    safe = _safe_keys(obj) if obj is not None else set()
    shown = redact(url)
    parts = urllib.parse.urlsplit(url)
    found = [parts.password or ""]
    found += [
        v for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in safe
    ]  # fmt: skip
    netloc = [p for p in re.split(r"[@:]", parts.netloc) if not p.isdigit() or len(p) > 5]
    found += [p for p in netloc if p and p not in shown]  # masked by apprise (a bot token)
    found += [
        urllib.parse.unquote(p)
        for p in parts.path.split("/")
        if looks_like_token(p) or (len(p) >= 4 and p not in shown)  # masked by either
    ]
    found += [w for s in found for w in s.split() if len(w) >= 8]  # "Bearer <token>"
    out = {s for s in found if len(s) >= 3}
    out |= {urllib.parse.quote(s, safe="") for s in out}
    return sorted(out, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class ScrubFilter(logging.Filter):
    """Masks every registered secret in a record's message and traceback. Installed on the
    loggers that can see a target URL: apprise's (its debug lines print URLs and payloads) and
    the delivery code's (an exception from a sender can quote the URL)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def add(self, secrets: list[str]) -> None:
        with self._lock:
            merged = set(self._secrets) | set(secrets)
            self._secrets = sorted(merged, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        message = record.getMessage()
        clean = scrub(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, secrets)
        return True


SCRUB = ScrubFilter()


#: loggers of the libraries a delivery goes through; urllib3 logs each request's path and query
LIBRARY_LOGGERS = ("apprise", "urllib3.connectionpool", "smtplib")


def install(secrets: list[str], *loggers: logging.Logger) -> None:
    """Register `secrets` and put `SCRUB` on the root logger's handlers (every record that is
    written passes one) and on apprise's, urllib3's and `loggers` (for handlers added later)."""
    SCRUB.add(secrets)
    named = [logging.getLogger(n) for n in LIBRARY_LOGGERS]
    for where in (*logging.getLogger().handlers, *named, *loggers):
        if SCRUB not in where.filters:
            where.addFilter(SCRUB)
