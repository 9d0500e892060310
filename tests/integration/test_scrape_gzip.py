"""A real Prometheus scrapes the node exporter's gzip body and stores every series of it.

The body a gzip scrape gets is one gzip stream joined from pieces deflated once per collection,
one per collector plus one for the health series. Both Prometheus versions (Debian's 2.42, the
pinned 3.x) must read it whole, with its checksum: a piece that ended the stream early would
leave only the first collector's series stored. The scrape benchmark claims to ask as
Prometheus 3 does; this test also records what the pinned Prometheus really sends and holds the
benchmark to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolwatch.core.exposition import render
from poolwatch.core.web.config import WebConfig
from poolwatch.exporters.node.collector import families
from poolwatch.exporters.node.server import serve
from poolwatch.exporters.node.store import ExpositionStore
from tests.helpers import free_port, parse
from tests.helpers.prom_versions import Prometheus

from .conftest import ROOT, process, prom_query

pytestmark = pytest.mark.integration


def _store() -> ExpositionStore:
    """Three collectors with a few hundred series each, so the body has several sizeable pieces."""
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    fams = families("nfs")
    ops = fams["poolwatch_nfs_rpc_operations_total"]
    for m in range(20):
        for op in ("READ", "WRITE", "GETATTR", "LOOKUP", "ACCESS"):
            ops.add_metric([f"/mnt/ds{m}", f"10.0.0.{m}:/export", op], m * 1000 + len(op))
    ib = families("infiniband")
    state = ib["poolwatch_infiniband_port_state"]
    for h in range(16):
        for p in (1, 2):
            state.add_metric([f"mlx5_{h}", str(p)], 4)
    cache = families("cache_dir")
    usage = cache["poolwatch_cache_dir_usage_bytes"]
    for d in range(150):
        usage.add_metric([f"job-{d}"], d * 4096.0)
    for name, fam in (("nfs", fams), ("infiniband", ib), ("cache_dir", cache)):
        store.register(name, 15, 10)
        store.put(name, render(list(fam.values()), store.identity), ok=True, took=0.01)
    return store


@pytest.fixture
def recording_exporter() -> Iterator[tuple[int, list[dict[str, str]], ExpositionStore]]:
    """The node exporter's real HTTP server; each request's headers, and the Content-Encoding
    of the answer, are recorded (a subclass of the served handler, nothing else changed)."""
    store = _store()
    seen: list[dict[str, str]] = []
    httpd = serve(store, ("127.0.0.1", 0), WebConfig(), lambda: (True, "ok\n"))
    base = httpd.RequestHandlerClass

    class Recording(base):  # type: ignore[misc, valid-type]
        def send_body(self, code, body, ctype, extra=None) -> None:
            if self.path.startswith("/metrics"):
                got = dict(self.headers.items())
                got["answer-encoding"] = (extra or {}).get("Content-Encoding", "identity")
                seen.append(got)
            super().send_body(code, body, ctype, extra)

    httpd.RequestHandlerClass = Recording
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1], seen, store
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_prometheus_stores_every_series_of_the_gzip_body(
    recording_exporter: tuple[int, list[dict[str, str]], ExpositionStore],
    tmp_path: Path,
    prom: Prometheus,
) -> None:
    port, seen, store = recording_exporter
    assert len([s for s in store.states() if s.deflated]) == 3  # three pieces, then health
    expected = parse(store.body())
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: pw\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    cmd = [
        prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{web}"
    stored: list[dict] = []
    with process(cmd, tmp_path / "prometheus.log", f"{base}/-/ready"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            up = prom_query(base, 'up{job="pw"}')
            if up and up[0]["value"][1] == "1":
                stored = prom_query(base, '{job="pw", __name__!~"up|scrape_.*"}')
                if stored:
                    break
            time.sleep(0.5)
        log = (tmp_path / "prometheus.log").read_text()
    assert stored, log
    assert seen, "Prometheus never reached the exporter"
    # Prometheus asked for gzip and got it
    assert all(h["answer-encoding"] == "gzip" for h in seen), seen
    # every series of every member, the last (health) one included, with its value
    got = {}
    for r in stored:
        labels = {k: v for k, v in r["metric"].items() if k not in ("job", "instance")}
        got[labels.pop("__name__"), frozenset(labels.items())] = float(r["value"][1])
    want = {(n, frozenset(ls)): v for n, ls, v in _samples(store.body())}
    assert len(got) == len(expected) == len(want)
    assert got == want


def _samples(body: bytes) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            yield s.name, tuple(s.labels.items()), s.value


def test_the_benchmark_asks_as_the_pinned_prometheus_does(
    recording_exporter: tuple[int, list[dict[str, str]], ExpositionStore], tmp_path: Path
) -> None:
    """bench/node_scrape.py sends PROMETHEUS_HEADERS: what Prometheus 3 sends, recorded here."""
    from tests.helpers.prom_versions import PROMETHEUS

    prom3 = next(p for p in PROMETHEUS if p.pinned)
    port, seen, store = recording_exporter
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n"
        f"  - job_name: pw\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    cmd = [
        prom3.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn",
    ]  # fmt: skip
    with process(cmd, tmp_path / "prometheus.log", f"http://127.0.0.1:{web}/-/ready"):
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.2)
    assert seen, (tmp_path / "prometheus.log").read_text()
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import node_scrape
    finally:
        sys.path.remove(str(ROOT / "bench"))
    sent = seen[0]
    bench = node_scrape.PROMETHEUS_HEADERS
    major_minor = ".".join(str(v) for v in prom3.version)
    assert sent["User-Agent"].startswith(f"Prometheus/{major_minor}.")
    assert bench["User-Agent"].startswith(f"Prometheus/{major_minor}.")
    for header in ("Accept", "Accept-Encoding"):
        assert bench[header] == sent[header], header
    assert "X-Prometheus-Scrape-Timeout-Seconds" in sent
    assert set(bench) == {k for k in sent if k not in ("Host", "answer-encoding")}
    # the Go scraper the benchmark times its scrapes with sends the same, and reads the whole
    # gzip body (it counts the decompressed bytes)
    scraper = node_scrape.build_scraper(tmp_path)
    assert scraper is not None, "go is not on PATH"
    seen.clear()
    out = subprocess.run([str(scraper), f"-url=http://127.0.0.1:{port}/metrics", "-n=2", "-c=1"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    doc = json.loads(out.stdout)
    assert doc["errors"] == 0
    assert len(doc["ms"]) == 2
    assert doc["body_bytes"] == len(store.body()) > doc["wire_bytes"] > 0
    go = seen[0]
    assert go["answer-encoding"] == "gzip"
    for header in ("Accept", "Accept-Encoding", "User-Agent"):
        assert go[header] == bench[header], header
    assert set(go) == set(sent)
