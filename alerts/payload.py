"""Alertmanager webhook payloads (version 4) -> `AlertMessage`s, validated strictly.

Strict because what we accept is written to the outbox and mailed to people: a payload that is
not what Alertmanager sends is refused whole (HTTP 422 with the field that is wrong), so nothing of
it is stored. Field list: Alertmanager docs/configuration.md `<webhook_config>`.

But a 4xx tells Alertmanager not to retry, so refusing a payload a real sender writes loses the
notification for good. What every Alertmanager release from 0.15 on and Grafana's
Alertmanager-compatible webhook send is accepted (tests/fixtures/alertmanager/ holds one payload
per release line):
- no per-alert `fingerprint` (Alertmanager before 0.19): computed from the labels as
  Alertmanager computes it (`alerts.fingerprint`);
- no `truncatedAlerts` or `groupKey` (older releases): they are optional;
- an empty map written as `[]` or `null` (`groupLabels` of some senders, `annotations` of an
  alert that has none): an empty map;
- Grafana's `"version": "1"` with its `orgId`, and its extra fields (`values`, `silenceURL`, ...).
Label and annotation text that is not valid Unicode (a lone surrogate such as `\ud800`, which
JSON can spell) is kept readable as a backslash escape, so it can be stored and mailed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from poolwatch.core.actions import AlertMessage

from .fingerprint import fingerprint as label_fingerprint

_TOP = {
    "version": str,
    "groupKey": str,
    "truncatedAlerts": int,
    "status": str,
    "receiver": str,
    "groupLabels": dict,
    "commonLabels": dict,
    "commonAnnotations": dict,
    "externalURL": str,
    "alerts": list,
}
_REQUIRED_TOP = ("version", "status", "alerts")
_ALERT = {
    "status": str,
    "labels": dict,
    "annotations": dict,
    "startsAt": str,
    "endsAt": str,
    "generatorURL": str,
    "fingerprint": str,
}
_REQUIRED_ALERT = ("status", "labels")
#: fields that are maps, where some senders write an empty one as [] or null
_MAPS = ("groupLabels", "commonLabels", "commonAnnotations", "labels", "annotations")
#: "4": Alertmanager's webhook; "1": Grafana's Alertmanager-compatible webhook (with `orgId`)
_VERSIONS = {"4": None, "1": "orgId"}
MAX_ALERTS = 10_000


class PayloadError(ValueError):
    """A payload we refuse; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def parse_time(value: str, field: str) -> float | None:
    """RFC 3339 -> epoch seconds; Alertmanager's zero time (year 1) -> None."""
    if value.startswith("0001-01-01"):
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"{field}: expected an RFC 3339 time, got {value!r}") from None
    if stamp.tzinfo is None:
        raise PayloadError(f"{field}: time {value!r} has no time zone")
    try:  # 9999-12-31T23:59:59-01:00 parses but is past year 9999 in UTC: refuse it here (422)
        stamp.astimezone(dt.UTC)
    except OverflowError:
        raise PayloadError(f"{field}: time {value!r} is out of range") from None
    return stamp.timestamp()


def safe_text(value: str) -> str:
    """`value` with anything UTF-8 cannot encode (lone surrogates) as a visible `\\udXXX` escape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def readable(msg: AlertMessage) -> AlertMessage:
    """`msg` with every label and annotation `safe_text` (for in-process producers, whose
    strings did not come through `parse`)."""
    return dataclasses.replace(
        msg,
        fingerprint=safe_text(msg.fingerprint),
        labels={safe_text(k): safe_text(v) for k, v in msg.labels.items()},
        annotations={safe_text(k): safe_text(v) for k, v in msg.annotations.items()},
    )


def _check_types(doc: Mapping[str, Any], spec: Mapping[str, type], where: str) -> None:
    for key, value in doc.items():
        want = spec.get(key)
        if want is None:
            continue  # newer Alertmanager fields are ignored, not refused
        if (want is int and isinstance(value, bool)) or not isinstance(value, want):
            raise PayloadError(
                f"{where}{key}: expected {want.__name__}, got {type(value).__name__}"
            )


def _strings(value: Mapping[str, Any], where: str) -> dict[str, str]:
    for k, v in value.items():
        if not isinstance(v, str):
            raise PayloadError(f"{where}.{k}: expected a string, got {type(v).__name__}")
    return {safe_text(k): safe_text(v) for k, v in value.items()}


def _empty_maps(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with an empty map written as `[]` or `null` turned into `{}` (a non-empty list is
    still refused by the type check)."""
    fixed = {k: {} for k in _MAPS if k in doc and doc[k] in ([], None)}
    return {**doc, **fixed} if fixed else doc


def _alert(doc: Any, i: int) -> AlertMessage:
    where = f"alerts[{i}]."
    if not isinstance(doc, dict):
        raise PayloadError(f"alerts[{i}]: expected an object")
    doc = _empty_maps(doc)
    _check_types(doc, _ALERT, where)
    for key in _REQUIRED_ALERT:
        if key not in doc:
            raise PayloadError(f"{where}{key}: required")
    status = doc["status"]
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}status: expected firing or resolved, got {status!r}")
    labels = _strings(doc["labels"], where + "labels")
    if not labels.get("alertname"):
        raise PayloadError(f"{where}labels.alertname: required")
    fp = doc.get("fingerprint") or label_fingerprint(labels)
    if len(fp) > 128:
        raise PayloadError(f"{where}fingerprint: expected at most 128 characters")
    return AlertMessage(
        kind=status,
        fingerprint=safe_text(fp),
        labels=labels,
        annotations=_strings(doc.get("annotations", {}), where + "annotations"),
        starts_at=parse_time(doc.get("startsAt", "0001-01-01T00:00:00Z"), where + "startsAt"),
        ends_at=parse_time(doc.get("endsAt", "0001-01-01T00:00:00Z"), where + "endsAt"),
        generator_url=safe_text(doc.get("generatorURL", "")),
    )


def parse(body: bytes) -> list[AlertMessage]:
    """The alerts of one webhook request; PayloadError (400 or 422) for anything else."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PayloadError(f"body is not JSON: {err}", 400) from None
    except RecursionError:  # the decoder's own depth limit: answer, don't drop the connection
        raise PayloadError("body is not JSON we accept: nested too deeply", 400) from None
    if not isinstance(doc, dict):
        raise PayloadError("body: expected a JSON object")
    doc = _empty_maps(doc)
    _check_types(doc, _TOP, "")
    for key in _REQUIRED_TOP:
        if key not in doc:
            raise PayloadError(f"{key}: required")
    marker = _VERSIONS.get(doc["version"], "")
    if marker == "" or (marker and marker not in doc):
        raise PayloadError(
            f'version: expected "4" (or Grafana\'s "1" with orgId), got {doc["version"]!r}'
        )
    if doc["status"] not in ("firing", "resolved"):
        raise PayloadError(f"status: expected firing or resolved, got {doc['status']!r}")
    if len(doc["alerts"]) > MAX_ALERTS:
        raise PayloadError(f"alerts: at most {MAX_ALERTS} per request", 413)
    return [_alert(a, i) for i, a in enumerate(doc["alerts"])]


def webhook(messages: list[AlertMessage], receiver: str = "poolwatch") -> dict[str, Any]:
    """The Alertmanager webhook body for `messages` (tests, the bench, in-process producers)."""
    status = "firing" if any(m.status == "firing" for m in messages) else "resolved"
    common = dict(set.intersection(*(set(m.labels.items()) for m in messages))) if messages else {}
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [m.to_alertmanager() for m in messages],
    }
