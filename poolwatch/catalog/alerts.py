"""Catalog entries of the alerts part's own metrics (filled in with its issue)."""

from __future__ import annotations

from .model import MetricSpec

ALERTS_SPECS: list[MetricSpec] = []
