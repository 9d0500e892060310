"""The Kubernetes backend: the cluster interface over the official `kubernetes` client.

One informer (informer.py) per resource lists and then watches it, in its own thread:

| resource                                                          | feeds | not served (404) |
|-------------------------------------------------------------------|-------|------------------|
| v1 nodes, pods, resourcequotas, events                            | (each)| an error         |
| batch/v1 jobs                                                     | job   | an error         |
| kubeflow.org/v1 pytorchjobs, tfjobs, mpijobs                      | job   | skipped quietly  |
| kubeflow.org/v2beta1 mpijobs (MPI operator v2)                    | job   | skipped quietly  |
| batch.volcano.sh/v1alpha1 jobs (vcjob)                            | job   | skipped quietly  |
| scheduling.volcano.sh/v1beta1 queues                              | quota | skipped quietly  |
| scheduling.sigs.k8s.io/v1beta1 elasticquotatrees (ACK)            | quota | skipped quietly  |
| scheduling.sigs.k8s.io/v1alpha1 elasticquotas (scheduler-plugins) | quota | skipped quietly  |

A CRD that is not installed is logged once at info and looked for again every `absent_retry`
seconds. Bodies are parsed as JSON dicts (`_preload_content=False`): the client's generated
models would build every field of every pod to read a few, and one field that fails their
validation would fail a whole list. convert.py, jobs.py and podjobs.py turn them into
the model, with the status tables and poolwatch's own markers (label `poolwatch.io/status`, taint
`poolwatch.io/fault`); state.py keeps the objects and derives pools and plain-pod jobs.

Reading never lists: `nodes()`, `pools()`, ... return the informers' state, `watch()` streams
it (ADDED for everything, one SYNCED when every initial list is done, then the changes). Stale
figures are never served as fresh: while an informer feeding a kind cannot list or watch,
reading that kind raises `ClusterUnavailable` and `healthy()` is False, and so for every kind
while the API server's own /readyz fails (etcd down: its watches stay open and silent, see
probe.py); a watch stream keeps
running (it only ever carries fresh changes) and shows the recovery as the differences. Objects
that are odd (no uid, garbage or negative quantities, unknown phases, unsupported job kinds)
are counted by reason in `skipped` and logged once per reason; they never stop the watch.

Where the API is: `api_client` if given; else the kubeconfig at `kubeconfig`; else the pod's
service account when KUBERNETES_SERVICE_HOST is set; else the client's default kubeconfig
($KUBECONFIG, ~/.kube/config). Loaded at the first request; a failure to load is an informer
failure like any other (down, retried with backoff). The ServiceAccount needs list and watch on
every resource above, and for the write side patch on nodes, create on pods/eviction and events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from poolwatch.cluster.backend import Kind, WatchEvent
from poolwatch.cluster.kubernetes.api import (
    CONVERTERS,
    RESOURCES,
    USER_AGENT,
    Backoff,
    Resource,
    import_client,
    list_call,
    load_configuration,
)
from poolwatch.cluster.kubernetes.informer import Informer
from poolwatch.cluster.kubernetes.lease import Leases
from poolwatch.cluster.kubernetes.probe import ReadyProbe
from poolwatch.cluster.kubernetes.read import (
    JOB_LABEL,
    JOB_TYPES_LABEL,
    LABEL_VALUE,
    OWNER_LABEL,
    POOL_LABEL,
    WORKSPACE_LABEL,
    Context,
)
from poolwatch.cluster.kubernetes.state import ClusterState
from poolwatch.cluster.kubernetes.write import Writer
from poolwatch.cluster.model import Event, Lease, Node, Pod, Pool, PoolStatus, Quota, TrainingJob

log = logging.getLogger(__name__)

_FEEDS: dict[Kind, set[str]] = {"pool": {"node"}, "job": {"job", "pod"}}
STAGES = ({"node"}, {"pod", "job", "quota"}, {"event"})


class ClusterUnavailable(RuntimeError):
    """The API cannot be listed or watched for this kind now: no figures rather than stale."""


class KubernetesCluster:
    """`ClusterBackend` over the Kubernetes API; see the module docstring.

    Settings: `pool_label`, the node label(s) that name a node's pool, first present wins;
    `job_label`, the label that makes a plain pod part of a training job; `owner_label`, where a
    job's user is recorded (label or annotation); `resources`, the collections to read (drop
    the CRDs you do not want from `RESOURCES`); `watch_timeout`, the server-side end of each
    watch (`timeoutSeconds`); `connect_timeout`/`request_timeout` for lists and writes;
    `absent_retry`, how often a missing CRD is looked for; `sync_timeout`, how long a read waits
    for a first list; `ready_probe`, how often the API server's /readyz is asked (0: never;
    probe.py says why); `backoff`, the reconnect policy; `clock`, wall time for the write
    side.
    An `api_client` passed in should allow a connection per resource plus a few for writes
    (`Configuration.connection_pool_maxsize`), or urllib3 discards connections with a warning.

    `skipped` counts odd objects and fields by reason; `informers()` tells each resource's state.
    """

    name = "kubernetes"
    emits_pool_events = False  # the controller records them as Kubernetes events

    def __init__(
        self,
        api_client: Any = None,  # kubernetes.client.ApiClient
        *,
        write_api_client: Any = None,  # the writes' own client (default: api_client's)
        kubeconfig: Path | str | None = None,
        pool_label: str | Sequence[str] = POOL_LABEL,  # one label, or several by preference
        job_label: str = JOB_LABEL,
        owner_label: str = OWNER_LABEL,
        resources: Sequence[Resource] = RESOURCES,
        watch_timeout: int = 300,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        absent_retry: float = 300.0,
        sync_timeout: float = 30.0,
        ready_probe: float = 5.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        unknown = [r.name for r in resources if (r.group, r.plural) not in CONVERTERS]
        if unknown:
            raise ValueError(f"resources without a converter: {', '.join(unknown)}")
        labels = (pool_label,) if isinstance(pool_label, str) else tuple(pool_label)
        self.skipped: Counter[str] = Counter()
        self._note_lock = threading.Lock()
        self._ctx = Context(labels, job_label, owner_label, self._note)
        converters = {r.name: CONVERTERS[(r.group, r.plural)] for r in resources}
        self._state = ClusterState(self._ctx, converters)
        self._api_client, self._kubeconfig, self._environ = api_client, kubeconfig, environ
        self._client_lock = threading.Lock()
        self._own_client = api_client is None
        self.sync_timeout, self._clock = sync_timeout, clock
        self._cond = threading.Condition()
        self._started = self._stopped = False
        self._informers = [
            Informer(
                r,
                self._lister(r),
                self._apply,
                self._changed,
                self._note,
                backoff=backoff or Backoff(),
                watch_timeout=watch_timeout,
                connect_timeout=connect_timeout,
                request_timeout=request_timeout,
                absent_retry=absent_retry,
            )
            for r in resources
        ]
        self._write_client = write_api_client
        # read-your-writes: the newest node resourceVersion this process wrote, and the newest
        # one the node informer has applied (await_view waits for the second to reach the first)
        self._written, self._applied = 0, 0
        self._writer = Writer(
            self._write_api, clock, self._state.job_ref, timeout=(connect_timeout, request_timeout)
        )
        self._leases = Leases(self._write_api, (connect_timeout, request_timeout))
        self._probe = ReadyProbe(self._api, self._probe_changed, ready_probe,
                                 (connect_timeout, min(request_timeout, 10.0)))  # fmt: skip
        self._abnormal: set[str] = set()  # pools the controller marked (mark_pool)
        self.requeue_priority_class = ""  # PriorityClass for re-issued jobs (prioritize_job)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the informers (idempotent; reading and watching start them too)."""
        with self._cond:
            if self._started or self._stopped:
                return
            self._started = True
        import_client()  # here, before the threads below import it concurrently
        threading.Thread(target=self._start_in_stages, name="informers-start", daemon=True).start()
        self._probe.start()

    def _start_in_stages(self) -> None:
        """Nodes first, then pods, jobs and quotas, then events, each stage once the previous
        one's first lists are answered (or failed): conversions that look up another kind (a
        plain-pod job's pool is its node's, an event's pool its node's or job's) then find it
        from the start rather than only after the next change."""
        for stage in STAGES:
            informers = [i for i in self._informers if i.resource.feeds in stage]
            for informer in informers:
                informer.start()
            answered = partial(self._answered, informers)
            with self._cond:
                self._cond.wait_for(answered, self.sync_timeout)
                if self._stopped:
                    return

    def _answered(self, informers: list[Informer]) -> bool:
        return self._stopped or all(i.tried for i in informers)

    def stop(self) -> None:
        """Stop the informers for good; open watch() streams end."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._probe.stop()
        for informer in self._informers:
            informer.stop(timeout=None)
        for informer in self._informers:
            informer.stop()
        if self._own_client and self._api_client is not None:
            self._api_client.close()

    def __enter__(self) -> KubernetesCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def informers(self) -> dict[str, str]:
        """Each resource's state: synced, absent, new, or "down: <why>"."""
        return {
            i.resource.name: f"down: {i.error}" if i.state == "down" else i.state
            for i in self._informers
        }

    def healthy(self) -> bool:
        """Every informer lists and watches, and the API server says it can read its store."""
        return (self._started and not self._stopped and not self._probe.error
                and all(i.up for i in self._informers))  # fmt: skip

    @property
    def api_not_ready(self) -> str:
        """Why the API server's /readyz fails ("" while it is ready, or cannot tell)."""
        return self._probe.error

    # -- read side -------------------------------------------------------------------------------
    def pools(self) -> list[Pool]:
        found: list[Pool] = self._read("pool")
        marked = self._abnormal
        return [dataclasses.replace(p, status=PoolStatus.ABNORMAL) if p.name in marked else p
                for p in found]  # fmt: skip

    def nodes(self) -> list[Node]:
        return self._read("node")

    def pods(self) -> list[Pod]:
        return self._read("pod")

    def jobs(self) -> list[TrainingJob]:
        return self._read("job")

    def quotas(self) -> list[Quota]:
        return self._read("quota")

    def events(self) -> list[Event]:
        return self._read("event")

    def watch(self, stop_after: float | None = None) -> Iterator[WatchEvent]:
        """Everything known as ADDED, SYNCED once the initial lists are done, then the changes;
        for `stop_after` seconds, or until stop() (or the consumer closes the generator)."""
        self.start()
        q = self._state.subscribe()
        deadline = None if stop_after is None else time.monotonic() + stop_after
        try:
            while not self._stopped:
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    return
                try:
                    yield q.get(timeout=wait)
                except queue.Empty:
                    continue
        finally:
            self._state.unsubscribe(q)

    def _read(self, kind: Kind) -> list[Any]:
        self.start()
        feeds = _FEEDS.get(kind, {kind})
        mine = [i for i in self._informers if i.resource.feeds in feeds]
        deadline = time.monotonic() + self.sync_timeout
        with self._cond:
            while True:
                new = [i for i in mine if i.state == "new"]  # the first list is still running
                left = deadline - time.monotonic()
                if not new or left <= 0 or self._stopped:
                    break
                self._cond.wait(left)
        if self._probe.error:  # the watches are open but nothing behind them can be read
            raise ClusterUnavailable(f"{kind}s unavailable (the API server is not ready: "
                                     f"{self._probe.error})")  # fmt: skip
        failing = [i for i in mine if not i.up]
        if failing:
            why = "; ".join(f"{i.resource.name}: {i.error or i.state}" for i in failing)
            raise ClusterUnavailable(f"{kind}s unavailable ({why})")
        return self._state.snapshot(kind)

    # -- write side ------------------------------------------------------------------------------
    def label_node(self, node: str, labels: dict[str, str | None]) -> None:
        self._wrote(self._writer.label_node(node, labels))

    def taint_node(self, node: str, key: str, value: str, effect: str) -> None:
        self._wrote(self._writer.taint_node(node, key, value, effect))

    def untaint_node(self, node: str, key: str) -> None:
        self._wrote(self._writer.untaint_node(node, key))

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self._wrote(self._writer.cordon(node, unschedulable))

    def await_view(self, timeout: float) -> str:
        """Wait until what `nodes()` and `pods()` return is current for a decision: the API
        server is ready (probe.py), their informers list and watch, and the node informer
        has applied every node write this process made (its resourceVersion reached the newest
        one a write returned). "" when current; else why not, after `timeout` seconds.

        Why: a watch delivers a write some milliseconds after the write returned; a decision
        read from the cache in between would not see the writes that came just before it (an
        isolation not yet counted by the circuit breaker). resourceVersions are compared as
        the integers etcd makes them (the API documents them as opaque: a write answered with one
        that is not a number cannot be waited for, and only the informers' health counts)."""
        self.start()
        feeds = ("node", "pod")
        mine = [i for i in self._informers if i.resource.feeds in feeds]
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                why = self._stale(mine)
                left = deadline - time.monotonic()
                if not why or left <= 0 or self._stopped:
                    return why
                self._cond.wait(min(left, 0.5))

    def _stale(self, informers: list[Informer]) -> str:
        if self._probe.error:  # the watches are open and silent: nothing behind them is read
            return f"the API server is not ready ({self._probe.error})"
        down = [f"{i.resource.name}: {i.error or i.state}" for i in informers
                if not i.listed or not i.up]  # fmt: skip
        if down:
            return "not listing and watching (" + "; ".join(down) + ")"
        if self._applied < self._written:
            return (f"nodes seen up to resourceVersion {self._applied}, the last node write "
                    f"returned {self._written}")  # fmt: skip
        return ""

    def _wrote(self, version: str) -> None:
        with self._cond:
            self._written = max(self._written, _number(version))

    def evict(self, namespace: str, pod: str) -> None:
        self._writer.evict(namespace, pod)

    def record_event(self, event: Event) -> None:
        self._writer.record_event(event)

    # -- pools and leader election -----------------------------------------------------------
    def set_node_pool(self, node: str, pool: str | None) -> None:
        """Pool membership is the (first) pool label: a merge patch. A node joining a pool also
        takes the pool's workspace and job-type labels; None (a free node) removes all three."""
        labels: dict[str, str | None] = {self._ctx.pool_labels[0]: pool}
        if pool is None:
            labels |= {WORKSPACE_LABEL: None, JOB_TYPES_LABEL: None}
        elif (found := next((p for p in self.pools() if p.name == pool), None)) is not None:
            labels |= _pool_marks(found)
        self._wrote(self._writer.label_node(node, labels))

    def create_pool(self, pool: Pool, nodes: list[str]) -> None:
        """A pool exists through its nodes' labels: each node gets the pool label and the pool's
        workspace and job types (poolwatch keeps no Pool object of its own; the pool API's
        records are its business). A value that is no label value is a ValueError."""
        marks = _pool_marks(pool)
        for key, value in marks.items():
            if value is not None and not LABEL_VALUE.match(value):
                raise ValueError(f"pool {pool.name}: {key} {value!r} is not a label value")
        for node in nodes:
            self._wrote(self._writer.label_node(node, {self._ctx.pool_labels[0]: pool.name,
                                                       **marks}))  # fmt: skip

    def delete_pool(self, pool: str) -> None:
        """Nothing to delete once no node carries the label; forget the controller's mark."""
        self._abnormal.discard(pool)

    def mark_pool(self, pool: str, abnormal: bool) -> None:
        """Held in this process: pools() reports the pool Abnormal while marked."""
        if abnormal:
            self._abnormal.add(pool)
        else:
            self._abnormal.discard(pool)

    def prioritize_job(self, namespace: str, name: str) -> None:
        """See Writer.prioritize_job; the class is `requeue_priority_class` ("" = annotate)."""
        self._writer.prioritize_job(namespace, name, self.requeue_priority_class)

    def recreate_job(
        self, namespace: str, name: str, annotations: dict[str, str],
        save: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        """See Writer.recreate_job; the re-queue PriorityClass is `requeue_priority_class`."""
        self._writer.recreate_job(namespace, name, annotations, self.requeue_priority_class,
                                  save)  # fmt: skip

    def create_job(self, manifest: str) -> None:
        """Create a job from the copy `recreate_job` saved (see Writer.create_job)."""
        try:
            body = json.loads(manifest)
        except ValueError as err:
            raise ValueError(f"saved job manifest is not JSON: {err}") from None
        self._writer.create_job(body)

    def stop_job(self, namespace: str, name: str, reason: str) -> None:
        """See Writer.stop_job."""
        self._writer.stop_job(namespace, name, reason)

    def read_lease(self, namespace: str, name: str) -> Lease | None:
        return self._leases.read(namespace, name)

    def write_lease(self, lease: Lease) -> Lease:
        return self._leases.write(lease)

    # -- internals -------------------------------------------------------------------------------
    def _note(self, reason: str, detail: str) -> None:
        """Count an odd object or field by reason; log the first of each reason."""
        with self._note_lock:
            self.skipped[reason] += 1
            first = self.skipped[reason] == 1
        if first:
            log.warning("%s (%s); counted in skipped[%r], logged once", reason, detail, reason)

    def _apply(self, resource: Resource, deltas: list[Any]) -> None:
        """The informers' sink: into the state; for nodes, note the resourceVersion reached (the
        informer sets it before it hands the deltas over: a list's, or the event's)."""
        self._state.apply(resource, deltas)
        if resource.feeds == "node":
            informer = next(i for i in self._informers if i.resource is resource)
            with self._cond:
                self._applied = max(self._applied, _number(informer.resource_version))
                self._cond.notify_all()

    def _probe_changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _changed(self, informer: Informer) -> None:
        with self._cond:
            self._cond.notify_all()
        if all(i.listed or (i.resource.optional and i.tried) for i in self._informers):
            self._state.mark_synced()

    def _api(self) -> Any:
        """The API client, built at the first request (and again after a failed load)."""
        with self._client_lock:
            if self._api_client is None:
                from kubernetes import client

                cfg = load_configuration(self._kubeconfig, self._environ)
                cfg.retries = False  # one try per request: the informers' backoff retries
                cfg.connection_pool_maxsize = max(
                    cfg.connection_pool_maxsize or 0, len(self._informers) + 4
                )
                self._api_client = client.ApiClient(cfg)
                self._api_client.user_agent = USER_AGENT
            return self._api_client

    def _write_api(self) -> Any:
        return self._write_client if self._write_client is not None else self._api()

    def _lister(self, resource: Resource) -> Callable[..., Any]:
        return partial(list_call, resource, self._api)


def _number(version: str) -> int:
    """A resourceVersion as the integer etcd made it; 0 when it is not one (never "reached")."""
    try:
        return int(version)
    except (TypeError, ValueError):
        return 0


def _pool_marks(pool: Pool) -> dict[str, str | None]:
    """The node labels that keep a pool's workspace and job types (None: the pool has none)."""
    return {WORKSPACE_LABEL: pool.workspace or None,
            JOB_TYPES_LABEL: ".".join(pool.job_types) or None}  # fmt: skip
