"""Across a restart of the controller, every pool event is notified exactly once.

The demo keeps the simulated pool and the controller's state in its data directory and resumes
both (poolwatch/app/demo.py): the pool from its saved file (`simulated.persist`), whose simulated
time goes on from where it stopped, the controller from its SQLite state. Simulated time and the
controller's clock are two clocks: at a speed above 1 the pool runs ahead of the wall clock, and
after a pause at speed 1 it runs behind it. These tests save and resume the pool exactly as the
demo does and start a second controller on the same state file, with its clock on either side of
the pool's, and count the notices of the pool events of both runs together.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from poolwatch.cluster.simulated import persist
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from tests.helpers.controller_support import Recorder, SlowSpares, isolate, sim

POOL_NOTICES = ("PoolwatchControllerPoolStatusChange",
                "PoolwatchControllerPoolResourcesStatusChange")  # fmt: skip


def pool_notices(*recorders: Recorder) -> Counter[str]:
    """Each pool-event notice's text, counted over all the recorders."""
    return Counter(m.annotations["description"] for r in recorders for m in r.messages
                   if m.labels["alertname"] in POOL_NOTICES)  # fmt: skip


def started(cluster, told: Recorder, state: Path, offset: float) -> PoolController:
    """A controller on `state` whose clock is `offset` seconds off the pool's time."""
    settings = ControllerSettings(dry_run=False, state_path=state)
    return PoolController(cluster, settings, told, clock=lambda: cluster.now + offset)


def pool_events(cluster) -> list[str]:
    return [e.message for e in cluster.events() if e.kind == "Pool"
            and e.reason in ("PoolStatusChange", "PoolResourcesStatusChange")]  # fmt: skip


@pytest.mark.parametrize("offset", [-6 * 3600.0, 6 * 3600.0],
                         ids=["pool-ahead-of-the-clock", "pool-behind-the-clock"])  # fmt: skip
def test_a_resumed_demo_notifies_each_pool_event_once(tmp_path: Path, offset: float) -> None:
    """A pool event notified before the stop is not notified again after the resume; one that
    happened after the last reconcile before the stop, and one after the resume, are notified
    once each. `offset` puts the controller's clock behind (a demo at a speed above 1) or ahead
    of (a demo resumed after a pause) the pool's simulated time."""
    state = tmp_path / "controller.db"
    cluster = sim(nodes=20, spares=1)
    before = set(pool_events(cluster))  # the pool's creation: history for a new controller
    first = Recorder()
    ctl = started(cluster, first, state, offset)
    assert ctl.submit(isolate("p0-node-00", "A050104")).outcome == "done"
    cluster.step(30)
    ctl.reconcile()
    told_first = pool_notices(first)
    assert told_first, "the isolation changed the pool: its events are notified"
    assert all(n == 1 for n in told_first.values())
    # an event after the last reconcile, then the demo stops (pool saved, controller gone)
    assert ctl.submit(isolate("p0-node-01", "A050146", key="second")).outcome == "done"
    cluster.step(30)
    persist.save(cluster, tmp_path / "pool.pickle")
    ctl.store.close()

    resumed = persist.load(tmp_path / "pool.pickle", cluster.spec.seed)
    second = Recorder()
    ctl2 = started(resumed, second, state, offset)
    ctl2.reconcile()
    assert ctl2.submit(isolate("p0-node-02", "A050202", key="third")).outcome == "done"
    resumed.step(30)
    ctl2.reconcile()
    ctl2.reconcile()

    told = pool_notices(first, second)
    repeated = {text: n for text, n in told.items() if n > 1}
    assert not repeated, f"notified again after the resume: {repeated}"
    happened = set(pool_events(resumed)) - before
    assert set(told) == happened, (
        f"lost: {sorted(happened - set(told))}; not events: {sorted(set(told) - happened)}"
    )


class Killed(Exception):
    """The controller's process ends here."""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("end", ["done", "failed"])
def test_a_replacement_ending_as_the_controller_dies_is_told_once(
    tmp_path: Path, end: str, when: str
) -> None:
    """The controller dies just `when` it records a replacement's end (done: the spare came up;
    failed: not done in time): the operator hears of it once, from this controller or the next
    one on the same state."""
    state = tmp_path / "controller.db"
    cluster = SlowSpares(sim(nodes=8, spares=1))
    first = Recorder()
    ctl = PoolController(cluster, ControllerSettings(dry_run=False, state_path=state), first,
                         clock=lambda: cluster.now)  # fmt: skip
    assert ctl.submit(isolate("p0-node-00", "A050104")).outcome == "done"
    real = ctl.store.update_replacement

    def dies(rid: int, **fields: object) -> None:
        if fields.get("state") == end and when == "before":
            raise Killed
        real(rid, **fields)
        if fields.get("state") == end:
            raise Killed

    ctl.store.update_replacement = dies  # type: ignore[method-assign]
    if end == "done":
        cluster.arrive()
    else:
        cluster.inner.step(25 * 3600)  # past the 24 h a replacement has
    with pytest.raises(Killed):
        ctl.reconcile()
    ctl.store.close()

    second = Recorder()
    PoolController(cluster, ControllerSettings(dry_run=False, state_path=state), second,
                   clock=lambda: cluster.now).reconcile()  # fmt: skip
    what = "PoolwatchControllerNodeReplaced" if end == "done" else (
        "PoolwatchControllerReplacementFailed")  # fmt: skip
    told = [m.annotations["description"] for r in (first, second) for m in r.messages
            if m.labels["alertname"] == what]  # fmt: skip
    assert len(told) == 1, told


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("what", ["NoSpare", "BreakerOpen"])
def test_a_pool_mark_set_as_the_controller_dies_is_told_once(
    tmp_path: Path, what: str, when: str
) -> None:
    """The controller dies just `when` it records a pool's mark (no spare left: Abnormal; the
    circuit breaker opened): the operator hears of it once, from this controller or the next
    one on the same state, to which the rule engine sends its unanswered action again."""
    state = tmp_path / "controller.db"
    cluster = sim(nodes=5, spares=0)
    field = "abnormal" if what == "NoSpare" else "breaker_open"
    actions = [isolate("p0-node-00", "A050104")] if what == "NoSpare" else [
        isolate("p0-node-00", "A050146"), isolate("p0-node-01", "A050146")]  # fmt: skip
    first = Recorder()
    ctl = PoolController(cluster, ControllerSettings(dry_run=False, state_path=state), first,
                         clock=lambda: cluster.now)  # fmt: skip
    for a in actions[:-1]:
        assert ctl.submit(a).outcome == "done"
    real = ctl.store.set_pool

    def dies(name: str, **fields: object) -> None:
        if fields.get(field) and when == "before":
            raise Killed
        real(name, **fields)
        if fields.get(field):
            raise Killed

    ctl.store.set_pool = dies  # type: ignore[method-assign]
    assert ctl.submit(actions[-1]).outcome == "failed"  # the write failed: it is sent again
    ctl.store.close()

    second = Recorder()
    again = PoolController(cluster, ControllerSettings(dry_run=False, state_path=state), second,
                           clock=lambda: cluster.now)  # fmt: skip
    again.submit(actions[-1])
    again.reconcile()
    told = [m for r in (first, second) for m in r.messages
            if m.labels["alertname"] == f"PoolwatchController{what}"]  # fmt: skip
    assert len(told) == 1, told
