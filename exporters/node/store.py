"""The exposition store: the last rendering of each collector, joined on scrape.

Why: rendering costs about 15 µs per series (DESIGN.md), so it is paid once per collection, not per
scrape. A scrape joins the stored bytes and, when asked, gzips them; both results are cached until
the next collection changes something. Each family has one owning collector (the catalog enforces
it), so the joined parts form one valid exposition.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field

from prometheus_client.exposition import generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from poolwatch import catalog


@dataclass
class CollectorState:
    name: str
    interval: float
    timeout: float
    body: bytes = b""
    up: bool = False
    duration: float = 0.0
    errors: int = 0
    last_success: float | None = None  # wall clock, for the timestamp series
    last_success_mono: float = 0.0
    last_tick_mono: float = field(default_factory=time.monotonic)
    last_error: str = ""
    runs: int = 0
    fresh: bool = False  # body comes from the latest run (a partial run counts)
    body_at_mono: float = 0.0


class _Families:
    """Adapter so generate_latest can render a plain list of families."""

    def __init__(self, families: list) -> None:
        self._families = families

    def collect(self) -> list:
        return self._families


def render(families: list, identity: dict[str, str] | None = None) -> bytes:
    """Text exposition (0.0.4) of `families`, byte for byte what prometheus-client writes.

    Why not `generate_latest` itself: it validates and escapes every label name of every sample
    (about 50 µs per sample at ten labels), which made one collection of a node with 24 devices
    and 200 containers cost 80 ms. Our label names come from the catalog and are valid by
    construction, so only values need escaping. Families of other types than gauge and counter
    (none today) go through `generate_latest`; a test renders real expositions both ways and
    requires identical bytes. `identity` labels (node, pool) are added to every sample here, at
    no extra cost, instead of rebuilding every sample before rendering."""
    ident = identity or {}
    if any(f.type not in ("gauge", "counter") for f in families):
        for f in families:
            f.samples = [s._replace(labels={**ident, **s.labels}) for s in f.samples]
        return generate_latest(_Families(families))  # type: ignore[arg-type]
    out: list[str] = []
    for f in families:
        name = f.name + "_total" if f.type == "counter" else f.name
        doc = f.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {f.type}\n")
        _samples(f.samples, ident, out)
    return "".join(out).encode("utf-8")


def _samples(samples: list[Sample], ident: dict[str, str], out: list[str]) -> None:
    """Sample lines through one %-template per (name, label names): the identity values are
    baked in once, sorted as generate_latest sorts them, and each sample fills in its own
    values. A sample whose label names differ, or whose values need escaping, takes `_line`."""
    templates: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
    for sample in samples:
        labels = sample.labels
        shape = (sample.name, tuple(labels))
        made = templates.get(shape)
        if made is None:
            made = templates[shape] = _template(sample.name, labels, ident)
        template, own = made
        values = tuple(labels[k] for k in own)
        if sample.timestamp is not None or _needs_escape("".join(values)):
            out.append(_line(sample, ident))
        else:
            out.append(template % (*values, floatToGoString(sample.value)))


def _template(name: str, labels: dict[str, str], ident: dict[str, str]) -> tuple[str, tuple]:
    merged = {**ident, **labels}
    if not merged:
        return name + " %s\n", ()
    parts = []
    for k in sorted(merged):
        if k in labels:
            parts.append(f'{k}="%s"')
        else:  # an identity value, fixed for the process
            parts.append(f'{k}="{_escape(ident[k]).replace("%", "%%")}"')
    return f"{name}{{{','.join(parts)}}} %s\n", tuple(k for k in sorted(merged) if k in labels)


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\n" in text or '"' in text


def _line(sample: Sample, identity: dict[str, str]) -> str:
    labels = {**identity, **sample.labels} if identity else sample.labels
    if labels:
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        head = f"{sample.name}{{{text}}}"
    else:
        head = sample.name
    ts = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    return f"{head} {floatToGoString(sample.value)}{ts}\n"


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class ExpositionStore:
    """Thread-safe map collector -> state, and the cached scrape body."""

    def __init__(self, identity: dict[str, str], stale_grace: float = 0.0) -> None:
        self.identity = identity
        self.stale_grace = stale_grace
        self._lock = threading.Lock()
        self._states: dict[str, CollectorState] = {}
        self._version = 0
        self._cache_key: tuple[object, ...] | None = None
        self._cache_plain = b""
        self._cache_gzip: bytes | None = None

    def register(self, name: str, interval: float, timeout: float) -> None:
        with self._lock:
            self._states[name] = CollectorState(name, interval, timeout)
            self._version += 1

    def put(self, name: str, body: bytes | None, ok: bool, took: float, error: str = "") -> None:
        """Record a run. `body` None drops the collector's series (after the stale grace).

        A partial run (ok False, body given) serves what it measured: those values are fresh."""
        now_mono, now = time.monotonic(), time.time()
        with self._lock:
            st = self._states[name]
            st.runs += 1
            st.up, st.duration, st.last_tick_mono = ok, took, now_mono
            st.last_error = error
            if ok:
                st.last_success, st.last_success_mono = now, now_mono
            else:
                st.errors += 1
            st.fresh = body is not None
            if body is not None:
                st.body, st.body_at_mono = body, now_mono
            elif self.stale_grace <= 0:
                st.body = b""
            self._version += 1

    def states(self) -> list[CollectorState]:
        with self._lock:
            return [CollectorState(**vars(s)) for s in self._states.values()]

    def body(self, gzipped: bool = False) -> bytes:
        """The whole exposition; cached until a collection or the stale grace changes it."""
        now = time.monotonic()
        with self._lock:
            parts = [
                s.body
                for s in self._states.values()
                if s.body and (s.fresh or now - s.body_at_mono <= self.stale_grace)
            ]
            key = (self._version, len(parts))
            if key != self._cache_key:
                self._cache_key = key
                self._cache_plain = b"".join([*parts, self._health()])
                self._cache_gzip = None
            if not gzipped:
                return self._cache_plain
            if self._cache_gzip is None:
                self._cache_gzip = gzip.compress(self._cache_plain, compresslevel=6)
            return self._cache_gzip

    def _health(self) -> bytes:
        ident = [self.identity.get(k, "") for k in catalog.IDENTITY_LABELS]
        up, dur, last, errs = (
            catalog.new_family(n, catalog.IDENTITY_LABELS)
            for n in (
                "poolwatch_collector_up",
                "poolwatch_collector_duration_seconds",
                "poolwatch_collector_last_success_timestamp_seconds",
                "poolwatch_collector_errors_total",
            )
        )
        for s in self._states.values():
            lv = [*ident, s.name]
            up.add_metric(lv, 1.0 if s.up else 0.0)
            dur.add_metric(lv, s.duration)
            if s.last_success is not None:
                last.add_metric(lv, s.last_success)
            errs.add_metric(lv, float(s.errors))
        return render([up, dur, last, errs])

    def live(self, slack: float = 5.0) -> tuple[bool, list[str]]:
        """Collection is live when every collector finished a run within interval+timeout+slack.

        A hung collector still ticks (the runner gives up on it at its timeout), so liveness
        fails only when the scheduling itself stopped; `up` says whether the data is good."""
        now = time.monotonic()
        late = []
        with self._lock:
            for s in self._states.values():
                if now - s.last_tick_mono > s.interval + s.timeout + slack:
                    late.append(s.name)
        return not late, late
