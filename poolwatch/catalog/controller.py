"""Catalog entries of the controller part's own metrics (filled in with its issue)."""

from __future__ import annotations

from .model import MetricSpec

CONTROLLER_SPECS: list[MetricSpec] = []
