"""Which targets a notification goes to: per-target matchers, plus the job owner when asked.

Routing, grouping, inhibition and silences across alerts are Alertmanager's job; this only picks
among the receiver's own targets (like apprise tags), so one receiver can mail critical alerts to
on-call and post everything to a chat webhook.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

from poolwatch.core.actions import AlertMessage

from .outbox import Route
from .settings import AlertsSettings

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def routes(msg: AlertMessage, settings: AlertsSettings) -> list[Route]:
    out = [Route(t.name) for t in settings.targets if t.match.match(msg.labels)]
    owners = settings.job_owners
    if owners.enabled:
        found = dict.fromkeys(  # in label order, each address once
            o.strip() for o in msg.labels.get(owners.label, "").replace(";", ",").split(",")
        )
        valid = [o for o in found if _EMAIL.match(o)]  # anything else could redirect the mail
        if len(valid) > owners.max_recipients:
            log.warning(
                "alert %s lists %d owner addresses in %s; telling the first %d "
                "(job_owners.max_recipients)",
                msg.fingerprint,
                len(valid),
                owners.label,
                owners.max_recipients,
            )
        out += [Route(owners.via, o) for o in valid[: owners.max_recipients]]
    return out


def with_recipient(url: str, recipient: str) -> str:
    """A mail target's apprise URL with its recipients replaced by `recipient`.

    apprise's mailto/mailtos take recipients from the path (mailto://host/a@b) or `to=`; both are
    replaced, every other option (SMTP host, login, from, mode) is kept."""
    if not recipient:
        return url
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "to"]
    query.append(("to", recipient))
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, "", urllib.parse.urlencode(query), "")
    )


def is_email(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("mailto", "mailtos")
