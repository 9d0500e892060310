"""Alertmanager's alert fingerprint, for payloads that carry none.

Alertmanager before 0.19 (and some Alertmanager-compatible senders) leave `fingerprint` out of
the webhook's alerts. The outbox keys notifications on it, so we compute it the way Alertmanager
does (prometheus/common `model.LabelSet.Fingerprint`, model/signature.go and fingerprinting.go):
FNV-1a 64-bit over the label names sorted, each name and each value followed by the separator
byte 0xff (it cannot occur in UTF-8, so `{a="1"}` and `{a1=""}` differ), printed as 16 lower-case
hex digits (`%016x`). An empty label set hashes to the FNV offset basis.

The rule engine has its own copy: the parts of the stack do not import each other, and twenty
lines are cheaper than a shared module both would have to agree on.
"""

from __future__ import annotations

from collections.abc import Mapping

OFFSET64 = 0xCBF29CE484222325
PRIME64 = 0x100000001B3
SEPARATOR = b"\xff"
_MASK = 0xFFFFFFFFFFFFFFFF


def _add(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * PRIME64) & _MASK
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """The label set's fingerprint as Alertmanager prints it."""
    h = OFFSET64
    for name in sorted(labels):
        # surrogatepass: a label value that is not valid Unicode still gets a stable key
        h = _add(h, name.encode("utf-8", "surrogatepass") + SEPARATOR)
        h = _add(h, labels[name].encode("utf-8", "surrogatepass") + SEPARATOR)
    return f"{h:016x}"
