"""The demo's rules: the shipped rule files with every period scaled to the demo's `--speed`.

Why scale: at `--speed 20` the simulated pool lives twenty seconds per real second, so a fault
that lasts ten simulated minutes is gone after thirty real seconds. Rules written for real time
(evaluated every minute, firing after two periods, averaging over ten minutes) would then never
see a fault long enough to fire. Dividing every period by the speed keeps each rule's meaning in
simulated time: "two periods of one simulated minute" stays two simulated minutes.

Scaled: a group's `interval`, a rule's `for`, a window's `range` and `step`, and every duration
inside an expression: ranges and subqueries (`[5m]`, `[10m:1m]`) and offsets (`offset 5m`).
Periods never go below `floor` (a range must hold a few scrapes for `rate` to answer). A rule that
measures time with timestamps (the hang rule's "unchanged for N minutes", `time() - ..._timestamp
_seconds < 900`) gets every timestamp multiplied by the speed, `time()` and each
`*_timestamp_seconds` series alike: their differences are then simulated seconds, while the
thresholds they are compared with stay as written. At speed 1 the files are copied unchanged.

The scaled files go to DATA/rules/ (the local rule engine reads them) and their Prometheus form,
from `rules.compile`, to DATA/rules/prometheus/ (Prometheus loads those).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from poolwatch.rules import compile as compiler
from poolwatch.rules.loader import load
from poolwatch.rules.model import duration_seconds, format_duration

# a range selector or subquery: [5m] or [10m:1m] or [1h:]; durations only, so a label regex
# such as "[0-9]+" never matches
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)(?::((?:\d+(?:ms|s|m|h|d|w|y))+)?)?\]")
_OFFSET = re.compile(r"\boffset\s+(-?)((?:\d+(?:ms|s|m|h|d|w|y))+)")
_TIME = re.compile(r"\btime\(\s*\)")
# an instant selector of a timestamp series (a range of one, `x_timestamp_seconds[5m]`, is left:
# it cannot be multiplied, and what reads it, such as `changes`, does not compare timestamps)
_STAMP = re.compile(
    r"\b[a-zA-Z_:][a-zA-Z0-9_:]*_timestamp_seconds(?:\s*\{[^}]*\})?(?!\w|\s*[{\[(])"
)


def scale_duration(text: str, speed: float, floor: float) -> str:
    """`text` (a Prometheus duration) divided by `speed`, never below `floor` seconds."""
    if speed == 1:
        return text
    return format_duration(max(floor, duration_seconds(text) / speed))


def scale_expr(expr: str, speed: float, floor: float) -> str:
    def one(m: re.Match[str]) -> str:
        out = "[" + scale_duration(m.group(1), speed, floor)
        if m.group(0).endswith(":]"):
            return out + ":]"
        if m.group(2):
            out += ":" + scale_duration(m.group(2), speed, floor)
        return out + "]"

    if speed == 1:
        return expr
    out = _RANGE.sub(one, expr)
    out = _OFFSET.sub(lambda m: f"offset {m[1]}{scale_duration(m[2], speed, floor)}", out)
    out = _TIME.sub(f"(time() * {speed:g})", out)
    return _STAMP.sub(lambda m: f"({m[0]} * {speed:g})", out)


def scale_group(doc: dict[str, Any], speed: float, floor: float) -> dict[str, Any]:
    """One rule file's YAML document with its periods scaled (a new dict)."""
    out = dict(doc)
    out["interval"] = scale_duration(doc["interval"], speed, floor)
    rules = []
    for raw in doc.get("rules", []):
        rule = dict(raw)
        rule["expr"] = scale_expr(rule["expr"], speed, floor)
        if "for" in rule:
            rule["for"] = scale_duration(rule["for"], speed, floor)
        if isinstance(rule.get("window"), dict):
            window = dict(rule["window"])
            for key in ("range", "step"):
                window[key] = scale_duration(window[key], speed, floor)
            rule["window"] = window
        rules.append(rule)
    out["rules"] = rules
    return out


def write(
    sources: list[Path], out: Path, speed: float, floor: float, runbook_base: str = ""
) -> tuple[list[Path], Path]:
    """Scale every file of `sources` into `out`, then compile them for Prometheus into
    `out/prometheus` (relative runbook links joined to `runbook_base`); returns (the scaled rule
    files, the Prometheus rule directory)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        stale.unlink()
    scaled = []
    for src in sources:
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
        path = out / src.name
        header = f"# {src.name} with every period divided by the demo's speed ({speed:g})\n"
        path.write_text(header + yaml.safe_dump(scale_group(doc, speed, floor), sort_keys=False,
                                                allow_unicode=True, width=100))  # fmt: skip
        scaled.append(path)
    prom = out / "prometheus"
    if prom.exists():
        for stale in prom.glob("*.yaml"):
            stale.unlink()
    compiler.write(load(scaled), prom, {}, runbook_base=runbook_base)
    return scaled, prom
