"""Schemathesis against the app's own OpenAPI document: generated requests (valid and not)
to every operation find no server error, and every answer matches the document.

Bounded to stay fast: a few examples per operation, no shrinking, the in-process ASGI app
(the simulated pool with the real controller behind it, a stub Prometheus for the queries).
The app is built at import because schemathesis parametrizes from the schema at collection
(its `from_fixture` does not run on this pytest)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from test_api_support import AUTH, TOKEN, StubPrometheus, controller_over, quiet_cluster, start_stub

from poolwatch.api.app import create_app
from poolwatch.api.upgrade import SimulatedStep, UpgradeManager

_cluster = quiet_cluster()
_controller = controller_over(_cluster, Path(tempfile.mkdtemp(prefix="poolwatch-api-")))
_stub = start_stub(StubPrometheus())  # a daemon thread: it ends with the test run
_prometheus = f"http://127.0.0.1:{_stub.server_address[1]}"
_app = create_app(
    _controller, _cluster, _prometheus, TOKEN, clock=lambda: _cluster.now,
    upgrades=UpgradeManager(_controller, _cluster, SimulatedStep(_cluster), lambda: _cluster.now,
                            autorun=False),
)  # fmt: skip
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    # every default check but one: a request the schema allows may still be refused for what
    # JSON Schema cannot say (no such pool, too few free nodes, more than 1,440 points), and
    # those answers are 4xx in the one error shape, which the other checks do verify.
    # Nor negative_data_rejection: schemathesis "mutates" query parameters in ways that do not
    # survive the query string (a string parameter turned into a number or an object reads as
    # the same text on the wire), so a request it calls schema-violating can be a valid one;
    # it failed 2 runs in 5 that way. Bad bodies and bad values are refused in tests/test_api.py.
    case.call_and_validate(
        headers=AUTH, excluded_checks=[positive_data_acceptance, negative_data_rejection]
    )
