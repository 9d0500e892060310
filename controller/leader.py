"""Leader election on a coordination.k8s.io/v1 Lease: one active controller, the others standby.

The algorithm of client-go's leaderelection, in one method called every `renew` seconds:
the holder renews `renewTime`; a candidate takes the Lease over only when it is free or its
`renewTime + leaseDurationSeconds` has passed, bumping `leaseTransitions`. Every write is
conditional on the resourceVersion that was read (`LeaseConflict` means someone else won).
A leader that could not renew for a whole lease duration steps down by itself, before a
standby may take over, so two controllers never act at once (given clocks that agree to well
within the lease duration). On the simulated backend the Lease lives in the simulator, and a
single controller is trivially the leader.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from poolwatch.cluster.backend import ClusterBackend, LeaseConflict
from poolwatch.cluster.model import Lease

from .settings import LeaseSettings

log = logging.getLogger(__name__)


class LeaderElector:
    def __init__(
        self, backend: ClusterBackend, settings: LeaseSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.backend, self.settings, self.clock = backend, settings, clock
        self.identity = settings.identity or f"{socket.gethostname()}_{os.getpid()}"
        self.leader = False
        self._renewed = 0.0  # when this process last wrote the Lease as its holder

    def leading(self) -> bool:
        """Whether this process may act now: it holds the Lease and renewed it recently enough.
        It stops acting one renew period (at most half the duration) before the Lease could
        expire, so a leader that was slow to renew has stopped before a standby may take
        over; `PoolController.may_act` asks this before every decision."""
        s = self.settings
        margin = min(s.renew, s.duration / 2)
        return self.leader and self.clock() - self._renewed < s.duration - margin

    def run(self, stop: threading.Event) -> None:
        """Acquire or renew every `renew` seconds until `stop`, in its own thread: a long
        reconcile or action never delays the renewal (client-go does the same)."""
        while not stop.is_set():
            self.step()
            stop.wait(self.settings.renew)

    def step(self) -> bool:
        """Acquire or renew once; returns whether this process leads now."""
        s, now = self.settings, self.clock()
        was = self.leader
        try:
            self.leader = self._try(now)
        except LeaseConflict:
            self.leader = False
        except Exception as err:  # noqa: BLE001 - the API is down: keep leading until expiry
            log.warning("lease %s/%s not renewed: %r", s.namespace, s.name, err)
            self.leader = self.leader and now - self._renewed < s.duration
        if self.leader != was:
            log.info("%s lease %s/%s as %s", "holding" if self.leader else "lost", s.namespace,
                     s.name, self.identity)  # fmt: skip
        return self.leader

    def _try(self, now: float) -> bool:
        s = self.settings
        held = self.backend.read_lease(s.namespace, s.name)
        if held is None:
            mine = Lease(s.name, s.namespace, self.identity, s.duration, now, now, 0)
        elif held.holder == self.identity:
            mine = Lease(s.name, s.namespace, self.identity, s.duration, held.acquired or now,
                         now, held.transitions, held.resource_version)  # fmt: skip
        elif held.holder and now < held.renewed + held.duration:
            return False  # somebody else leads
        else:
            log.info("taking over lease %s/%s from %r", s.namespace, s.name, held.holder)
            mine = Lease(s.name, s.namespace, self.identity, s.duration, now, now,
                         held.transitions + 1, held.resource_version)  # fmt: skip
        self.backend.write_lease(mine)
        self._renewed = now
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown, so a standby takes over at once."""
        if not self.leader:
            return
        s = self.settings
        try:
            held = self.backend.read_lease(s.namespace, s.name)
            if held is not None and held.holder == self.identity:
                self.backend.write_lease(Lease(s.name, s.namespace, "", s.duration, held.acquired,
                                               self.clock(), held.transitions,
                                               held.resource_version))  # fmt: skip
        except Exception as err:  # noqa: BLE001 - it expires by itself
            log.warning("lease %s/%s not released: %r", s.namespace, s.name, err)
        self.leader = False
