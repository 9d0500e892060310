"""The demo inbox reads the alerts layer's subject line: kind, severity and every alert name."""

from __future__ import annotations

import pytest

from poolwatch.app.demo_inbox import parse_title


@pytest.mark.parametrize(
    ("title", "names"),
    [
        ("[poolwatch] FIRING CRITICAL PoolwatchAcceleratorLost on gpu-a-node-00",
         "PoolwatchAcceleratorLost"),
        # Alertmanager groups two rules firing on one node into one message; the first name used
        # to come back as "PoolwatchAcceleratorLost," and the second was lost
        ("[poolwatch] FIRING CRITICAL PoolwatchAcceleratorLost, "
         "PoolwatchNodeAcceleratorsBelowCapacity on gpu-a-node-00 (2 alerts)",
         "PoolwatchAcceleratorLost, PoolwatchNodeAcceleratorsBelowCapacity"),
        ("[c] RESOLVED WARNING PoolwatchCacheFull (3 alerts)", "PoolwatchCacheFull"),
    ],
)  # fmt: skip
def test_every_alert_name_of_a_grouped_subject(title: str, names: str) -> None:
    kind, _severity, got = parse_title(title)
    assert kind in ("firing", "resolved")
    assert got == names


def test_a_title_the_alerts_layer_did_not_write() -> None:
    assert parse_title("hello") == ("", "", "")
