"""The shared HTTP server's threads: a thread whose connection ended serves the next connection
if one comes within IDLE_THREAD_S, ends after that, and ends at once when the server closes.
A real server on 127.0.0.1 and real client connections (a new one per request, as a scraper
that does not keep connections alive makes them)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator

import pytest

from poolwatch.core.web.server import Handler, Server


class _Who(Handler):
    """Answers with the name of the thread that served the request (names are never reused)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_body(200, threading.current_thread().name.encode(), "text/plain")


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), _Who)
    httpd.IDLE_THREAD_S = 0.5
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _who(httpd: Server) -> str:
    conn = http.client.HTTPConnection(*httpd.server_address[:2], timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _settle(want: int, within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while (now := threading.active_count()) > want and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


def test_a_new_connection_is_served_by_a_waiting_thread(server: Server) -> None:
    first = _who(server)
    served = []
    for _ in range(5):
        time.sleep(0.1)  # the last connection is closed and its thread waits for the next
        served.append(_who(server))
    assert served == [first] * 5


def test_concurrent_connections_each_get_a_thread(server: Server) -> None:
    """Ten at once are served at once (no connection waits for another's thread)."""
    names: list[str] = []
    gate = threading.Barrier(10)

    def one() -> None:
        gate.wait()
        names.append(_who(server))

    clients = [threading.Thread(target=one) for _ in range(10)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert len(names) == 10
    assert len(set(names)) >= 2


def test_an_idle_thread_ends_after_the_idle_wait(server: Server) -> None:
    before = _settle(0, within=1.0)  # threads of earlier tests' servers are gone
    _who(server)
    time.sleep(0.1)
    assert threading.active_count() == before + 1  # waiting for a next connection
    assert _settle(before) == before  # gone once IDLE_THREAD_S (0.5 s here) passed
    assert _who(server)  # and a new connection still gets a thread


def test_closing_the_server_ends_waiting_threads_at_once() -> None:
    httpd = Server(("127.0.0.1", 0), _Who)
    httpd.IDLE_THREAD_S = 60.0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    before = _settle(0, within=1.0)  # the serve_forever thread included
    _who(httpd)
    time.sleep(0.1)
    assert threading.active_count() == before + 1
    httpd.shutdown()
    httpd.server_close()
    assert _settle(before - 1, within=2.0) == before - 1
