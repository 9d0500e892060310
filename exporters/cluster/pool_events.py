"""PoolStatusChange and PoolResourcesStatusChange, derived from pool and node changes (the
`derive` mode of `pool_events`, for a cluster where nothing records them).

Each pool's last reported (status, available/abnormal/creating/deleting counts) is the baseline;
a change after the initial list yields one event with the seeds' words (`generators/event.py`).
The initial list sets the baseline without events; after a watch restart the differences the
outage hid come out as one event per pool.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from poolwatch.cluster.model import Event, PoolStatus

from .aggregate import PoolTotals
from .generators import event as event_gen

StatusOf = Callable[[str], str | None]
TotalsOf = Callable[[str], PoolTotals | None]
NO_NODES = (0, 0, 0, 0)
STATUS, RESOURCES = event_gen.STATUS_CHANGE, event_gen.RESOURCES_CHANGE


class PoolEvents:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._baseline: dict[str, tuple[str | None, tuple[int, ...]]] = {}
        self._seq = itertools.count(1)

    def baseline(self, pools: Iterable[str], status_of: StatusOf, totals_of: TotalsOf) -> None:
        for name in pools:
            totals = totals_of(name)
            if totals is not None:
                self._baseline[name] = (status_of(name), totals.counts())

    def changed(
        self, pools: Iterable[str], status_of: StatusOf, totals_of: TotalsOf
    ) -> list[Event]:
        """The events for what changed in `pools` since the baseline, which moves on."""
        now, out = self.clock(), []
        for name in sorted(pools):
            totals = totals_of(name)
            if totals is None:  # no pool object and no node left: nothing to report on
                self._baseline.pop(name, None)
                continue
            status, counts = status_of(name), totals.counts()
            old_status, old_counts = self._baseline.get(name, (None, NO_NODES))
            found: list[tuple[str, tuple[str, str]]] = []
            if status is not None and status != old_status:
                if old_status is not None:
                    found.append((STATUS, event_gen.status_changed(old_status, status)))
                elif status == PoolStatus.CREATING:
                    found.append((STATUS, event_gen.start_creating()))
            if counts != old_counts:
                found.append((RESOURCES, event_gen.resources_changed(old_counts, counts, now)))
            out += [self._event(name, reason, typ, text, now) for reason, (typ, text) in found]
            self._baseline[name] = (status if status is not None else old_status, counts)
        return out

    def _event(self, pool: str, reason: str, typ: str, message: str, now: float) -> Event:
        return Event(
            f"poolwatch-{pool}-{next(self._seq)}",
            "Pool",
            pool,
            reason,
            typ,
            message,
            now,
            pool=pool,
        )
