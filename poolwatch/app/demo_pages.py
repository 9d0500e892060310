"""The demo's HTML pages: the landing page, the inbox, the pool, the rule engine's alerts.

Plain server-rendered HTML with a meta refresh, no scripts, nothing from the network: the demo
must work on a machine without internet access, and each page must say what it shows to someone
who has never seen poolwatch.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

from poolwatch.app.demo_inbox import Message
from poolwatch.core.pages import page

SEVERITY_COLORS = {"critical": "#c92a2a", "major": "#e8590c", "warning": "#f08c00",
                   "suggestion": "#1c7ed6", "info": "#1c7ed6"}  # fmt: skip
STATUS_COLORS = {"Available": "#2f9e44", "Spare": "#1c7ed6", "Isolated": "#c92a2a",
                 "Replacing": "#e8590c", "Repairing": "#f08c00", "Unavailable": "#c92a2a",
                 "Abnormal": "#c92a2a", "Running": "#2f9e44"}  # fmt: skip
EXTRA_CSS = (
    "<style>.pill{border-radius:3px;color:#fff;padding:0 .4em;font-size:.85em;font-weight:600}"
    ".msg{border-left:6px solid #888;background:#fff;margin:.8em 0;padding:.4em .8em;"
    "box-shadow:0 1px 2px #0002}.msg pre{white-space:pre-wrap;margin:.3em 0;font-size:.9em}"
    ".resolved{border-left-color:#2f9e44!important;opacity:.85}.muted{color:#666}</style>"
)


def _t(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def pill(text: str, color: str) -> str:
    return f'<span class="pill" style="background:{color}">{html.escape(text)}</span>'


def landing(parts: Sequence[tuple[str, str, str]], summary: str) -> bytes:
    """`parts`: (name, URL, one line on what it is)."""
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(url)}">{html.escape(name)}</a></td>'
        f"<td>{html.escape(what)}</td></tr>"
        for name, url, what in parts
    )
    body = (
        f"{EXTRA_CSS}<p>poolwatch watches GPU/NPU training pools: it measures every node and "
        "device, fires alerts from rules, notifies people, and isolates and replaces faulty "
        "nodes. This demo runs all of it on this machine over a <b>simulated pool</b> (two "
        "pools, 12 nodes, 96 accelerators, training jobs), with a scripted fault in the first "
        "minute and more every few minutes.</p>"
        f"<h2>What is happening</h2>{summary}"
        "<h2>Every part</h2><table><tr><th>open</th><th>what it is</th></tr>"
        f"{rows}</table>"
    )
    return page("poolwatch demo", body, refresh=10)


def inbox(messages: list[Message]) -> bytes:
    """Newest first; the colour bar is the severity, green when resolved."""
    if not messages:
        items = ('<p class="muted">No notification yet. The first one arrives about two '
                 "minutes after the demo starts (sooner with --speed).</p>")  # fmt: skip
    else:
        items = "\n".join(_message(m) for m in messages)
    body = (
        f"{EXTRA_CSS}<p>Every notification poolwatch delivered, newest first, as an email or "
        "chat message would carry it. Here the alerts layer delivers to this inbox instead of "
        f'a mail server. <a href="/inbox.json">JSON</a>, <a href="/">demo home</a>.</p>'
        f"<p>{len(messages)} shown.</p>{items}"
    )
    return page("poolwatch demo inbox", body, refresh=10)


def _message(m: Message) -> str:
    color = SEVERITY_COLORS.get(m.severity, "#888")
    kind = m.kind or "message"
    cls = "msg resolved" if kind == "resolved" else "msg"
    tags = pill(kind.upper(), "#2f9e44" if kind == "resolved" else color)
    if m.severity:
        tags += " " + pill(m.severity, color)
    return (
        f'<div class="{cls}" style="border-left-color:{color}" data-kind="{kind}">'
        f"{tags} <b>{html.escape(m.title)}</b> <span class='muted'>received {_t(m.received)}"
        f"</span><pre>{html.escape(m.text)}</pre></div>"
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def pool(cluster: Any, struck: list[tuple[float, str, str]]) -> bytes:
    """Nodes (status, fault code, faults), jobs and the newest pool events."""
    nodes = sorted(cluster.nodes(), key=lambda n: n.name)
    node_rows = [
        (html.escape(n.name), html.escape(n.pool),
         pill(str(n.status), STATUS_COLORS.get(str(n.status), "#555")),
         html.escape(n.fault_code), html.escape(", ".join(cluster.node_faults(n.name))))
        for n in nodes
    ]  # fmt: skip
    jobs = sorted(cluster.jobs(), key=lambda j: (j.pool, j.namespace, j.name))
    hung = set(cluster.hung_jobs())  # the simulation knows; Kubernetes shows them Running
    job_rows = [
        (html.escape(f"{j.namespace}/{j.name}"), html.escape(j.pool),
         pill(str(j.status), STATUS_COLORS.get(str(j.status), "#555"))
         + (" hung (no I/O, idle accelerators)" if f"{j.namespace}/{j.name}" in hung else ""),
         str(j.restarts), html.escape(j.owner))
        for j in jobs
    ]  # fmt: skip
    events = sorted(cluster.events(), key=lambda e: e.time, reverse=True)[:60]
    event_rows = [
        (_t(e.time), html.escape(e.kind), html.escape(e.name), html.escape(e.reason),
         html.escape(e.message))
        for e in events
    ]  # fmt: skip
    faults = "".join(f"<li>{_t(t)} (simulated): {html.escape(f)} on {html.escape(n)}</li>"
                     for t, f, n in struck) or "<li>none yet</li>"  # fmt: skip
    body = (
        f"{EXTRA_CSS}<p>The simulated pool as its Kubernetes objects stand now. Times are "
        f'simulated time. <a href="/">demo home</a>.</p><h2>Faults the scenario struck</h2>'
        f"<ul>{faults}</ul><h2>Nodes</h2>"
        + _table(("node", "pool", "status", "fault code", "faults now"), node_rows)
        + "<h2>Pool and node events (newest first)</h2>"
        + _table(("time", "kind", "object", "reason", "message"), event_rows)
        + "<h2>Training jobs</h2>"
        + _table(("job", "pool", "status", "restarts", "owner"), job_rows)
    )
    return page("poolwatch demo: the simulated pool", body, refresh=10)


def alerts(states: list[Any]) -> bytes:
    """The local rule engine's alerts: pending, firing and resolved-not-yet-forgotten."""
    order = {"firing": 0, "pending": 1, "resolved": 2}
    rows = [
        (pill(s.state, {"firing": "#c92a2a", "pending": "#f08c00"}.get(s.state, "#2f9e44")),
         html.escape(s.rule), html.escape(s.labels.get("severity", "")),
         html.escape(s.labels.get("node", "") or s.labels.get("pool", "")),
         html.escape(s.annotations.get("summary", "")),
         _t(s.active_since) if s.active_since else "")
        for s in sorted(states, key=lambda s: (order.get(s.state, 3), s.rule))
    ]  # fmt: skip
    body = (
        f"{EXTRA_CSS}<p>What the rule engine (local mode, in this process) sees now: each "
        "alert of the shipped rules that is pending (its condition holds, not yet long enough), "
        "firing, or resolved. Firing alerts with an action (isolate, replace, restart the job) "
        'are handed to the controller. <a href="/">demo home</a>.</p>'
        + (
            _table(("state", "rule", "severity", "where", "summary", "since"), rows)
            if rows
            else '<p class="muted">No alert: every rule is quiet.</p>'
        )
    )
    return page("poolwatch demo: rule engine alerts", body, refresh=10)
