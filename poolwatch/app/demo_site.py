"""The demo's own web site, on port N+8: the landing page and everything made for the demo.

  GET  /                   the landing page: every part, with a line on what it is
  GET  /inbox              the notifications delivered (HTML, newest first); /inbox.json
  POST /inbox              where the alerts layer delivers (apprise's json:// target)
  GET  /pool               the simulated pool: nodes, events, jobs, the faults struck
  GET  /alerts             the local rule engine's alerts
  GET  /dashboards/        every dashboard drawn from the demo's Prometheus (see dashboards.render)
  GET  /docs/              the repository's docs/*.md as pages: the runbooks the alerts link to
  GET  /api/faults         the faults the simulator knows, the nodes and the hung jobs (JSON)
  POST /api/inject         {"fault": "gpu_lost", "node": "gpu-a-node-02"[, "device": 0]};
                           {"fault": "hang", "node": NODE or "namespace/job"} hangs a job
  POST /api/heal           {"node": "gpu-a-node-02" or "namespace/job"[, "fault": "gpu_lost"]}
  GET  /healthz            ok while the site serves

Only on 127.0.0.1, like the whole demo; the fault API changes nothing but the simulation. The
shared web layer serves it (`poolwatch.core.web`): open, unless given an `Auth` and TLS like
every other poolwatch server (then every path but /healthz asks for credentials).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from typing import Any

from poolwatch.app import demo_docs, demo_pages
from poolwatch.app.demo_inbox import Inbox
from poolwatch.cluster.simulated.spec import FAULTS, JOB_FAULTS
from poolwatch.core.web.auth import Auth
from poolwatch.core.web.server import Handler, Server

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
DASHBOARD_TTL = 15.0  # seconds a rendered dashboard is served before it is drawn again


class Site(Server):
    """`demo` is the running poolwatch.demo.Demo (its cluster, engine, parts and URLs); `auth`
    and `tls` as on every poolwatch server (none: open, plain HTTP, as the demo runs it)."""

    def __init__(
        self,
        address: tuple[str, int],
        demo: Any,
        inbox: Inbox,
        auth: Auth | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.demo, self.inbox = demo, inbox
        self.render_lock = threading.Lock()
        self.rendered: dict[str, tuple[float, bytes]] = {}
        super().__init__(address, _SiteHandler)
        self.auth, self.tls = auth, tls

    def dashboard(self, name: str) -> bytes | None:
        """A dashboard page (or the index when `name` is ""), drawn at most every DASHBOARD_TTL."""
        from poolwatch.core.prometheus import PrometheusClient
        from poolwatch.dashboards import registry
        from poolwatch.dashboards import render as renderer

        models = registry.dashboards()
        if name and name not in models:
            return None
        with self.render_lock:  # one drawing at a time: it is CPU work on a small machine
            hit = self.rendered.get(name)
            if hit is not None and time.monotonic() - hit[0] < DASHBOARD_TTL:
                return hit[1]
            url = self.demo.prometheus_url()
            if url is None:
                body = demo_pages.page("poolwatch dashboards", "<p>Prometheus is not running in "
                                       "this demo, so there is no data to draw.</p>")  # fmt: skip
            elif not name:
                body = renderer.index_page(models, lambda uid: f"{uid}.html").encode()
            else:
                span = self.demo.dashboard_span()
                prom = PrometheusClient(url, timeout=15.0)
                body = renderer.render_board(models[name], prom, time.time(), span).encode()
            self.rendered[name] = (time.monotonic(), body)
            return body


class _SiteHandler(Handler):
    server: Site
    protocol_version = "HTTP/1.1"

    def _html(self, body: bytes, code: int = 200) -> None:
        self.send_body(code, body, "text/html; charset=utf-8")

    def _json(self, code: int, doc: object) -> None:
        self.send_body(code, json.dumps(doc, indent=2).encode() + b"\n", "application/json")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        demo = self.server.demo
        if path == "/healthz":  # open, like every poolwatch server's
            self.send_body(200, b"ok\n", "text/plain")
        elif not self.authorized():
            return
        elif path == "/":
            self._html(demo_pages.landing(demo.parts(), demo.summary_html()))
        elif path == "/inbox":
            self._html(demo_pages.inbox(self.server.inbox.messages()))
        elif path == "/inbox.json":
            messages = [m.as_dict() for m in self.server.inbox.messages()]
            self._json(200, {"count": len(messages), "messages": messages})
        elif path == "/pool":
            self._html(demo_pages.pool(demo.cluster, demo.scenario_struck()))
        elif path == "/alerts":
            self._html(demo_pages.alerts(demo.alert_states()))
        elif path in ("/dashboards", "/dashboards/", "/dashboards/index.html"):
            self._html(self.server.dashboard("") or b"")
        elif path.startswith("/dashboards/") and path.endswith(".html"):
            body = self.server.dashboard(path.removeprefix("/dashboards/").removesuffix(".html"))
            self._html(body or demo_pages.page("not found", "<p>no such dashboard</p>"),
                       200 if body else 404)  # fmt: skip
        elif path in ("/docs", "/docs/"):
            if path == "/docs":  # relative links in the index resolve under /docs/
                self.send_response(301)
                self.send_header("Location", "/docs/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._html(demo_docs.index())
        elif path.startswith("/docs/"):
            doc = demo_docs.render(path.removeprefix("/docs/"))
            self._html(doc or demo_pages.page("not found", '<p><a href="/docs/">the docs</a></p>'),
                       200 if doc else 404)  # fmt: skip
        elif path == "/api/faults":
            nodes = sorted(n.name for n in demo.cluster.nodes())
            self._json(200, {"faults": [*FAULTS, *JOB_FAULTS], "nodes": nodes,
                             "hung_jobs": demo.cluster.hung_jobs()})  # fmt: skip
        else:
            self._html(demo_pages.page("not found", '<p><a href="/">demo home</a></p>'), 404)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self.authorized():
            self.close_connection = True  # the body is left unread
            return
        body = self.read_body(MAX_BODY)
        if body is None:
            self._json(413, {"error": f"body over {MAX_BODY} bytes"})
            return
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            self._json(400, {"error": "the body is not JSON"})
            return
        if path == "/inbox":
            message = self.server.inbox.add(doc)
            log.info("inbox: %s", message.title or "a message without a title")
            self._json(200, {"status": "ok"})
        elif path in ("/api/inject", "/api/heal"):
            self._fault(path, doc)
        else:
            self._json(404, {"error": f"no such endpoint {path}"})

    def _fault(self, path: str, doc: Any) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("node"), str):
            self._json(400, {"error": 'expected {"fault": ..., "node": ...}'})
            return
        cluster, node = self.server.demo.cluster, doc["node"]
        device = doc.get("device")
        if device is not None and (not isinstance(device, int) or isinstance(device, bool)):
            self._json(
                400, {"error": f"device: expected a device index (0, 1, ...), got {device!r}"}
            )
            return
        try:
            if path == "/api/inject" and doc.get("fault") in JOB_FAULTS:
                if device is not None:
                    raise ValueError("device: only a device fault takes one, not a hang")
                job = cluster.hang(node)
                self.server.demo.nodes.refresh()
                log.info("injected hang on %s (via %s)", job, node)
                self._json(200, {"fault": "hang", "node": node, "job": job})
            elif path == "/api/inject":
                hit = cluster.inject(str(doc.get("fault")), node, device)
                self.server.demo.nodes.refresh()
                log.info("injected %s on %s%s", doc.get("fault"), node,
                         "" if hit is None else f" (device {hit})")  # fmt: skip
                self._json(200, {"fault": doc.get("fault"), "node": node, "device": hit})
            else:
                jobs = cluster.heal(node, doc.get("fault"))
                self.server.demo.nodes.refresh()
                self._json(200, {"healed": node, "fault": doc.get("fault"), "jobs": jobs})
        except KeyError as err:
            nodes = ", ".join(sorted(n.name for n in cluster.nodes()))
            self._json(404, {"error": f"{err.args[0]}; the nodes are: {nodes}"})
        except ValueError as err:
            self._json(400, {"error": str(err)})
