"""Secrets of target URLs never reach the log or /status, for every apprise URL form poolwatch
documents: user:password, query parameters, header parameters (`+Header=`), payload parameters
(`-field=`), tokens in the path, and the chat plugins' own tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from alerts_support import HttpSink, alert, get_json, post, wait_for
from helpers import free_port

from poolwatch.alerts.payload import webhook
from poolwatch.alerts.redact import redact, secrets_in

ROOT = Path(__file__).parent.parent

# (apprise URL, the secrets in it, what must still be shown). Each secret is unique so that a
# leak is found wherever it lands.
FORMS = [
    ("json://h.example/hook?+X-Api-Key=HDRKEY000001", ["HDRKEY000001"], "json://h.example/hook"),
    ("jsons://u:PASSWD000002@h.example:8443/hook", ["PASSWD000002"], "jsons://u:****@h.example"),
    ("json://h.example/hook?token=QRYTOK000003", ["QRYTOK000003"], "json://h.example/hook"),
    ("json://h.example/hooks/PATHTOKEN0000000000004", ["PATHTOKEN0000000000004"], "/hooks/****"),
    ("form://h.example/x?-apikey=PAYLOAD000005", ["PAYLOAD000005"], "form://h.example/x"),
    (
        "forms://h.example/x?+Authorization=Bearer%20BEARER000006",
        ["BEARER000006"],
        "forms://h.example/x",
    ),
    ("mailto://ops:MAILPW000007@smtp.example.org?to=a@example.org", ["MAILPW000007"], "ops:****@"),
    (
        "mailtos://smtp.example.org?user=ops&pass=MAILPW000008&to=a@example.org",
        ["MAILPW000008"],
        "mailtos://ops:****@smtp.example.org",
    ),
    (
        "slack://SLKTOKA009/SLKTOKB009/SLKTOKC0000000000009/#ops",
        ["SLKTOKA009", "SLKTOKB009", "SLKTOKC0000000000009"],
        "slack://",
    ),
    (
        "https://hooks.slack.com/services/T0SLACK10/B0SLACK10/XOXSLACK00000000000010",
        ["T0SLACK10", "B0SLACK10", "XOXSLACK00000000000010"],
        "slack://",
    ),
    (
        "tgram://123456011:TGRAMBOTTOKEN0000000000011/12345/",
        ["123456011", "TGRAMBOTTOKEN0000000000011"],
        "tgram://",
    ),
    (
        "dingtalk://DINGTOKEN00000012/?secret=DINGSIGN000012",
        ["DINGTOKEN00000012", "DINGSIGN000012"],
        "dingtalk://",
    ),
    ("wecombot://WECOMKEY0000000013", ["WECOMKEY0000000013"], "wecombot://"),
    (
        "workflows://h.example:443/WORKFLOW000014/SIGNATURE000014",
        ["WORKFLOW000014", "SIGNATURE000014"],
        "workflow://h.example",
    ),  # Teams' current form; fmt: skip
]


@pytest.mark.parametrize(("url", "secrets", "shown"), FORMS)
def test_redacted_url_hides_every_secret_and_keeps_the_rest(
    url: str, secrets: list[str], shown: str
) -> None:
    text = redact(url)
    for secret in secrets:
        assert secret not in text, text
        assert secret in secrets_in(url)  # and free text can be scrubbed of it
    assert shown in text


def test_plain_urls_stay_readable() -> None:
    text = redact("mailto://127.0.0.1:2525?from=alerts@example.org&to=ops@example.org")
    assert text.startswith("mailto://127.0.0.1:2525/ops%40example.org?")
    assert "from=alerts@example.org" in text
    assert secrets_in("json://chat-bridge.monitoring:8080/hook") == []


def test_serve_log_and_status_never_show_a_secret(tmp_path: Path) -> None:
    """The real command at debug level (apprise prints URLs and headers there), with a failing
    webhook target on 127.0.0.1 whose URL carries a secret in every place, plus every chat form
    (matched by nothing, so nothing leaves this machine)."""
    hook = HttpSink()
    hook.fail = True  # 503: the failure reason lands in the log and /status
    port = free_port()
    leaky = (
        f"json://hookuser:PASSWD999991@127.0.0.1:{hook.port}/hooks/PATHTOKEN9999999999992"
        "?+X-Api-Key=HDRKEY999993&-apikey=PAYLOAD999994&token=QRYTOK999995"
    )
    (tmp_path / "hook.url").write_text(leaky)
    chats = "".join(
        f"  - {{name: chat{i}, url: '{u}', match: {{labels: {{never: matched}}}}}}\n"
        for i, (u, _s, _w) in enumerate(FORMS)
    )
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\noutbox: {tmp_path / 'o.sqlite'}\ngroup_wait: 100ms\n"
        "retry: {initial_backoff: 100ms, max_backoff: 200ms}\n"
        f"targets:\n  - {{name: hook, url_file: {tmp_path / 'hook.url'}}}\n{chats}"
    )
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "poolwatch", "alerts", "serve", "--config", str(cfg),
           "--log-level", "debug"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for(lambda: _up(base, proc), 30, "receiver up")
        assert post(base, webhook([alert(1)]))[0] == 200
        wait_for(lambda: get_json(base + "/status")["targets"]["hook"]["failing"] == 1, 20)
        wait_for(lambda: len(hook.requests) >= 2, 20, "two attempts")  # debug lines written
        status = json.dumps(get_json(base + "/status"))
        with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(15)
        hook.close()
    text = log.read_text()
    assert "503" in json.loads(status)["targets"]["hook"]["last_error"]
    assert "X-Api-Key" in text  # the header's name is logged at debug, its value is not
    secrets = [s for _u, ss, _w in FORMS for s in ss]
    secrets += ["PASSWD999991", "PATHTOKEN9999999999992", "HDRKEY999993", "PAYLOAD999994",
                "QRYTOK999995"]  # fmt: skip
    for secret in secrets:
        assert secret not in text, f"{secret} in the log"
        assert secret not in status, f"{secret} in /status"
        assert secret not in metrics


def _up(base: str, proc: subprocess.Popen) -> bool:
    assert proc.poll() is None, f"serve exited with {proc.returncode}"
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
