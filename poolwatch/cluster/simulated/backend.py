"""The simulated cluster: the embedded default backend; the engine of demos, tests, benchmarks.

An in-process pool of nodes and accelerators with a job generator and fault injection, behind the
same `ClusterBackend` methods as the Kubernetes backend. There are no threads inside: the caller
drives simulated time with `step(seconds)` (or `run()` paces it against the wall clock for a demo),
and every random draw comes from `random.Random(spec.seed)`, so the same seed and the same calls
give identical objects, events and watch streams.

The parts: `spec` (what to simulate), `state` (the mutable world and its frozen
snapshots), `jobs` (generator, gang placement, job lifecycle), `faults` (fault injection),
`pools` (pool status rules and events, quotas), `feed` (object store and watch stream),
`nodeview` (what a node's exporter would see). This class holds the lock and, after every action,
commits: node statuses are derived again, pool events emitted, queued jobs placed, and the
changed objects published to the store and to every open watch.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

from poolwatch.cluster.backend import LeaseConflict, WatchEvent
from poolwatch.cluster.model import Event, JobStatus, Lease, Pod, Pool, Quota, TrainingJob
from poolwatch.cluster.model import Node as NodeObj
from poolwatch.cluster.simulated import faults as sim_faults
from poolwatch.cluster.simulated import jobs as sim_jobs
from poolwatch.cluster.simulated.feed import ChangeFeed
from poolwatch.cluster.simulated.nodeview import NodeView, node_view
from poolwatch.cluster.simulated.pools import PoolBook
from poolwatch.cluster.simulated.spec import (
    FAULTS,
    JOB_FAULTS,
    POOL_LABEL,
    JobRequest,
    PoolSpec,
    SimulationSpec,
)
from poolwatch.cluster.simulated.state import (
    SimJob,
    SimNode,
    World,
    derive_status,
    job_object,
    node_object,
    pod_object,
)


class SimulatedCluster:
    """A `ClusterBackend` over a simulated cluster; every method is safe from any thread.

    `clock` is read once: simulated time starts there and moves only with `step()` (tests pass
    a fixed clock; a demo the wall clock, with `run()` keeping pace). Beyond the protocol:
    `step`, `run`, `submit`, `inject`, `hang`, `heal`, `now`, `node_view` (the demo renders it)
    and `reachable` (False plays an API outage). Unknown nodes and pods raise KeyError, bad
    arguments ValueError."""

    name = "simulated"
    emits_pool_events = True  # pools records the pool events, jobs the job restarts

    def __init__(
        self, spec: SimulationSpec | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.spec = spec or SimulationSpec()
        self.reachable = True  # set False to play an API outage: healthy() turns False
        self._lock = threading.RLock()
        self._world = World(self.spec, clock())
        self._feed = ChangeFeed(self._lock)
        self._pools = PoolBook(self._world)
        self._leases: dict[tuple[str, str], Lease] = {}
        self._lease_version = 0
        with self._lock:
            self._pools.create()
            self._start_generators()
            self._commit()
            self.step(0)  # nodes with no creation time are ready at once
            for pool in self.spec.pools:
                for _ in range(self.spec.initial_jobs):
                    if (req := sim_jobs.generate(self._world, pool.name)) is not None:
                        sim_jobs.submit(self._world, req)
            self._commit()

    def _start_generators(self) -> None:
        w = self._world
        for p in self.spec.pools:
            if self.spec.jobs_per_hour > 0:
                w.at(w.now + w.rng.expovariate(self.spec.jobs_per_hour / 3600.0),
                     sim_jobs.arrive, p.name)  # fmt: skip
        if self.spec.fault_interval:
            w.at(w.now + w.rng.expovariate(1.0 / self.spec.fault_interval), sim_faults.random_fault)

    # -- time ------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated time, unix seconds: the clock at construction plus the time stepped."""
        return self._world.now

    def step(self, seconds: float) -> list[WatchEvent]:
        """Advance simulated time by `seconds`, running every due action in order; returns the
        watch events that this produced (the same ones open watches receive)."""
        if seconds < 0:
            raise ValueError("time only runs forward")
        w, out = self._world, []
        with self._lock:
            target = w.now + seconds
            while (due := w.pop_due(target)) is not None:
                w.now, action, args = due
                action(w, *args)
                out += self._commit()
            w.now = target
        return out

    def run(self, stop: threading.Event, speed: float = 1.0, tick: float = 1.0) -> None:
        """Step in real time, `speed` simulated seconds per wall second, until `stop` is set."""
        last = time.monotonic()
        while not stop.wait(tick):
            now = time.monotonic()
            self.step((now - last) * speed)
            last = now

    # -- scripted input ------------------------------------------------------------------------
    def submit(self, job: JobRequest) -> TrainingJob:
        """Queue a job now (it is placed at once if it fits); returns it as it then stands."""
        with self._lock:
            sim = sim_jobs.submit(self._world, job)
            self._commit()
            return job_object(sim)

    def inject(self, fault: str, node: str, device: int | None = None) -> int | None:
        """Strike `node` with `fault` now (see faults); returns the device index it hit. `hang`
        hangs a job running on `node` (or the job `node` names, see `hang`) and returns None."""
        if fault in JOB_FAULTS:
            self.hang(node)
            return None
        with self._lock:
            hit = sim_faults.inject(self._world, fault, node, device)
            self._commit()
            return hit

    def can_strike(self, fault: str, node: str) -> bool:
        """Whether `inject(fault, node)` would find somewhere to strike now."""
        with self._lock:
            if fault in JOB_FAULTS:
                return bool(self._running_on(self._node(node).name))
            return bool(sim_faults.applicable(self._node(node), fault))

    def hang(self, target: str) -> str:
        """Hang a running job now (see jobs.hang); returns its "namespace/name". `target` is a
        job ("namespace/name", or a name no other namespace uses) or a node: then the first job
        by name running there that can hang. KeyError for neither, ValueError when the job (or
        every job on the node) cannot hang."""
        with self._lock:
            if target in self._world.nodes:
                running = self._running_on(target)
                if not running:
                    raise ValueError(f"no running job on {target} can hang (none runs there, "
                                     "or each is hung or stalled already)")  # fmt: skip
                job = running[0]
            else:
                job = self._job(target)
            sim_jobs.hang(self._world, job)
            self._commit()
            return job.key

    def hung_jobs(self) -> list[str]:
        """The hung jobs, "namespace/name", by name."""
        with self._lock:
            return sorted(k for k, j in self._world.jobs.items() if j.hung)

    def _running_on(self, node: str) -> list[SimJob]:
        w = self._world
        keys = {p.job for p in w.pods.values() if p.node == node and p.job}
        jobs = [w.jobs[k] for k in sorted(keys) if k in w.jobs]
        return [j for j in jobs if j.status is JobStatus.RUNNING and not j.hung and not j.stalled]

    def _job(self, target: str) -> SimJob:
        w = self._world
        if target in w.jobs:
            return w.jobs[target]
        named = [j for j in w.jobs.values() if j.name == target]
        if len(named) == 1:
            return named[0]
        if named:
            keys = ", ".join(sorted(j.key for j in named))
            raise KeyError(f"job name {target!r} is in several namespaces ({keys}): "
                           "give namespace/name")  # fmt: skip
        raise KeyError(f"no node or training job {target!r} in the simulation")

    def node_faults(self, node: str) -> list[str]:
        """The faults now on `node` and its devices (what a repair would clear)."""
        with self._lock:
            n = self._node(node)
            return sorted({*n.faults, *(f for d in n.devices for f in d.faults)})

    def heal(self, node: str, fault: str | None = None) -> list[str]:
        """Repair `fault` (all faults when None) on `node` now; a hang clears on the jobs hung
        there. `node` may also name a job (as in `hang`): its hang clears. Returns the jobs
        whose hang cleared."""
        if fault is not None and fault not in (*FAULTS, *JOB_FAULTS):
            raise ValueError(f"fault must be one of {', '.join((*FAULTS, *JOB_FAULTS))}, "
                             f"not {fault!r}")  # fmt: skip
        with self._lock:
            w = self._world
            if node in w.nodes:
                if fault not in JOB_FAULTS:
                    sim_faults.heal(w, node, fault)
                keys = {p.job for p in w.pods.values() if p.node == node and p.job}
                jobs = [w.jobs[k] for k in sorted(keys) if k in w.jobs]
                if fault is not None and fault not in JOB_FAULTS:
                    jobs = []
            else:
                job = self._job(node)
                if fault is not None and fault not in JOB_FAULTS:
                    raise ValueError(f"{fault} strikes nodes; {job.key} is a training job")
                jobs = [job]
            healed = [j.key for j in jobs if sim_jobs.unhang(w, j)]
            self._commit()
            return healed

    # -- read side ---------------------------------------------------------------------------
    def pools(self) -> list[Pool]:
        return self._feed.objects("pool")  # type: ignore[return-value]

    def nodes(self) -> list[NodeObj]:
        return self._feed.objects("node")  # type: ignore[return-value]

    def pods(self) -> list[Pod]:
        return self._feed.objects("pod")  # type: ignore[return-value]

    def jobs(self) -> list[TrainingJob]:
        return self._feed.objects("job")  # type: ignore[return-value]

    def quotas(self) -> list[Quota]:
        return self._feed.objects("quota")  # type: ignore[return-value]

    def events(self) -> list[Event]:
        return self._feed.objects("event")  # type: ignore[return-value]

    def watch(self, stop_after: float | None = None) -> Iterator[WatchEvent]:
        """See `ChangeFeed.watch`. Changes arrive as `step()`, `submit()`, `inject()` or a write
        commits them; a watch consumed in the stepping thread reads what is queued, so pass a
        `stop_after` there (0 is fine) or it waits for the next change."""
        return self._feed.watch(stop_after)

    def healthy(self) -> bool:
        return self.reachable

    def node_view(self, node: str) -> NodeView:
        """What the node exporter would see on one simulated node (see nodeview)."""
        with self._lock:
            return node_view(self._world, self._node(node))

    # -- write side (the controller's) -------------------------------------------------------
    def label_node(self, node: str, labels: dict[str, str | None]) -> None:
        with self._lock:
            n = self._node(node)
            for key, value in labels.items():
                if value is None:
                    n.labels.pop(key, None)
                else:
                    n.labels[key] = value
            self._changed(n)

    def taint_node(self, node: str, key: str, value: str, effect: str) -> None:
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError("taint effect must be NoSchedule, PreferNoSchedule or NoExecute")
        with self._lock:
            n = self._node(node)
            n.taints = [t for t in n.taints if (t[0], t[2]) != (key, effect)]
            n.taints.append((key, value, effect))
            self._changed(n)

    def untaint_node(self, node: str, key: str) -> None:
        with self._lock:
            n = self._node(node)
            n.taints = [t for t in n.taints if t[0] != key]
            self._changed(n)

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        with self._lock:
            n = self._node(node)
            n.unschedulable = unschedulable
            self._changed(n)

    def evict(self, namespace: str, pod: str) -> None:
        """Evict a pod; its job restarts as a whole (see sim_jobs.evict)."""
        with self._lock:
            key = f"{namespace}/{pod}"
            if key not in self._world.pods:
                raise KeyError(f"no pod {key} in the simulation")
            sim_jobs.evict(self._world, key)
            self._commit()

    def record_event(self, event: Event) -> None:
        with self._lock:
            w = self._world
            uid = event.uid or w.event_uid()
            w.add_event(Event(uid, event.kind, event.name, event.reason, event.type,
                              event.message, event.time or w.now, event.pool, event.namespace,
                              dict(event.extra)))  # fmt: skip
            self._commit()

    # -- pools and leases (the controller's) -------------------------------------------------
    def set_node_pool(self, node: str, pool: str | None) -> None:
        """Move a node into `pool` (which must exist) or out of every pool (None): a free node
        runs no new jobs and is not simulated as monitored."""
        with self._lock:
            n, w = self._node(node), self._world
            if pool and pool not in w.pool_nodes:
                raise KeyError(f"no pool {pool!r} in the simulation")
            if n.pool == (pool or ""):
                return
            self._pools.join(n, -1)
            if n.pool in w.pool_nodes:
                w.pool_nodes[n.pool].remove(n)
            n.pool = pool or ""
            if pool:
                w.pool_nodes[pool].append(n)
                n.labels[POOL_LABEL] = pool
            else:
                n.labels.pop(POOL_LABEL, None)
            self._pools.join(n, +1)
            self._changed(n)

    def create_pool(self, pool: Pool, nodes: list[str]) -> None:
        """A pool of free `nodes` (all of one accelerator model), created at run time; it keeps
        the pool's workspace and job types (none given: "default" and Train, as at start)."""
        with self._lock:
            w = self._world
            if pool.name in w.pool_nodes:
                raise ValueError(f"pool {pool.name} exists")
            members = [self._node(n) for n in nodes]
            if not members or any(m.pool for m in members):
                raise ValueError("a new pool needs at least one node, and only free nodes")
            first = members[0]
            spec = PoolSpec(
                pool.name, len(members), len(first.devices), first.resource, first.model,
                ha_spares=0, driver_version=pool.driver_version,
                workspace=pool.workspace or "default", job_types=pool.job_types or ("Train",),
            )  # fmt: skip
            self.spec = dataclasses.replace(self.spec, pools=(*self.spec.pools, spec))
            w.spec = self.spec
            w.pool_nodes[pool.name] = []
            self._pools.add(spec)
            for m in members:
                self.set_node_pool(m.name, pool.name)
            self._commit()

    def delete_pool(self, pool: str) -> None:
        with self._lock:
            w = self._world
            if w.pool_nodes.get(pool):
                raise ValueError(f"pool {pool} still has nodes")
            w.pool_nodes.pop(pool, None)
            self.spec = dataclasses.replace(
                self.spec, pools=tuple(p for p in self.spec.pools if p.name != pool)
            )
            w.spec = self.spec
            self._pools.remove(pool)
            self._feed.put("pool", pool, None)
            self._commit()

    def mark_pool(self, pool: str, abnormal: bool) -> None:
        with self._lock:
            if abnormal:
                self._pools.forced.add(pool)
            else:
                self._pools.forced.discard(pool)
            self._commit()

    def prioritize_job(self, namespace: str, name: str) -> None:
        """The job takes priority "3", the seeds' highest: it is placed before the others."""
        with self._lock:
            job = self._world.jobs.get(f"{namespace}/{name}")
            if job is None:
                raise KeyError(f"no job {namespace}/{name} in the simulation")
            job.priority = "3"
            self._world.touch("job", job.key)
            self._world.want_placement = True
            self._commit()

    def stop_job(self, namespace: str, name: str, reason: str) -> None:
        """The job exits as failed (its pods end), unless it already ended."""
        with self._lock:
            job = self._world.jobs.get(f"{namespace}/{name}")
            if job is None:
                raise KeyError(f"no job {namespace}/{name} in the simulation")
            if job.status in (JobStatus.PENDING, JobStatus.CREATING, JobStatus.RUNNING):
                sim_jobs.finish(self._world, job, JobStatus.FAILED)
                self._commit()

    def recreate_job(
        self, namespace: str, name: str, annotations: dict[str, str],
        save: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        """A job that ended queues again as a fresh job of the same spec (sim_jobs.reissue), in
        one step: nothing is deleted first, so nothing is given to `save`."""
        with self._lock:
            key = f"{namespace}/{name}"
            if key not in self._world.jobs:
                raise KeyError(f"no job {key} in the simulation")
            sim_jobs.reissue(self._world, key, annotations)
            self._commit()

    def create_job(self, manifest: str) -> None:
        """Never needed: the simulated pool re-creates a job in one step."""
        raise ValueError("the simulated pool keeps no job manifests")

    def read_lease(self, namespace: str, name: str) -> Lease | None:
        with self._lock:
            return self._leases.get((namespace, name))

    def write_lease(self, lease: Lease) -> Lease:
        with self._lock:
            held = self._leases.get((lease.namespace, lease.name))
            if (held.resource_version if held else "") != lease.resource_version:
                raise LeaseConflict(f"lease {lease.namespace}/{lease.name} changed")
            self._lease_version += 1
            stored = dataclasses.replace(lease, resource_version=str(self._lease_version))
            self._leases[(lease.namespace, lease.name)] = stored
            return stored

    def _node(self, name: str) -> SimNode:
        node = self._world.nodes.get(name)
        if node is None:
            raise KeyError(f"no node {name!r} in the simulation")
        return node

    def _changed(self, node: SimNode) -> None:
        self._world.touch("node", node.name)
        self._world.want_placement = True
        self._commit()

    # -- commit: derive, evaluate pools, place, publish ---------------------------------------
    def _commit(self) -> list[WatchEvent]:
        w, feed = self._world, self._feed
        for name in w.dirty["node"]:
            if (n := w.nodes.get(name)) is not None:
                new, n.fault_code = derive_status(
                    n.labels, n.taints, n.ready, n.unschedulable, n.creating
                )
                if new is not n.status:
                    self._pools.moved(n, new)
                    n.status = new
        self._pools.evaluate()
        if w.want_placement:
            w.want_placement = False
            sim_jobs.place_pending(w)
        for p in self.spec.pools:
            feed.put("pool", p.name, self._pools.pool_object(p))
        for kind, table, build in (("node", w.nodes, node_object), ("pod", w.pods, pod_object),
                                   ("job", w.jobs, job_object)):  # fmt: skip
            for key in w.dirty[kind]:
                obj = table.get(key)
                feed.put(kind, key, None if obj is None else build(obj))  # type: ignore[arg-type]
            w.dirty[kind].clear()
        for quota in self._pools.quota_objects():
            feed.put("quota", f"{quota.kind}/{quota.namespace}/{quota.name}", quota)
        for uid in w.dirty["event"]:
            feed.put("event", uid, w.events.get(uid))
        w.dirty["event"].clear()
        return feed.publish()
