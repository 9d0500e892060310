"""Annotation templates as Prometheus expands them, for the subset the rule files use.

Prometheus renders each alert's annotations (Go templates) with the series' labels as `$labels`
and the sample's value as `$value` before it sends them; the engine must send the same text, so
a receiver cannot tell which evaluated the rule. `{{ $threshold }}` and `{{ $clear }}` are the
rule's own values, filled in when it compiles (`expand_rule`). Supported: `{{ $labels.NAME }}`,
`{{ $value }}` and `{{ $value | humanize }}`, `humanize1024`, `humanizePercentage`; anything
else is left as written (and `rules check` keeps the rule files to this subset by review).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

_TEMPLATE = re.compile(r"{{\s*\$(labels\.([A-Za-z_][A-Za-z0-9_]*)|value)\s*(?:\|\s*(\w+)\s*)?}}")


def go_float(v: float) -> str:
    """A float64 as Go's `%v` prints it (shortest digits; exponent below 1e-4 or from 1e6)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0" if math.copysign(1, v) > 0 else "-0"
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    text = "".join(map(str, digits))
    nd = len(text)
    dp = nd + int(exponent)  # position of the decimal point from the left
    exp = dp - 1
    minus = "-" if sign else ""
    if exp < -4 or exp >= 6:  # strconv: shortest "g" decides with precision 6
        mantissa = text[0] + ("." + text[1:] if nd > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{minus}0.{'0' * -dp}{text}"
    if dp >= nd:
        return f"{minus}{text}{'0' * (dp - nd)}"
    return f"{minus}{text[:dp]}.{text[dp:]}"


def _g4(v: float) -> str:
    """Go's `%.4g` (Python's matches it for finite values)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or not math.isfinite(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


_FILTERS = {"humanize": humanize, "humanize1024": humanize1024,
            "humanizePercentage": humanize_percentage}  # fmt: skip


def expand(text: str, labels: Mapping[str, str], value: float | None) -> str:
    """`text` with its `$labels`/`$value` templates filled in (a missing label is Go's
    '<no value>'); a template outside the subset stays as written."""
    if "{{" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        name, pipe = m.group(2), m.group(3)
        if name is not None:
            return labels.get(name, "<no value>") if pipe is None else m.group(0)
        if value is None:
            return m.group(0)
        if pipe is None:
            return go_float(value)
        fn = _FILTERS.get(pipe)
        return fn(value) if fn is not None else m.group(0)

    return _TEMPLATE.sub(one, text)


_RULE = re.compile(r"{{\s*\$(threshold|clear)\s*(?:\|\s*(\w+)\s*)?}}")


def percent(v: float) -> str:
    """A ratio as a percentage without the sign (0.9 -> '90'), for "over 90 % full"."""
    return f"{round(v * 100, 9):g}"


def expand_rule(text: str, threshold: float, clear: float | None) -> str:
    """`{{ $threshold }}` and `{{ $clear }}` (with `| percent`, `| humanize`,
    `| humanize1024`, `| humanizePercentage`) filled in with the rule's effective values. The
    compiler does this before Prometheus or the engine sees the text, so a summary follows an
    overridden threshold instead of repeating the shipped one."""
    if "{{" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        value = threshold if m.group(1) == "threshold" else clear
        if value is None:
            return m.group(0)
        pipe = m.group(2)
        if pipe is None:
            return go_float(value)
        fn = {"percent": percent, **_FILTERS}.get(pipe)
        return fn(value) if fn is not None else m.group(0)

    return _RULE.sub(one, text)


def expand_all(
    annotations: Mapping[str, str], labels: Mapping[str, str], value: float | None
) -> dict[str, str]:
    return {k: expand(v, labels, value) for k, v in annotations.items()}
