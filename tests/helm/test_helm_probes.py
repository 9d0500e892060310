"""The chart's probes and scrape settings against the real servers: each Deployment part is
started from its command as `helm template` renders it (Kubernetes backend swapped for the
simulated one, paths moved to a temporary directory, 127.0.0.1 on a free port), then asked what
the kubelet and Prometheus will ask: GET /healthz on the probe port and GET /metrics with the
ServiceMonitor's credentials."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import free_port, pinned_tool
from tests.helpers.helm_chart import Helm, Rendered

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The chart with its default values, from the pinned Helm's `helm template`."""
    return Helm(pinned_tool("helm"), tmp_path_factory.mktemp("helm-home")).template()


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _start(args: list[str], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = (tmp / "log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "poolwatch", *args], stdout=log, stderr=log)
    return proc, str(tmp / "log")


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, log: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode}:\n{Path(log).read_text()}")
        try:
            if _get(base + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"no /healthz within 30 s:\n{Path(log).read_text()}")


def _args(deploy: dict[str, Any], port: int, swap: dict[str, str]) -> list[str]:
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    out = []
    for a in args:
        flag = a.split("=", 1)[0]
        if flag == "--listen":
            a = f"--listen=127.0.0.1:{port}"
        elif flag in swap:
            a = f"{flag}={swap[flag]}"
        out.append(a)
    return out


def _probe_port(deploy: dict[str, Any]) -> str:
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"] == c["readinessProbe"]["httpGet"]
    return c["livenessProbe"]["httpGet"]["path"]


def _service_monitor_token(rendered: Rendered, component: str) -> str | None:
    if component == "api":
        return None
    ep = rendered.one("ServiceMonitor", f"-{component}")["spec"]["endpoints"][0]
    if "authorization" not in ep:
        return None
    ref = ep["authorization"]["credentials"]
    secret = next(s for s in rendered.kinds("Secret") if s["metadata"]["name"] == ref["name"])
    return base64.b64decode(secret["data"][ref["key"]]).decode()


@pytest.mark.parametrize("component", ["cluster-exporter", "rules", "alerts", "controller", "api"])
def test_probes_and_scrapes_answer_as_the_chart_expects(
    rendered: Rendered, tmp_path: Path, component: str
) -> None:
    deploy = rendered.one("Deployment", f"-{component}")
    token = _service_monitor_token(rendered, component)
    swap = {"--backend": "simulated"}
    if component == "controller":
        (tmp_path / "token").write_text("ctl-token")
        swap["--token-file"] = str(tmp_path / "token")
        config = rendered.one("ConfigMap", "-controller")["data"]["controller.yaml"]
        (tmp_path / "controller.yaml").write_text(config)
        swap["--config"] = str(tmp_path / "controller.yaml")
        (tmp_path / "alerts-token").write_text("t")  # notices go to a receiver that is not there
        swap["--notify-token-file"] = str(tmp_path / "alerts-token")
    if component == "rules":  # nothing listens there: the engine must stay healthy regardless
        swap["--source"] = f"prometheus=http://127.0.0.1:{free_port()}"
        swap["--state"] = str(tmp_path / "rules.sqlite")
        (tmp_path / "token").write_text("t")
        swap["--notify-token-file"] = swap["--controller-token-file"] = str(tmp_path / "token")
    if component == "api":
        (tmp_path / "token").write_text("api-token")
        swap["--token-file"] = str(tmp_path / "token")
    if component == "alerts":
        config = yaml.safe_load(rendered.one("ConfigMap", "-alerts")["data"]["alerts.yaml"])
        (tmp_path / "alerts-token").write_text(token or "")
        config["auth"]["bearer_token_file"] = str(tmp_path / "alerts-token")
        config["outbox"] = str(tmp_path / "outbox.sqlite")
        (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(config))
        swap["--config"] = str(tmp_path / "alerts.yaml")
    port = free_port()
    proc, log = _start(_args(deploy, port, swap), tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, base, log)
        assert _get(base + _probe_port(deploy))[0] == 200
        if component == "api":  # no Prometheus metrics, and so no ServiceMonitor
            monitors = [m["metadata"]["name"] for m in rendered.kinds("ServiceMonitor")]
            assert not [n for n in monitors if n.endswith("-api")]
            return
        status, body = _get(base + "/metrics", token)
        assert status == 200, body
        assert b"# TYPE poolwatch_" in body
        if token is not None:  # the token is what lets Prometheus in
            assert _get(base + "/metrics")[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=15)
