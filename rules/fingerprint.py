"""Alertmanager's alert fingerprint: prometheus/common `model.LabelSet.Fingerprint`.

FNV-1a 64-bit over the label names and values, sorted by name, each name and each value followed
by the separator byte 0xff; Alertmanager prints it as 16 lower-case hex digits
(`model.Fingerprint.String`, `%016x`). An empty set hashes to the FNV offset basis.
"""

from __future__ import annotations

from collections.abc import Mapping

OFFSET64 = 0xCBF29CE484222325
PRIME64 = 0x100000001B3
SEPARATOR = 0xFF
_MASK = 0xFFFFFFFFFFFFFFFF


def _add(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * PRIME64) & _MASK
    return h


def fingerprint_int(labels: Mapping[str, str]) -> int:
    h = OFFSET64
    for name in sorted(labels):
        h = _add(h, name.encode())
        h = _add(h, bytes([SEPARATOR]))
        h = _add(h, labels[name].encode())
        h = _add(h, bytes([SEPARATOR]))
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """The label set's fingerprint as Alertmanager prints it ('%016x')."""
    return f"{fingerprint_int(labels):016x}"
