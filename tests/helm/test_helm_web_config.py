"""TLS and basic auth of the parts' servers through the chart (`webConfig`): the web config
Secret is mounted and named to each server, the probes and the Prometheus Operator's monitors
use the matching scheme, TLS settings and credentials, and the chart's own clients speak HTTPS to
the parts that serve it. Rendered by the real Helm; then each Deployment part is started from its
rendered command with a real web config (a self-signed certificate for 127.0.0.1, a bcrypt user)
and asked what the kubelet and Prometheus will ask. (examples/web-config-values.yaml is also
installed into the real API server with the operator's CRDs by tests/helm/test_helm_install.py.)
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.helpers import free_port, pinned_tool, self_signed_cert
from tests.helpers.helm_chart import EXAMPLES, Helm, HelmError, Rendered

EXAMPLE = next(p for p in EXAMPLES if p.name == "web-config-values.yaml")
SERVERS = {  # component -> kind
    "node-exporter": "DaemonSet", "cluster-exporter": "Deployment", "rules": "Deployment",
    "alerts": "Deployment", "controller": "Deployment", "api": "Deployment",
}  # fmt: skip


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(pinned_tool("helm"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> Rendered:
    return helm.template([EXAMPLE])


def _pod(rendered: Rendered, component: str) -> dict[str, Any]:
    return rendered.one(SERVERS[component], f"-{component}")["spec"]["template"]["spec"]


def _web_file(pod: dict[str, Any]) -> str | None:
    """Where the part is told to find its web config (flag, or the cluster exporter's setting)."""
    c = pod["containers"][0]
    for a in c["args"]:
        if a.startswith("--web-config-file="):
            return a.split("=", 1)[1]
    return next((e["value"] for e in c.get("env", []) if e["name"] == "POOLWATCH_WEB_CONFIG_FILE"),
                None)  # fmt: skip


def test_every_server_gets_the_web_config_from_the_secret(rendered: Rendered) -> None:
    for component in SERVERS:
        pod = _pod(rendered, component)
        c = pod["containers"][0]
        secret = "poolwatch-node-web" if component == "node-exporter" else "poolwatch-web"
        (volume,) = [v for v in pod["volumes"] if v["name"] == "web-config"]
        assert volume["secret"]["secretName"] == secret, component
        assert {"name": "web-config", "mountPath": "/etc/poolwatch/web", "readOnly": True} in c[
            "volumeMounts"
        ]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTPS"}
        assert _web_file(pod) == "/etc/poolwatch/web/web-config.yml", component
        if component == "alerts":  # the web config file only: its own tls would be refused
            config = yaml.safe_load(rendered.one("ConfigMap", "-alerts")["data"]["alerts.yaml"])
            assert "tls" not in config


def test_monitors_scrape_with_the_matching_scheme_tls_and_credentials(
    helm: Helm, rendered: Rendered
) -> None:
    tls = {"ca": {"secret": {"name": "poolwatch-web", "key": "ca.crt"}}, "serverName": "poolwatch"}
    basic = {"username": {"name": "poolwatch-scrape", "key": "username"},
             "password": {"name": "poolwatch-scrape", "key": "password"}}  # fmt: skip
    monitors = rendered.kinds("ServiceMonitor")
    assert len(monitors) == 5
    for m in monitors:
        (ep,) = m["spec"]["endpoints"]
        assert ep["scheme"] == "https"
        assert ep["tlsConfig"] == tls
        if m["metadata"]["name"].endswith("-alerts"):  # its bearer token, never basic auth
            assert "basicAuth" not in ep
            assert ep["authorization"]["credentials"]["key"] == "alerts-token"
        else:
            assert ep["basicAuth"] == basic
    pod = helm.template([EXAMPLE], sets=["monitoring.nodeExporterMonitor=PodMonitor"])
    (ep,) = pod.one("PodMonitor", "-node-exporter")["spec"]["podMetricsEndpoints"]
    assert (ep["scheme"], ep["tlsConfig"], ep["basicAuth"]) == ("https", tls, basic)
    # Alertmanager reaches the receiver over HTTPS, checking it the same way
    (hook,) = rendered.one("AlertmanagerConfig", "-alerts")["spec"]["receivers"][0][
        "webhookConfigs"
    ]
    assert hook["url"].startswith("https://")
    assert hook["httpConfig"]["tlsConfig"] == tls


def test_the_charts_clients_speak_https_and_trust_the_ca(rendered: Rendered) -> None:
    for component in ("rules", "controller"):
        pod = _pod(rendered, component)
        c = pod["containers"][0]
        clients = ("--notify-url=", "--controller-url=")
        urls = [a.split("=", 1)[1] for a in c["args"] if a.startswith(clients)]
        assert urls
        assert all(u.startswith("https://") for u in urls), urls
        assert {"name": "SSL_CERT_FILE", "value": "/etc/poolwatch/ca/ca.crt"} in c["env"]
        (ca,) = [v for v in pod["volumes"] if v["name"] == "client-ca"]
        assert ca["secret"]["secretName"] == "poolwatch-web"


def test_without_web_config_nothing_changes_and_a_part_can_opt_out(helm: Helm) -> None:
    plain = helm.template()
    assert "web-config" not in plain.text
    assert "SSL_CERT_FILE" not in plain.text
    for m in plain.kinds("ServiceMonitor"):
        assert "scheme" not in m["spec"]["endpoints"][0]
    out = helm.template([EXAMPLE], sets=["nodeExporter.webConfig.existingSecret="])
    pod = _pod(out, "node-exporter")
    assert _web_file(pod) is None
    assert "scheme" not in pod["containers"][0]["livenessProbe"]["httpGet"]
    ep = out.one("ServiceMonitor", "-node-exporter")["spec"]["endpoints"][0]
    assert "scheme" not in ep
    assert "basicAuth" not in ep
    assert _web_file(_pod(out, "rules")) == "/etc/poolwatch/web/web-config.yml"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["webConfig.tls=true"], "webConfig.tls: TLS needs the web config Secret"),
        (["api.webConfig.tls=true"], "api.webConfig.tls: TLS needs the web config Secret"),
        (["webConfig.existingSecret=web", "webConfig.tls=true"], "webConfig.clientCA.name:"),
        (["controller.webConfig.existingSecret=web", "controller.webConfig.tls=true"],
         "webConfig.clientCA.name: controller serve(s) TLS"),
    ],
)  # fmt: skip
def test_tls_the_chart_cannot_complete_fails_naming_the_value(
    helm: Helm, sets: list[str], message: str
) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(sets=sets)
    assert message in str(err.value)


# --- the real servers behind the rendered commands -------------------------------------------


def _get(url: str, ctx: ssl.SSLContext | None, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _post(url: str, ctx: ssl.SSLContext, headers: dict[str, str]) -> int:
    """POST an empty JSON object (not an action: 400 once let in)."""
    headers = {"Content-Type": "application/json", **headers}
    req = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.integration
@pytest.mark.parametrize("component", ["cluster-exporter", "rules", "alerts", "controller", "api"])
def test_each_server_serves_tls_and_basic_auth_as_rendered(
    rendered: Rendered, tmp_path: Path, component: str
) -> None:
    """The probe gets /healthz over HTTPS without credentials; /metrics wants what the
    ServiceMonitor sends (basic auth; the receiver its bearer token, and it takes the web
    config's users too); plain HTTP gets nothing."""
    crt, key = self_signed_cert(tmp_path)
    web = tmp_path / "web-config.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(crt), "key_file": str(key)},
        "basic_auth_users": {"prometheus": bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(4)).decode()},
    }))  # fmt: skip
    deploy = rendered.one("Deployment", f"-{component}")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    port = free_port()
    (tmp_path / "token").write_text("a-token")
    token = str(tmp_path / "token")
    swap = {"--listen": f"127.0.0.1:{port}", "--backend": "simulated", "--token-file": token,
            "--notify-token-file": token, "--controller-token-file": token,
            "--web-config-file": str(web), "--state": str(tmp_path / "state.sqlite"),
            "--source": f"prometheus=http://127.0.0.1:{free_port()}"}  # fmt: skip
    if component == "controller":
        (tmp_path / "controller.yaml").write_text(
            rendered.one("ConfigMap", "-controller")["data"]["controller.yaml"]
        )
        swap["--config"] = str(tmp_path / "controller.yaml")
    if component == "alerts":
        config = yaml.safe_load(rendered.one("ConfigMap", "-alerts")["data"]["alerts.yaml"])
        config["auth"]["bearer_token_file"] = token
        config["outbox"] = str(tmp_path / "outbox.sqlite")
        (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(config))
        swap["--config"] = str(tmp_path / "alerts.yaml")
    args = [f"{a.split('=', 1)[0]}={swap[a.split('=', 1)[0]]}" if a.split("=", 1)[0] in swap
            else a for a in c["args"]]  # fmt: skip
    env = {e["name"]: str(web) if e["name"] == "POOLWATCH_WEB_CONFIG_FILE" else e["value"]
           for e in c.get("env", []) if "value" in e and e["name"] != "SSL_CERT_FILE"}  # fmt: skip

    log = (tmp_path / "log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "poolwatch", *args], stdout=log,
                            stderr=log, env={**os.environ, **env})  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(crt))
    base = f"https://127.0.0.1:{port}"
    probe = c["livenessProbe"]["httpGet"]
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"exited {proc.returncode}:\n{(tmp_path / 'log').read_text()}")
            try:
                scheme = probe.get("scheme", "HTTP").lower()
                if _get(f"{scheme}://127.0.0.1:{port}{probe['path']}", ctx, {}) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /healthz over HTTPS:\n{(tmp_path / 'log').read_text()}")
            time.sleep(0.2)
        with pytest.raises((ConnectionError, urllib.error.URLError)):  # no plain HTTP here
            _get(f"http://127.0.0.1:{port}/healthz", None, {})
        if component == "api":
            return
        if component == "controller":  # its GET pages stay open; the users guard POST /actions
            assert _get(base + "/metrics", ctx, {}) == 200
            assert _post(base + "/actions", ctx, {}) == 401
            basic = base64.b64encode(b"prometheus:scrape-pw").decode()
            assert _post(base + "/actions", ctx, {"Authorization": f"Basic {basic}"}) == 400
            return
        assert _get(base + "/metrics", ctx, {}) == 401
        ep = rendered.one("ServiceMonitor", f"-{component}")["spec"]["endpoints"][0]
        assert ep["scheme"] == "https"
        if "basicAuth" in ep:
            basic = base64.b64encode(b"prometheus:scrape-pw").decode()
            assert _get(base + "/metrics", ctx, {"Authorization": f"Basic {basic}"}) == 200
            wrong = base64.b64encode(b"prometheus:nope").decode()
            assert _get(base + "/metrics", ctx, {"Authorization": f"Basic {wrong}"}) == 401
        else:
            assert _get(base + "/metrics", ctx, {"Authorization": "Bearer a-token"}) == 200
            assert _get(base + "/metrics", ctx, {"Authorization": "Bearer nope"}) == 401
        if component == "alerts":  # the web config's users apply to the receiver as well
            basic = base64.b64encode(b"prometheus:scrape-pw").decode()
            assert _get(base + "/status", ctx, {"Authorization": f"Basic {basic}"}) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_no_ca_is_asked_for_when_no_chart_client_calls_a_tls_part(helm: Helm) -> None:
    sets = ["webConfig.existingSecret=web", "webConfig.tls=true"]
    out = helm.template(sets=[*sets, "alerts.enabled=false", "controller.enabled=false"])
    assert "SSL_CERT_FILE" not in out.text
    assert _web_file(_pod(out, "rules")) == "/etc/poolwatch/web/web-config.yml"
