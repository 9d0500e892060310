"""`poolwatch alerts import-apulis` on the seed's own YAML, `amconfig` through the real
`amtool check-config`, and `serve --print-config` / config errors with exit status 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from prom_versions import Alertmanager

from poolwatch.alerts.settings import AlertsSettings, load_settings
from poolwatch.app.cli import main

# shared/spec/alert-config.md §1.2: ClusterBootstrap/config.yaml as printed in seed 004
# [004:L1066-L1084], with login/password/sender/receiver filled in as an operator would
SEED_CONFIG = """\
repair-manager:
  cluster_name: "atlas"
  ecc_rule:
    cordon_dry_run: True
  alert:
    # smtp_url: smtp.office365.com
    # login:
    smtp_url: smtp.qq.com
    login: ops@qq.com
    password: "p@ss word"
    sender: ops@qq.com
    receiver: ["admin@example.org", " ", "sre@example.org"]
  enable_custom_registry_secrets: True
"""
# §1.4: RepairManager/config/rule-alerts.yaml as printed [004:L1141-L1148]
SEED_RULE_ALERTS = """\
ecc_rule:
  alerts_enabled: True # send email alerts
  reminders_enabled: True
  reminder_wait_time: 86400 # time to wait before resending email alert (seconds)
  alert_job_owners: False # alert all impacted job owners
cache-ttl: 600 # time until cache expires (seconds)
"""


def test_import_apulis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text(SEED_CONFIG)
    (tmp_path / "rule-alerts.yaml").write_text(SEED_RULE_ALERTS.replace("False #", "True #"))
    secrets = tmp_path / "secrets"
    rc = main(
        [
            "alerts",
            "import-apulis",
            str(tmp_path / "config.yaml"),
            str(tmp_path / "rule-alerts.yaml"),
            "--secrets-dir",
            str(secrets),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0
    assert "p@ss" not in out
    assert "word" not in out
    assert "wrote the mail URL" in err
    doc = yaml.safe_load(out)
    assert doc["cluster_name"] == "atlas"
    assert doc["reminder_wait"] == 86400.0
    assert doc["job_owners"] == {"enabled": True, "label": "owner_email", "via": "email"}
    url = (secrets / "mail.url").read_text().strip()
    assert (secrets / "mail.url").stat().st_mode & 0o777 == 0o600
    assert url == (
        "mailtos://smtp.qq.com?user=ops%40qq.com&pass=p%40ss%20word&from=ops%40qq.com"
        "&to=admin%40example.org%2Csre%40example.org"
    )
    settings = AlertsSettings.model_validate(doc)  # the output is a valid poolwatch config
    assert settings.targets[0].resolve_url() == url
    import apprise

    target = apprise.Apprise.instantiate(url)
    assert target is not None
    assert target.password == "p@ss word"  # noqa: S105 (the test input)
    assert target.smtp_host == "smtp.qq.com"
    assert target.user == "ops@qq.com"


def test_import_apulis_seed_sample_as_printed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blank = SEED_CONFIG.replace("ops@qq.com", "").replace('"p@ss word"', "")
    blank = blank.replace('["admin@example.org", " ", "sre@example.org"]', '[" "]')
    (tmp_path / "config.yaml").write_text(blank)
    assert main(["alerts", "import-apulis", str(tmp_path / "config.yaml")]) == 0
    out, err = capsys.readouterr()
    assert "receiver lists no address" in err
    assert yaml.safe_load(out)["targets"] == [{"name": "email", "url": "mailtos://smtp.qq.com"}]
    (tmp_path / "other.yaml").write_text("foo: 1\n")
    assert main(["alerts", "import-apulis", str(tmp_path / "other.yaml")]) == 2
    assert "no repair-manager block" in capsys.readouterr().err


def _write_config(tmp_path: Path, auth: str) -> Path:
    (tmp_path / "token").write_text("tok-123\n")
    (tmp_path / "pw").write_text("pw-456\n")
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(
        f"listen: 0.0.0.0:9481\npublic_url: http://poolwatch-alerts:9481\n"
        f"reminder_wait: 24h\n{auth}"
    )
    return cfg


@pytest.mark.integration
@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize(
    "auth",
    ["auth: {bearer_token_file: {tmp}/token}\n", "auth: {basic_users: {am: {tmp}/pw}}\n"],
)
def test_amconfig_passes_amtool(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys, auth: str, inline: bool, alertmanager: Alertmanager
) -> None:
    amtool = alertmanager.amtool
    cfg = _write_config(tmp_path, auth.replace("{tmp}", str(tmp_path)))
    argv = ["alerts", "amconfig", "--config", str(cfg)] + (
        ["--inline-credentials"] if inline else []
    )
    assert main(argv) == 0
    out = capsys.readouterr().out
    doc = yaml.safe_load(out)
    hook = doc["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://poolwatch-alerts:9481/alertmanager"
    assert doc["route"]["repeat_interval"] == "4h"
    http = hook["http_config"]
    if "bearer" in auth:
        key = "credentials" if inline else "credentials_file"
        assert http["authorization"][key] == ("tok-123" if inline else str(tmp_path / "token"))
    else:
        assert http["basic_auth"]["username"] == "am"
        assert ("pw-456" if inline else str(tmp_path / "pw")) in http["basic_auth"].values()
    am = tmp_path / "am.yml"
    am.write_text(out)
    res = subprocess.run(
        [amtool, "check-config", str(am)], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def test_print_config_and_config_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text("cluster_name: atlas\ntargets:\n  - name: bad name\n    url: json://h/x\n")
    assert main(["alerts", "serve", "--config", str(cfg), "--print-config"]) == 2
    assert main(["alerts", "serve", "--listen", "127.0.0.1:1", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["listen"] == "127.0.0.1:1"
    with pytest.raises(Exception, match=r"targets\.0\.name.*alerts.yaml:3"):
        load_settings(cfg, {})


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ("auth: {bearer_token_file: SECRET}", "auth.bearer_token_file"),
        ("auth: {basic_users: {alertmanager: SECRET}}", "auth.basic_users.alertmanager"),
        ("targets: [{name: mail, url_file: SECRET}]", "targets.mail.url_file"),
    ],
)
def test_empty_secret_file_refuses_to_start_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, auth: str, field: str
) -> None:
    """Fail closed: an empty token file used to turn auth off, an empty password file to let
    anyone in with an empty password, an empty url file to fail every delivery."""
    secret = tmp_path / "secret"
    secret.write_text("\n  \n")  # whitespace only: empty after stripping
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(f"listen: 127.0.0.1:0\noutbox: {tmp_path / 'o.sqlite'}\n")
    cfg.write_text(cfg.read_text() + auth.replace("SECRET", str(secret)) + "\n")
    assert main(["alerts", "serve", "--config", str(cfg)]) == 2
    assert f"{field}: {secret} is empty" in caplog.text
    assert not (tmp_path / "o.sqlite").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    "url",
    ["nosuchscheme://host/path", "mailto://", "json://"],
)
def test_a_target_apprise_cannot_use_refuses_to_start_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    """An unusable target URL used to be logged at the first send while the receiver ran on,
    turning every notification for that target into a dead letter."""
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:0\noutbox: {tmp_path / 'o.sqlite'}\n"
        f"targets: [{{name: oncall, url: '{url}'}}, {{name: ok, url: 'json://127.0.0.1:9/'}}]\n"
    )
    assert main(["alerts", "serve", "--config", str(cfg)]) == 2
    assert "targets.oncall: apprise cannot use the URL" in caplog.text
    assert "targets.ok" not in caplog.text
