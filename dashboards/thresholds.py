"""Thresholds read from the shipped rule files, so a panel's red line is the rule's threshold.

Why read YAML and not import `poolwatch.rules`: the parts are independent (import-linter
contract), so the dashboards read `rules/default/*.yaml` as data. The directory is found
without importing the package (`importlib.util.find_spec` only locates it).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml


class ThresholdError(LookupError):
    """A panel names a rule that no shipped rule file defines, or a rule file is unreadable."""


@dataclass(frozen=True)
class RuleThreshold:
    rule: str
    op: str  # > >= < <= == !=
    value: float
    source: str  # file the rule came from, for docs and error messages


def rules_dir() -> Path:
    """`rules/default` of the installed or checked-out `poolwatch.rules`, located without import."""
    spec = importlib.util.find_spec("poolwatch.rules")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            if (Path(root) / "default").is_dir():
                return Path(root) / "default"
    fallback = Path(__file__).resolve().parent.parent / "rules" / "default"
    if fallback.is_dir():
        return fallback
    raise ThresholdError("cannot find the shipped rule files (rules/default/*.yaml)")


@functools.cache
def all_thresholds() -> dict[str, RuleThreshold]:
    """Every rule of the shipped rule files with its comparison and threshold."""
    out: dict[str, RuleThreshold] = {}
    for path in sorted(rules_dir().glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ThresholdError(f"{path}: not valid YAML: {err}") from None
        for i, rule in enumerate(doc.get("rules") or []):
            if not isinstance(rule, dict) or "name" not in rule or "threshold" not in rule:
                raise ThresholdError(f"{path}: rules[{i}] has no name or threshold")
            out[rule["name"]] = RuleThreshold(
                rule["name"], str(rule.get("op", ">")), float(rule["threshold"]), path.name
            )
    return out


def threshold(rule: str) -> RuleThreshold:
    """The threshold of one shipped rule; a typo in a dashboard fails the build, not Grafana."""
    try:
        return all_thresholds()[rule]
    except KeyError:
        raise ThresholdError(f"no shipped rule named {rule!r} (rules/default/*.yaml)") from None


#: rules some panel took a threshold from since start-up (for the docs page)
USED: set[str] = set()


def steps(rule: str) -> list[dict[str, object]]:
    """Grafana threshold steps: the bad side of the rule's threshold is red, the other green.

    For `>`/`>=` rules values from the threshold up are red; for `<`/`<=` values below it are."""
    t = threshold(rule)
    USED.add(rule)
    if t.op in (">", ">="):
        return [{"color": "green", "value": None}, {"color": "red", "value": t.value}]
    if t.op in ("<", "<="):
        return [{"color": "red", "value": None}, {"color": "green", "value": t.value}]
    raise ThresholdError(f"rule {rule} compares with {t.op}: no threshold line to draw")
