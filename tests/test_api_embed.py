"""The API served by real uvicorn from a thread, as the demo embeds it."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port
from test_api_support import AUTH, TOKEN, controller_over, quiet_cluster

from controller.api.app import create_app
from controller.api.embed import start


def test_serve_call_and_stop(tmp_path: Path) -> None:
    cluster = quiet_cluster()
    app = create_app(controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", TOKEN)
    port = free_port()
    stop = start(app, "127.0.0.1", port)
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.status == 200
        req = urllib.request.Request(f"{base}/v2/p/pools/npu-b", headers=AUTH)
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["metadata"]["name"] == "npu-b"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/v2/p/pools", timeout=5)
        assert err.value.code == 401
        assert err.value.headers["WWW-Authenticate"] == "Bearer"
        with pytest.raises(OSError, match="did not start"):
            start(app, "127.0.0.1", port, ready_timeout=3)  # the port is taken
    finally:
        stop()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
        s.bind(("127.0.0.1", port))  # free again: the server really stopped
        s.listen()
