"""The simulation's object store and change stream (the `watch()` half of the backend).

Why a store of frozen objects: reads (`nodes()`, ...) and the initial list of a watch must be
cheap and consistent, and a change must be announced exactly when an object's value changes. Each
commit `put`s the objects the simulation touched; an equal value emits nothing, a new value
MODIFIED, a removal DELETED. Every open watch has its own queue, so a slow consumer delays only
itself; the initial list and the queue's start are taken under one lock, so there is no gap.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

from poolwatch.cluster.backend import Kind, Object, WatchEvent

KINDS: tuple[Kind, ...] = ("pool", "node", "pod", "job", "quota", "event")


class ChangeFeed:
    def __init__(self, lock: threading.RLock) -> None:
        self._cond = threading.Condition(lock)
        self._objects: dict[Kind, dict[str, Object]] = {k: {} for k in KINDS}
        self._pending: list[WatchEvent] = []
        self._queues: list[deque[WatchEvent]] = []

    def objects(self, kind: Kind) -> list[Object]:
        with self._cond:
            return list(self._objects[kind].values())

    def put(self, kind: Kind, key: str, obj: Object | None) -> None:
        """Record the current value of one object (None: it is gone); call `publish` after."""
        store = self._objects[kind]
        old = store.get(key)
        if obj is None:
            if old is not None:
                del store[key]
                self._pending.append(WatchEvent("DELETED", kind, old))
        elif old is None:
            store[key] = obj
            self._pending.append(WatchEvent("ADDED", kind, obj))
        elif getattr(old, "uid", "") != getattr(obj, "uid", ""):  # gone, then back: new object
            store[key] = obj
            self._pending.append(WatchEvent("DELETED", kind, old))
            self._pending.append(WatchEvent("ADDED", kind, obj))
        elif old != obj:
            store[key] = obj
            self._pending.append(WatchEvent("MODIFIED", kind, obj))

    def publish(self) -> list[WatchEvent]:
        """Hand the changes since the last publish to every open watch; returns them."""
        changes, self._pending = self._pending, []
        if changes:
            with self._cond:
                for q in self._queues:
                    q.extend(changes)
                self._cond.notify_all()
        return changes

    def watch(self, stop_after: float | None = None) -> Iterator[WatchEvent]:
        """ADDED for every object, SYNCED, then changes as commits publish them.

        `stop_after`: wall-clock seconds from the first `next()`; once past, the stream delivers
        what is already queued and ends (0 gives the list plus whatever a caller's own `step()`
        queued before it reads on; None never ends). Events are yielded outside the lock."""
        deadline = None if stop_after is None else time.monotonic() + stop_after
        queue: deque[WatchEvent] = deque()
        with self._cond:
            initial = [WatchEvent("ADDED", k, o) for k in KINDS for o in self._objects[k].values()]
            self._queues.append(queue)
        try:
            yield from initial
            yield WatchEvent("SYNCED", "pool", None)
            while True:
                with self._cond:
                    while not queue:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return
                        self._cond.wait(left)
                    batch = list(queue)
                    queue.clear()
                yield from batch
        finally:
            with self._cond:
                self._queues.remove(queue)
