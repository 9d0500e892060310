"""Load rule files into validated groups, or report every problem with file, line and rule name.

A file is one group (rules/model.py). Each rule is validated on its own, so one bad rule does not
hide the problems of the next; then names are checked for duplicates across all files, since
Prometheus and the alert receiver key alerts by name. Nothing is returned unless everything is
valid: the caller keeps the rules it had (a broken rule file leaves the loaded rules in place).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from poolwatch.core.config import ConfigError, read_yaml

from .model import Group, Rule

#: the rule files poolwatch ships, compiled when `poolwatch rules compile` is given no file
DEFAULT_DIR = Path(__file__).parent / "default"


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    rule: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {f'rule {self.rule}: ' if self.rule else ''}{self.message}"


class RuleFileError(Exception):
    """One or more rule files are invalid; `problems` lists each with file, line and rule."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedGroup:
    path: Path
    group: Group
    #: rule name -> the line its entry starts on, for "file:line" on the engine's pages
    lines: Mapping[str, int] = field(default_factory=dict)

    def where(self, rule: str) -> str:
        line = self.lines.get(rule)
        return f"{self.path}:{line}" if line else str(self.path)


def default_files() -> list[Path]:
    return sorted(DEFAULT_DIR.glob("*.yaml"))


Lines = dict[tuple[str, ...], int]


def _line(lines: Lines, loc: tuple[str, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _union_noise(item: Any) -> bool:
    """An action is a word or {isolate: CODE}; report only the branch the input was meant for."""
    last = str(item["loc"][-1]) if item["loc"] else ""
    if last.startswith("literal["):
        return isinstance(item["input"], dict)
    return last == "Isolate" and not isinstance(item["input"], dict)


def _describe(item: Any) -> str:
    loc = [p for p in item["loc"] if not isinstance(p, int)]
    field = ".".join(str(p) for p in loc if p != "Isolate" and not str(p).startswith("literal["))
    msg = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{field}: {msg}" if field else msg


def _rule_name(raw: object) -> str | None:
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else None


def _load_one(path: Path, problems: list[Problem]) -> tuple[Group | None, Lines]:
    """The file's group (None when it has problems) and its YAML line index, which the
    duplicate check needs too (so each file is read once)."""
    try:
        data, lines = read_yaml(path)
    except ConfigError as err:
        problems.append(Problem(path, None, None, str(err).removeprefix(f"{path}: ")))
        return None, {}
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        problems.append(Problem(path, _line(lines, ("rules",)), None, "rules: expected a list"))
        return None, lines
    rules: list[Rule] = []
    before = len(problems)
    for i, raw in enumerate(raw_rules):
        try:
            rules.append(Rule.model_validate(raw))
        except ValidationError as err:
            for item in err.errors():
                if _union_noise(item):
                    continue
                loc = ("rules", str(i), *(str(p) for p in item["loc"]))
                problems.append(Problem(path, _line(lines, loc), _rule_name(raw), _describe(item)))
    try:
        group = Group.model_validate({**data, "rules": rules})
    except ValidationError as err:
        for item in err.errors():
            loc = tuple(str(p) for p in item["loc"])
            problems.append(Problem(path, _line(lines, loc), None, _describe(item)))
        return None, lines
    return (group if len(problems) == before else None), lines


def load(paths: Iterable[Path]) -> list[LoadedGroup]:
    """Validated groups of `paths`, or RuleFileError listing every problem in every file."""
    problems: list[Problem] = []
    loaded: list[LoadedGroup] = []
    line_index: dict[Path, Lines] = {}
    for path in paths:
        group, lines = _load_one(Path(path), problems)
        line_index[Path(path)] = lines
        if group is not None:
            where = {
                r.name: _line(lines, ("rules", str(i))) or 0 for i, r in enumerate(group.rules)
            }
            loaded.append(LoadedGroup(Path(path), group, where))
    _check_unique(loaded, line_index, problems)
    if problems:
        raise RuleFileError(problems)
    return loaded


def _check_unique(
    loaded: list[LoadedGroup], line_index: dict[Path, Lines], problems: list[Problem]
) -> None:
    groups: dict[str, Path] = {}
    names: dict[str, Path] = {}
    for item in loaded:
        lines = line_index[item.path]
        if item.group.group in groups:
            first = groups[item.group.group]
            line = _line(lines, ("group",))
            problems.append(Problem(item.path, line, None, f"group name also used in {first}"))
        groups.setdefault(item.group.group, item.path)
        for i, rule in enumerate(item.group.rules):
            if rule.name in names:
                line = _line(lines, ("rules", str(i), "name"))
                msg = f"duplicate rule name (first defined in {names[rule.name]})"
                problems.append(Problem(item.path, line, rule.name, msg))
            names.setdefault(rule.name, item.path)
