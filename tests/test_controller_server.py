"""`poolwatch controller run` over HTTP: POST /actions (token, bad input, standby), /metrics
(catalog names, promtool-clean), /healthz, the rule engine's HTTP sink as the real client, and
the command line (settings errors name file and line)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port, parse, promtool_findings, value
from prom_versions import Prometheus
from test_controller_support import controller, sim

from poolwatch.controller.server import ControllerServer, serve
from poolwatch.controller.service import PoolController
from poolwatch.core.actions import NodeAction

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"  # noqa: S105 - a test token


@pytest.fixture
def served() -> Iterator[tuple[str, PoolController, list[bool]]]:
    leader = [True]
    ctl = controller(sim(), dry_run=True)
    server = ControllerServer(("127.0.0.1", free_port()), ctl, TOKEN, lambda: leader[0],
                              lambda: 1_700_000_000.0)  # fmt: skip
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", ctl, leader
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/actions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


ACTION = NodeAction("isolate", "k1", node="p0-node-01", fault_code="A050104", reason="test")


def test_actions_need_the_token_and_valid_json(served) -> None:
    url, _, _ = served
    body = json.dumps(ACTION.to_json()).encode()
    refused = {"outcome": "refused", "detail": "a valid bearer token is required"}
    assert post(url, body, token=None) == (401, refused)
    assert post(url, body, token="wrong")[0] == 401  # noqa: S106 - a wrong test token
    code, doc = post(url, b"{not json")
    assert code == 400
    assert doc["outcome"] == "refused"
    code, doc = post(url, json.dumps({"kind": "reboot", "key": "x"}).encode())
    assert code == 400
    assert "kind: expected isolate, replace or restart-job" in doc["detail"]
    code, doc = post(url, body)
    assert code == 200
    assert doc["outcome"] == "dry-run"


def test_a_standby_defers(served) -> None:
    url, _, leader = served
    leader[0] = False
    code, doc = post(url, json.dumps(ACTION.to_json()).encode())
    assert (code, doc["outcome"]) == (503, "deferred")
    status, body = get(url + "/healthz")
    assert (status, body) == (200, b"ok (standby)\n")


def test_the_rule_engines_http_sink_talks_to_it(served) -> None:
    from poolwatch.rules.sinks import HttpActionSink

    url, ctl, _ = served
    sink = HttpActionSink(url, token=TOKEN)
    assert sink.submit(ACTION).outcome == "dry-run"
    ctl.settings.dry_run = False
    assert sink.submit(NodeAction("isolate", "k2", node="p0-node-02",
                                  fault_code="A050104")).outcome == "done"  # fmt: skip
    assert sink.submit(NodeAction("isolate", "k2", node="p0-node-02",
                                  fault_code="A050104")).outcome == "already"  # fmt: skip


def test_metrics_come_from_the_catalog(served, prom: Prometheus) -> None:
    url, ctl, _ = served
    post(url, json.dumps(ACTION.to_json()).encode())
    ctl.submit(NodeAction("isolate", "k9", node="p0-node-03", fault_code="A050104"))
    status, body = get(url + "/metrics")
    assert status == 200
    series = parse(body)
    assert value(series, "poolwatch_controller_actions_total", kind="isolate",
                 outcome="dry-run") == 2  # fmt: skip
    assert value(series, "poolwatch_controller_leader") == 1
    assert value(series, "poolwatch_controller_last_reconcile_timestamp_seconds") == 1.7e9
    ctl.settings.dry_run = False
    ctl.submit(NodeAction("isolate", "k10", node="p0-node-03", fault_code="A050104"))
    series = parse(get(url + "/metrics")[1])
    assert value(series, "poolwatch_controller_replacements_total", result="done") == 1
    assert value(series, "poolwatch_controller_breaker_open", pool="p0") == 0
    assert promtool_findings(get(url + "/metrics")[1], prom.promtool) == set()


def test_run_leads_on_the_simulated_backend_and_stops(tmp_path: Path) -> None:
    from poolwatch.controller.runner import run
    from poolwatch.controller.settings import ControllerSettings

    port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    settings = ControllerSettings(backend="simulated", listen=f"127.0.0.1:{port}",
                                  token_file=token, state_path=tmp_path / "state.db",
                                  interval=0.2, lease={"renew": 0.2})  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(settings, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    body = b""
    while time.monotonic() < deadline:
        try:
            body = get(f"http://127.0.0.1:{port}/healthz")[1]
            if body == b"ok (leader)\n":
                break
        except OSError:
            pass
        time.sleep(0.05)
    assert body == b"ok (leader)\n"
    action = NodeAction("isolate", "k", node="gpu-a-node-00", fault_code="A050104")
    code, doc = post(f"http://127.0.0.1:{port}", json.dumps(action.to_json()).encode())
    assert (code, doc["outcome"]) == (200, "dry-run")  # dry-run is the default
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    out = subprocess.run([sys.executable, "-m", "poolwatch", "controller", "audit", "--state",
                          str(tmp_path / "state.db")], capture_output=True, text=True,
                         cwd=ROOT, check=True)  # fmt: skip
    assert "\taction:isolate\tgpu-a-node-00\tdry-run\t" in out.stdout


def test_a_bad_setting_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text("dry_run: false\nreplace_daily_ratio: 2\n")
    out = subprocess.run([sys.executable, "-m", "poolwatch", "controller", "run", "--config",
                          str(config), "--print-config"], capture_output=True, text=True,
                         cwd=ROOT)  # fmt: skip
    assert out.returncode == 2
    assert f"replace_daily_ratio: Input should be less than or equal to 1 ({config}:2)" in (
        out.stderr
    )
    config.write_text("replace_codes: [A0501]\n")
    out = subprocess.run([sys.executable, "-m", "poolwatch", "controller", "run", "--config",
                          str(config), "--print-config"], capture_output=True, text=True,
                         cwd=ROOT)  # fmt: skip
    assert out.returncode == 2
    assert "'A0501' is not an isolation code" in out.stderr


def test_run_on_kubernetes_takes_the_lease_and_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production path: kubeconfig -> the real client -> the API stub; Lease, then an
    action through POST /actions becomes a taint on the node."""
    from k8s_stub import KubeApiStub
    from test_controller_kubernetes import seed

    from poolwatch.controller.runner import run
    from poolwatch.controller.settings import ControllerSettings

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    stub = KubeApiStub()
    seed(stub)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: stub\n"
        f"clusters: [{{name: stub, cluster: {{server: '{stub.url}'}}}}]\n"
        "users: [{name: stub, user: {}}]\n"
        "contexts: [{name: stub, context: {cluster: stub, user: stub}}]\n"
    )
    port = free_port()
    settings = ControllerSettings(backend="kubernetes", kubeconfig=kubeconfig, dry_run=False,
                                  listen=f"127.0.0.1:{port}", interval=0.2,
                                  lease={"renew": 0.2, "identity": "me"})  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(settings, stop), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ("default", "poolwatch-controller") not in (
            stub.leases
        ):
            time.sleep(0.05)
        lease = stub.leases[("default", "poolwatch-controller")]
        assert lease["spec"]["holderIdentity"] == "me"
        action = NodeAction("isolate", "k", node="n1", fault_code="A050147", reason="ib down")
        code, doc = post(f"http://127.0.0.1:{port}", json.dumps(action.to_json()).encode(),
                         token=None)  # fmt: skip
        assert (code, doc["outcome"]) == (200, "done"), doc
        node = stub.collections["/api/v1/nodes"].objects[("", "n1")]
        assert {"key": "poolwatch.io/fault", "value": "A050147", "effect": "NoSchedule"} in (
            node["spec"]["taints"]
        )
    finally:
        stop.set()
        thread.join(10)
        stub.close()
    assert stub.leases[("default", "poolwatch-controller")]["spec"]["holderIdentity"] == ""
