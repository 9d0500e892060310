"""Messages from templates: a subject, a plain body and an HTML body per kind of notification.

Templates render in Jinja2's `SandboxedEnvironment`: an override directory is operator input,
and a template must not reach Python internals through attribute access. Templates named
`*.html.j2` are HTML-autoescaped, so a label value such as `<script>` arrives as text. An override
directory is searched before the shipped defaults (`alerts/templates/`), file by file.

Operator templates are checked when they load, not at 3 a.m.: each kind is rendered with a
sample alert group (`SAMPLE`), and a template that fails to render there (an undefined name, a
sandbox violation, output over the limit) is refused with its name. Every rendering is bounded:
at most `MAX_SECONDS` (checked between output chunks and at each step of `range`, the sandbox's
only unbounded loop source besides the alerts themselves) and `MAX_BYTES` per part, and string
repetition (`*`) is capped; a message over a bound is a template error (the notification is
dead with that reason, see alerts/failures.py), never a hung delivery worker.
"""

from __future__ import annotations

import datetime as dt
import operator
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment, safe_range

SHIPPED = Path(__file__).parent / "templates"
KINDS = ("firing", "reminder", "resolved")
MAX_SECONDS = 2.0  # per message, all three parts together
MAX_BYTES = 1_048_576  # per part
MAX_SUBJECT = 998  # the longest line RFC 5322 allows

#: the alert group every template is rendered with at load
SAMPLE: list[dict[str, Any]] = [
    {
        "status": "firing",
        "labels": {"alertname": "PoolwatchSample", "severity": sev, "node": f"node-{i}",
                   "pool": "pool-a", "job": "train-1", "owner_email": "owner@example.org"},
        "annotations": {"summary": "sample summary", "description": "sample description",
                        "runbook_url": "https://example.org/runbook"},
        "startsAt": "2026-01-02T03:04:05Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org/graph",
        "fingerprint": f"{i:016x}",
    }
    for i, sev in enumerate(("critical", "warning"))
]  # fmt: skip
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


class _Deadline(threading.local):
    """The time budget of the rendering in this thread (each delivery worker renders in its
    own), checked by the guarded `range` and between chunks."""

    until = float("inf")

    def check(self) -> None:
        if time.monotonic() > self.until:
            raise TemplateError(f"rendering took longer than {MAX_SECONDS:g}s")


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox with `*` capped: `"x" * 10**9` must not take a gigabyte."""

    intercepted_binops = frozenset({"*"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > MAX_BYTES:
                    raise TemplateError(f"repetition over {MAX_BYTES} characters")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


class Templates:
    def __init__(self, override: Path | None = None) -> None:
        dirs = [str(override)] if override else []
        self._deadline = _Deadline()
        self.env = _BoundedSandbox(
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
        self.env.globals["range"] = self._range
        for kind in KINDS:  # render now with a sample: what fails here would fail every message
            for sample in (SAMPLE[:1], SAMPLE):
                try:
                    self.render(kind, sample, "sample-cluster")
                except TemplateError as err:
                    where = f"templates_dir {override}" if override else "shipped templates"
                    raise TemplateError(
                        f"{where}: {err} (rendering a sample {kind} notification)"
                    ) from None

    def _range(self, *args: int) -> Iterator[int]:
        """The sandbox's `range`, checking the time budget at every step."""
        for i in safe_range(*args):
            self._deadline.check()
            yield i

    def _part(self, name: str, ctx: dict[str, Any]) -> str:
        """One template rendered chunk by chunk, within the time and size bounds."""
        out: list[str] = []
        size = 0
        for chunk in self.env.get_template(name).generate(ctx):
            size += len(chunk)
            if size > MAX_BYTES:
                raise TemplateError(f"{name}: output over {MAX_BYTES} characters")
            self._deadline.check()
            out.append(chunk)
        return "".join(out)

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
        self._deadline.until = time.monotonic() + MAX_SECONDS
        try:
            subject = self._part(f"{kind}.subject.j2", ctx)
            text = self._part(f"{kind}.txt.j2", ctx)
            html = self._part(f"{kind}.html.j2", ctx)
        except jinja2.TemplateError as err:
            raise TemplateError(f"{kind} templates: {err}") from None
        except (ArithmeticError, MemoryError, RecursionError) as err:
            raise TemplateError(f"{kind} templates: {type(err).__name__}: {err}") from None
        finally:
            self._deadline.until = float("inf")
        subject = " ".join(subject.split())
        if len(subject) > MAX_SUBJECT:
            subject = subject[: MAX_SUBJECT - 1] + "…"
        return Message(subject, text.strip() + "\n", html)
