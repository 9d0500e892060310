"""The collector interface and the registry of collector factories.

A collector is one file under `collectors/` that registers a factory here at import. Only the
runner loops over collectors; a collector never sees threads, deadlines or health metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import Metric

from poolwatch.core import catalog

from .settings import CollectorSettings, NodeExporterSettings


class Collector(Protocol):
    """Yields fresh metric families on every call (never module-level gauges)."""

    name: str
    interval: float
    timeout: float

    def collect(self) -> Iterator[Metric]: ...


class PartialFailure(Exception):
    """Raised by a collector *after* yielding what it could measure.

    The runner keeps the families yielded so far, marks the collector down (`up 0`) and counts
    an error: one missing cache directory must not hide the container-space figures."""


@dataclass(frozen=True)
class Registration:
    name: str
    factory: Callable[[NodeExporterSettings], Collector]
    settings: Callable[[NodeExporterSettings], CollectorSettings]


REGISTRY: dict[str, Registration] = {}


def register(
    name: str,
    settings: Callable[[NodeExporterSettings], CollectorSettings],
) -> Callable[
    [Callable[[NodeExporterSettings], Collector]], Callable[[NodeExporterSettings], Collector]
]:
    """Decorator for a collector factory; the name is the config key and the `collector` label."""

    def wrap(
        factory: Callable[[NodeExporterSettings], Collector],
    ) -> Callable[[NodeExporterSettings], Collector]:
        if name in REGISTRY:
            raise ValueError(f"collector {name} registered twice")
        if not catalog.families_of(name):
            raise ValueError(f"collector {name} owns no family in the catalog")
        REGISTRY[name] = Registration(name, factory, settings)
        return factory

    return wrap


def families(collector: str) -> dict[str, Metric]:
    """Fresh, empty families for everything `collector` owns, keyed by exposed name.

    Built from the catalog, so help text, type and label names cannot drift from the docs."""
    return {spec.name: catalog.new_family(spec.name) for spec in catalog.families_of(collector)}
