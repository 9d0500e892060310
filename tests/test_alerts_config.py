"""Settings, payload validation and templates: bad input is named precisely, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alerts_support import CAPTURED, alert

from poolwatch.alerts.messages import TemplateError, Templates
from poolwatch.alerts.payload import PayloadError, parse, webhook
from poolwatch.alerts.routing import routes, with_recipient
from poolwatch.alerts.settings import AlertsSettings, load_settings
from poolwatch.core.config import ConfigError


def test_settings_layers_and_errors_name_line_and_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(
        "cluster_name: atlas\ntargets:\n  - name: mail\n    url: json://x/y\ngroup_max: 0\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert f"group_max: Input should be greater than or equal to 1 ({cfg}:5)" in str(err.value)
    cfg.write_text("cluster_name: atlas\nreminder_wait: 2h\n")
    s = load_settings(cfg, {"POOLWATCH_ALERTS__REMINDER_WAIT": "30m"}, {("listen",): (":1", "f")})
    assert (s.cluster_name, s.reminder_wait, s.listen) == ("atlas", 1800.0, ":1")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {"POOLWATCH_ALERTS__RETRY__DEADLINE": "soon"})
    assert "environment variable POOLWATCH_ALERTS__RETRY__DEADLINE" in str(err.value)


def test_target_needs_exactly_one_url_and_owner_via_must_exist() -> None:
    with pytest.raises(ValueError, match="exactly one of url and url_file"):
        AlertsSettings.model_validate({"targets": [{"name": "a"}]})
    with pytest.raises(ValueError, match=r"job_owners\.via"):
        AlertsSettings.model_validate({"job_owners": {"enabled": True, "via": "nope"}})


def test_captured_payload_parses() -> None:
    (msg,) = parse(CAPTURED.encode())
    assert (msg.kind, msg.fingerprint, msg.labels["severity"]) == (
        "firing",
        "948c667b1fc76492",
        "high",
    )
    assert msg.starts_at == pytest.approx(1664890376.014)
    assert msg.ends_at is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("alerts"), "alerts: required"),
        (lambda d: d.update(truncatedAlerts="0"), "truncatedAlerts: expected int"),
        (lambda d: d["alerts"][0].update(status="pending"), "alerts[0].status: expected firing"),
        (lambda d: d["alerts"][0]["labels"].update(node=3), "alerts[0].labels.node: expected a"),
        (lambda d: d["alerts"][0]["labels"].pop("alertname"), "labels.alertname: required"),
        (lambda d: d["alerts"][0].update(fingerprint=7), "alerts[0].fingerprint: expected str"),
        (lambda d: d["alerts"][0].update(endsAt="2022-10-04T13:32:56"), "has no time zone"),
    ],
)
def test_payload_errors_name_the_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(CAPTURED)
    mutate(doc)
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(json.dumps(doc).encode())


def test_routing_by_severity_pool_labels_and_owner() -> None:
    s = AlertsSettings.model_validate(
        {
            "targets": [
                {"name": "oncall", "url": "json://h/a", "match": {"severities": ["critical"]}},
                {"name": "pool-b", "url": "json://h/b", "match": {"pools": ["pool-b"]}},
                {
                    "name": "gpu",
                    "url": "mailto://h?to=x@y.org",
                    "match": {"labels": {"kind": "gpu"}},
                },
            ],
            "job_owners": {"enabled": True, "via": "gpu"},
        }
    )
    names = [
        (r.target, r.recipient)
        for r in routes(alert(1, "critical", kind="gpu", owner_email="bob@ex.org"), s)
    ]
    assert names == [("oncall", ""), ("gpu", ""), ("gpu", "bob@ex.org")]
    assert (
        routes(alert(2, "warning", owner_email="x@y.org; rm -rf /"), s)[-1].recipient == "x@y.org"
    )
    assert with_recipient("mailtos://smtp.qq.com/a@b.org?user=u&to=c@d.org", "o@e.org") == (
        "mailtos://smtp.qq.com?user=u&to=o%40e.org"
    )


def test_templates_override_dir_and_sandbox(tmp_path: Path) -> None:
    (tmp_path / "firing.subject.j2").write_text("{{ cluster }}!{{ alerts | length }}")
    t = Templates(tmp_path)
    msg = t.render("firing", [alert(1).to_alertmanager()], "atlas")
    assert msg.subject == "atlas!1"
    assert "/cache on node-1 is 95% full" in msg.text  # the shipped body is still used
    (tmp_path / "firing.txt.j2").write_text("{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateError, match=r"unsafe|access"):  # refused at load now
        Templates(tmp_path)
    (tmp_path / "firing.txt.j2").write_text("{% for %}")
    with pytest.raises(TemplateError, match=r"firing.txt.j2:1"):
        Templates(tmp_path)


def test_html_is_escaped_text_is_not() -> None:
    a = alert(1, node="<script>x</script>").to_alertmanager()
    msg = Templates().render("resolved", [a], "atlas")
    assert "&lt;script&gt;" in msg.html
    assert "<script>" not in msg.html
    assert "<script>x</script>" in msg.text
    assert (
        msg.subject == "[atlas] RESOLVED CRITICAL PoolwatchCacheDirAlmostFull on <script>x</script>"
    )


def test_webhook_builder_round_trips() -> None:
    msgs = [alert(1), alert(2, status="resolved")]
    assert parse(json.dumps(webhook(msgs)).encode()) == msgs


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("{{ nosuch.thing }}", "'nosuch' is undefined"),
        ("{{ alerts[0].labels.nope }}", "has no attribute 'nope'"),
        ("{{ cluster.__class__.__base__ }}", "unsafe"),
        (
            "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
            "longer than 2s",
        ),
        ("{{ 'x' * 10**9 }}", "repetition over"),
        (
            "{% for a in range(99999) %}{% for b in range(99) %}0123456789{% endfor %}{% endfor %}",
            "output over",
        ),
    ],
)
def test_operator_template_is_rendered_at_load_and_bounded(
    tmp_path: Path, body: str, why: str
) -> None:
    """Syntax-valid templates that fail only when rendered (or never finish) are refused at
    load, naming the directory, the kind and the reason; none takes more than its budget."""
    import time

    (tmp_path / "firing.txt.j2").write_text(body)
    started = time.monotonic()
    with pytest.raises(TemplateError) as err:
        Templates(tmp_path)
    assert time.monotonic() - started < 4
    assert f"templates_dir {tmp_path}" in str(err.value)
    assert "sample firing notification" in str(err.value)
    assert why in str(err.value)


def test_template_that_fails_on_one_alert_only_kills_that_notification(tmp_path: Path) -> None:
    """A template that renders the sample but not a particular alert: that message is dead at
    once with the reason (alerts/failures.py), the rest are delivered."""
    (tmp_path / "firing.txt.j2").write_text(
        "{% for a in alerts %}{{ a.labels.alertname }} {{ 100 // (a.labels.get('cpus', '1')"
        " | int) }}{% endfor %}"
    )
    t = Templates(tmp_path)
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        t.render("firing", [alert(1, cpus="0").to_alertmanager()], "atlas")
    assert t.render("firing", [alert(2).to_alertmanager()], "atlas").text.startswith("Poolwatch")
    long = t.render("firing", [alert(3, node="n" * 5000).to_alertmanager()], "atlas")
    assert len(long.subject) == 998  # a subject longer than a mail header line is cut
