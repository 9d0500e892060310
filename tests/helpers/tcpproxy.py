"""A small TCP proxy on 127.0.0.1 in front of a real server (the API server), to make real the
network faults a server cannot be asked for: `cut()` closes every open connection mid-stream,
`refuse()` closes new connections at once (a partition) until `allow()`, and `delay` holds each
chunk from the server for that many seconds before passing it on (watch lag); the client's
chunks are passed at once. TLS passes through untouched: the client still verifies the server.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from typing import Any


class TcpProxy:
    """Forward 127.0.0.1:`port` to `target_port`; see the module docstring."""

    def __init__(self, target_port: int, delay: float = 0.0, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = delay
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = False
        self._closed = False
        self.connections = 0  # accepted so far
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # -- faults ---------------------------------------------------------------------------------
    def cut(self) -> int:
        """Close every open connection now (both ends); returns how many were open."""
        with self._lock:
            socks, self._open = list(self._open), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        return len(socks) // 2

    def refuse(self) -> None:
        """Close new connections as soon as they are accepted, and cut the open ones."""
        self._refusing = True
        self.cut()

    def allow(self) -> None:
        self._refusing = False

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.delay), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        if delay > 0:
            self._pump_delayed(src, dst, delay)
            return
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        self._drop(src, dst)

    def _pump_delayed(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        """Read as fast as the server writes; a second thread sends each chunk `delay` seconds
        after it arrived, so the lag is the same for every chunk and never accumulates."""
        pending: list[tuple[float, int, bytes]] = []
        cond = threading.Condition()
        done = [False]
        seq = 0

        def sender() -> None:
            try:
                while True:
                    with cond:
                        while not pending and not done[0]:
                            cond.wait()
                        if not pending:
                            return
                        due, _, data = pending[0]
                        wait = due - time.monotonic()
                        if wait > 0:
                            cond.wait(wait)
                            continue
                        heapq.heappop(pending)
                    dst.sendall(data)
            except OSError:
                pass
            self._drop(src, dst)

        threading.Thread(target=sender, daemon=True).start()
        try:
            while data := src.recv(65536):
                with cond:
                    heapq.heappush(pending, (time.monotonic() + delay, seq, data))
                    seq += 1
                    cond.notify()
        except OSError:
            pass
        with cond:
            done[0] = True
            cond.notify()

    def _drop(self, *socks: Any) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
