"""One duration type for every setting (`poolwatch.core.config.Duration`): the same spellings
everywhere, never negative, and any further bound stated where the field is declared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from poolwatch.alerts.settings import AlertsSettings, RateLimit, Retry
from poolwatch.controller.settings import ControllerSettings, LeaseSettings
from poolwatch.core.config import Duration, parse_duration
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node import settings as node_settings

ROOT = Path(__file__).resolve().parents[2]
NODE_MODELS = [m for m in vars(node_settings).values() if isinstance(m, type)
               and issubclass(m, BaseModel) and m.__module__ == node_settings.__name__]  # fmt: skip
MODELS: list[type[BaseModel]] = [
    AlertsSettings, RateLimit, Retry, ControllerSettings, LeaseSettings, ClusterExporterSettings,
    *NODE_MODELS,
]  # fmt: skip
PARSER = Duration.__metadata__[0]  # the core type's validator, the very object


def duration_fields() -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model in MODELS
        for name, field in model.model_fields.items()
        if any(getattr(m, "func", None) is parse_duration for m in field.metadata)
    ]


def test_every_duration_setting_is_the_core_type() -> None:
    fields = duration_fields()
    assert len(fields) > 30  # the controller's, both exporters' and the receiver's
    for model, name in fields:
        metadata = model.model_fields[name].metadata
        assert any(m is PARSER for m in metadata), f"{model.__name__}.{name}"
        assert any(getattr(m, "ge", None) == 0 for m in metadata), f"{model.__name__}.{name}"


def test_no_part_declares_its_own_duration_type() -> None:
    own = re.compile(r"BeforeValidator\(parse_duration\)")
    found = [
        str(path.relative_to(ROOT))
        for folder in ("poolwatch", "controller", "exporters", "rules", "alerts", "dashboards")
        for path in (ROOT / folder).rglob("*.py")
        if not any(p.is_symlink() for p in path.parents if ROOT in p.parents)
        and own.search(path.read_text(encoding="utf-8"))
    ]
    assert found == ["poolwatch/core/config.py"]


@pytest.mark.parametrize(
    ("model", "name"), duration_fields(), ids=lambda x: getattr(x, "__name__", x)
)
def test_every_duration_reads_the_same_spellings_and_refuses_negatives(
    model: type[BaseModel], name: str
) -> None:
    """'2m', '1500ms', '1h30m' and plain seconds read alike in every part; -1 is refused everywhere
    (the parts used to differ only in whether 0 was allowed)."""
    field = model.model_fields[name]  # alone: the models' cross-field checks are not the point
    value = TypeAdapter(Annotated[field.annotation, *field.metadata]).validate_python

    assert value("2m") == 120.0
    assert value("1500ms") == 1.5
    assert value(3) == 3.0
    assert value("1h30m") == 5400.0  # Prometheus' spelling, as the rules write durations
    with pytest.raises(ValidationError, match="greater than"):
        value(-1)


@pytest.mark.parametrize(
    ("model", "doc"),
    [
        (RateLimit, {"per": 0}),  # was accepted, then a ZeroDivisionError on delivery
        (Retry, {"initial_backoff": "0s"}),  # was accepted: retried with no pause at all
        (Retry, {"max_backoff": 0}),  # likewise, once the backoff was capped at 0
    ],
)
def test_zero_is_refused_where_it_would_spin(model: type[BaseModel], doc: dict) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        model.model_validate(doc)


def test_zero_stays_allowed_where_it_means_at_once() -> None:
    assert AlertsSettings.model_validate({"group_wait": 0}).group_wait == 0.0
    assert node_settings.NpuSmiIntervals.model_validate({"health": "0s"}).health == 0.0


def test_days_read_as_the_documentation_writes_them() -> None:
    """The receiver's documented example keeps sent rows `7d`; the old parser knew no days."""
    assert AlertsSettings.model_validate({"retention": "7d"}).retention == 7 * 86400.0
    assert parse_duration("1w") == 604800.0
    for bad in ("", "7 days", "1m1h", "-1s", "1.5d"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)
