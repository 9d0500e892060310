"""Save a simulated cluster to a file and resume it later, as it stood.

Why: a demo that restarts must find the pool it left (the faulty node still isolated, the spare
still in service, the jobs where they were). A fresh pool would contradict what the demo's other
state remembers (the controller's audit, the alert state, the inbox), and every alert would
"resolve" only because the simulation was reset.

What is saved is the whole mutable world (nodes, devices, pods, jobs, events, the random
generator and the heap of scheduled changes), the pool book and the leases: everything the
simulation's next step depends on, so a resumed pool goes on exactly as an uninterrupted one
would. The object store and open watches are rebuilt from the world on load. Simulated time
resumes where it stopped: the pool is paused while nothing runs it.

The file is a pickle, written atomically (temporary file, fsync, rename) with mode 0600. A
pickle runs code when loaded, so load only a file this program wrote into a directory only its
user can write (the demo's data directory, which it locks).
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.feed import ChangeFeed

FORMAT = 2  # bump when the saved world's shape changes; an older file then starts a fresh pool


class StateMismatch(Exception):
    """The saved pool cannot be resumed here (another format or seed)."""


def save(cluster: SimulatedCluster, path: Path) -> None:
    """Write the cluster's state to `path` atomically."""
    with cluster._lock:
        blob = pickle.dumps(
            {
                "format": FORMAT,
                "seed": cluster.spec.seed,
                "spec": cluster.spec,
                "world": cluster._world,
                "pools": cluster._pools,
                "leases": cluster._leases,
                "lease_version": cluster._lease_version,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(blob)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def load(path: Path, seed: int) -> SimulatedCluster:
    """The cluster saved in `path`; StateMismatch when it was saved by another format or seed."""
    with path.open("rb") as f:
        state = pickle.load(f)  # noqa: S301 - our own file, in a directory only we write (above)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StateMismatch(f"{path} was written by another version of poolwatch")
    if state["seed"] != seed:
        raise StateMismatch(f"{path} holds a pool simulated with seed {state['seed']}, not {seed}")
    cluster = SimulatedCluster.__new__(SimulatedCluster)
    cluster.spec = state["spec"]
    cluster.reachable = True
    cluster._lock = threading.RLock()
    cluster._world = world = state["world"]
    cluster._feed = ChangeFeed(cluster._lock)
    cluster._pools = state["pools"]
    cluster._leases = state["leases"]
    cluster._lease_version = state["lease_version"]
    with cluster._lock:
        for kind, table in (("node", world.nodes), ("pod", world.pods), ("job", world.jobs),
                            ("event", world.events)):  # fmt: skip
            for key in table:
                world.dirty[kind][key] = None
        cluster._commit()
    return cluster
