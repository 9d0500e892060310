"""Shared test helpers: fixture paths, parsing an exposition, running a collector once."""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from poolwatch.exporters.node.collector import Collector
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.store import ExpositionStore

FIXTURES = Path(__file__).parents[1] / "fixtures"
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str | bytes) -> Series:
    """Exposition -> {(sample name, sorted labels): value}."""
    if isinstance(text, bytes):
        text = text.decode()
    out: Series = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`; fails if none or several."""
    hits = [v for (n, ls), v in series.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} matching samples"
    return hits[0]


def names(series: Series) -> set[str]:
    return {n for n, _ in series}


def run_collector(
    collector: Collector, compat: tuple[str, ...] = (), identity: dict[str, str] | None = None
) -> tuple[bool, Series, ExpositionStore]:
    """One run through the real runner (deadline, rendering, health), as the exporter does."""
    store = ExpositionStore(identity or {"node": "n1", "pool": "p1"})
    runner = Runner([collector], store, compat)
    ok = runner.run_once(collector)
    return ok, parse(store.body()), store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """Whether a server could listen on `port` now. With SO_REUSEADDR, as every server here binds
    (http.server, asyncio, Go): a port some finished or outgoing connection still holds is free
    to a server, and without the option most of a busy machine's ports look taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def free_block(count: int = 10) -> int:
    """The first of `count` consecutive free ports (the demo takes N to N+9), chosen below the
    kernel's range for outgoing connections so that no client grabs one before a server does."""
    import random

    import pytest

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()  # noqa: S311 - a port, not a secret
    for _ in range(200):
        base = rng.randrange(20000, max(20001, low - count))
        if all(_port_free(base + i) for i in range(count)):
            return base
    pytest.fail(f"no {count} free consecutive ports")


def promtool_findings(body: bytes, promtool: str = "promtool") -> set[str]:
    """`promtool check metrics` findings, one per line; empty for a clean exposition. Tests pass
    the `prom` fixture's promtool, so the lint runs on each Prometheus version."""
    import subprocess

    out = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    findings = {ln.strip() for ln in (out.stdout + out.stderr).decode().splitlines() if ln.strip()}
    assert out.returncode == 0 or findings, "promtool failed without saying why"
    return findings


def not_about_seed_names(findings: set[str]) -> set[str]:
    """Findings that are not about a seed alias name (the seeds fix those names, e.g.
    `ma_node_memory_total_megabytes`, so promtool's naming lint flags them in compat mode)."""
    from poolwatch.core.catalog import all_alias_names

    seeds = set(all_alias_names())
    return {f for f in findings if f.split(" ", 1)[0] not in seeds}


#: Prometheus' stale marker (value.StaleNaN, bits 0x7ff0000000000002), distinct from a NaN value
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_NUM = r"[+-]?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|Inf|NaN)"
_TOKEN = re.compile(rf"(_|{_NUM})(?:([+-]\d+(?:\.\d*)?(?:e[+-]?\d+)?))?(?:x(\d+))?")


def expand_series(text: str) -> list[float | None]:
    """promtool's series notation ('a+bxn': n+1 values added up step by step, '_', '_xn',
    'stale'); None is a missing sample, STALE_NAN Prometheus' stale marker (any other NaN,
    written `NaN`, is a value)."""
    out: list[float | None] = []
    for tok in str(text).split():
        if tok == "stale":
            out.append(STALE_NAN)
            continue
        m = _TOKEN.fullmatch(tok)
        assert m, f"cannot read {tok!r}"
        start, inc, times = m.groups()
        if start == "_":
            out += [None] * int(times or 1)
            continue
        v, step = float(start), float(inc or 0)
        for _ in range(int(times or 0) + 1):
            out.append(v)
            v += step
    return out


_PINNED_BIN: Path | None = None


def pinned_bin_dir() -> Path:
    """The directory holding the pinned tools built from their Go modules (kube-apiserver, etcd,
    kube-state-metrics, helm, prometheus, promtool, alertmanager, amtool) by scripts/tools.sh.

    Builds what is missing (minutes, once per machine). Skips the calling test only when Go itself
    is missing; under CI (CI set) that is a failure instead, so CI never silently skips them."""
    global _PINNED_BIN
    if _PINNED_BIN is not None:
        return _PINNED_BIN
    import os
    import shutil
    import subprocess

    import pytest

    if shutil.which("go") is None:
        msg = "Go is not installed, so the pinned tools (scripts/tools.sh) cannot be built"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    script = Path(__file__).parents[2] / "scripts" / "tools.sh"
    out = subprocess.run(
        ["bash", str(script), "--print-bin-dir"], capture_output=True, text=True, timeout=5400
    )
    if out.returncode != 0:
        pytest.fail(f"scripts/tools.sh failed:\n{out.stderr[-4000:]}")
    _PINNED_BIN = Path(out.stdout.strip().splitlines()[-1])
    return _PINNED_BIN


def pinned_tool(name: str) -> str:
    """Absolute path of one pinned tool by its usual name (see pinned_bin_dir)."""
    path = pinned_bin_dir() / name
    assert path.exists(), f"scripts/tools.sh did not provide {name} in {path.parent}"
    return str(path)


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (openssl), valid one day: (cert file, key file)."""
    import subprocess

    crt, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def until(check: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (which is returned), against a deadline:
    what a test waits on when a real server or a watch gets there in its own time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {check}")
