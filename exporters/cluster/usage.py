"""Accelerator-seconds held by running jobs, integrated per (pool, owner, queue, resource).

The counter grows continuously while jobs run, not only at watch events, so its value is
computed when a scrape asks: total so far + current rate x time since the last change. The
number of keys is bounded by owners x queues x resources, so this per-scrape part stays small.
Counting starts when the exporter starts; `increase()` over a range handles restarts.
"""

from __future__ import annotations

from collections.abc import Callable

from .generators import Sample

Key = tuple[str, str, str, str]  # pool, owner, queue, resource


class AllocatedSeconds:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._jobs: dict[str, tuple[Key, float]] = {}  # job uid -> (key, accelerators held)
        self._rate: dict[Key, float] = {}
        self._total: dict[Key, float] = {}
        self._since: dict[Key, float] = {}

    def set_job(self, uid: str, held: tuple[Key, float] | None) -> None:
        """What a job holds now (None: nothing, e.g. it stopped running or was deleted)."""
        before = self._jobs.get(uid)
        if before == held:
            return
        now = self.clock()
        if before is not None:
            self._move(before[0], -before[1], now)
            del self._jobs[uid]
        if held is not None and held[1] > 0:
            self._move(held[0], held[1], now)
            self._jobs[uid] = held

    def _move(self, key: Key, delta: float, now: float) -> None:
        rate = self._rate.get(key, 0.0)
        since = self._since.get(key, now)
        self._total[key] = self._total.get(key, 0.0) + rate * max(0.0, now - since)
        self._since[key] = now
        rate += delta
        self._rate[key] = 0.0 if abs(rate) < 1e-9 else rate

    def samples(self) -> list[Sample]:
        now = self.clock()
        out = []
        for key in sorted(self._total):
            extra = self._rate.get(key, 0.0) * max(0.0, now - self._since[key])
            out.append((key, self._total[key] + extra))
        return out
