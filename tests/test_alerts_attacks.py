"""Attacks on the alerts receiver, as an attacker and as an unlucky operator would try them, on
127.0.0.1 and bounded (a fixed list, seconds in all): each must get its documented answer, the
receiver must stay up, and every legitimate notification among them must be delivered exactly
once. The figures (attacks tried and survived, notifications lost and duplicated) are asserted
and recorded as test properties (`--junitxml`)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from alerts_support import SmtpSink, alert, receiver, settings, wait_for
from helpers import FIXTURES, free_port

from poolwatch.alerts.payload import webhook

TOKEN = "attack-test-token"  # noqa: S105 (a test credential)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOUNCED = "left-the-company@example.org"
Body = bytes | Callable[[], bytes]


def _hook(marker: str, **labels: str) -> bytes:
    """A legitimate webhook whose one alert is recognised in the mail by its `node` label."""
    return json.dumps(webhook([alert(abs(hash(marker)) % 10**6, node=marker, **labels)])).encode()


def _with(marker: str, edit: Callable[[dict], None]) -> bytes:
    doc = json.loads(_hook(marker))
    edit(doc)
    return json.dumps(doc).encode()


def _no_fingerprint(doc: dict) -> None:
    for a in doc["alerts"]:
        a.pop("fingerprint")
    doc.pop("truncatedAlerts")


def _far_future(doc: dict) -> None:
    doc["alerts"][0]["endsAt"] = "9999-12-31T23:59:59-01:00"


OWNERS = ",".join(f"u{i}@example.org" for i in range(20_000))
# (name, headers, body, expected code, legitimate notification marker or "")
ATTACKS: list[tuple[str, dict[str, str], Body, int, str]] = [
    ("deep JSON nesting", AUTH, b"[" * 100_000, 400, ""),
    ("deep object nesting", AUTH, b'{"a":' * 50_000, 400, ""),
    ("endsAt past year 9999", AUTH, _with("future", _far_future), 422, ""),
    ("no credentials", {}, _hook("anon"), 401, ""),
    ("wrong bearer token", {"Authorization": "Bearer guess"}, _hook("guess"), 403, ""),
    (
        "basic auth, unknown user",
        {"Authorization": "Basic " + base64.b64encode(b"x:y").decode()},
        _hook("basic"),
        403,
        "",
    ),
    ("text/plain body", {**AUTH, "Content-Type": "text/plain"}, _hook("plain"), 415, ""),
    ("body over the limit", AUTH, b"{" + b" " * 1_100_000 + b"}", 413, ""),
    ("version 3", AUTH, _with("v3", lambda d: d.update(version="3")), 422, ""),
    (
        "label that is a number",
        AUTH,
        _with("num", lambda d: d["alerts"][0]["labels"].update(pool=7)),
        422,
        "",
    ),
    ("alerts as an object", AUTH, _with("obj", lambda d: d.update(alerts={})), 422, ""),
    ("unknown endpoint", AUTH, b"{}", 404, ""),
    # legitimate, if unusual: each must be delivered exactly once
    (
        "Alertmanager 0.15 shape (no fingerprint)",
        AUTH,
        _with("old-am", _no_fingerprint),
        200,
        "old-am",
    ),
    (
        "groupLabels as []",
        AUTH,
        _with("list-map", lambda d: d.update(groupLabels=[])),
        200,
        "list-map",
    ),
    (
        "Grafana webhook",
        AUTH,
        (FIXTURES / "alertmanager/grafana-webhook.json").read_bytes(),
        200,
        "",
    ),  # fmt: skip  (its alerts carry no node; counted as delivered below)
    (
        "lone surrogate in a label",
        AUTH,
        _hook("surrogate").replace(b'"surrogate"', b'"surrogate\\\\ud800"'),
        200,
        "surrogate",
    ),
    ("template syntax in a label", AUTH, _hook("{{ 7*7 }}"), 200, "{{ 7*7 }}"),
    ("HTML in a label", AUTH, _hook("<b>bold</b>"), 200, "&lt;b&gt;bold&lt;/b&gt;"),
    (
        "header injection in a label",
        AUTH,
        _hook("inj\r\nBcc: evil@example.org"),
        200,
        "inj",
    ),
    (
        "owner address the SMTP server bounces",
        AUTH,
        _hook("bounced", owner_email=BOUNCED),
        200,
        "bounced",
    ),
    ("owner label with 20,000 addresses", AUTH, _hook("flood", owner_email=OWNERS), 200, "flood"),
    ("the same webhook replayed", AUTH, _hook("replayed"), 200, "replayed"),
]


def _send(base: str, name: str, headers: dict[str, str], body: bytes) -> int:
    path = "/nowhere" if name == "unknown endpoint" else "/alertmanager"
    req = urllib.request.Request(base + path, data=body, method="POST")
    req.add_header("Content-Type", headers.get("Content-Type", "application/json"))
    for k, v in headers.items():
        if k != "Content-Type":
            req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _healthy(base: str) -> bool:
    with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
        return resp.status == 200


def test_attacks_on_the_receiver(tmp_path: Path, record_property) -> None:  # type: ignore[no-untyped-def]
    smtp = SmtpSink(free_port(), bounce=frozenset({BOUNCED}))
    smtp.start()
    targets = [{"name": "mail", "url": smtp.url("ops@example.org")}]
    cfg = settings(tmp_path, targets, group_wait=0.1,
                   job_owners={"enabled": True, "via": "mail", "max_recipients": 2})  # fmt: skip
    started = time.monotonic()
    survived, answers = 0, {}
    try:
        with receiver(cfg, token=TOKEN) as (service, base):
            for name, headers, body, expected, _marker in ATTACKS:
                raw = body() if callable(body) else body
                code = _send(base, name, headers, raw)
                if name == "the same webhook replayed":
                    code = min(code, _send(base, name, headers, raw))  # twice: one notification
                answers[name] = code
                survived += int(code == expected and _healthy(base))
            legit = [m for *_x, m in ATTACKS if m]
            wanted = len(legit) + 2  # + the Grafana payload's two alerts
            wait_for(lambda: _delivered(smtp) >= wanted, 20, "every legitimate notification")
            time.sleep(0.5)  # anything sent twice would arrive now
            status = service.status()
    finally:
        smtp.stop()
    mails = [m for m in smtp.snapshot() if "ops@example.org" in m.recipients]
    seen = Counter(marker for m in mails for marker in legit if marker in m.html)
    lost = sum(1 for m in legit if seen[m] == 0)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    seconds = round(time.monotonic() - started, 1)
    figures = {"attacks": len(ATTACKS), "survived": survived, "lost": lost,
               "duplicated": duplicated, "seconds": seconds}  # fmt: skip
    for k, v in figures.items():
        record_property(k, v)
    assert len(answers) == len(ATTACKS)  # names are unique
    assert answers == {n: c for n, _h, _b, c, _m in ATTACKS}, answers
    assert (survived, lost, duplicated) == (len(ATTACKS), 0, 0), figures
    assert figures["seconds"] < 60
    # the side effects that must not happen
    assert all("evil@example.org" not in m.recipients for m in smtp.snapshot())
    assert all("49" not in m.subject for m in mails)  # {{ 7*7 }} stays text
    owners = [r for m in smtp.snapshot() for r in m.recipients if r.endswith("@example.org")]
    assert sorted(set(owners) - {"ops@example.org"}) == ["u0@example.org", "u1@example.org"]
    assert status["targets"]["mail"]["dead"] == 1  # the bounced owner, with its reason
    assert "550" in status["targets"]["mail"]["last_error"]
    assert TOKEN not in json.dumps(status)


def _delivered(smtp: SmtpSink) -> int:
    return sum(
        m.html.count("<tr style=") for m in smtp.snapshot() if "ops@example.org" in m.recipients
    )
