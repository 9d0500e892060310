"""Real processes on 127.0.0.1: started on free ports, polled for readiness against a deadline,
terminated in the finalizer, with their log attached to any failure."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, free_port
from tests.helpers.prom_versions import Prometheus

ROOT = Path(__file__).parent.parent.parent


def wait_http(
    url: str,
    proc: subprocess.Popen,
    log: Path,
    deadline_s: float = 30.0,
    context: ssl.SSLContext | None = None,
) -> None:
    """Until `url` answers 200 (`context`: the TLS client context for an https URL)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2, context=context) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {deadline_s}s:\n{log.read_text()}")


@contextlib.contextmanager
def process(
    cmd: list[str], log: Path, ready_url: str, context: ssl.SSLContext | None = None
) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_http(ready_url, proc, log, context=context)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def prometheus_on(prom: Prometheus, tmp_path: Path, config: str) -> Iterator[str]:
    """`prom`'s Prometheus with `config` (prometheus.yml text) on a free port; yields its URL."""
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(config)
    cmd = [
        prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with process(cmd, tmp_path / "prometheus.log", f"{base}/-/ready"):
        yield base


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def prom_query(base: str, expr: str) -> list[dict]:
    doc = get_json(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[dict]:
    """poolwatch node-exporter as a real process: cache dir in tmp, IB/NFS from fixtures."""
    cache = tmp_path / "cache"
    (cache / "job-a").mkdir(parents=True)
    (cache / "job-a" / "data.bin").write_bytes(b"\0" * 200_000)
    port = free_port()
    cfg = tmp_path / "poolwatch.yaml"
    cfg.write_text(
        f"""
listen: 127.0.0.1:{port}
cache_dir: {cache}
pool: pool-a
node: node-1
compat: [modelarts]
roots: {{sysfs: {FIXTURES / "sys"}}}
collectors:
  host: {{interval: 1s, timeout: 900ms}}
  filesystem: {{interval: 1s, timeout: 900ms}}
  cache_dir: {{interval: 1s, timeout: 900ms, time_budget: 500ms}}
  infiniband: {{interval: 1s, timeout: 900ms}}
  nfs: {{interval: 1s, timeout: 900ms}}
"""
    )
    log = tmp_path / "exporter.log"
    cmd = [sys.executable, "-m", "poolwatch", "node-exporter", "run", "--config", str(cfg)]
    with process(cmd, log, f"http://127.0.0.1:{port}/healthz") as proc:
        yield {"port": port, "cache": cache, "proc": proc, "log": log, "config": cfg}


def use_prometheus(prom: Prometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make `prom`'s prometheus the one the demo finds, wherever it looks: a tool directory of
    its own (POOLWATCH_TOOLS_DIR, holding only bin/prometheus) and first on PATH. Returns the
    version it reports, "major.minor"."""
    binary = prom.prometheus  # resolved (and built) before the environment changes
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin" / "prometheus").symlink_to(binary)
    monkeypatch.setenv("POOLWATCH_TOOLS_DIR", str(tools))
    monkeypatch.setenv("PATH", f"{tools / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return ".".join(map(str, prom.version))


def running_version(base: str, deadline_s: float = 30.0) -> str:
    """The "major.minor" version of the Prometheus serving `base`, from its build information
    (waiting for it to answer: the demo returns before its Prometheus is up)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            version = get_json(f"{base}/api/v1/status/buildinfo")["data"]["version"]
            return ".".join(version.split(".")[:2])
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
