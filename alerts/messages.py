"""Messages from templates: a subject, a plain body and an HTML body per kind of notification.

Templates render in Jinja2's `SandboxedEnvironment`: an override directory is operator input,
and a template must not reach Python internals through attribute access. Templates named
`*.html.j2` are HTML-autoescaped, so a label value such as `<script>` arrives as text. An override
directory is searched before the shipped defaults (`alerts/templates/`), file by file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

SHIPPED = Path(__file__).parent / "templates"
KINDS = ("firing", "reminder", "resolved")
COLORS = {"critical": "#c0392b", "major": "#d35400", "warning": "#b7950b", "info": "#2471a3"}


class TemplateError(ValueError):
    """A template that does not load or render; names the template and the line."""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


def _when(value: str) -> str:
    if not value or value.startswith("0001-01-01"):
        return ""
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _common(alerts: list[dict[str, Any]], label: str) -> str:
    values = {a["labels"].get(label, "") for a in alerts}
    return values.pop() if len(values) == 1 else ""


class Templates:
    def __init__(self, override: Path | None = None) -> None:
        dirs = [str(override)] if override else []
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader([*dirs, str(SHIPPED)]),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=jinja2.StrictUndefined,
            trim_blocks=False,
        )
        try:  # load every template now: a broken override fails at start, not at 3 a.m.
            for kind in KINDS:
                for part in ("subject", "txt", "html"):
                    self.env.get_template(f"{kind}.{part}.j2")
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"{err.filename or err.name}:{err.lineno}: {err.message}") from None
        except jinja2.TemplateNotFound as err:
            raise TemplateError(f"template {err.name} not found") from None

    def render(self, kind: str, alerts: list[dict[str, Any]], cluster: str) -> Message:
        """One message about `alerts` (Alertmanager-shaped dicts, all of one kind)."""
        shown = [
            {**a, "starts": _when(a.get("startsAt", "")), "ends": _when(a.get("endsAt", ""))}
            for a in alerts
        ]
        names = sorted({a["labels"].get("alertname", "") for a in alerts})
        ctx = {
            "kind": kind,
            "alerts": shown,
            "cluster": cluster,
            "severity": _common(alerts, "severity") or "mixed",
            "alertname": names[0]
            if len(names) == 1
            else ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""),
            "node": _common(alerts, "node"),
            "nodes": sorted({a["labels"].get("node", "") for a in alerts} - {""}),
            "pool": _common(alerts, "pool"),
            "colors": COLORS,
        }
        try:
            subject = self.env.get_template(f"{kind}.subject.j2").render(ctx)
            text = self.env.get_template(f"{kind}.txt.j2").render(ctx)
            html = self.env.get_template(f"{kind}.html.j2").render(ctx)
        except jinja2.TemplateError as err:
            raise TemplateError(f"{kind} templates: {err}") from None
        return Message(" ".join(subject.split()), text.strip() + "\n", html)
