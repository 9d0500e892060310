"""What real senders write is accepted, what is truly malformed is refused: the payload corpus
(tests/fixtures/alertmanager/, one file per release line, see SOURCES.md there), the fingerprint
Alertmanager computes, and the receiver's answers to hostile bodies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from alerts_support import HttpSink, post, receiver, settings, wait_for
from helpers import FIXTURES

from poolwatch.alerts.fingerprint import fingerprint
from poolwatch.alerts.payload import PayloadError, parse

CORPUS = FIXTURES / "alertmanager"
PAYLOADS = sorted(p.name for p in CORPUS.glob("*.json"))


def _doc(name: str) -> dict:
    return json.loads((CORPUS / name).read_text())


def test_fingerprint_is_alertmanagers() -> None:
    # prometheus/common model/signature_test.go: the same hash as LabelSet.Fingerprint
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert int(fingerprint(labels), 16) == 5799056148416392346
    assert fingerprint({}) == "cbf29ce484222325"  # the FNV-1a offset basis
    assert fingerprint({"a": "1"}) != fingerprint({"a1": ""})  # the 0xff separator
    # a real Alertmanager's fingerprint for the captured alert's labels
    (alert,) = _doc("am-0.24-captured.json")["alerts"]
    assert fingerprint(alert["labels"]) == alert["fingerprint"] == "948c667b1fc76492"


@pytest.mark.parametrize("name", [n for n in PAYLOADS if n.startswith("am-")])
def test_computed_fingerprint_is_the_one_alertmanager_sent(name: str) -> None:
    for alert in _doc(name)["alerts"]:
        if "fingerprint" in alert:
            assert fingerprint(alert["labels"]) == alert["fingerprint"]


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_payload_of_the_corpus_parses(name: str) -> None:
    doc = _doc(name)
    msgs = parse(json.dumps(doc).encode())
    assert len(msgs) == len(doc["alerts"])
    for msg, raw in zip(msgs, doc["alerts"], strict=True):
        assert msg.kind == raw["status"]
        assert msg.labels == raw["labels"]
        assert msg.fingerprint == raw.get("fingerprint") or fingerprint(raw["labels"])
        assert len(msg.fingerprint) == 16


def test_old_alertmanager_without_fingerprint_gets_the_computed_one() -> None:
    first, second = parse((CORPUS / "am-0.15-documented.json").read_bytes())
    assert first.fingerprint == fingerprint(
        {"alertname": "PoolwatchNodeDown", "severity": "critical", "node": "gpu-node-3"}
    )
    assert first.fingerprint != second.fingerprint
    assert first.starts_at == pytest.approx(1530699072.345678)
    assert second.ends_at == pytest.approx(1530691200.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version="3"), "version: expected"),
        (lambda d: d.update(version="1"), "version: expected"),  # "1" only with Grafana's orgId
        (lambda d: d.update(groupLabels=["alertname"]), "groupLabels: expected dict"),
        (lambda d: d["alerts"][0].update(labels=[]), "labels.alertname: required"),
        (lambda d: d["alerts"][0].update(fingerprint="f" * 129), "at most 128"),
        (lambda d: d["alerts"][0].update(annotations={"a": 1}), "annotations.a: expected a"),
        (lambda d: d.update(alerts={}), "alerts: expected list"),
    ],
)
def test_truly_malformed_is_still_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc("am-0.24-captured.json")
    mutate(doc)
    with pytest.raises(PayloadError, match=message.replace("[", r"\[")) as err:
        parse(json.dumps(doc).encode())
    assert err.value.status == 422


def test_lone_surrogate_label_is_kept_readable() -> None:
    doc = _doc("am-0.24-captured.json")
    body = json.dumps(doc).replace('"api:8000"', '"api\\ud800:8000"').encode()
    (msg,) = parse(body)
    assert msg.labels["instance"] == "api\\ud800:8000"
    msg.labels["instance"].encode("utf-8")  # storable and mailable


@pytest.fixture
def hook() -> HttpSink:
    sink = HttpSink()
    yield sink
    sink.close()


def test_corpus_through_the_receiver_is_delivered(tmp_path: Path, hook: HttpSink) -> None:
    with receiver(settings(tmp_path, [{"name": "chat", "url": hook.url()}])) as (service, base):
        for name in PAYLOADS:
            code, doc = post(base, (CORPUS / name).read_bytes())
            assert code == 200, (name, doc)
        total = sum(len(_doc(n)["alerts"]) for n in PAYLOADS)
        wait_for(lambda: service.status()["total"]["sent"] == total, what="all delivered")
        assert service.rejected == {}


def _raw_post(base: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(base + "/alertmanager", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_deep_nesting_is_400_not_a_dropped_connection(tmp_path: Path) -> None:
    with receiver(settings(tmp_path, [], max_body_bytes=1_048_576)) as (service, base):
        for body in (b"[" * 200_000, b'{"a":' * 100_000):
            code, doc = _raw_post(base, body)
            assert code == 400
            assert "nested too deeply" in doc["error"]
        assert service.rejected == {"400": 2}


def test_end_far_in_the_future_is_422_not_503(tmp_path: Path) -> None:
    doc = _doc("am-0.24-captured.json")
    doc["alerts"][0]["endsAt"] = "9999-12-31T23:59:59-01:00"  # past year 9999 in UTC
    with receiver(settings(tmp_path, [])) as (service, base):
        code, answer = post(base, doc)
        assert code == 422
        assert "alerts[0].endsAt" in answer["error"]
        doc["alerts"][0]["endsAt"] = "9999-12-31T23:59:59Z"  # the latest representable: fine
        assert post(base, doc)[0] == 200
        assert service.rejected == {"422": 1}
