"""Configuration loading: one YAML file, then POOLWATCH_* environment variables, then flags.

Why hand-rolled merging instead of pydantic-settings: an operator who mistypes a value must be told
where it came from (file and line, environment variable, or flag), and that needs the origin of each
leaf. Validation itself is pydantic's; unknown keys are errors, so a typo never goes unnoticed.

Environment variables name a setting with `__` between levels, e.g. `POOLWATCH_CACHE_DIR=/cache` or
`POOLWATCH_COLLECTORS__NFS__TIMEOUT=3s`; their values are read as YAML scalars ("5", "true",
"[modelarts]").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError

ENV_PREFIX = "POOLWATCH_"
#: variables poolwatch commands read for themselves (the file to load, --log-level's default, the
#: Alertmanager `rules silence` defers to); they are not settings, so a part's loader must not
#: reject them as unknown keys
PROCESS_VARIABLES = frozenset(
    {ENV_PREFIX + "CONFIG", ENV_PREFIX + "LOG_LEVEL", ENV_PREFIX + "ALERTMANAGER_URL"}
)
M = TypeVar("M", bound=BaseModel)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
#: Prometheus' duration (model.ParseDuration): units largest first, each at most once; "0" alone
#: too. Rules keep this text as written, since it goes into Prometheus' own rule files.
PROMETHEUS_DURATION = re.compile(
    r"^(?:0|(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?)$"
)
_PROMETHEUS_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
#: seconds per unit of a Prometheus duration
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the source and the field."""


def prometheus_seconds(text: str) -> float:
    """A Prometheus duration ('1m', '1h30m', '7d') in seconds."""
    return sum(int(n) * DURATION_UNITS[u] for n, u in _PROMETHEUS_PART.findall(text))


def parse_duration(value: object) -> object:
    """'15s', '2m', '500ms', '1.5h', any Prometheus duration ('1h30m', '7d') or a number of
    seconds -> seconds as float."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s, 2m or 500ms")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
        if value.strip() and PROMETHEUS_DURATION.match(value.strip()):
            return float(prometheus_seconds(value))
        raise ValueError(f"{value!r} is not a duration such as 15s, 2m or 500ms")
    return value


def check_listen(value: str) -> str:
    """A HOST:PORT to serve on ([::1]:9476 and :9476 too); pydantic validator for `listen`."""
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def split_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); an empty host means every IPv4 address."""
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


Listen = Annotated[str, AfterValidator(check_listen)]


def comma_list(value: object) -> object:
    """'a, b,c' -> ['a', 'b', 'c'] (a list setting given as one flag or environment variable);
    a pydantic before-validator, anything not a string is left to the field's own check."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


#: A length of time in seconds, written as 15s, 2m, 500ms, 1h or a number of seconds; never
#: negative. The one duration type of every setting: a field states any further bound where it is
#: declared, e.g. `interval: Duration = Field(15.0, gt=0)` (0 would mean "all the time"), while
#: `group_wait: Duration = 1.0` may be 0.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of a YAML document to the line (1-based) where its value starts."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, val in node.value:
                sub = (*path, str(key.value))
                out[sub] = key.start_mark.line + 1
                walk(val, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return out


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Read a YAML mapping, or raise ConfigError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
        lines = _line_index(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data, lines


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        node = tree.get(key)
        if not isinstance(node, dict):
            node = tree[key] = {}
        tree = node
    tree[path[-1]] = value


def env_overrides(env: Mapping[str, str]) -> dict[tuple[str, ...], tuple[Any, str]]:
    """POOLWATCH_A__B=v -> {("a", "b"): (parsed v, "environment variable POOLWATCH_A__B")}."""
    out: dict[tuple[str, ...], tuple[Any, str]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in PROCESS_VARIABLES:
            continue
        path = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p)
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        out[path] = (value, f"environment variable {name}")
    return out


def load(
    model: type[M],
    file: Path | None,
    env: Mapping[str, str],
    flags: Mapping[tuple[str, ...], tuple[Any, str]] | None = None,
) -> M:
    """Build `model` from defaults < file < environment < flags, or raise ConfigError.

    Each error line names the field's dotted path and where its value came from."""
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if file is not None:
        data, lines = read_yaml(file)
    origins: dict[tuple[str, ...], str] = {}
    for layer in (env_overrides(env), flags or {}):
        for path, (value, origin) in layer.items():
            _set(data, path, value)
            origins[path] = origin
    on_off(model, data)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, file, lines, origins, model)) from None


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the model a field holds, whether it is a mapping of them) for dict[str, Model] too."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        inner, _ = _submodel(args[1])
        return inner, inner is not None
    if origin in (Union, UnionType) or origin is Annotated:
        for arg in args:
            inner, many = _submodel(arg)
            if inner is not None:
                return inner, many
    return None, False


def _takes_on_off(annotation: Any) -> bool:
    """Whether a field accepts the words "on" and "off" (Literal["auto", "on", "off"], ...)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return {"on", "off"} <= set(args)
    if origin in (Union, UnionType) or origin is Annotated:
        return any(_takes_on_off(a) for a in args)
    return False


def on_off(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Read YAML's booleans as the words "on"/"off" where a setting takes those words.

    YAML 1.1 (PyYAML) reads an unquoted `on`, `off`, `yes` or `no` as a boolean, so `gpu: on`
    arrived as True and was refused with "expected 'auto', 'on' or 'off'", asking the operator
    to type what they typed. Changes `data` in place, through nested settings."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) and _takes_on_off(field.annotation):
            data[key] = "on" if value else "off"
            continue
        inner, many = _submodel(field.annotation)
        if inner is None or not isinstance(value, dict):
            continue
        for sub in value.values() if many else [value]:
            if isinstance(sub, dict):
                on_off(inner, sub)


def _keys_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The setting names valid at `loc` (a path of keys below `model`); [] if unknown."""
    current: type[BaseModel] | None = model
    many = False
    for part in loc:
        if current is None:
            return []
        if many:  # a key of a mapping of settings: any name
            many = False
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        current, many = _submodel(field.annotation)
    if current is None or many:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _did_you_mean(model: type[BaseModel] | None, loc: tuple[str, ...]) -> str:
    if model is None or not loc:
        return ""
    valid = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {'.'.join([*loc[:-1], close[0]])!r}?"
    return f"; valid here: {', '.join(sorted(valid))}" if valid and len(valid) <= 12 else ""


def _describe(
    err: ValidationError,
    file: Path | None,
    lines: dict[tuple[str, ...], int],
    origins: dict[tuple[str, ...], str],
    model: type[BaseModel] | None = None,
) -> str:
    problems = []
    for item in err.errors():
        loc = tuple(str(p) for p in item["loc"])
        field = ".".join(loc) or "(top level)"
        source = _source_of(loc, file, lines, origins)
        hint = _did_you_mean(model, loc) if item["type"] == "extra_forbidden" else ""
        problems.append(f"  {field}: {item['msg']}{hint} ({source})")
    head = f"invalid configuration{f' in {file}' if file else ''}:"
    return "\n".join([head, *problems])


def _source_of(
    loc: tuple[str, ...],
    file: Path | None,
    lines: dict[tuple[str, ...], int],
    origins: dict[tuple[str, ...], str],
) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    below = [o for path, o in origins.items() if path[: len(loc)] == loc]
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            line = f"{file}:{lines[loc[:n]]}"
            return ", ".join([line, *below])
    if below:
        return ", ".join(below)
    return "default value" if file is None else f"{file}"


def dump(model: BaseModel) -> str:
    """The effective configuration as YAML, the way `--print-config` shows it."""
    return yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False)
