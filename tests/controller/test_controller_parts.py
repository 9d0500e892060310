"""Each of the controller's collaborators on its own, built on a `Context` over the simulated
pool without a `PoolController`: the context (view, fence, effects), isolation with its breaker,
the replacer, job restarts, pool events, and the pool and node operations. That each one works
so shows that what it needs is its constructor's arguments and nothing of the facade."""

from __future__ import annotations

from typing import Any

import pytest

from poolwatch.cluster.model import Event, NodeStatus, Pool, PoolStatus
from poolwatch.controller import node_ops, notices, pool_ops
from poolwatch.controller.context import Context, NotLeader, ViewNotCurrent
from poolwatch.controller.isolation import Isolation
from poolwatch.controller.pool_events import PoolEvents
from poolwatch.controller.pools import FAULT_TAINT
from poolwatch.controller.replacer import Replacer
from poolwatch.controller.restarts import JobRestarts
from poolwatch.controller.settings import ControllerSettings
from poolwatch.controller.store import Store
from poolwatch.core.actions import ActionResult
from tests.helpers.controller_support import Proxy, Recorder, of_status, sim, submit_job


def context(cluster: Any, told: Recorder | None = None, **settings: Any) -> Context:
    """A context of its own: in-memory store, the cluster's clock, dry run off."""
    store = Store()
    s = ControllerSettings(**{"dry_run": False, **settings})
    return Context(cluster, s, store, notices.Notices(store, told), lambda: cluster.now)


class Lagging(Proxy):
    """A backend whose view has not caught up (the simulated pool's always has): a stand-in,
    since only the Kubernetes backend's informers can lag and that needs an API server."""

    def await_view(self, timeout: float) -> str:
        return "informers behind"


def test_context_reads_only_a_current_view_and_only_while_leading() -> None:
    cluster, told = sim(nodes=4, spares=1), Recorder()
    ctx = context(cluster, told)
    assert set(ctx.nodes()) == {n.name for n in cluster.nodes()}
    assert ctx.view_current

    ctx.may_act = lambda: False
    with pytest.raises(NotLeader):
        ctx.nodes()

    lagging = context(Lagging(cluster))
    with pytest.raises(ViewNotCurrent, match="informers behind"):
        lagging.nodes()
    assert not lagging.view_current
    assert lagging.stats[("view", "stale")] == 1

    ctx.pool_event("p0", "PoolStatusChange", "Warning", "Pool status changed")
    ctx.finish("op", "p0-node-00", "k1", ActionResult("done", "did it"))
    assert ("PoolStatusChange", "Pool status changed") in {
        (e.reason, e.message) for e in cluster.events() if e.kind == "Pool"
    }
    assert told.names() == ["PoolwatchControllerPoolStatusChange"]
    assert ctx.store.action("k1") == ("done", "did it")
    assert [(a.operation, a.target) for a in ctx.store.audit_trail()] == [("op", "p0-node-00")]


def test_isolation_alone_taints_replaces_and_its_breaker_refuses() -> None:
    cluster, told = sim(nodes=5, spares=1), Recorder()
    ctx = context(cluster, told, breaker_ratio=0.2)
    iso = Isolation(ctx, JobRestarts(ctx), Replacer(ctx))

    first = iso.isolate("p0-node-00", "A050104", "test", "k1", False, True, breaker=True)
    assert first.outcome == "done", first.detail
    node = next(n for n in cluster.nodes() if n.name == "p0-node-00")
    assert (FAULT_TAINT, "A050104", "NoSchedule") in node.taints
    assert node.status is NodeStatus.REPAIRING  # the spare took its place
    assert of_status(cluster, NodeStatus.SPARE) == []

    second = iso.isolate("p0-node-01", "A050104", "test", "k2", False, False, breaker=True)
    assert second.outcome == "refused"
    assert "circuit breaker" in second.detail
    assert iso.breaker_open("p0")
    assert "PoolwatchControllerBreakerOpen" in told.names()


def test_replacer_alone_swaps_in_a_spare_and_cancels() -> None:
    cluster = sim(nodes=4, spares=1)
    ctx = context(cluster)
    replacer = Replacer(ctx)
    cluster.taint_node("p0-node-00", FAULT_TAINT, "A050104", "NoSchedule")
    cluster.cordon("p0-node-00", True)

    outcome, detail = replacer.request("k1", "p0", "p0-node-00", "A050104")

    assert outcome == "done", detail
    assert "p0-node-03" in detail
    assert of_status(cluster, NodeStatus.REPAIRING) == ["p0-node-00"]
    assert [r.state for r in ctx.store.replacements("p0")] == ["done"]
    # no spare left: the next one waits in the queue, until it is cancelled
    cluster.taint_node("p0-node-01", FAULT_TAINT, "A050104", "NoSchedule")
    assert replacer.request("k2", "p0", "p0-node-01", "A050104")[0] == "deferred"
    replacer.cancel("p0-node-01", "node restored")
    assert ctx.store.replacements("p0", True) == []


def test_job_restarts_alone_evict_requeue_and_give_up() -> None:
    cluster, told = sim(nodes=3, spares=0), Recorder()
    ref = submit_job(cluster, "big")
    node = next(p.node for p in cluster.pods())
    for other in {"p0-node-00", "p0-node-01", "p0-node-02"} - {node}:
        cluster.cordon(other)  # nowhere else to go: it waits in the queue
    cluster.cordon(node)
    ctx = context(cluster, told)
    restarts = JobRestarts(ctx)

    said = restarts.restart_jobs_on(node, "k1", "A050104")

    assert said == f"{ref} restarted"
    assert ctx.store.restarts(ref)[0] == 1
    assert [r for r, _, _ in ctx.store.requeued()] == [ref]
    again = restarts.restart(ref, "fault", "k2", False, "again")
    assert again.outcome == "already"
    cluster.step(31 * 60)
    restarts.requeued(cluster.now)
    assert "PoolwatchControllerJobRequeueTimeout" in told.names()
    assert ctx.store.requeued() == []


def test_pool_events_alone_derive_changes_for_a_backend_that_records_none() -> None:
    cluster, told = sim(nodes=4, spares=0), Recorder()
    quiet = Proxy(cluster)
    quiet.emits_pool_events = False  # as on Kubernetes: the controller derives them
    ctx = context(quiet, told)
    events = PoolEvents(ctx)

    events.record(cluster.now)  # the baseline: no event
    assert told.names() == []
    cluster.cordon("p0-node-00")  # one node Unavailable
    events.record(cluster.now)

    assert told.names() == ["PoolwatchControllerPoolResourcesStatusChange"]
    assert "from 4/0/0/0 to 3/1/0/0" in told.messages[0].annotations["summary"]


def test_pool_events_alone_tell_each_backend_event_once() -> None:
    cluster, told = sim(nodes=4, spares=0), Recorder()
    ctx = context(cluster, told)
    history = {e.uid for e in cluster.events()}  # the pool's creation, before the controller
    events = PoolEvents(ctx)
    cluster.record_event(Event("", "Pool", "p0", "PoolStatusChange", "Warning", "went Abnormal",
                               cluster.now, "p0"))  # fmt: skip
    events.record(cluster.now)
    events.record(cluster.now)
    pool_events = [e for e in cluster.events() if e.kind == "Pool" and e.uid not in history]
    assert len(pool_events) == 1
    assert len(told.messages) == len(pool_events)  # each once, however often it looks
    summaries = [m.annotations["summary"] for m in told.messages]
    assert summaries.count("pool p0: went Abnormal") == 1


def test_pool_and_node_operations_alone() -> None:
    cluster = sim(nodes=4, spares=1)
    ctx = context(cluster)
    bad = pool_ops.create(ctx, Pool("p9", "", PoolStatus.CREATING, workspace="a b"), ["p0-node-00"])
    assert bad.outcome == "refused"
    assert "workspace 'a b'" in bad.detail
    assert pool_ops.release(ctx, "p0", "p0-node-00", "test").outcome == "done"
    made = pool_ops.create(ctx, Pool("p9", "", PoolStatus.CREATING), ["p0-node-00"])
    assert made.outcome == "done", made.detail
    assert node_ops.enable_ha(ctx, "p0-node-01").outcome == "done"
    assert of_status(cluster, NodeStatus.SPARE) == ["p0-node-01", "p0-node-03"]
    assert node_ops.disable_ha(ctx, "p0-node-01").outcome == "done"
    assert node_ops.pool_jobs(ctx, "p0") == []
