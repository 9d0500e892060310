"""What an operator sees of the rule engine: its pages and `poolwatch rules alerts`, and local
silences (`poolwatch rules silence`), which keep notifications from going out."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from poolwatch.core.actions import AlertMessage
from poolwatch.core.web.config import load_web_config
from poolwatch.rules import verbs
from poolwatch.rules.engine import Engine
from poolwatch.rules.loader import load
from poolwatch.rules.silences import Matcher, SilenceStore
from poolwatch.rules.state import StateStore
from poolwatch.rules.web import serve
from tests.helpers import self_signed_cert

RULES = """\
group: mine
interval: 1m
rules:
  - name: DiskAlmostFull
    expr: poolwatch_filesystem_used_ratio
    op: ">"
    threshold: 0.9
    for: 0s
    severity: warning
    annotations: {summary: "<b>full</b>", description: d, runbook: r}
  - name: Broken
    expr: poolwatch_collector_up
    op: "=="
    threshold: 0
    for: 5m
    severity: warning
    annotations: {summary: s, description: d, runbook: r}
"""
SERIES = {"__name__": "poolwatch_filesystem_used_ratio", "node": "n<1>", "mountpoint": "/cache"}


class Source:
    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        if "collector_up" in expr:
            raise ZeroDivisionError("float division by zero")
        return [(dict(SERIES), 0.97)]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[AlertMessage] = []

    def notify(self, messages: list[AlertMessage]) -> bool:
        self.sent += messages
        return True


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    path = tmp_path / "mine.yaml"
    path.write_text(RULES)
    state = tmp_path / "state.db"
    e = Engine(load([path]), Source(), StateStore(state), clock=lambda: 1_700_000_000.0,
               silences=SilenceStore(state))  # fmt: skip
    e.evaluate()
    return e


@pytest.fixture
def url(engine: Engine) -> Iterator[str]:
    httpd = serve(engine, lambda: b"# metrics\n", ("127.0.0.1", 0), 60.0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_index_is_named_for_the_rule_engine(url: str) -> None:
    page = get(url + "/")
    assert "<title>poolwatch rule engine</title>" in page
    assert "node exporter" not in page
    assert get(url + "/metrics") == "# metrics\n"


def test_alerts_page_lists_labels_value_since_and_file_line(url: str, tmp_path: Path) -> None:
    page = get(url + "/alerts")
    assert "DiskAlmostFull" in page
    assert "firing" in page
    assert "node=&quot;n&lt;1&gt;&quot;" in page  # escaped
    assert "0.97" in page
    assert "2023-11-14 22:13:20 UTC" in page  # since
    assert f"{tmp_path / 'mine.yaml'}:4" in page  # the rule's file:line
    doc = json.loads(get(url + "/api/alerts"))
    (alert,) = doc["alerts"]
    assert alert["rule_file"] == f"{tmp_path / 'mine.yaml'}:4"
    assert alert["labels"]["node"] == "n<1>"


def test_status_page_shows_a_failing_rules_last_error(url: str, tmp_path: Path) -> None:
    page = get(url + "/status")
    assert "Broken" in page
    assert "ZeroDivisionError: float division by zero" in page
    assert f"{tmp_path / 'mine.yaml'}:11" in page
    rules = {r["rule"]: r for r in json.loads(get(url + "/api/status"))["rules"]}
    assert rules["Broken"]["failures"] == 1
    assert rules["DiskAlmostFull"]["failures"] == 0


def test_cli_alerts_prints_what_the_engine_holds(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verbs.alerts(url) == 0
    out = capsys.readouterr().out
    assert "DiskAlmostFull  firing  value=0.97  since=2023-11-14T22:13:20Z" in out
    assert "mountpoint=/cache" in out
    assert verbs.alerts("http://127.0.0.1:1") == 1
    assert "cannot read the rule engine's alerts" in capsys.readouterr().err


def test_cli_alerts_gives_credentials_to_an_engine_that_asks(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An engine behind TLS and basic auth (its web config file) answers `rules alerts` with
    a user and password file, and says which is missing when they are not given."""
    crt, key = self_signed_cert(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    cfg = tmp_path / "web.yaml"
    cfg.write_text(f"tls_server_config: {{cert_file: {crt}, key_file: {key}}}\n"
                   f"basic_auth_users: {{ops: '{hashed}'}}\n")  # fmt: skip
    httpd = serve(engine, lambda: b"", ("127.0.0.1", 0), 60.0, web=load_web_config(cfg))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{httpd.server_address[1]}"
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("s3cret\n")
    wrong.write_text("guess\n")
    try:
        assert verbs.alerts(base, ca_file=crt) == 1
        assert "asks for credentials: give --user and --password-file" in capsys.readouterr().err
        assert verbs.alerts(base, user="ops", password_file=wrong, ca_file=crt) == 1
        assert "refused the credentials of user 'ops'" in capsys.readouterr().err
        assert verbs.alerts(base, user="ops", password_file=right) == 1  # not a trusted CA
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
        assert verbs.alerts(base, user="ops", password_file=tmp_path / "none", ca_file=crt) == 2
        assert f"cannot read the password file {tmp_path / 'none'}" in capsys.readouterr().err
        assert verbs.alerts(base, user="ops", password_file=right, ca_file=crt) == 0
        assert "DiskAlmostFull  firing" in capsys.readouterr().out
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cli_alerts_wants_user_and_password_file_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from poolwatch.app.cli import main

    assert main(["rules", "alerts", "--user", "ops"]) == 2
    assert "--user and --password-file go together" in capsys.readouterr().err


def test_matchers_parse_and_match_as_alertmanagers() -> None:
    labels = {"alertname": "DiskAlmostFull", "node": "n1", "severity": "warning"}
    assert Matcher.parse("alertname=DiskAlmostFull").matches(labels)
    assert Matcher.parse('node=~"n1|n2"').matches(labels)
    assert not Matcher.parse("node=~n").matches(labels)  # anchored
    assert Matcher.parse("severity!=info").matches(labels)
    assert not Matcher.parse('node!~"n[[:digit:]]"').matches(labels)  # RE2 classes
    for bad, why in [("node", "expected NAME=VALUE"), ("1x=y", "expected NAME=VALUE"),
                     ("node=~(", "regular expression")]:  # fmt: skip
        with pytest.raises(ValueError, match=why):
            Matcher.parse(bad)


def test_a_silenced_alert_is_never_notified_until_the_silence_ends(
    engine: Engine, tmp_path: Path
) -> None:
    store = SilenceStore(tmp_path / "state.db")  # what `poolwatch rules silence add` writes
    now = 1_700_000_000.0
    s = store.add(["alertname=DiskAlmostFull", 'node=~"n<.>"'], 3600, now, "ops", "disk swap")
    out = Recorder()
    engine.dispatch([out], [], now + 60)
    assert out.sent == []
    assert engine.active_alerts()[0]["silenced"] is True
    engine.dispatch([out], [], now + 3000)  # still silenced, still nothing (no reminder)
    assert out.sent == []
    assert store.expire(s.id, now + 3100)
    assert not store.expire(s.id, now + 3100)  # already over
    engine.dispatch([out], [], now + 3200)
    assert [m.labels["alertname"] for m in out.sent] == ["DiskAlmostFull"]
    assert [x.id for x in store.all()] == [s.id]
    assert store.active(now + 3200) == []


def test_a_silence_that_matches_everything_or_nothing_is_refused(tmp_path: Path) -> None:
    store = SilenceStore(tmp_path / "s.db")
    with pytest.raises(ValueError, match="match every alert"):
        store.add(["node=~.*"], 60, 0, "", "")
    with pytest.raises(ValueError, match="at least one matcher"):
        store.add([], 60, 0, "", "")


def test_cli_silence_add_list_expire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.db"
    assert verbs.silence_add(state, ["alertname=X"], "2h", "ops", "maintenance") == 0
    sid = capsys.readouterr().out.split()[0]
    assert verbs.silence_list(state) == 0
    listed = capsys.readouterr().out
    assert sid in listed
    assert 'alertname="X"' in listed
    assert "maintenance" in listed
    assert verbs.silence_expire(state, sid) == 0
    assert verbs.silence_list(state) == 0
    assert "no silence is active" in capsys.readouterr().out
    assert verbs.silence_add(state, ["alertname=X"], "soon", "", "") == 2
    assert "--duration" in capsys.readouterr().err


def test_with_an_alertmanager_silences_are_deferred_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    am = "http://alertmanager:9093"
    assert verbs.silence_add(state, ["alertname=X"], "2h", "", "", alertmanager=am) == 2
    err = capsys.readouterr().err
    assert "amtool silence add --alertmanager.url=http://alertmanager:9093" in err
    assert verbs.silence_list(state, alertmanager=am) == 2
    assert SilenceStore(state).all() == []  # nothing stored locally
