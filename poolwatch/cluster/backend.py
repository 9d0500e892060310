"""The backend protocol: snapshot reads, a change stream, and the controller's small write side.

`watch()` yields `WatchEvent`s after an initial `ADDED` for every object, so a consumer (the
cluster exporter's object store) keeps per-object state up to date without ever re-listing on a
scrape. A backend that lost its stream (410 Gone, a dropped connection) re-lists and emits the
differences itself; consumers never see a gap, only `ADDED`/`MODIFIED`/`DELETED`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from poolwatch.cluster.model import Event, Lease, Node, Pod, Pool, Quota, TrainingJob

Kind = Literal["pool", "node", "pod", "job", "quota", "event"]
Object = Pool | Node | Pod | TrainingJob | Quota | Event


class LeaseConflict(RuntimeError):
    """The Lease changed since it was read (or already exists): read it again."""


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED", "SYNCED"]  # SYNCED: the initial list is done
    kind: Kind
    obj: Object | None  # None only for SYNCED


class ClusterBackend(Protocol):
    name: str  # "kubernetes" | "simulated"
    # True when the backend records PoolStatusChange/PoolResourcesStatusChange (and job restart
    # events) itself, as the simulated pool does; the controller then records only its own
    emits_pool_events: bool

    # -- read side -------------------------------------------------------------------------------
    def pools(self) -> list[Pool]: ...
    def nodes(self) -> list[Node]: ...
    def pods(self) -> list[Pod]: ...
    def jobs(self) -> list[TrainingJob]: ...
    def quotas(self) -> list[Quota]: ...
    def events(self) -> list[Event]: ...
    def watch(self, stop_after: float | None = None) -> Iterator[WatchEvent]: ...
    def healthy(self) -> bool:
        """False while the backend cannot reach its source (the exporter then reports up 0)."""
        ...

    # -- write side (the controller's) -----------------------------------------------------------
    def label_node(self, node: str, labels: dict[str, str | None]) -> None: ...
    def taint_node(self, node: str, key: str, value: str, effect: str) -> None: ...
    def untaint_node(self, node: str, key: str) -> None: ...
    def cordon(self, node: str, unschedulable: bool = True) -> None: ...
    def evict(self, namespace: str, pod: str) -> None: ...
    def record_event(self, event: Event) -> None: ...

    # -- pools and leader election (the controller's) ----------------------------------------
    def set_node_pool(self, node: str, pool: str | None) -> None:
        """Make `node` a member of `pool` (None: a free node, in no pool)."""
        ...

    def create_pool(self, pool: Pool, nodes: list[str]) -> None:
        """A new pool of (free) `nodes`; the caller marks its spares."""
        ...

    def delete_pool(self, pool: str) -> None:
        """Forget a pool that has no node left."""
        ...

    def mark_pool(self, pool: str, abnormal: bool) -> None:
        """The controller's verdict on top of the node counts: Abnormal while True (a fault
        with no spare left to replace it)."""
        ...

    def prioritize_job(self, namespace: str, name: str) -> None:
        """Queue a re-issued job ahead of the others (MA-J-03: "queued with the highest
        priority"), as far as the backend can; an unknown job is a KeyError."""
        ...

    def stop_job(self, namespace: str, name: str, reason: str) -> None:
        """Make a job exit (MA-J-03: a re-issued job still queued after 30 minutes exits), as far
        as the backend can; an unknown job is a KeyError."""
        ...

    def read_lease(self, namespace: str, name: str) -> Lease | None: ...
    def write_lease(self, lease: Lease) -> Lease:
        """Create (`resource_version` "") or replace the Lease; the stored one comes back.
        Raises LeaseConflict when it changed since it was read."""
        ...
