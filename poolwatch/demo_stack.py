"""The demo's acting half: notifications, the controller and the pool API, wired in-process.

`poolwatch.demo` runs the watching half (exporters, Prometheus, the rule engine in local mode);
this module starts what the engine's decisions reach, each on its own port:

  N+4  the alerts receiver (`POST /alertmanager`, `/status`, `/metrics`), fed by Alertmanager
       (or, without it, by the rule engine in-process); its one target is the
       demo inbox below, through apprise's `json://`
  N+5  the controller (`POST /actions`, `/metrics`, `/healthz`) on the simulated pool, reconciling
       every 10 s (divided by the demo's speed); **dry-run off**, because the point of the demo
       is to watch a faulty simulated node get isolated and replaced (a real deployment keeps
       the default, dry-run on)
  N+6  the pool REST API (bearer token in DATA/api-token), over the same controller
  N+8  the demo inbox (poolwatch/demo_site.py, poolwatch/demo_inbox.py): every notification
       the alerts layer delivered, newest first

Why an inbox and not a mail server: the demo must run on a bare machine with nothing to send
mail to, and an operator trying it wants to *see* the messages the stack would send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Stack:
    """Starts and stops the acting parts for a demo. `notifier` and `controller` are what the
    rule engine is given (poolwatch.actions.Notifier / ActionSink)."""

    def __init__(
        self, cluster: Any, data_dir: Path, host: str, ports: Any, interval: float = 10.0
    ) -> None:
        self.cluster, self.data_dir, self.host, self.ports = cluster, data_dir, host, ports
        self.interval = interval  # the controller's reconcile step, scaled to the demo's speed
        self.notifier: Any = None
        self.controller: Any = None
        self.api_url = ""
        self.api_token_file: Path | None = None
        self._stop = threading.Event()
        self._stoppers: list[Callable[[], None]] = []

    def start(self, prometheus_url: str) -> None:
        self._alerts()
        self._controller()
        self._api(prometheus_url)

    def _thread(self, target: Callable[[], object], name: str) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    def _alerts(self) -> None:
        from poolwatch.alerts.receiver import Credentials, make_server
        from poolwatch.alerts.service import AlertService
        from poolwatch.alerts.settings import AlertsSettings, Target

        inbox = f"{self.host}:{self.ports.inbox}"
        settings = AlertsSettings(
            listen=f"{self.host}:{self.ports.alerts}",
            cluster_name="poolwatch-demo",
            outbox=self.data_dir / "alerts.sqlite",
            targets=[Target(name="demo-inbox", url=f"json://{inbox}/inbox")],
            reminder_wait=3600.0,
        )
        service = AlertService(settings)
        httpd = make_server(service, (self.host, self.ports.alerts), Credentials(None, {}))
        service.start()
        self._thread(httpd.serve_forever, "alerts-receiver")
        self.notifier = service

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            service.close(timeout=5.0)

        self._stoppers.append(stop)

    def _controller(self) -> None:
        from poolwatch.controller.server import ControllerServer, serve
        from poolwatch.controller.service import PoolController
        from poolwatch.controller.settings import ControllerSettings

        settings = ControllerSettings(
            backend="simulated", dry_run=False, listen=f"{self.host}:{self.ports.controller}",
            state_path=self.data_dir / "controller.db", interval=self.interval,
            breaker_cooldown=self.interval * 60,  # 10 minutes at speed 1, scaled like the rest
        )  # fmt: skip
        ctl = PoolController(self.cluster, settings, notifier=self.notifier)
        last: list[float] = []
        server = ControllerServer((self.host, self.ports.controller), ctl, None,
                                  lambda: True, lambda: last[-1] if last else None)  # fmt: skip
        serve(server)

        def reconcile() -> None:
            while not self._stop.wait(settings.interval):
                try:
                    ctl.reconcile()
                    last[:] = [time.time()]
                except Exception:  # isolation boundary: the next step tries again
                    log.exception("controller reconcile failed")

        self._thread(reconcile, "controller")
        self.controller = ctl

        def stop() -> None:
            server.shutdown()
            server.server_close()
            ctl.store.close()

        self._stoppers.append(stop)

    def _api(self, prometheus_url: str) -> None:
        from poolwatch.api.embed import start_for_demo

        self.api_url, self.api_token_file, stop = start_for_demo(
            self.controller, self.cluster, prometheus_url, self.data_dir, self.host,
            self.ports.api,
        )  # fmt: skip
        self._stoppers.append(stop)

    def urls(self) -> dict[str, str]:
        h, p = self.host, self.ports
        return {
            "alerts receiver (status)": f"http://{h}:{p.alerts}/status",
            "notifications delivered": f"http://{h}:{p.inbox}/inbox",
            "controller (metrics)": f"http://{h}:{p.controller}/metrics",
            f"pool API (token in {self.api_token_file})": f"{self.api_url}/pools",
        }

    def stop(self) -> None:
        self._stop.set()
        for fn in reversed(self._stoppers):
            try:
                fn()
            except Exception:  # stopping must go on for the other parts
                log.exception("stopping a demo part failed")
