"""Kubernetes label selectors (`labelSelector`, and `nodeSelector` when creating a pool).

The seed's list-pools filter is named `labelSelector`; a caller who knows Kubernetes expects its
syntax, so this is that syntax: comma-separated requirements, each `key=value`, `key==value`,
`key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` (exists) or `!key` (does not exist).
A selector that does not parse is an `ApiError` naming the parameter, never a silent match-all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .errors import ApiError

Requirement = Callable[[Mapping[str, str]], bool]
_KEY = r"[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^()]*)\)$")
_EQ = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*({_VALUE})$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")


def parse(text: str, parameter: str = "labelSelector") -> Requirement:
    """A predicate over a label map; the empty selector matches everything."""
    reqs = [_requirement(part.strip(), parameter) for part in _split(text) if part.strip()]
    return lambda labels: all(r(labels) for r in reqs)


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c` is two requirements)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _requirement(part: str, parameter: str) -> Requirement:
    if m := _SET.match(part):
        key, op = m.group(1), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if not values:
            raise _bad(parameter, part, "a set needs at least one value")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.match(part):
        key, op, value = m.group(1), m.group(3), m.group(4)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(part):
        neg, key = m.group(1) == "!", m.group(2)
        return lambda labels: (key in labels) != neg
    raise _bad(parameter, part, "expected key=value, key!=value, key in (a,b), key notin (a,b), "
                                "key or !key")  # fmt: skip


def _bad(parameter: str, part: str, why: str) -> ApiError:
    return ApiError(400, "PW.0107", f"{parameter}: cannot parse {part!r}: {why}", parameter)
