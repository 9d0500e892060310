"""The API server's readiness probe outlives a look that fails in an unforeseen way.

A stand-in client: the failure to inject (an import deadlock inside the Kubernetes client, seen
once when threads imported its lazily loaded modules at the same time) cannot be produced on
demand with the real API server; what follows it (a /readyz answering 500) is what the real
server answers while etcd is down (tests/controlplane/test_controlplane_faults.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

from poolwatch.cluster.kubernetes.probe import ReadyProbe


class _Answer:
    status = 500

    def read(self) -> bytes:
        return b"[+]ping ok\n[-]etcd-readiness failed: reason withheld\nreadyz check failed\n"


class _Client:
    def param_serialize(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return ()

    def call_api(self, *args: Any, **kwargs: Any) -> _Answer:
        return _Answer()


def test_the_probe_keeps_looking_after_an_unforeseen_failure() -> None:
    looks = []
    changed = threading.Event()

    def client() -> _Client:
        looks.append(time.monotonic())
        if len(looks) == 1:
            raise RuntimeError("deadlock detected by _ModuleLock('kubernetes.client.exceptions')")
        return _Client()

    probe = ReadyProbe(client, changed.set, interval=0.05)
    probe.start()
    try:
        assert changed.wait(5), "the probe stopped looking after its first look failed"
    finally:
        probe.stop()
    assert probe.error == "/readyz: HTTP 500 ([-]etcd-readiness failed: reason withheld)"
    assert len(looks) >= 2


def test_the_client_is_imported_before_the_threads_start() -> None:
    """`import_client` leaves nothing of the client for a worker thread to import first."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from poolwatch.cluster.kubernetes.api import import_client\n"
        "import_client()\n"
        "names = ['kubernetes.client.exceptions', 'kubernetes.client.rest',\n"
        "         'kubernetes.client.api.core_v1_api', 'kubernetes.watch.watch']\n"
        "print(all(n in sys.modules for n in names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "True"
