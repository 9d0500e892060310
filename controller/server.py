"""The controller's HTTP side: POST /actions (NodeAction JSON -> ActionResult JSON, bearer
token), GET /metrics, GET /healthz.

The shared poolwatch server (`poolwatch.httpbase.Server`: backlog 128, idle and read timeouts on
every connection, strict Content-Length). It acts on nodes, so it refuses to listen on anything
but a loopback address without a bearer token (`ExposedWithoutToken`). Every answer to /actions
is `{"outcome", "detail"}`, which is what the rule engine's HTTP sink reads: 400 refused (not an
action), 401 refused (token), 503 deferred (standby).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from collections.abc import Callable

from poolwatch.core import pages
from poolwatch.core.actions import ActionResult, NodeAction
from poolwatch.core.config import ConfigError
from poolwatch.core.httpbase import Handler as BaseHandler
from poolwatch.core.httpbase import Server as BaseServer

from . import metrics
from .service import PoolController
from .settings import code_problem

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
#: `/` for a person with a browser
INDEX = pages.index(
    "poolwatch controller",
    "Isolates faulty nodes, replaces them from the pool's spares, restarts the jobs they ran "
    "and records pool events, within the limits of its circuit breaker.",
    [("/metrics", "the controller's metrics: actions, replacements, the breaker"),
     ("/healthz", "ok, and whether this replica leads"),
     ("/actions", "POST only: a rule engine's or an operator's request (JSON)")],
)  # fmt: skip


class ExposedWithoutToken(ConfigError):
    """The controller would accept node actions from the network from anyone."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; every other name or address (0.0.0.0, a
    hostname, an interface address) may be reachable from elsewhere."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(address: tuple[str, int], token: str | None) -> None:
    """Refuse (ExposedWithoutToken) to serve POST /actions beyond this host without a token."""
    host = address[0] or "0.0.0.0"
    if not token and not is_loopback(host):
        raise ExposedWithoutToken(
            f"listen {host}:{address[1]}: the controller isolates and replaces nodes on request, "
            "so on an address other hosts can reach it needs a bearer token: set token_file "
            "(--token-file FILE), or listen on 127.0.0.1"
        )


class ControllerServer(BaseServer):
    def __init__(
        self, address: tuple[str, int], ctl: PoolController, token: str | None,
        is_leader: Callable[[], bool], last_reconcile: Callable[[], float | None],
    ) -> None:  # fmt: skip
        check_exposure(address, token)
        self.ctl, self.token, self.is_leader = ctl, token, is_leader
        self.last_reconcile = last_reconcile
        super().__init__(address, _Handler)


class _Handler(BaseHandler):
    server: ControllerServer
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_body(code, body, ctype)

    def _result(self, code: int, result: ActionResult) -> None:
        doc = {"outcome": result.outcome, "detail": result.detail}
        self._send(code, json.dumps(doc).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            state = "leader" if self.server.is_leader() else "standby"
            self._send(200, f"ok ({state})\n".encode(), "text/plain")
        elif path == "/":
            self._send(200, INDEX, "text/html; charset=utf-8")
        elif path == "/metrics":
            body = metrics.exposition(self.server.ctl, self.server.is_leader(),
                                      self.server.last_reconcile())  # fmt: skip
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/actions":
            self._send(404, b"not found\n", "text/plain")
            return
        length = self.content_length()
        if not 0 < length <= MAX_BODY:
            self.close_connection = True
            self._result(400, ActionResult("refused", f"body: 1 to {MAX_BODY} bytes of JSON"))
            return
        body = self.rfile.read(length)
        token = self.server.token
        given = self.headers.get("Authorization", "")
        if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self._result(401, ActionResult("refused", "a valid bearer token is required"))
            return
        try:
            action = NodeAction.from_json(json.loads(body))
        except RecursionError:  # nesting deeper than json's recursion limit
            self._result(400, ActionResult("refused", "not an action: nested too deeply"))
            return
        except ValueError as err:  # json's errors are ValueErrors too
            self._result(400, ActionResult("refused", f"not an action: {err}"))
            return
        if action.fault_code and (
            problem := code_problem(action.fault_code, self.server.ctl.settings)
        ):
            self._result(400, ActionResult("refused", problem))
            return
        if not self.server.is_leader():
            self._result(503, ActionResult("deferred", "standby: another controller leads"))
            return
        self._result(200, self.server.ctl.submit(action))


def serve(server: ControllerServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="controller-http", daemon=True)
    thread.start()
    return thread
