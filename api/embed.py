"""The API inside another process (the demo): uvicorn in a daemon thread, stopped on request.

`poolwatch api serve` owns its process and lets uvicorn handle signals; an embedded server must
not touch signal handlers and must stop when its host stops, so it runs `uvicorn.Server` in a
thread (uvicorn captures signals only in the main thread) and stops it by `should_exit`.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from .app import create_app
from .ports import ClusterReader, PoolControl


def start(
    app: FastAPI,
    host: str,
    port: int,
    ready_timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> Callable[[], None]:
    """Serve `app` on host:port (HTTPS with `tls`) from a daemon thread; returns the function
    that stops it. The socket is bound here, so a taken port is an OSError for the caller, not
    an exit inside the server's thread; so is a server that did not start within
    `ready_timeout`."""
    import uvicorn

    from poolwatch.core.web import asgi

    sock = socket.create_server((host, port), family=_family(host), backlog=128)
    config = uvicorn.Config(asgi.reject_ambiguous_framing(app), log_level="warning",
                            access_log=False, lifespan="on", **asgi.settings(tls))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pool-api",
                              daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise OSError(f"the pool API did not start on {host}:{port}")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()

    return stop


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def start_for_demo(
    controller: PoolControl,
    cluster: ClusterReader,
    prometheus_url: str,
    data_dir: Path,
    host: str,
    port: int,
) -> tuple[str, Path, Callable[[], None]]:
    """The demo's pool API: a fresh random token in DATA/api-token (mode 0600, so a `curl -H
    "Authorization: Bearer $(cat DATA/api-token)"` works), served on host:port. Returns the
    base URL, the token file and the stopper."""
    token = secrets.token_urlsafe(24)
    path = data_dir / "api-token"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    app = create_app(controller, cluster, prometheus_url, token)
    return f"http://{host}:{port}/v2/demo", path, start(app, host, port)
