"""The model objects the informers' deltas produce, the derived ones, and the watchers' queues.

The informers hand over raw deltas per resource; here each raw object becomes zero or more model
objects (an ElasticQuotaTree is one quota per tree node), and two kinds are derived across
objects: pools from nodes (`k8s_convert.pool_from`) and plain-pod jobs from pods
(`k8s_podjobs.pod_job_from`). A change is emitted only when a model object really changed
(dataclass equality), so a node's status heartbeat that changes nothing poolwatch reads emits
nothing. Conversion is an isolation boundary: an object that cannot be converted is counted
and skipped, and one that stops converting keeps its last good state (house rules: bad input
leaves the last good state running).

Every subscriber gets a snapshot (ADDED for everything known, then SYNCED once the initial lists
are done) and then the live changes, in one unbounded queue; a subscriber that stops reading
only costs memory until it unsubscribes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

from poolwatch.cluster.backend import Kind, Object, WatchEvent
from poolwatch.cluster.kubernetes.api import Converter, Resource
from poolwatch.cluster.kubernetes.convert import pod_from, pool_from
from poolwatch.cluster.kubernetes.informer import Delta
from poolwatch.cluster.kubernetes.podjobs import PodJobPart, pod_job_from, pod_job_part
from poolwatch.cluster.kubernetes.read import Context, Odd, derived_uid, dig, timestamp
from poolwatch.cluster.model import Event, Node, Pod, Pool, Quota, TrainingJob

log = logging.getLogger(__name__)

Key = tuple[Kind, Hashable]
KINDS: tuple[Kind, ...] = ("pool", "node", "pod", "job", "quota", "event")


def key_of(obj: Object) -> Key:
    if isinstance(obj, Pool):
        return "pool", obj.name
    if isinstance(obj, Quota):
        return "quota", (obj.kind, obj.namespace, obj.name)
    kinds: dict[type, Kind] = {Node: "node", Pod: "pod", TrainingJob: "job", Event: "event"}
    return kinds[type(obj)], obj.uid


class ClusterState:
    """Model objects by kind and key, fed by `apply`, read by snapshots and subscribers."""

    def __init__(self, ctx: Context, converters: dict[str, Converter]) -> None:
        self.lock = threading.RLock()
        self.ctx, self.converters = ctx, converters  # converters by Resource.name
        self.objects: dict[Kind, dict[Hashable, Any]] = {k: {} for k in KINDS}
        self.synced = False
        self._sources: dict[tuple[str, str], list[Key]] = {}  # (resource, uid) -> model keys
        self._node_created: dict[str, float] = {}
        self._pool_nodes: defaultdict[str, set[str]] = defaultdict(set)  # pool -> node uids
        self._node_pool: dict[str, str] = {}  # node name -> pool
        self._moved: set[str] = set()  # names of nodes whose pool changed in this apply()
        self._job_pool: dict[tuple[str, str], str] = {}  # (namespace, job name) -> pool
        # (namespace, job name) -> (apiVersion, kind, uid) of the API object, for event references
        self._job_refs: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._job_names: dict[str, tuple[str, str]] = {}  # uid -> (namespace, job name)
        self._parts: dict[str, PodJobPart] = {}  # pod uid -> its share of a plain-pod job
        self._pod_jobs: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._subscribers: list[queue.Queue[WatchEvent]] = []
        ctx.pool_of_node = lambda name: self._node_pool.get(name, "")
        ctx.pool_of_job = lambda namespace, name: self._job_pool.get((namespace, name), "")

    # -- reading ---------------------------------------------------------------------------------
    def snapshot(self, kind: Kind) -> list[Any]:
        with self.lock:
            return list(self.objects[kind].values())

    def subscribe(self) -> queue.Queue[WatchEvent]:
        """A queue that starts with ADDED for everything known (and SYNCED if synced)."""
        q: queue.Queue[WatchEvent] = queue.Queue()
        with self.lock:
            for kind in KINDS:
                for obj in self.objects[kind].values():
                    q.put(WatchEvent("ADDED", kind, obj))
            if self.synced:
                q.put(WatchEvent("SYNCED", "pool", None))
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[WatchEvent]) -> None:
        with self.lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def mark_synced(self) -> None:
        with self.lock:
            if not self.synced:
                self.synced = True
                self._publish([WatchEvent("SYNCED", "pool", None)])

    # -- applying deltas -----------------------------------------------------------------------
    def apply(self, resource: Resource, deltas: list[Delta]) -> None:
        with self.lock:
            out: list[WatchEvent] = []
            pools: set[str] = set()
            pod_jobs: set[tuple[str, str]] = set()
            for kind, uid, raw in deltas:
                source = (resource.name, uid)
                old_keys = self._sources.pop(source, [])
                objs = [] if kind == "DELETED" else self._convert(resource, uid, raw, pod_jobs)
                if objs is None:  # could not convert: keep the last good state
                    if old_keys:
                        self._sources[source] = old_keys
                    continue
                if resource.feeds == "pod" and kind == "DELETED":
                    self._set_part(uid, None, pod_jobs)
                new_keys = [key_of(o) for o in objs]
                for key in old_keys:
                    if key not in new_keys:
                        self._remove(key, out, pools)
                for obj in objs:
                    self._put(obj, out, pools)
                if new_keys:
                    self._sources[source] = new_keys
                if resource.feeds == "job" and resource.group:
                    self._refer(resource, raw, old_keys, objs)
                if resource.feeds == "node" and kind != "DELETED":
                    created = timestamp(dig(raw, "metadata", "creationTimestamp"))
                    self._node_created[uid] = created or 0.0
            if self._moved:  # nodes came, went or changed pool: so may plain-pod jobs on them
                for job_key, uids in self._pod_jobs.items():
                    if any(self._parts[u].pod.node in self._moved for u in uids):
                        pod_jobs.add(job_key)
                self._moved.clear()
            for name in sorted(pools - {""}):
                self._derive("pool", name, pool_from(name, self._pool_members(name)), out)
            for ns, job in sorted(pod_jobs):
                parts = [self._parts[u] for u in self._pod_jobs.get((ns, job), ())]
                derived = pod_job_from(ns, job, parts, self.ctx)
                self._derive("job", derived_uid("pod-job", ns, job), derived, out)
                if not parts:
                    self._pod_jobs.pop((ns, job), None)
            self._publish(out)

    def job_ref(self, namespace: str, name: str) -> tuple[str, str, str] | None:
        """(apiVersion, kind, uid) of the job API object `namespace/name`, if one is known."""
        with self.lock:
            return self._job_refs.get((namespace, name))

    def _refer(self, resource: Resource, raw: Any, old: list[Key], objs: list[Any]) -> None:
        for _, uid in old:
            name = self._job_names.pop(str(uid), None)
            if name is not None and self._job_refs.get(name, ("", "", ""))[2] == uid:
                del self._job_refs[name]
        api_version = f"{resource.group}/{resource.version}"
        kind = dig(raw, "kind") if isinstance(dig(raw, "kind"), str) else ""
        for job in objs:
            ref = (api_version, kind or ("Job" if job.kind == "vcjob" else job.kind), job.uid)
            self._job_refs[(job.namespace, job.name)] = ref
            self._job_names[job.uid] = (job.namespace, job.name)

    def _convert(
        self, resource: Resource, uid: str, raw: Any, pod_jobs: set[tuple[str, str]]
    ) -> list[Any] | None:
        try:
            if resource.feeds == "pod":
                pod = pod_from(raw, self.ctx)
                self._set_part(uid, pod_job_part(raw, pod, self.ctx), pod_jobs)
                return [pod]
            return self.converters[resource.name](raw, self.ctx)
        except Odd as err:
            self.ctx.note(err.reason, err.detail)
        except Exception as err:  # isolation boundary: one object, never the watch loop
            log.debug("cannot convert %s %s", resource.name, uid, exc_info=True)
            self.ctx.note(f"{resource.feeds}: conversion error", f"{uid}: {err!r}"[:200])
        return None

    def _set_part(self, uid: str, part: PodJobPart | None, touched: set[tuple[str, str]]) -> None:
        old = self._parts.pop(uid, None)
        if old is not None:
            self._pod_jobs[(old.namespace, old.job)].discard(uid)
            touched.add((old.namespace, old.job))
        if part is not None:
            self._parts[uid] = part
            self._pod_jobs[(part.namespace, part.job)].add(uid)
            touched.add((part.namespace, part.job))

    def _pool_members(self, name: str) -> list[tuple[Node, float]]:
        nodes = self.objects["node"]
        uids = self._pool_nodes.get(name, set())
        return [(nodes[u], self._node_created.get(u, 0.0)) for u in sorted(uids) if u in nodes]

    def _put(self, obj: Any, out: list[WatchEvent], pools: set[str]) -> None:
        kind, key = key_of(obj)
        old = self.objects[kind].get(key)
        self._index(old, obj, pools)
        self.objects[kind][key] = obj
        if old is None:
            out.append(WatchEvent("ADDED", kind, obj))
        elif old != obj:
            out.append(WatchEvent("MODIFIED", kind, obj))

    def _remove(self, key: Key, out: list[WatchEvent], pools: set[str]) -> None:
        kind, k = key
        old = self.objects[kind].pop(k, None)
        if old is not None:
            self._index(old, None, pools)
            if kind == "node":
                self._node_created.pop(old.uid, None)
            out.append(WatchEvent("DELETED", kind, old))

    def _index(self, old: Any, new: Any, pools: set[str]) -> None:
        """Keep the lookups (pool members, node -> pool, job -> pool) in step with a change."""
        if isinstance(old, Node) or isinstance(new, Node):
            if isinstance(old, Node):
                self._pool_nodes[old.pool].discard(old.uid)
                self._node_pool.pop(old.name, None)
                pools.add(old.pool)
            if not (isinstance(old, Node) and isinstance(new, Node) and old.pool == new.pool):
                self._moved.add(old.name if isinstance(old, Node) else new.name)
            if isinstance(new, Node):
                self._pool_nodes[new.pool].add(new.uid)
                self._node_pool[new.name] = new.pool
                pools.add(new.pool)
        if isinstance(old, TrainingJob):
            self._job_pool.pop((old.namespace, old.name), None)
        if isinstance(new, TrainingJob):
            self._job_pool[(new.namespace, new.name)] = new.pool

    def _derive(self, kind: Kind, key: Hashable, new: Any, out: list[WatchEvent]) -> None:
        old = self.objects[kind].get(key)
        if new is None:
            if old is not None:
                del self.objects[kind][key]
                self._index(old, None, set())
                out.append(WatchEvent("DELETED", kind, old))
            if kind == "pool":
                self._pool_nodes.pop(str(key), None)
            return
        self._index(old, new, set())
        self.objects[kind][key] = new
        if old is None:
            out.append(WatchEvent("ADDED", kind, new))
        elif old != new:
            out.append(WatchEvent("MODIFIED", kind, new))

    def _publish(self, events: list[WatchEvent]) -> None:
        for q in self._subscribers:
            for event in events:
                q.put(event)
