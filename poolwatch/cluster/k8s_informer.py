"""One resource's list + watch loop, in its own thread, as client-go's reflector does it.

1. List. The first list asks `resourceVersion=0`: the API server answers from its watch cache
   instead of a quorum read of etcd. A relist after 410 Gone asks no resourceVersion (a
   consistent read), so an object deleted while the watch was lost is certainly missing from it.
   The list is diffed against what this informer holds (uid -> resourceVersion): new uids are
   ADDED, a changed resourceVersion is MODIFIED, a uid no longer listed is DELETED. Consumers
   never see a gap, only changes.
2. Watch from the list's resourceVersion with `allowWatchBookmarks=true` and `timeoutSeconds`.
   Every event, BOOKMARK included, moves the resourceVersion on; a bookmark emits nothing. When
   the server ends the stream (timeoutSeconds), the watch starts again at once from there; a
   stream that ends within a second with nothing in it waits a backoff first (no busy loop).
3. 410 Gone (an ERROR event with code 410 on the stream, or HTTP 410 on the watch request): the
   resourceVersion is too old for the server; relist at once (after a backoff if the relist
   itself got 410) and emit the differences.
4. A stream that breaks, or an ERROR event other than 410: wait (exponential backoff with
   jitter, `Backoff`) and watch again from the last resourceVersion. A request that fails (no
   connection, 5xx, 403, a body that is not a list): the informer is down (`up` False, logged
   once as a warning naming the cause) and retries with the same backoff; the first answer
   brings it up again (logged at info).
5. 404 on the list of an optional resource (a CRD that is not installed, or not at this
   version): `absent`, logged once at info, looked for again every `absent_retry` seconds. If it
   held objects (the CRD was removed), they are DELETED.

Events go to `sink(resource, deltas)` in this thread; the sink converts and fans them out. The
loop never raises: everything that goes wrong is a state, a log line and a retry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from poolwatch.cluster.kubernetes.api import Backoff, NotAList, Resource, describe, failures

log = logging.getLogger(__name__)

DeltaType = Literal["ADDED", "MODIFIED", "DELETED"]
Delta = tuple[DeltaType, str, dict[str, Any] | None]  # (type, uid, object; None if DELETED)
State = Literal["new", "synced", "down", "absent", "stopped"]


class _Gone(Exception):
    """410: the resourceVersion is too old; relist."""


class _Absent(Exception):
    """404 on a list: the resource is not served (CRD not installed)."""


class _Broken(Exception):
    """The watch stream broke after the server answered (or sent an ERROR event)."""

    def __init__(self, why: str, received: int) -> None:
        super().__init__(why)
        self.received = received


class Informer:
    """List + watch of one resource in a daemon thread; see the module docstring."""

    def __init__(
        self,
        resource: Resource,
        lister: Callable[..., Any],  # the client's list function, keyword arguments only
        sink: Callable[[Resource, list[Delta]], None],
        changed: Callable[[Informer], None],  # state changed (up/down/absent/synced)
        note: Callable[[str, str], None],
        *,
        backoff: Backoff,
        watch_timeout: int = 300,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        absent_retry: float = 300.0,
    ) -> None:
        self.resource, self._lister, self._sink, self._changed = resource, lister, sink, changed
        self._note, self.backoff = note, backoff
        self.watch_timeout, self.connect_timeout = watch_timeout, connect_timeout
        self.request_timeout, self.absent_retry = request_timeout, absent_retry
        self.state: State = "new"
        self.error = ""
        self.resource_version = ""  # the last one seen; "" = list before watching
        self.listed = False  # a list has succeeded at least once
        self.tried = False  # the first list has been answered or has failed
        self.relists = 0  # after 410 Gone
        self.reconnects = 0  # watches started again after a broken stream or a failure
        self._store: dict[str, str] = {}  # uid -> resourceVersion
        self._consistent = False  # the next list is a consistent read (after 410)
        self._stop = threading.Event()
        self._active: Any = None  # the watch response being read, so stop() can cut it
        self._thread = threading.Thread(target=self._run, name=f"informer-{resource.name}")
        self._thread.daemon = True

    @property
    def up(self) -> bool:
        """Listed and not failing; an absent optional resource counts as up (nothing to see)."""
        return self.state in ("synced", "absent")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the loop to end and cut an open watch; wait up to `timeout` (None: do not wait).
        A list in flight is not cut: it ends within `request_timeout`."""
        self._stop.set()
        active = self._active
        if active is not None:
            # unblocks the read in the informer thread; already released or closed: not blocked
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                active.shutdown()
        if timeout is not None and self._thread.is_alive():
            self._thread.join(timeout)

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        failed = failures()
        attempt = 0
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    self._list()
                    attempt = 0
                began = time.monotonic()
                if self._watch() or time.monotonic() - began >= 1.0:
                    attempt = 0  # the server ended the stream: start again at once
                    continue
                # ended at once with nothing in it (a proxy that closes watches?): back off
            except _Gone:
                self.relists += 1
                again = self._consistent  # the relist itself got 410: do not spin on it
                self.resource_version, self._consistent = "", True
                log.info("%s: resourceVersion expired (410 Gone); relisting", self.resource.name)
                if not again:
                    continue
            except _Absent:
                self._absent()
                self._stop.wait(self.absent_retry)
                continue
            except _Broken as err:
                attempt = 0 if err.received else attempt
                log.debug("%s: watch broke (%s); reconnecting", self.resource.name, err)
            except failed as err:
                self._set("down", describe(err, self.resource.name))
            except Exception as err:  # isolation boundary: the loop must go on, logged, counted
                log.exception("%s: unexpected error in the watch loop", self.resource.name)
                self._note(f"{self.resource.name}: internal error", repr(err)[:200])
                self._set("down", f"internal error: {err!r}")
            self.reconnects += 1
            self._stop.wait(self.backoff.delay(attempt))
            attempt += 1
        self.state = "stopped"

    def _request(self, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._lister(_preload_content=False, **kwargs)
        except ApiException as err:
            if err.status == 410:
                raise _Gone from err
            if err.status == 404 and self.resource.optional:
                raise _Absent from err
            raise

    def _list(self) -> None:
        rv = {} if self._consistent else {"resource_version": "0"}
        response = self._request(
            **rv, _request_timeout=(self.connect_timeout, self.request_timeout)
        )
        try:
            body = response.data
        finally:
            response.release_conn()
        items, list_rv = self._parse_list(body)
        current: dict[str, str] = {}
        deltas: list[Delta] = []
        for item in items:
            uid, item_rv = self._key(item)
            if uid is None:
                continue
            current[uid] = item_rv
            if uid not in self._store:
                deltas.append(("ADDED", uid, item))
            elif self._store[uid] != item_rv or not item_rv:
                deltas.append(("MODIFIED", uid, item))
        deltas.extend(("DELETED", uid, None) for uid in self._store if uid not in current)
        self._store, self.resource_version, self._consistent = current, list_rv, False
        self._sink(self.resource, deltas)
        self.listed = True
        self._set("synced")

    def _parse_list(self, body: bytes) -> tuple[list[Any], str]:
        doc = json.loads(body)
        if not isinstance(doc, dict) or not str(doc.get("kind", "")).endswith("List"):
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            raise NotAList(f"expected a list of {self.resource.name}, got {kind!r}")
        items = doc.get("items") or []  # an empty list may come as null
        meta = doc.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(items, list) or not isinstance(rv, str) or not rv:
            raise NotAList(f"{self.resource.name}: list without items or resourceVersion")
        return items, rv

    def _key(self, obj: Any) -> tuple[str | None, str]:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        uid = meta.get("uid") if isinstance(meta, dict) else None
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(uid, str) or not uid:
            self._note(f"{self.resource.feeds}: no metadata.uid", repr(obj)[:80])
            return None, ""
        return uid, rv if isinstance(rv, str) else ""

    def _watch(self) -> int:
        """Watch until the server ends the stream; the number of events it carried."""
        from kubernetes.watch.watch import iter_resp_lines
        from urllib3.exceptions import HTTPError

        response = self._request(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout,
            # a silent connection is dead after the server's own timeout plus a margin
            _request_timeout=(self.connect_timeout, self.watch_timeout + 30),
        )
        self._active = response
        if self._stop.is_set():  # stop() came between the answer and the line above
            response.close()
            return 0
        self._set("synced")  # answered: up again if it was down
        received = 0
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return received
                if line.strip():
                    self._event(line, received)
                    received += 1
        except (HTTPError, OSError) as err:
            if not self._stop.is_set():
                raise _Broken(describe(err), received) from err
        finally:
            self._active = None
            response.close()  # a stream left half-read must not go back to the pool
            response.release_conn()
        return received

    def _event(self, line: str, received: int) -> None:
        try:
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object")
        except (ValueError, AttributeError):
            self._note(f"{self.resource.name}: unparsable watch event", line[:80])
            return
        if kind == "ERROR":
            code = obj.get("code") if isinstance(obj, dict) else None
            if code == 410:
                raise _Gone
            message = obj.get("message") if isinstance(obj, dict) else obj
            raise _Broken(f"ERROR event {code}: {message}", received)
        if kind == "BOOKMARK":
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
            if isinstance(rv, str) and rv:
                self.resource_version = rv
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            self._note(f"{self.resource.name}: unknown watch event type", repr(kind)[:40])
            return
        uid, rv = self._key(obj)
        if rv:
            self.resource_version = rv
        if uid is None:
            return
        if kind == "DELETED":
            if self._store.pop(uid, None) is not None:
                self._sink(self.resource, [("DELETED", uid, obj)])
            return
        seen = uid in self._store
        self._store[uid] = rv
        self._sink(self.resource, [("MODIFIED" if seen else "ADDED", uid, obj)])

    def _absent(self) -> None:
        if self._store:  # the CRD went away with its objects
            self._sink(self.resource, [("DELETED", uid, None) for uid in self._store])
            self._store = {}
        self.resource_version, self._consistent = "", False
        if self.state != "absent":
            log.info(
                "%s is not served by this API server (404): skipped; looking again every %gs",
                self.resource.name,
                self.absent_retry,
            )
        self._set("absent")

    def _set(self, state: State, error: str = "") -> None:
        before, self.state, self.error = self.state, state, error
        self.tried = True
        if state == "down" and before != "down":
            log.warning("%s: cannot list or watch: %s; retrying", self.resource.name, error)
        elif before == "down" and state != "down":
            log.info("%s: the API answers again", self.resource.name)
        if state != before:
            self._changed(self)
