"""What the node exporter would see on one simulated node: a frozen copy of its devices, their
holders and faults at one simulated instant.

The simulated backend hands it out (`SimulatedCluster.node_view`); the demo's node metrics
(`poolwatch.app.demo_node_metrics`) render it as exposition. Kept apart from that rendering so the
cluster interface holds no exporter output.
"""

from __future__ import annotations

from dataclasses import dataclass

from poolwatch.cluster.model import JobStatus
from poolwatch.cluster.simulated.state import SimNode, World


@dataclass(frozen=True)
class DeviceView:
    index: int
    uuid: str
    faults: tuple[tuple[str, float], ...]  # (fault, since)
    owner: tuple[str, str, str, str] | None  # (namespace, pod, container, training_job)
    activity: str  # idle (no holder) | creating | busy (computing) | stuck (hung or stalled)
    held_since: float = 0.0  # when the holder's job started (or was created, before it starts)
    idle_since: float | None = None  # when the holder stopped computing (hung or stalled)
    # seconds of the holder's run in which it did nothing (hung or stalled, now and in earlier
    # hangs that healed): its accelerators were idle and its I/O counters did not move
    quiet: float = 0.0


@dataclass(frozen=True)
class NodeView:
    """A consistent copy of one node as its node exporter would see it, at simulated time `now`."""

    name: str
    pool: str
    resource: str
    model: str
    now: float
    faults: tuple[tuple[str, float], ...]  # node-level (fault, since)
    devices: tuple[DeviceView, ...]


def node_view(world: World, n: SimNode) -> NodeView:
    devices = []
    for d in n.devices:
        owner, activity, since, idle_since, quiet = None, "idle", world.now, None, 0.0
        if d.holder:
            pod = world.pods[d.holder]
            job = world.jobs[pod.job]
            owner = (pod.namespace, pod.name, pod.container, job.name)
            activity = "stuck" if job.hung or job.stalled else "busy"
            if job.status is JobStatus.CREATING:
                activity = "creating"
            since = job.started if job.started is not None else job.created
            if job.hung:
                hung_at = job.hung_since
                idle_since = min(world.now, since + job.duration) if hung_at is None else hung_at
            elif job.stalled:
                idle_since = min([world.now, *d.faults.values(), *n.faults.values()])
            quiet = job.hung_for + (0.0 if idle_since is None else world.now - idle_since)
        devices.append(DeviceView(d.index, d.uuid, tuple(d.faults.items()), owner, activity,
                                  since, idle_since, max(0.0, quiet)))  # fmt: skip
    return NodeView(n.name, n.pool, n.resource, n.model, world.now, tuple(n.faults.items()),
                    tuple(devices))  # fmt: skip
