"""A stand-in for the Kubernetes API server on 127.0.0.1, for the real `kubernetes` client.

The real kube-apiserver runs in the tests marked `controlplane` (tests/helpers/controlplane.py);
this stand-in stays for what a real server cannot be made to do (garbage on a watch, objects without
a uid, a 409 on demand) and for checking exact request bodies. It speaks the API's JSON for what
poolwatch's Kubernetes backend does, and records every request:

- GET a collection (`/api/v1/nodes`, `/apis/kubeflow.org/v1/pytorchjobs`, ...): a List with
  `metadata.resourceVersion`; a collection that is not registered answers 404 (a CRD that is
  not installed), as the API server does.
- GET it with `watch=1`: a chunked stream of newline-delimited watch events from the requested
  resourceVersion (replayed from a history, then live), ended after `timeoutSeconds`. A
  resourceVersion older than the compacted history gets an ERROR event with a 410 Status (what
  the API server sends), or HTTP 410 with `gone_as_http`.
- Scripted: `put`/`delete` (each takes the next resourceVersion, like etcd), `delete(quiet=True)`
  (deleted and compacted away: no watch sees it, a resumed watch gets 410), `bookmark()`,
  `expire()` (410 on open streams), `drop()` (cut open streams mid-stream), `send_raw()`,
  `fail` (answer everything with that status), `stop()`/`start()` (nothing listening, then
  back on the same port).
- The write side: GET/PATCH a node (JSON merge patch, `metadata.resourceVersion` as a
  precondition: 409 when it is stale, `conflicts` more 409s on demand), POST pods/eviction
  (201, or `evict_status`), POST events (stored, so the events watch sees them).
- PATCH (merge patch) of a namespaced object of an installed collection (a job).
- Leases (coordination.k8s.io/v1, for leader election): GET, POST (409 when it exists), PUT
  (409 unless `metadata.resourceVersion` is the stored one); kept in `leases`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CORE = {
    "/api/v1/nodes": ("Node", "v1", False),
    "/api/v1/pods": ("Pod", "v1", True),
    "/api/v1/resourcequotas": ("ResourceQuota", "v1", True),
    "/api/v1/events": ("Event", "v1", True),
    "/apis/batch/v1/jobs": ("Job", "batch/v1", True),
}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A metav1.Status as the API server sends with an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class Collection:
    kind: str
    api_version: str
    namespaced: bool
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (rv, event)
    compacted: int = 0  # a watch from an older resourceVersion gets 410


@dataclass
class Watcher:
    path: str
    items: deque[tuple[str, Any]] = field(default_factory=deque)  # (event|raw|end|drop, data)


class KubeApiStub:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rv = 1000
        self.collections = {p: Collection(*spec) for p, spec in CORE.items()}
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str], Any]] = []
        self.fail: int | None = None
        self.gone_as_http = False
        self.evict_status = 201
        self.conflicts = 0
        self.watchers: list[Watcher] = []
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._names = itertools.count(1)
        self._conns: set[socket.socket] = set()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    # -- scripting -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def install(self, path: str, kind: str, api_version: str, namespaced: bool = True) -> None:
        with self.cond:
            self.collections.setdefault(path, Collection(kind, api_version, namespaced))

    def uninstall(self, path: str) -> None:
        with self.cond:
            del self.collections[path]
        self.drop(path)

    def put(self, path: str, obj: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
        """Create or replace `obj`; `quiet`: no watch sees it, and the history is compacted."""
        with self.cond:
            coll = self.collections[path]
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            key = (meta.get("namespace", "") if coll.namespaced else "", meta.get("name", ""))
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            kind = "MODIFIED" if key in coll.objects else "ADDED"
            coll.objects[key] = obj
            self._emit(path, kind, obj, quiet)
            return obj

    def delete(self, path: str, name: str, namespace: str = "", quiet: bool = False) -> None:
        with self.cond:
            coll = self.collections[path]
            obj = coll.objects.pop((namespace if coll.namespaced else "", name))
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._emit(path, "DELETED", obj, quiet)

    def bookmark(self, path: str) -> int:
        with self.cond:
            coll = self.collections[path]
            mark = {"kind": coll.kind, "apiVersion": coll.api_version,
                    "metadata": {"resourceVersion": str(self.rv)}}  # fmt: skip
            self._push(path, "event", {"type": "BOOKMARK", "object": mark})
            return self.rv

    def expire(self, path: str) -> None:
        gone = status(410, "Expired", "too old resource version")
        self._push(path, "event", {"type": "ERROR", "object": gone})
        self._push(path, "end", None)

    def drop(self, path: str | None = None) -> None:
        self._push(path, "drop", None)

    def send_raw(self, path: str, line: bytes) -> None:
        self._push(path, "raw", line)

    def watching(self, path: str) -> int:
        with self.cond:
            return sum(w.path == path for w in self.watchers)

    def queries(self, path: str, watch: bool | None = None) -> list[dict[str, list[str]]]:
        """The query of every GET of `path`; only watches (True) or only lists (False)."""
        out = [q for m, p, q, _, _ in self.requests if m == "GET" and p == path]
        return [q for q in out if watch is None or ("watch" in q) == watch]

    def _emit(self, path: str, kind: str, obj: dict[str, Any], quiet: bool) -> None:
        coll = self.collections[path]
        if quiet:  # gone from the history too: only a relist can tell
            coll.history.clear()
            coll.compacted = self.rv
            return
        event = {"type": kind, "object": copy.deepcopy(obj)}
        coll.history.append((self.rv, event))
        self._push(path, "event", event)

    def _push(self, path: str | None, what: str, data: Any) -> None:
        with self.cond:
            for w in self.watchers:
                if path is None or w.path == path:
                    w.items.append((what, data))
            self.cond.notify_all()

    # -- the server ------------------------------------------------------------------------------
    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as from a server

            def setup(self) -> None:
                super().setup()
                stub._conns.add(self.connection)

            def finish(self) -> None:
                stub._conns.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                stub._serve(self, "GET")

            def do_PATCH(self) -> None:
                stub._serve(self, "PATCH")

            def do_POST(self) -> None:
                stub._serve(self, "POST")

            def do_PUT(self) -> None:
                stub._serve(self, "PUT")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        """Nothing listens any more; open connections are cut."""
        self.drop()
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop()

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = parse_qs(url.query)
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.cond:
            self.requests.append((method, url.path, query, headers, body))
        if self.fail is not None:
            return reply(h, self.fail, status(self.fail, "ServiceUnavailable", "stub failing"))
        parts = url.path.strip("/").split("/")
        if method == "GET" and url.path in self.collections:
            if query.get("watch", ["false"])[0] in ("1", "true"):
                return self._watch(h, url.path, query)
            return self._list(h, url.path)
        if url.path.startswith("/api/v1/nodes/") and len(parts) == 4:
            return self._node(h, method, parts[3], headers, body)
        if method == "POST" and parts[:3] == ["api", "v1", "namespaces"]:
            if len(parts) == 7 and parts[4] == "pods" and parts[6] == "eviction":
                return self._evict(h, parts[3], parts[5])
            if len(parts) == 5 and parts[4] == "events":
                return self._event(h, parts[3], body)
        namespaced = len(parts) == 7 and parts[0] == "apis" and parts[3] == "namespaces"
        if method == "PATCH" and namespaced:
            coll = f"/apis/{parts[1]}/{parts[2]}/{parts[5]}"  # a namespaced object, e.g. a job
            if coll in self.collections:
                return self._patch(h, coll, parts[4], parts[6], headers, body)
        if parts[:4] == ["apis", "coordination.k8s.io", "v1", "namespaces"] and len(parts) >= 6:
            return self._lease(h, method, parts[4], parts[6] if len(parts) == 7 else "", body)
        reply(h, 404, status(404, "NotFound", f"the server could not find {url.path}"))

    def _patch(self, h: BaseHTTPRequestHandler, path: str, namespace: str, name: str,
               headers: dict[str, str], patch: Any) -> None:  # fmt: skip
        with self.cond:
            obj = self.collections[path].objects.get((namespace, name))
            if obj is None:
                return reply(h, 404, status(404, "NotFound", f'"{name}" not found'))
            if headers.get("content-type") != "application/merge-patch+json":
                return reply(h, 415, status(415, "UnsupportedMediaType", "merge patch only"))
            reply(h, 200, self.put(path, merge_patch(obj, patch)))

    def _lease(self, h: BaseHTTPRequestHandler, method: str, namespace: str, name: str,
               body: Any) -> None:  # fmt: skip
        with self.cond:
            if method == "POST":
                name = (body.get("metadata") or {}).get("name", "")
            held = self.leases.get((namespace, name))
            if method == "GET":
                if held is None:
                    return reply(h, 404, status(404, "NotFound", f'leases "{name}" not found'))
                return reply(h, 200, held)
            if method == "POST" and held is not None:
                return reply(h, 409, status(409, "AlreadyExists", f'leases "{name}" exists'))
            want = (body.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and (held is None or want != held["metadata"]["resourceVersion"]):
                msg = "the object has been modified; please apply your changes to the latest"
                return reply(h, 409, status(409, "Conflict", msg))
            self.rv += 1
            stored = copy.deepcopy(body)
            stored["metadata"] = {**stored.get("metadata", {}), "namespace": namespace,
                                  "resourceVersion": str(self.rv)}  # fmt: skip
            self.leases[(namespace, name)] = stored
            reply(h, 201 if method == "POST" else 200, stored)

    def _list(self, h: BaseHTTPRequestHandler, path: str) -> None:
        with self.cond:
            coll = self.collections[path]
            items = [copy.deepcopy(coll.objects[k]) for k in sorted(coll.objects)]
            doc = {"kind": f"{coll.kind}List", "apiVersion": coll.api_version,
                   "metadata": {"resourceVersion": str(self.rv)}, "items": items}  # fmt: skip
        reply(h, 200, doc)

    def _watch(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        deadline = time.monotonic() + int(query.get("timeoutSeconds", ["300"])[0])
        watcher = Watcher(path)
        with self.cond:
            coll = self.collections[path]
            if since < coll.compacted and self.gone_as_http:
                return reply(h, 410, status(410, "Expired", "too old resource version"))
            if since < coll.compacted:
                gone = status(410, "Expired", f"too old resource version: {since}")
                watcher.items.extend([("event", {"type": "ERROR", "object": gone}), ("end", 0)])
            else:
                watcher.items.extend(("event", e) for rv, e in coll.history if rv > since)
            self.watchers.append(watcher)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            self._stream(h, watcher, deadline)
        except OSError:
            pass  # the client went away
        finally:
            with self.cond:
                self.watchers.remove(watcher)

    def _stream(self, h: BaseHTTPRequestHandler, watcher: Watcher, deadline: float) -> None:
        while True:
            with self.cond:
                while not watcher.items and time.monotonic() < deadline:
                    self.cond.wait(deadline - time.monotonic())
                items = list(watcher.items)
                watcher.items.clear()
            if not items:
                break  # timeoutSeconds: a clean end
            for what, data in items:
                if what == "drop":  # cut mid-stream: no terminating chunk
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                if what == "end":
                    return end_chunks(h)
                line = data if what == "raw" else json.dumps(data).encode()
                h.wfile.write(b"%x\r\n%s\n\r\n" % (len(line) + 1, line))
        end_chunks(h)

    def _node(self, h: BaseHTTPRequestHandler, method: str, name: str, headers: dict[str, str],
              patch: Any) -> None:  # fmt: skip
        path = "/api/v1/nodes"
        with self.cond:
            node = self.collections[path].objects.get(("", name))
            if node is None:
                return reply(h, 404, status(404, "NotFound", f'nodes "{name}" not found'))
            if method == "GET":
                return reply(h, 200, node)
            if headers.get("content-type") != "application/merge-patch+json":
                return reply(h, 415, status(415, "UnsupportedMediaType", "merge patch only"))
            want = (patch.get("metadata") or {}).get("resourceVersion")
            if self.conflicts or (want and want != node["metadata"]["resourceVersion"]):
                self.conflicts = max(0, self.conflicts - 1)
                msg = "the object has been modified; please apply your changes to the latest"
                return reply(h, 409, status(409, "Conflict", msg))
            patched = merge_patch(node, {**patch, "metadata": {
                k: v for k, v in (patch.get("metadata") or {}).items() if k != "resourceVersion"
            }})  # fmt: skip
            reply(h, 200, self.put(path, patched))

    def _evict(self, h: BaseHTTPRequestHandler, namespace: str, pod: str) -> None:
        with self.cond:
            if (namespace, pod) not in self.collections["/api/v1/pods"].objects:
                return reply(h, 404, status(404, "NotFound", f'pods "{pod}" not found'))
            if self.evict_status != 201:
                msg = "Cannot evict pod as it would violate the pod's disruption budget."
                return reply(
                    h, self.evict_status, status(self.evict_status, "TooManyRequests", msg)
                )
            self.delete("/api/v1/pods", pod, namespace)
        reply(h, 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})

    def _event(self, h: BaseHTTPRequestHandler, namespace: str, body: Any) -> None:
        meta = body.setdefault("metadata", {})
        n = next(self._names)
        meta["name"] = f"{meta.get('generateName', 'event.')}{n:05x}"
        meta["namespace"] = namespace
        meta["uid"] = f"00000000-0000-4000-8000-{n:012x}"
        reply(h, 201, self.put("/api/v1/events", body))


def reply(h: BaseHTTPRequestHandler, code: int, doc: Any) -> None:
    data = json.dumps(doc).encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def end_chunks(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"0\r\n\r\n")
