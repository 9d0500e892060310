"""The pool API (uvicorn) under the same hostile clients as the threaded servers
(tests/test_http_hardening.py): served for real on 127.0.0.1 through `controller.api.embed`, as
the demo serves it, with the guards of `controller.api.guard`.

Before: uvicorn kept a connection that never finished its first request open for ever (idle or
trickling headers) and framed Transfer-Encoding + Content-Length by the former."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from test_api_support import TOKEN, controller_over, quiet_cluster
from test_http_hardening import _complete, exchange, status_of

from poolwatch.api import embed, guard
from poolwatch.api.app import create_app


@pytest.fixture
def api_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(guard.GuardedH11Protocol, "idle_timeout", 0.5)
    monkeypatch.setattr(guard.GuardedH11Protocol, "read_timeout", 1.0)
    cluster = quiet_cluster()
    app = create_app(controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", TOKEN)
    port = free_port()
    stop = embed.start(app, "127.0.0.1", port)
    yield port
    stop()


def test_an_idle_connection_is_closed(api_port: int) -> None:
    started = time.monotonic()
    assert exchange(api_port, b"", wait=5.0) == b""
    assert time.monotonic() - started < 3.0


def test_a_trickling_request_is_cut_at_the_read_deadline(api_port: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", api_port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        try:
            for _ in range(40):
                sock.sendall(b"X")
                time.sleep(0.2)
        except OSError:
            closed = True
        if not closed:
            sock.settimeout(0.5)
            closed = sock.recv(100) == b""
    assert closed
    assert time.monotonic() - started < 4.0


def test_ambiguous_framing_is_400(api_port: int) -> None:
    raw = (
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )  # before: 405, framed as chunked
    assert status_of(exchange(api_port, raw)) == 400


@pytest.mark.parametrize("length", [b"abc", b"\xb2", b"-1"])
def test_a_content_length_that_is_not_a_number_is_400(api_port: int, length: bytes) -> None:
    raw = b"POST /v2/p/pools HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
    assert status_of(exchange(api_port, raw)) == 400


def test_a_normal_keep_alive_client_is_served(api_port: int) -> None:
    with socket.create_connection(("127.0.0.1", api_port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not _complete(answer):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # under the idle timeout between requests
