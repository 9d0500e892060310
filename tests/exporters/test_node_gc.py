"""The node exporter's start-up leaves Python's cyclic garbage collector only what comes after."""

import gc

from poolwatch.exporters.node.app import _settle_garbage_collector


def test_start_up_objects_are_no_longer_scanned_by_collections() -> None:
    marker: list[object] = [[]]  # a container, so the collector tracks it
    assert any(o is marker for o in gc.get_objects())
    try:
        _settle_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert not any(o is marker for o in gc.get_objects())  # frozen: in no generation
        later: list[object] = [[]]
        assert any(o is later for o in gc.get_objects())  # what comes after is collected as ever
    finally:
        gc.unfreeze()
