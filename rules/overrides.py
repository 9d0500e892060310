"""Overrides: change a shipped rule's threshold, timing, severity, labels or actions, or turn it
off, without copying its file.

An overrides file maps rule names to the fields to change:

    PoolwatchNodeCacheSpaceAlmostFull:
      threshold: 0.95      # fire over 95 % ...
      clear: 0.9           # ... and stay firing until it is back under 90 %
      for: 10m             # or periods: N (replaces the rule's own timing)
      severity: major
      labels: {team: storage}   # added to the rule's labels
      actions: [notify]
    PoolwatchJobHang:
      disabled: true

Every name must be a loaded rule and every field one of the above, or the file is refused with
file:line; the changed rule is validated again as a whole (a clear threshold on the wrong side
of the threshold is refused, with the override's line). Summaries and descriptions written with
`{{ $threshold }}` follow the new value. The engine, `rules check`, `rules compile` (so the
Prometheus rules carry the overrides too) and `rules test` all take `--overrides FILE`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from poolwatch.core.config import ConfigError, read_yaml

from .loader import LoadedGroup, Problem, RuleFileError, _describe, _line
from .model import Action, Duration, Number, Rule, Severity


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    threshold: Number | None = None
    clear: Number | None = None
    for_: Duration | None = Field(default=None, alias="for")
    periods: Annotated[int, Strict(), Field(ge=1)] | None = None
    severity: Severity | None = None
    labels: dict[str, Annotated[str, Strict()]] | None = None
    actions: list[Action] | None = None
    disabled: Annotated[bool, Strict()] = False


def _merged(rule: Rule, o: Override) -> dict[str, Any]:
    data = rule.model_dump(by_alias=True, exclude_none=True)
    if o.for_ is not None or o.periods is not None:
        for key in ("for", "periods", "window"):
            data.pop(key, None)
        data["for" if o.for_ is not None else "periods"] = o.for_ or o.periods
    for key in ("threshold", "clear", "severity", "actions"):
        value = getattr(o, key)
        if value is not None:
            data[key] = [a.model_dump() if isinstance(a, BaseModel) else a for a in value] \
                if key == "actions" else value  # fmt: skip
    if o.labels is not None:
        data["labels"] = {**data.get("labels", {}), **o.labels}
    return data


def apply(loaded: list[LoadedGroup], path: Path) -> list[LoadedGroup]:
    """`loaded` with the overrides in `path` applied (disabled rules removed); RuleFileError
    listing every problem with file:line."""
    try:
        data, lines = read_yaml(path)
    except ConfigError as err:
        raise RuleFileError(
            [Problem(path, None, None, str(err).removeprefix(f"{path}: "))]
        ) from None
    problems: list[Problem] = []
    known = {r.name: (i, r) for i, g in enumerate(loaded) for r in g.group.rules}
    overrides: dict[str, Override] = {}
    for name, raw in data.items():
        line = _line(lines, (str(name),))
        if name not in known:
            problems.append(Problem(path, line, str(name), "no loaded rule has this name"))
            continue
        try:
            overrides[name] = Override.model_validate(raw if raw is not None else {})
        except ValidationError as err:
            for item in err.errors():
                where = _line(lines, (str(name), *(str(p) for p in item["loc"])))
                problems.append(Problem(path, where, name, _describe(item)))
    groups = list(loaded)
    changed: dict[int, list[Rule]] = {}
    for name, o in overrides.items():
        index, rule = known[name]
        rules = changed.setdefault(index, list(groups[index].group.rules))
        position = next(i for i, r in enumerate(rules) if r is not None and r.name == name)
        if o.disabled:
            rules[position] = None  # type: ignore[call-overload]
            continue
        try:
            rules[position] = Rule.model_validate(_merged(rule, o))
        except ValidationError as err:
            for item in err.errors():
                where = _line(lines, (name,))
                problems.append(Problem(path, where, name, _describe(item)))
    if problems:
        raise RuleFileError(problems)
    for index, rules in changed.items():
        g = groups[index]
        kept = [r for r in rules if r is not None]
        groups[index] = replace(g, group=g.group.model_copy(update={"rules": kept}))
    return groups


def load_all(paths: list[Path], overrides: Path | None = None) -> list[LoadedGroup]:
    """Load the rule files `paths`, then apply `overrides` (when given)."""
    from .loader import load

    loaded = load(paths)
    return apply(loaded, overrides) if overrides is not None else loaded
