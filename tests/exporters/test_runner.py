"""The runner and store: deadlines, isolation of failures, stale grace, liveness, caching."""

import gzip
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import Metric

from poolwatch.exporters.node.collector import PartialFailure, families
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.store import ExpositionStore
from tests.helpers import names, parse, value


class Fake:
    """Stands in for a real collector by borrowing the nfs collector's catalog families."""

    def __init__(self, name: str = "nfs", timeout: float = 0.3) -> None:
        self.name, self.interval, self.timeout = name, 1.0, timeout
        self.mode = "ok"
        self.calls = 0
        self.release = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        fams = families(self.name)
        fams["poolwatch_nfs_rpc_operations_total"].add_metric(["/m", "e", "READ"], self.calls)
        if self.mode == "hang":
            self.release.wait()  # like statvfs on a dead NFS server
        if self.mode == "fail":
            raise OSError("device vanished")
        yield from fams.values()
        if self.mode == "partial":
            raise PartialFailure("one of two paths missing")


class Other(Fake):
    def __init__(self) -> None:
        super().__init__("infiniband")

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        fams["poolwatch_infiniband_port_state"].add_metric(["mlx5_0", "1"], 4)
        yield from fams.values()


def make(*collectors, grace: float = 0.0) -> tuple[Runner, ExpositionStore]:
    store = ExpositionStore({"node": "n1", "pool": "p1"}, stale_grace=grace)
    return Runner(collectors, store), store


def test_hung_collector_times_out_and_others_keep_reporting() -> None:
    hung, other = Fake(timeout=0.2), Other()
    runner, store = make(hung, other)
    hung.mode = "hang"
    t0 = time.monotonic()
    assert runner.run_once(hung) is False
    assert time.monotonic() - t0 < 1.0
    assert runner.run_once(other) is True
    s = parse(store.body())
    assert value(s, "poolwatch_collector_up", collector="nfs") == 0
    assert value(s, "poolwatch_collector_up", collector="infiniband") == 1
    assert value(s, "poolwatch_infiniband_port_state", device="mlx5_0") == 4
    assert "poolwatch_nfs_rpc_operations_total" not in names(s)
    assert "timed out" in {st.name: st for st in store.states()}["nfs"].last_error
    # while the hung call has not returned, no second call is started (no pile of threads)
    assert runner.run_once(hung) is False
    assert hung.calls == 1
    hung.release.set()
    hung.mode = "ok"
    time.sleep(0.05)
    assert runner.run_once(hung) is True
    assert value(parse(store.body()), "poolwatch_nfs_rpc_operations_total") == 2
    assert value(parse(store.body()), "poolwatch_collector_errors_total", collector="nfs") == 2


def test_failed_collector_drops_its_series_immediately_by_default() -> None:
    c = Fake()
    runner, store = make(c)
    assert runner.run_once(c)
    assert "poolwatch_nfs_rpc_operations_total" in names(parse(store.body()))
    c.mode = "fail"
    assert not runner.run_once(c)
    s = parse(store.body())
    assert "poolwatch_nfs_rpc_operations_total" not in names(s)
    assert value(s, "poolwatch_collector_up", collector="nfs") == 0
    assert value(s, "poolwatch_collector_last_success_timestamp_seconds", collector="nfs") > 0


def test_stale_grace_keeps_last_values_then_drops_them() -> None:
    c = Fake()
    runner, store = make(c, grace=0.3)
    runner.run_once(c)
    c.mode = "fail"
    runner.run_once(c)
    s = parse(store.body())
    assert value(s, "poolwatch_nfs_rpc_operations_total") == 1  # within grace, up says 0
    assert value(s, "poolwatch_collector_up", collector="nfs") == 0
    time.sleep(0.35)
    assert "poolwatch_nfs_rpc_operations_total" not in names(parse(store.body()))


def test_partial_failure_serves_what_was_measured_and_reports_down() -> None:
    c = Fake()
    c.mode = "partial"
    runner, store = make(c)
    assert runner.run_once(c) is False
    s = parse(store.body())
    assert value(s, "poolwatch_nfs_rpc_operations_total") == 1
    assert value(s, "poolwatch_collector_up", collector="nfs") == 0
    assert value(s, "poolwatch_collector_errors_total", collector="nfs") == 1


def test_body_is_cached_until_a_collection_and_gzip_matches() -> None:
    c = Fake()
    runner, store = make(c)
    runner.run_once(c)
    first = store.body()
    assert store.body() is first  # a scrape joins nothing new when nothing changed
    assert gzip.decompress(store.body(gzipped=True)) == first
    runner.run_once(c)
    assert store.body() != first


def test_gzip_is_made_once_per_collection_by_the_collector_not_by_scrapes(monkeypatch) -> None:
    """Each collector's body is compressed when it is stored; a gzip scrape joins the pieces
    (each collector's, then the health series') into one gzip stream that reads back as exactly
    the plain body."""
    from poolwatch.exporters.node import store as store_mod

    made: list[int] = []
    real = store_mod.deflate_piece

    def counting(data: bytes) -> bytes:
        made.append(len(data))
        return real(data)

    monkeypatch.setattr(store_mod, "deflate_piece", counting)
    nfs, ib = Fake(), Other()
    runner, store = make(nfs, ib)
    runner.run_once(nfs)
    runner.run_once(ib)
    assert len(made) == 2  # one member per collector, made by the runs
    zipped = store.body(gzipped=True)
    assert gzip.decompress(zipped) == store.body()
    assert zipped.count(b"\x1f\x8b\x08") == 1  # one gzip member, not one per collector
    assert len(made) == 3  # the scrape compressed only the small health part
    for _ in range(5):
        assert store.body(gzipped=True) is zipped  # later scrapes compress nothing
    assert len(made) == 3
    ib_body = next(s.body for s in store.states() if s.name == "infiniband")
    runner.run_once(ib)  # the same values again: the member is kept, not remade
    assert next(s.body for s in store.states() if s.name == "infiniband") == ib_body
    assert len(made) == 3
    runner.run_once(nfs)  # a new value: that collector's member only is remade
    assert len(made) == 4
    assert gzip.decompress(store.body(gzipped=True)) == store.body()


def test_a_gzip_scrape_does_not_copy_the_plain_exposition() -> None:
    """Prometheus asks for gzip only: after a collection, its scrape builds the gzip stream from
    the stored pieces and reads the plain parts in place (for the checksum), so it allocates
    little more than the stream itself, not a copy of the plain exposition; a plain scrape still
    gets the whole body."""
    import tracemalloc

    store = ExpositionStore({"node": "n1", "pool": "p1"})
    for name in ("a", "b"):
        store.register(name, 15, 10)
        lines = b"".join(b'x_%s{i="%d"} %d\n' % (name.encode(), i, i * 7) for i in range(20_000))
        store.put(name, b"# TYPE x_%s gauge\n" % name.encode() + lines, ok=True, took=0.01)
    plain_size = sum(len(s.body) for s in store.states())
    assert plain_size > 500_000
    tracemalloc.start()
    try:
        zipped = store.body(gzipped=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(zipped) + 100_000 < plain_size  # the stream itself and a little more
    assert gzip.decompress(zipped) == store.body()
    assert len(store.body()) > plain_size


def test_liveness_follows_the_scheduler() -> None:
    c = Fake(timeout=0.1)
    c.interval = 0.2
    runner, store = make(c)
    runner.start()
    try:
        time.sleep(0.5)
        assert store.live(slack=0.2)[0]
        assert c.calls >= 2
    finally:
        runner.stop()
    time.sleep(0.6)
    ok, late = store.live(slack=0.2)
    assert not ok
    assert late == ["nfs"]


def test_a_new_failure_is_a_warning_and_a_repeat_is_debug(caplog) -> None:
    import logging

    c = Fake()
    c.mode = "partial"
    runner, _ = make(c)
    with caplog.at_level(logging.DEBUG, logger="poolwatch.exporters.node.runner"):
        runner.run_once(c)
        runner.run_once(c)
    levels = [r.levelno for r in caplog.records if "one of two paths missing" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]


class Unrenderable(Fake):
    """Yields a family the renderer cannot write (a label value that is not text) while `bad`."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = True

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        fams = families(self.name)
        fam = fams["poolwatch_nfs_rpc_operations_total"]
        fam.add_metric(["/m", "e", "READ"], self.calls)
        if self.bad:
            fam.samples[0] = fam.samples[0]._replace(labels={**fam.samples[0].labels, "op": None})
        yield from fams.values()


def test_an_exception_while_rendering_is_a_failed_run_and_the_schedule_goes_on() -> None:
    c = Unrenderable()
    c.interval = 0.1
    runner, store = make(c)
    runner.start()
    try:
        deadline = time.monotonic() + 3
        while c.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.calls >= 3, "the collector's schedule stopped after a render error"
        s = parse(store.body())
        assert value(s, "poolwatch_collector_up", collector="nfs") == 0
        assert value(s, "poolwatch_collector_errors_total", collector="nfs") >= 2
        assert "poolwatch_nfs_rpc_operations_total" not in names(s)
        assert store.live(slack=0.5)[0]
        c.bad = False  # the cause goes away: the next run succeeds
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if value(parse(store.body()), "poolwatch_collector_up", collector="nfs") == 1:
                break
            time.sleep(0.02)
        assert value(parse(store.body()), "poolwatch_collector_up", collector="nfs") == 1
    finally:
        runner.stop()


def test_an_exception_outside_the_run_never_stops_the_schedule(monkeypatch) -> None:
    """Even a failure in the runner's own bookkeeping (here: storing the result) is one failed
    run: the loop logs it and runs the collector again at the next interval."""
    c = Fake()
    c.interval = 0.1
    runner, store = make(c)
    real_put, failures = store.put, [2]

    def flaky_put(*args, **kwargs) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise RuntimeError("disk full")
        real_put(*args, **kwargs)

    monkeypatch.setattr(store, "put", flaky_put)
    runner.start()
    try:
        deadline = time.monotonic() + 3
        while c.calls < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.calls >= 4
        assert value(parse(store.body()), "poolwatch_collector_up", collector="nfs") == 1
    finally:
        runner.stop()


def test_surrogates_in_label_values_render_as_valid_utf8() -> None:
    """A name decoded from bytes that are not UTF-8 (os.fsdecode keeps them as lone surrogates)
    must still render: replaced, never raised on."""
    from poolwatch.core.exposition import render

    fams = families("nfs")
    fams["poolwatch_nfs_rpc_operations_total"].add_metric(["/m\udcff", "e", 'R"\\'], 1)
    body = render(list(fams.values()), {"node": "n\udcfe"})
    s = parse(body.decode("utf-8"))
    assert value(s, "poolwatch_nfs_rpc_operations_total", operation='R"\\', mountpoint="/m?") == 1


def test_schedules_are_spread_over_the_interval_after_a_first_run_together() -> None:
    """Eight collections at the same instant made a scrape share the GIL with eight threads:
    after the first run (at once, so the first scrape has everything) the schedules are phased."""
    times: dict[str, list[float]] = {"nfs": [], "infiniband": []}
    a, b = Fake(), Other()
    for c in (a, b):
        c.interval = 0.6
        inner = c.collect

        def timed(c=c, inner=inner):
            times[c.name].append(time.monotonic())
            return inner()

        c.collect = timed  # type: ignore[method-assign]
    runner, _ = make(a, b)
    runner.start()
    try:
        time.sleep(1.0)
    finally:
        runner.stop()
    assert abs(times["nfs"][0] - times["infiniband"][0]) < 0.15  # first runs together
    assert len(times["nfs"]) == 2  # at 0 and 0.6 s: phase 0, no second run at once
    assert 0.2 < times["infiniband"][1] - times["infiniband"][0] < 0.45  # phase 0.3 s
    assert 0.5 < times["nfs"][1] - times["nfs"][0] < 0.75
