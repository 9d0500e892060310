"""What the reason of a decision says, in the same words wherever it is shown: the audit records
(`poolwatch controller audit`), the node and job events, the notices, and the answers the rule
engine and the pool API get.

1. What was wrong, as ModelArts documents it: the isolation code and its description from the
   fault-code table (`fault code A050104 (ECC error occurred 64 times)`).
2. Kept apart, who asked: for a rule engine's action, `alert <alert name>: <its summary>`; for an
   operator's request, the operator's own words.

Why: an alert name (`PoolwatchGpuRetiredPages`), an alert's fingerprint (what the rule engine
and Alertmanager identify an alert by, and what an action's key is built from) or an alarm
number is not a fault code, and a reason that puts one where the code belongs sends an operator
to the wrong table. The code is what the taint carries and what ModelArts' documents name; the
alert stays useful to find the rule, so it is named as an alert, and notices carry it in their
own `alert` label next to `fault_code`. The action's key stays in the audit record's key field.
"""

from __future__ import annotations

from collections.abc import Mapping

from poolwatch.core.fault_codes import FAULT_CODES, describe


def fault(code: str) -> str:
    """`fault code A050104 (ECC error occurred 64 times)`: the code and what it means."""
    return describe(code)


def alert_name(labels: Mapping[str, str]) -> str:
    """The alert behind a rule engine's action (its `alertname` label), or ""."""
    return str(labels.get("alertname", ""))


def asked(reason: str, labels: Mapping[str, str]) -> str:
    """Who asked, in words: `alert <name>: <summary>` for a rule engine's action (whose reason
    is `<alertname>: <summary>`), else the reason as given."""
    name = alert_name(labels)
    if not name:
        return reason
    summary = reason.removeprefix(f"{name}:") if reason.startswith(f"{name}:") else reason
    summary = summary.strip().rstrip(".")  # a reason goes on after it ("; ...")
    return f"alert {name}: {summary}" if summary else f"alert {name}"


def because(code: str, why: str = "") -> str:
    """The reason of an isolation: the fault code first, then who asked (left out when it only
    repeats the code's description, as a driver upgrade's does)."""
    text = fault(code)
    known = FAULT_CODES.get(code)
    if why and not (known and why.strip().rstrip(".") == known.description.rstrip(".")):
        text += f"; {why}"
    return text
