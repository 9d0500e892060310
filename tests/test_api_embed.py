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

from poolwatch.api.app import create_app
from poolwatch.api.embed import start, start_for_demo


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
        with pytest.raises(OSError, match="in use"):
            start(app, "127.0.0.1", port, ready_timeout=3)  # the port is taken
    finally:
        stop()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
        s.bind(("127.0.0.1", port))  # free again: the server really stopped
        s.listen()


def test_the_demo_gets_a_token_file_and_a_working_api(tmp_path: Path) -> None:
    cluster = quiet_cluster()
    base, token_file, stop = start_for_demo(
        controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", tmp_path,
        "127.0.0.1", free_port(),
    )  # fmt: skip
    try:
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        req = urllib.request.Request(f"{base}/pools", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert [p["metadata"]["name"] for p in json.loads(resp.read())["items"]] == [
                "gpu-a", "npu-b"]  # fmt: skip
    finally:
        stop()
