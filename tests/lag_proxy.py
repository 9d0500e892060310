"""A TCP proxy on 127.0.0.1 that delivers what the server sends `delay` seconds late.

Why: a real API server's watch delivers a write some milliseconds after the write returned, and
the controller's informer must not decide from a cache that has not caught up with its own
writes. Put this proxy between the informers and the API server (the writes go direct) and the
watch lags by `delay` (settable while running), as on a loaded control plane, and not only on
the fixed lag of one machine's loopback. Bytes are forwarded unchanged (TLS passes through),
in order, each chunk `delay` after it arrived; the client's bytes go through at once.
`cut()` breaks every open connection (a watch cut mid-stream).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque


class LagProxy:
    def __init__(self, upstream: tuple[str, int], delay: float = 0.0) -> None:
        self.upstream, self.delay = upstream, delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="lag-proxy", daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, lagged: bool) -> None:
        """Copy src -> dst; with `lagged`, a sender thread releases each chunk when it is due."""
        due: deque[tuple[float, bytes]] = deque()  # FIFO: bytes never overtake each other
        cond = threading.Condition()
        done = threading.Event()

        def send() -> None:
            try:
                while True:
                    with cond:
                        while not due and not done.is_set():
                            cond.wait()
                        if not due:
                            return
                        at, data = due[0]
                        wait = at - time.monotonic()
                        if wait > 0:
                            cond.wait(wait)
                            continue
                        due.popleft()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                self._close(src, dst)

        if lagged:
            threading.Thread(target=send, daemon=True).start()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not lagged:
                    dst.sendall(data)
                    continue
                with cond:
                    at = time.monotonic() + self.delay
                    due.append((max(at, due[-1][0]) if due else at, data))
                    cond.notify()
        except OSError:
            pass
        finally:
            if lagged:
                with cond:
                    done.set()
                    cond.notify()
            else:
                self._close(src, dst)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._socks.discard(s)

    def cut(self) -> None:
        """Break every open connection (the clients see a stream end mid-way)."""
        with self._lock:
            socks = list(self._socks)
        self._close(*socks)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()
