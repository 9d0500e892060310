"""What the rule engine's tests share: a rule group built in code (`group`), the expression
it compiles to (`EXPR`), a series that matches it and a source answering from a table."""

from __future__ import annotations

from poolwatch.rules.model import Group
from poolwatch.rules.sources import SourceError

EXPR = "(poolwatch_collector_up) == 0"  # compile.expression of the rule below


def group(**rule: object) -> Group:
    base = {
        "name": "PoolwatchCollectorDown",
        "expr": "poolwatch_collector_up",
        "op": "==",
        "threshold": 0,
        "for": "5m",
        "severity": "warning",
        "annotations": {"summary": "s", "description": "d", "runbook": "r"},
    }
    return Group.model_validate({"group": "collector", "interval": "1m", "rules": [base | rule]})


class FakeSource:
    """Answers per expression from `results`; raises SourceError while `down`."""

    def __init__(self) -> None:
        self.results: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.down = False
        self.queries: list[tuple[str, float]] = []

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        self.queries.append((expr, at))
        if self.down:
            raise SourceError("connection refused")
        return self.results.get(expr, [])


SERIES = {"__name__": "poolwatch_collector_up", "collector": "nfs", "node": "n1"}
