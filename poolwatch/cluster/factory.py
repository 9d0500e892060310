"""Open the backend a command asked for (`--backend kubernetes|simulated`), the one way every
serving command does it: the simulated pool advances in real time from a daemon thread, the
Kubernetes backend talks to the API server (in-cluster, or through a kubeconfig)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def open_backend(kind: str, kubeconfig: Path | None = None) -> tuple[Any, Callable[[], None]]:
    """The backend and the function that stops it (the simulation clock, the informers)."""
    if kind == "simulated":
        from poolwatch.cluster.simulated.backend import SimulatedCluster

        sim = SimulatedCluster()
        stop = threading.Event()
        threading.Thread(target=sim.run, args=(stop,), daemon=True, name="sim").start()
        return sim, stop.set
    from poolwatch.cluster.kubernetes.backend import KubernetesCluster

    cluster = KubernetesCluster(kubeconfig=kubeconfig)
    return cluster, cluster.stop
