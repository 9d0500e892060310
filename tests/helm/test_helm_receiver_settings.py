"""The alerts receiver's settings through the chart's values (`alerts.config`): every setting an
operator may choose is typed in values.schema.json (job_owners.max_recipients among them), the
chart's own are refused there, and what the chart renders loads with the receiver's own model
and routes as the values say. Real Helm; the receiver's own settings loader and router.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from poolwatch.alerts.routing import routes
from poolwatch.alerts.settings import AlertsSettings, load_settings
from poolwatch.core.actions import AlertMessage
from tests.helpers import pinned_tool
from tests.helpers.helm_chart import CHART, Helm, HelmError

#: set by the chart from other values, so not in alerts.config's schema
CHART_OWNED = {"listen", "outbox", "auth", "targets", "tls", "templates_dir", "web_config_file"}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(pinned_tool("helm"), tmp_path_factory.mktemp("helm-home"))


def _schema_config() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return schema["properties"]["alerts"]["properties"]["config"]


def test_every_receiver_setting_is_in_the_schema_or_the_charts() -> None:
    """A setting added to the receiver fails this until the chart's schema has it (or the chart
    sets it itself)."""
    config = _schema_config()
    assert config["additionalProperties"] is False

    def compare(model: type[BaseModel], node: dict[str, Any], skip: set[str], at: str) -> None:
        assert set(node["properties"]) == set(model.model_fields) - skip, at
        for name, field in model.model_fields.items():
            sub = field.annotation
            if name in node["properties"] and isinstance(sub, type) and issubclass(sub, BaseModel):
                assert node["properties"][name]["additionalProperties"] is False
                compare(sub, node["properties"][name], set(), f"{at}.{name}")

    compare(AlertsSettings, config, CHART_OWNED, "alerts.config")


def _alerts_yaml(helm: Helm, values: dict[str, Any], tmp_path: Path) -> Path:
    rendered = helm.template([helm.write_values({"alerts": values})])
    text = rendered.one("ConfigMap", "-alerts")["data"]["alerts.yaml"]
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return path


def test_max_recipients_reaches_the_receiver(helm: Helm, tmp_path: Path) -> None:
    path = _alerts_yaml(helm, {
        "config": {"job_owners": {"enabled": True, "label": "owner_email", "via": "mail",
                                  "max_recipients": 2},
                   "retry": {"max_backoff": "10m"}, "reminder_wait": "4h"},
        "targets": [{"name": "mail"}],
        "targetsSecret": {"urls": {"mail": "mailtos://user:pw@smtp.example.com"}},
    }, tmp_path)  # fmt: skip
    settings = load_settings(path, env={})
    assert settings.job_owners.max_recipients == 2
    assert settings.retry.max_backoff == 600
    assert settings.reminder_wait == 4 * 3600
    owners = ",".join(f"o{i}@example.com" for i in range(5))
    labels = {"alertname": "X", "severity": "critical", "owner_email": owners}
    sent = routes(AlertMessage("firing", "f1", labels), settings)
    assert [r.recipient for r in sent if r.recipient] == ["o0@example.com", "o1@example.com"]
    assert yaml.safe_load(path.read_text())["job_owners"]["max_recipients"] == 2


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"job_owners": {"max_recipients": 0}},
         "at '/alerts/config/job_owners/max_recipients': minimum"),
        ({"job_owners": {"max_recipients": 1001}},
         "at '/alerts/config/job_owners/max_recipients': maximum"),
        ({"job_owners": {"max_recipients": "five"}},
         "at '/alerts/config/job_owners/max_recipients': got string"),
        ({"job_owner": {"enabled": True}}, "additional properties 'job_owner' not allowed"),
        ({"targets": []}, "additional properties 'targets' not allowed"),
        ({"retry": {"deadline": "1 day"}}, "at '/alerts/config/retry/deadline'"),
    ],
)  # fmt: skip
def test_bad_receiver_settings_stop_helm(helm: Helm, config: dict[str, Any], where: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.template([helm.write_values({"alerts": {"config": config}})])
    assert where in str(err.value)


def test_job_owners_through_an_unknown_target_fails_naming_it(helm: Helm) -> None:
    values = {"alerts": {"config": {"job_owners": {"enabled": True, "via": "nomail"}}}}
    with pytest.raises(HelmError) as err:
        helm.template([helm.write_values(values)])
    assert 'alerts.config.job_owners.via: "nomail" is not one of alerts.targets[].name' in str(
        err.value
    )
