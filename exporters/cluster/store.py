"""The cluster exporter's store: watch events in, exposition bytes out (kube-state-metrics' way).

Each kind keeps `key -> rendered bytes per family` (`FamilyRows`); a watch event re-renders only the
objects it touches: the object itself, the node a pod is bound to, the totals of the pools those
belong to (those render for the next scrape, once per changed pool). A scrape writes each
family's header once and joins the stored lines; the join is cached per family until one of its
lines changes, and so is its compressed piece. The few per-scrape figures
(health, event and skip counters, accelerator-seconds that grow with time) are rendered on the
scrape and sent first; a gzip scrape gets every piece joined into one gzip stream
(`poolwatch.core.gzip_join`: no whole-body compression or checksum per scrape).

Freshness: object series are served only while the backend is healthy and the last (re-)list is
complete (`SYNCED`); otherwise the scrape has the runner's series alone, with
`poolwatch_cluster_up 0`. A watch restart re-lists: objects the new list does not mention are
dropped at `SYNCED`, as an informer's Replace does.

Bad input: an object that fails its kind's `check` is counted in
`poolwatch_cluster_objects_skipped_total{kind,reason}`, logged once, and treated as absent (its
old lines go, never its stale ones served); an exception while applying an event is caught here,
the isolation boundary, so the watch loop never dies of one object.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from typing import cast

from poolwatch.cluster.backend import WatchEvent
from poolwatch.cluster.model import Event, Node, Pool, Quota, TrainingJob
from poolwatch.core.gzip_join import Piece, join

from .aggregate import Aggregator, ResourceFilter
from .events import EventLog, Record
from .generators import event as event_gen
from .generators import job as job_gen
from .generators import node as node_gen
from .generators import passthrough
from .generators import pod as pod_gen
from .generators import pool as pool_gen
from .generators import quota as quota_gen
from .pool_events import PoolEvents
from .rows import GZIP_LEVEL, FamilyRows
from .settings import ClusterExporterSettings
from .usage import AllocatedSeconds

log = logging.getLogger(__name__)

LOGGED_PER_REASON = 20  # odd objects logged per (kind, reason); later ones are only counted

_UP = passthrough("poolwatch_cluster_up")
_LAST_SYNC = passthrough("poolwatch_cluster_last_sync_timestamp_seconds")
_WATCH_EVENTS = passthrough("poolwatch_cluster_watch_events_total")
_RESTARTS = passthrough("poolwatch_cluster_watch_restarts_total")
_SKIPPED = passthrough("poolwatch_cluster_objects_skipped_total")
_ALLOCATED = passthrough("poolwatch_cluster_accelerator_allocated_seconds_total")


class ClusterStore:
    def __init__(
        self,
        settings: ClusterExporterSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = settings or ClusterExporterSettings()
        self.clock = clock
        self._lock = threading.Lock()
        self.agg = Aggregator(s.fragment_task_cards, ResourceFilter(s.accelerator_resources))
        self.pools, self.totals = FamilyRows(pool_gen.POOL), FamilyRows(pool_gen.TOTALS)
        self.nodes, self.jobs = FamilyRows(node_gen.NODE), FamilyRows(job_gen.JOB)
        self.quotas = FamilyRows(quota_gen.QUOTA)
        # a pod changes only its node's allocated series; pool totals render at most once a scrape
        self._held_only = (self.nodes.index("poolwatch_cluster_node_accelerators_allocated"),)
        self._dirty_pools: set[str] = set()
        self.events = EventLog(s.events_kept)
        self.usage = AllocatedSeconds(clock)
        self.derive_pool_events = s.pool_events == "derive"
        self._checks: dict[str, Callable[[object], str | None]] = {
            "pool": pool_gen.check, "node": node_gen.check, "pod": pod_gen.check,
            "job": partial(job_gen.check, kinds=frozenset(s.job_kinds)),
            "quota": quota_gen.check, "event": event_gen.check,
        }  # fmt: skip
        # health
        self.healthy, self.synced, self.ever_synced = True, False, False
        self.last_sync: float | None = None
        self.watch_events: Counter[tuple[str, str]] = Counter()
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.backend_skipped: Counter[tuple[str, str]] = Counter()
        self.restarts = 0
        self._logged: set[tuple[str, str, str]] = set()  # each odd object is logged once
        self._logged_per: Counter[tuple[str, str]] = Counter()
        # object state the diffs need
        self._pool_objs: dict[str, Pool] = {}  # uid -> pool
        self._pool_by_name: dict[str, Pool] = {}
        self._node_names: dict[str, str] = {}  # uid -> name
        self._job_uids: dict[tuple[str, str], str] = {}  # (namespace, name) -> uid
        self._job_names: dict[str, tuple[str, str]] = {}
        self._seen: set[tuple[str, str]] | None = None  # keys mentioned since the list began
        self.pool_events = PoolEvents(clock)

    # -- watch side ------------------------------------------------------------------------------
    def watch_started(self) -> None:
        """A (new) watch stream begins with a full list: withhold figures until its SYNCED."""
        with self._lock:
            self.synced = False
            self._seen = set()

    def watch_failed(self) -> None:
        with self._lock:
            self.synced = False
            self.restarts += 1

    def set_healthy(self, healthy: bool) -> None:
        with self._lock:
            self.healthy = healthy

    def set_backend_skipped(self, counts: Mapping[str, int]) -> None:
        """The backend's own count of odd objects it left out (the Kubernetes backend's
        `skipped`, keyed "<kind or resource>: <reason>"), served with the exporter's."""
        merged: Counter[tuple[str, str]] = Counter()
        for text, n in counts.items():
            kind, sep, reason = str(text).partition(": ")
            merged[(kind, reason) if sep else ("backend", kind)] += int(n)
        with self._lock:
            self.backend_skipped = merged

    def apply(self, ev: WatchEvent) -> None:
        with self._lock:
            self.watch_events[(ev.kind, ev.type)] += 1
            if ev.type == "SYNCED":
                self._on_synced()
                return
            handler = getattr(self, f"_apply_{ev.kind}", None)
            if handler is None or ev.type not in ("ADDED", "MODIFIED", "DELETED"):
                self._skip(str(ev.kind), ev.obj, "unknown_event")
                return
            try:
                handler(ev.type, ev.obj)
            except Exception as err:  # noqa: BLE001 - isolation boundary: one object, not the loop
                self._skip(ev.kind, ev.obj, "apply_error", repr(err))

    def _valid(self, kind: str, typ: str, obj: object) -> bool:
        if typ == "DELETED":
            return True
        reason = self._checks[kind](obj)
        if reason is None:
            return True
        self._skip(kind, obj, reason)
        return False

    def _mention(self, kind: str, key: str) -> None:
        if self._seen is not None:
            self._seen.add((kind, key))

    def _apply_pool(self, typ: str, obj: object) -> None:
        uid = _key(obj, "uid")
        if uid is None:
            return self._skip("pool", obj, "missing_uid")
        self._mention("pool", uid)
        old = self._pool_objs.pop(uid, None)
        changed: set[str] = set()
        if old is not None and self._pool_by_name.get(old.name) is old:
            del self._pool_by_name[old.name]
            changed |= self.agg.set_pool(old.name, None)
        if self._valid("pool", typ, obj) and typ != "DELETED":
            pool = cast(Pool, obj)  # checked by _valid
            prev = self._pool_by_name.get(pool.name)
            if prev is not None and prev.uid != uid:  # recreated under the same name
                self._pool_objs.pop(prev.uid, None)
                self.pools.drop(prev.uid)
            self._pool_objs[uid] = self._pool_by_name[pool.name] = pool
            self.pools.put(uid, pool)
            changed |= self.agg.set_pool(pool.name, pool)
        else:
            self.pools.drop(uid)
        self._pools_changed(changed)

    def _apply_node(self, typ: str, obj: object) -> None:
        uid = _key(obj, "uid")
        if uid is None:
            return self._skip("node", obj, "missing_uid")
        self._mention("node", uid)
        changed: set[str] = set()
        old_name = self._node_names.pop(uid, None)
        keep = self._valid("node", typ, obj) and typ != "DELETED"
        if old_name is not None and (not keep or getattr(obj, "name", None) != old_name):
            changed |= self.agg.set_node(old_name, None, uid)
        if keep:
            node = cast(Node, obj)  # checked by _valid
            prev = self.agg.nodes.get(node.name)
            if prev is not None and prev.uid != uid:  # recreated under the same name
                self._node_names.pop(prev.uid, None)
                self.nodes.drop(prev.uid)
            self._node_names[uid] = node.name
            changed |= self.agg.set_node(node.name, node, uid)
            self._render_node(node.name)
        else:
            self.nodes.drop(uid)
        self._pools_changed(changed)

    def _apply_pod(self, typ: str, obj: object) -> None:
        uid = _key(obj, "uid")
        if uid is None:
            return self._skip("pod", obj, "missing_uid")
        self._mention("pod", uid)
        keep = self._valid("pod", typ, obj) and typ != "DELETED"
        nodes, pools = self.agg.set_pod(uid, obj if keep else None)  # type: ignore[arg-type]
        for name in nodes:
            self._render_node(name, self._held_only)
        self._pools_changed(pools)

    def _apply_job(self, typ: str, obj: object) -> None:
        uid = _key(obj, "uid")
        if uid is None:
            return self._skip("job", obj, "missing_uid")
        self._mention("job", uid)
        if self._valid("job", typ, obj) and typ != "DELETED":
            job = cast(TrainingJob, obj)  # checked by _valid
            name = (job.namespace, job.name)
            prev = self._job_uids.get(name)
            if prev is not None and prev != uid:  # recreated under the same name
                self._drop_job(prev)
            self._job_uids[name] = uid
            self._job_names[uid] = name
            self.jobs.put(uid, job)
            self.usage.set_job(uid, job_gen.allocation(job))
        else:
            self._drop_job(uid)

    def _drop_job(self, uid: str) -> None:
        name = self._job_names.pop(uid, None)
        if name is not None and self._job_uids.get(name) == uid:
            del self._job_uids[name]
        self.jobs.drop(uid)
        self.usage.set_job(uid, None)

    def _apply_quota(self, typ: str, obj: object) -> None:
        if not isinstance(obj, Quota):
            return self._skip("quota", obj, "wrong_type")
        key = quota_gen.key(obj)
        self._mention("quota", key)
        if self._valid("quota", typ, obj) and typ != "DELETED":
            self.quotas.put(key, obj)
        else:
            self.quotas.drop(key)

    def _apply_event(self, typ: str, obj: object) -> None:
        if typ == "DELETED" or not self._valid("event", typ, obj):
            return  # an expired event stays counted and listed
        ev = cast(Event, obj)  # checked by _valid
        if self.derive_pool_events and ev.reason in (
            event_gen.STATUS_CHANGE, event_gen.RESOURCES_CHANGE,
        ):  # fmt: skip
            return self._skip("event", ev, "derived_here")
        self.events.record(ev)

    # -- derived state ---------------------------------------------------------------------------
    def _render_node(self, name: str, only: tuple[int, ...] = ()) -> None:
        view = self.agg.view(name)
        if view is not None:
            self.nodes.put(view.node.uid, view, only)

    def _pools_changed(self, names: set[str]) -> None:
        self._dirty_pools |= names
        if self.synced and self.derive_pool_events:
            self._record(self.pool_events.changed(names, self._status_of, self.agg.totals))

    def _status_of(self, pool: str) -> str | None:
        obj = self._pool_by_name.get(pool)
        return None if obj is None else str(obj.status)

    def _record(self, derived: list[Event]) -> None:
        for ev in derived:
            self.events.record(ev, source="derived")

    def _on_synced(self) -> None:
        if self._seen is not None:
            self._prune(self._seen)
            self._seen = None
        if self.derive_pool_events:
            pools = set(self.agg.pools)
            if self.ever_synced:  # what changed while the stream was down, one event each
                self._record(self.pool_events.changed(pools, self._status_of, self.agg.totals))
            else:
                self.pool_events.baseline(pools, self._status_of, self.agg.totals)
        self.synced = self.ever_synced = True
        self.last_sync = self.clock()

    def _prune(self, seen: set[tuple[str, str]]) -> None:
        """Drop what a re-list no longer mentions (deleted while the stream was down)."""
        gone = {
            "pool": [k for k in self._pool_objs if ("pool", k) not in seen],
            "node": [k for k in self._node_names if ("node", k) not in seen],
            "pod": [k for k in self.agg.pods if ("pod", k) not in seen],
            "job": [k for k in self.jobs.rows if ("job", k) not in seen],
            "quota": [k for k in self.quotas.rows if ("quota", k) not in seen],
        }
        self._seen = None
        for k in gone["pool"]:
            self._apply_pool("DELETED", _Deleted(k))
        for k in gone["node"]:
            self._apply_node("DELETED", _Deleted(k))
        for k in gone["pod"]:
            self._apply_pod("DELETED", _Deleted(k))
        for k in gone["job"]:
            self._apply_job("DELETED", _Deleted(k))
        for k in gone["quota"]:
            self.quotas.drop(k)

    def _skip(self, kind: str, obj: object, reason: str, detail: str = "") -> None:
        self.skipped[(kind, reason)] += 1
        ident = _key(obj, "uid") or _key(obj, "name") or "?"
        token = (kind, reason, ident)
        if token in self._logged or self._logged_per[(kind, reason)] >= LOGGED_PER_REASON:
            return  # bounded: at most LOGGED_PER_REASON tokens per (kind, reason)
        self._logged.add(token)
        self._logged_per[(kind, reason)] += 1
        last = self._logged_per[(kind, reason)] == LOGGED_PER_REASON
        log.warning(
            "skipped a %s: %s%s%s", kind, reason, f" ({detail})" if detail else "",
            "; further ones with this reason are only counted" if last else "",
            extra={"kind": kind, "object": ident, "reason": reason},
        )  # fmt: skip

    # -- scrape side -----------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.healthy and self.synced

    def body(self, gzipped: bool = False) -> bytes:
        """The exposition: per-scrape series first, then the stored lines when up."""
        with self._lock:
            up = self.up
            live = self._live(up)
            families: list[tuple[FamilyRows, int, int, bytes]] = []
            if up:
                self._render_totals()
                families = [(r, *f) for r in self._kinds() for f in r.families()]
        if not gzipped:
            return b"".join([live, *(data for *_, data in families)])
        pieces = [Piece.of(live, GZIP_LEVEL)]
        pieces += [rows.piece(i, version, data) for rows, i, version, data in families]
        return join(pieces)

    def _render_totals(self) -> None:
        """Pool totals change with most pod events; they are rendered for the scrape that
        follows, once per changed pool, rather than once per event."""
        for name in self._dirty_pools:
            totals = self.agg.totals(name)
            if totals is None:
                self.totals.drop(name)
            else:
                self.totals.put(name, totals)
        self._dirty_pools.clear()

    def _kinds(self) -> list[FamilyRows]:
        return [self.pools, self.totals, self.nodes, self.jobs, self.quotas]

    def _live(self, up: bool) -> bytes:
        parts = [
            _UP.render_samples([((), 1.0 if up else 0.0)]),
            _LAST_SYNC.render_samples([((), self.last_sync)] if self.last_sync else []),
            _WATCH_EVENTS.render_samples(
                [(k, float(n)) for k, n in sorted(self.watch_events.items())]
            ),
            _RESTARTS.render_samples([((), float(self.restarts))]),
            _SKIPPED.render_samples(
                [(k, float(n)) for k, n in sorted((self.skipped + self.backend_skipped).items())]
            ),
        ]
        if up:
            parts.append(event_gen.EVENTS_TOTAL.render_samples(self.events.samples()))
            parts.append(_ALLOCATED.render_samples(self.usage.samples()))
        return b"".join(parts)

    def recent_events(self, limit: int | None = None, **match: str) -> list[Record]:
        with self._lock:
            return self.events.recent(limit, **match)

    def status(self) -> dict[str, object]:
        with self._lock:
            return {
                "up": self.up, "healthy": self.healthy, "synced": self.synced,
                "last_sync": self.last_sync, "restarts": self.restarts,
                "skipped": sum(self.skipped.values()) + sum(self.backend_skipped.values()),
            }  # fmt: skip


class _Deleted:
    """Stands for an object known only by its key (a prune)."""

    def __init__(self, uid: str) -> None:
        self.uid = uid


def _key(obj: object, attr: str) -> str | None:
    value = getattr(obj, attr, None)
    return value if isinstance(value, str) and value else None
