"""The receiver reads the web config file every poolwatch server takes (`web_config_file`,
`--web-config-file`, $POOLWATCH_WEB_CONFIG_FILE): TLS and bcrypt basic-auth users.

End to end: `poolwatch alerts serve` as a real process, configured only through that file for TLS
and users, a real Alertmanager (Debian's and the pinned release) delivering to it with the route
`poolwatch alerts amconfig --user --password-file` wrote, and `poolwatch alerts status` reading it
as that user. How the file combines with the receiver's own `tls` and `auth` is checked on
`web_setup`, the function `serve` starts from.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import bcrypt
import pytest
import yaml

from poolwatch.alerts.server import web_setup
from poolwatch.app.cli import main
from poolwatch.core.config import ConfigError
from tests.helpers import free_port, self_signed_cert
from tests.helpers.alerts_support import HttpSink, settings, wait_for
from tests.helpers.prom_versions import Alertmanager
from tests.integration.conftest import process

USER, PASSWORD = "alertmanager", "pw with spaces & ünïcode"


def _web_config(tmp: Path, tls: bool = True, users: dict[str, str] | None = None) -> Path:
    """A web config as an operator writes it for node_exporter: certificate, bcrypt hashes."""
    users = {USER: PASSWORD} if users is None else users
    doc: dict = {}
    if tls:
        crt, key = self_signed_cert(tmp)
        doc["tls_server_config"] = {"cert_file": str(crt), "key_file": str(key)}
    doc["basic_auth_users"] = {
        u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode() for u, p in users.items()
    }
    path = tmp / "web.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _status_code(base: str, ctx: ssl.SSLContext, headers: dict[str, str], path: str) -> int:
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.integration
def test_alertmanager_delivers_over_tls_with_users_of_the_web_config(
    tmp_path: Path,
    alertmanager: Alertmanager,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    web = _web_config(tmp_path)
    crt = tmp_path / "tls.crt"
    pw = tmp_path / "am-password"
    pw.write_text(PASSWORD + "\n")
    hook = HttpSink()
    port, am_port = free_port(), free_port()
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{port}", "outbox": str(tmp_path / "outbox.sqlite"),
        "group_wait": "200ms", "targets": [{"name": "chat", "url": hook.url()}],
    }))  # fmt: skip
    # the receiver gets the file by its flag; the verbs that read its settings by the variable
    monkeypatch.setenv("POOLWATCH_WEB_CONFIG_FILE", str(web))
    assert main(["alerts", "amconfig", "--config", str(cfg),
                 "--user", USER, "--password-file", str(pw)]) == 0  # fmt: skip
    snippet = yaml.safe_load(capsys.readouterr().out)
    webhook = snippet["receivers"][0]["webhook_configs"][0]
    assert webhook["url"] == f"https://127.0.0.1:{port}/alertmanager"
    assert webhook["http_config"] == {
        "basic_auth": {"username": USER, "password_file": str(pw)},
        "tls_config": {"ca_file": str(crt)},
    }
    snippet["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "am.yml").write_text(yaml.safe_dump(snippet))
    serve = [sys.executable, "-m", "poolwatch", "alerts", "serve", "--config", str(cfg),
             "--web-config-file", str(web)]  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(crt))
    base = f"https://127.0.0.1:{port}"
    am_log = (tmp_path / "am.log").open("wb")
    try:
        with process(serve, tmp_path / "alerts.log", f"{base}/healthz", ctx):
            assert _status_code(base, ctx, {}, "/status") == 401, "no credentials"
            assert _status_code(base, ctx, _basic(USER, "wrong"), "/status") == 401
            assert _status_code(base, ctx, _basic(USER, PASSWORD), "/status") == 200
            assert _status_code(base, ctx, {}, "/healthz") == 200, "health stays open"
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                _plain_http(port)  # plain HTTP on the TLS port gets no answer
            am = subprocess.Popen(
                [alertmanager.alertmanager, f"--config.file={tmp_path / 'am.yml'}",
                 f"--storage.path={tmp_path / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                stdout=am_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                alert = [{"labels": {"alertname": "PoolwatchNodeDown", "severity": "critical",
                                     "node": "gpu-node-7", "pool": "pool-a"},
                          "annotations": {"summary": "gpu-node-7 is down"}}]  # fmt: skip
                wait_for(lambda: _am_post(am_port, alert), 30, "alertmanager takes the alert")
                wait_for(lambda: len(hook.bodies) >= 1, 30, "delivered through the receiver")
            finally:
                am.terminate()
                am.wait(15)
            assert "gpu-node-7" in json.dumps(hook.bodies[0])
            assert main(["alerts", "status", "--config", str(cfg), "--user", USER,
                         "--password-file", str(pw), "--ca-file", str(crt)]) == 0  # fmt: skip
            out = capsys.readouterr().out
            assert out.splitlines()[2].split()[:4] == ["chat", "0", "0", "1"], out
            wrong = tmp_path / "wrong"
            wrong.write_text("not it\n")
            assert main(["alerts", "status", "--config", str(cfg), "--user", USER,
                         "--password-file", str(wrong), "--ca-file", str(crt)]) == 1  # fmt: skip
            assert f"refused the credentials of user {USER!r}" in capsys.readouterr().err
            assert main(["alerts", "status", "--config", str(cfg), "--ca-file", str(crt)]) == 1
    finally:
        am_log.close()
        hook.close()


def _plain_http(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    finally:
        conn.close()


def _am_post(port: int, alerts: list[dict]) -> bool:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts", data=json.dumps(alerts).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_users_of_both_sources_and_the_token_are_one_set(tmp_path: Path) -> None:
    web = _web_config(tmp_path, tls=False)
    (tmp_path / "token").write_text("tok-1\n")
    (tmp_path / "own").write_text("own-pw\n")
    s = settings(tmp_path, [], web_config_file=str(web), auth={
        "bearer_token_file": str(tmp_path / "token"),
        "basic_users": {"am-own": str(tmp_path / "own")}})  # fmt: skip
    auth, tls = web_setup(s)
    assert tls is None
    assert auth.check(_basic(USER, PASSWORD)["Authorization"]), "a user of the web config"
    assert auth.check(_basic("am-own", "own-pw")["Authorization"]), "a user of auth.basic_users"
    assert auth.check("Bearer tok-1"), "the bearer token"
    assert not auth.check(_basic(USER, "own-pw")["Authorization"])
    assert not auth.check("Bearer tok-2")


def test_a_user_in_both_sources_is_refused(tmp_path: Path) -> None:
    web = _web_config(tmp_path, tls=False)
    (tmp_path / "own").write_text("other\n")
    s = settings(tmp_path, [], web_config_file=str(web),
                 auth={"basic_users": {USER: str(tmp_path / "own")}})  # fmt: skip
    with pytest.raises(ConfigError, match=f"{USER} in both auth.basic_users and web_config_file"):
        web_setup(s)


def test_tls_from_both_sources_is_refused_naming_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = _web_config(tmp_path)
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cfg = tmp_path / "alerts.yaml"
    tls = {"cert_file": str(crt), "key_file": str(key)}
    cfg.write_text(yaml.safe_dump({"outbox": str(tmp_path / "o.sqlite"), "tls": tls}))
    argv = ["alerts", "serve", "--config", str(cfg), "--web-config-file", str(web),
            "--listen", f"127.0.0.1:{free_port()}"]  # fmt: skip
    assert main(argv) == 2
    err = caplog.text
    assert "tls and web_config_file" in err
    assert str(web) in err
    assert "tls_server_config" in err


def test_the_receivers_own_tls_still_serves_without_a_web_config(tmp_path: Path) -> None:
    crt, key = self_signed_cert(tmp_path)
    s = settings(tmp_path, [], tls={"cert_file": str(crt), "key_file": str(key)})
    auth, tls = web_setup(s)
    assert tls is not None
    assert not auth.required


def test_the_web_config_file_from_flag_variable_and_file(tmp_path: Path) -> None:
    """--web-config-file wins over $POOLWATCH_ALERTS__WEB_CONFIG_FILE, which wins over the shared
    $POOLWATCH_WEB_CONFIG_FILE, which wins over the settings file; a broken file names itself."""
    from poolwatch.alerts.settings import load_settings

    cfg = tmp_path / "alerts.yaml"
    cfg.write_text("web_config_file: /from/file\n")
    assert str(load_settings(cfg, {}).web_config_file) == "/from/file"
    env = {"POOLWATCH_WEB_CONFIG_FILE": "/shared"}
    assert str(load_settings(cfg, env).web_config_file) == "/shared"
    env["POOLWATCH_ALERTS__WEB_CONFIG_FILE"] = "/own"
    assert str(load_settings(cfg, env).web_config_file) == "/own"
    flags = {("web_config_file",): ("/flag", "flag --web-config-file")}
    assert str(load_settings(cfg, env, flags).web_config_file) == "/flag"
    bad = tmp_path / "bad.yml"
    bad.write_text("basic_auth_users: {am: plain-password}\n")
    with pytest.raises(ConfigError, match=f"invalid web config in {bad}"):
        web_setup(settings(tmp_path, [], web_config_file=str(bad)))


def test_amconfig_asks_for_a_user_when_only_the_web_config_has_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --user the snippet would carry no credentials and every delivery would get 401:
    refused, naming the file and the flags (exit status 2)."""
    web = _web_config(tmp_path, tls=False)
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(f"web_config_file: {web}\n")
    assert main(["alerts", "amconfig", "--config", str(cfg)]) == 2
    assert f"web config file ({web})" in caplog.text
    assert "--user and --password-file" in caplog.text
    assert capsys.readouterr().out == ""
    assert main(["alerts", "amconfig", "--config", str(cfg), "--user", USER]) == 2
    assert "give --user and --password-file together" in caplog.text
