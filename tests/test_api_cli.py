"""`poolwatch api serve` as a real process on the simulated backend; its configuration errors."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from helpers import free_port
from integration.conftest import process

from poolwatch.app.cli import main


def test_serve_answers_with_the_token_from_the_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    port = free_port()
    cmd = [sys.executable, "-m", "poolwatch", "api", "serve", "--listen", f"127.0.0.1:{port}",
           "--backend", "simulated", "--prometheus", "http://127.0.0.1:9",
           "--token-file", str(token)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with process(cmd, tmp_path / "api.log", f"{base}/healthz"):
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as resp:
            assert "/v2/{project_id}/pools" in json.loads(resp.read())["paths"]
        req = urllib.request.Request(f"{base}/v2/p/statistics/pools",
                                     headers={"Authorization": "Bearer tok-123"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["pools"]["total"] == 2


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    base = ["api", "serve", "--backend", "simulated", "--prometheus", "http://127.0.0.1:9"]
    assert main([*base, "--token-file", str(empty)]) == 2
    assert main([*base, "--token-file", str(tmp_path / "missing")]) == 2
    good = tmp_path / "token"
    good.write_text("t")
    assert main([*base, "--token-file", str(good), "--listen", "nowhere"]) == 2
    bad_url = ["api", "serve", "--backend", "simulated", "--prometheus", "prometheus:9090"]
    assert main([*bad_url, "--token-file", str(good)]) == 2


def test_help_lists_the_verb() -> None:
    out = subprocess.run([sys.executable, "-m", "poolwatch", "api", "--help"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert "serve" in out
