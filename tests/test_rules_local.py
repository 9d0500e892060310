"""The local source: exposition parsing, scraping into the history (target labels, staleness,
failed targets, retention), refusals at load, and the engine running on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from poolwatch.rules.engine import Engine
from poolwatch.rules.local import LocalSource, Target, check_local, parse_exposition
from poolwatch.rules.model import Group
from poolwatch.rules.promql import Query, Unsupported
from poolwatch.rules.sources import SourceError
from poolwatch.rules.state import StateStore

T0 = 1_700_000_000.0
URL = "http://10.0.0.1:9476/metrics"


class Pages:
    def __init__(self) -> None:
        self.text: str | None = ""

    def __call__(self, url: str, timeout: float) -> str:
        if self.text is None:
            raise OSError("connection refused")
        return self.text


def source(pages: Pages, exprs: list[str], history: float = 3600.0) -> LocalSource:
    src = LocalSource([Target(URL, "node")], 15.0, history, fetch=pages)
    src.prepare(exprs)
    return src


def test_parse_exposition_labels_escapes_and_skips_unwanted() -> None:
    text = (
        "# HELP a x\n# TYPE a gauge\n"
        'a{node="n1",path="C:\\\\x",msg="say \\"hi\\"\\n"} 1.5\n'
        "b 2\n"
        'a{node="n,2" , d="{}"} +Inf 1700000000000\n'
        "c NaN\n"
    )
    got = list(parse_exposition(text, {"a", "c"}.__contains__))
    assert [(n, ls, v) for n, _, ls, v in got[:2]] == [
        ("a", {"node": "n1", "path": "C:\\x", "msg": 'say "hi"\n'}, 1.5),
        ("a", {"node": "n,2", "d": "{}"}, float("inf")),
    ]
    assert got[2][0] == "c"
    assert got[2][3] != got[2][3]
    with pytest.raises(ValueError, match="line 1: value 'x' is not a number"):
        list(parse_exposition("a x\n", lambda n: True))
    with pytest.raises(ValueError, match="line 2: no value"):
        list(parse_exposition("a 1\nb\n", lambda n: True))


def test_target_parse() -> None:
    assert Target.parse("node=http://h:1/metrics") == Target("http://h:1/metrics", "node")
    assert Target.parse("http://h:1/metrics?a=b").job == "poolwatch"
    assert Target.parse("http://h:1/metrics").instance == "h:1"
    with pytest.raises(ValueError, match="--target"):
        Target.parse("h:1/metrics")


def test_scrape_adds_target_labels_honours_exposed_ones_and_marks_stale() -> None:
    pages = Pages()
    src = source(pages, ["g > 0"])
    pages.text = 'g{node="n1"} 1\ng{node="n2",job="own"} 2\nother 5\n'
    src.scrape_once(T0)
    got = sorted(src.query("g > 0", T0), key=lambda s: s[0]["node"])
    assert got == [
        ({"__name__": "g", "job": "node", "instance": "10.0.0.1:9476", "node": "n1"}, 1.0),
        ({"__name__": "g", "job": "own", "instance": "10.0.0.1:9476", "node": "n2"}, 2.0),
    ]
    assert src.store.series_of("other")[1] == ()  # no rule reads it: not kept
    pages.text = 'g{node="n1"} 3\n'  # n2 vanished: stale at once, not 5 minutes later
    src.scrape_once(T0 + 15)
    assert [v for _, v in src.query("g > 0", T0 + 16)] == [3.0]
    assert len(src.query("g > 0", T0 + 5)) == 2  # the past is still there
    pages.text = None  # target down: everything stale
    src.scrape_once(T0 + 30)
    assert src.query("g > 0", T0 + 31) == []
    assert "10.0.0.1" in "".join(src.last_errors)
    pages.text = 'g{node="n1"} 4\n'
    src.scrape_once(T0 + 45)
    assert [v for _, v in src.query("g > 0", T0 + 45)] == [4.0]
    assert src.query("g > 0", T0 + 45 + 301) == []  # the 5-minute lookback


def test_rate_over_scrapes_and_retention_trims_old_samples() -> None:
    pages = Pages()
    src = source(pages, ["rate(c_total[1m])", "g"])
    for i in range(200):
        pages.text = f'c_total{{node="n1"}} {i * 30}\ng 1\n'
        src.scrape_once(T0 + 15 * i)
    [(labels, value)] = src.query("rate(c_total[1m])", T0 + 15 * 199)
    assert value == pytest.approx(2.0)
    assert "__name__" not in labels
    [c] = src.store.series_of("c_total")[1]
    # 1m range + 30 s slack + the trim's minute, trimmed every 16 ingests
    assert len(c.ts) <= (60 + 30 + 60) // 15 + 1 + 16
    [g] = src.store.series_of("g")[1]
    assert len(g.ts) <= (300 + 30 + 60) // 15 + 1 + 16


def test_refusals_name_the_reason() -> None:
    src = LocalSource([], history=3600)
    reasons = src.prepare(["count_values('v', g)", "increase(c_total[2h])", "g > 1",
                           "x{a=~'('}"])  # fmt: skip
    assert reasons["count_values('v', g)"] == "the aggregation count_values"
    assert "reads 2h of history" in reasons["increase(c_total[2h])"]
    assert reasons["g > 1"] is None
    assert reasons["x{a=~'('}"] is not None
    with pytest.raises(SourceError, match="not evaluated locally: the aggregation count_values"):
        src.query("count_values('v', g)", T0)
    for expr, why in [
        ("g / on(a) group_left fill(0) c", r"fill\(\), fill_left\(\) and fill_right\(\)"),
        ("g / fill(0) c", r"fill\(\)"),  # one-to-one too: never silently ignored
        ("g + on(a) fill_right(1) c", r"fill\(\)"),
        ("rate(c_total[5m] @ 100)", "@ modifier"),
        ("max_over_time(g[5m:1m] @ end())", "@ modifier"),
        ("limitk(1, g)", "limitk"),
        ("round(g, 0.5)", "to nearest"),
        ("histogram_quantile(0.9, x)", "histogram_quantile"),
        ("label_replace(g, 'a-b', 'b', 'c', 'd')", "invalid destination label"),
        ("g @ 100", "@ modifier"),
        ("g[5m]", "range vector result"),
    ]:
        with pytest.raises(Unsupported, match=why):
            Query.parse(expr)


def test_shipped_rules_all_run_locally_and_short_history_refuses_the_24h_one() -> None:
    from poolwatch.rules.engine import compile_groups
    from poolwatch.rules.loader import default_files, load

    exprs = {c.rule.name: c.query for c in compile_groups(load(default_files()))}
    assert all(r is None for r in check_local(exprs).values())
    short = {n: r for n, r in check_local(exprs, history=3600).items() if r is not None}
    assert short
    assert all("history" in r for r in short.values())


def test_engine_refuses_rules_the_local_source_cannot_run(tmp_path: Path) -> None:
    base = {"op": ">", "threshold": 0, "periods": 1, "severity": "warning",
            "annotations": {"summary": "s", "description": "d", "runbook": "r"}}  # fmt: skip
    g = Group.model_validate({"group": "g", "interval": "15s", "rules": [
        base | {"name": "PoolwatchOk", "expr": "poolwatch_collector_up"},
        base | {"name": "PoolwatchTop", "expr": "count_values('v', poolwatch_collector_up)"},
    ]})  # fmt: skip
    pages = Pages()
    pages.text = 'poolwatch_collector_up{collector="nfs",node="n1"} 1\n'
    src = LocalSource([Target(URL, "node")], 15.0, 3600.0, fetch=pages)
    e = Engine([g], src, StateStore(tmp_path / "s.db"), clock=lambda: T0)
    assert [c.rule.name for c in e.rules] == ["PoolwatchOk"]
    assert e.refused == {"PoolwatchTop": "the aggregation count_values"}
    src.scrape_once(T0)
    [alert] = e.evaluate(T0)
    assert alert.state == "firing"
    assert alert.labels["job"] == "node"
    assert alert.labels["instance"] == "10.0.0.1:9476"
    assert e.failures == {}


def test_annotation_templates_render_as_prometheus_does() -> None:
    from poolwatch.rules.templates import expand, go_float

    assert [go_float(v) for v in (3.0, 0.5, 1e6, 123456.0, 1e-05, -2.5, float("inf"))] == [
        "3", "0.5", "1e+06", "123456", "1e-05", "-2.5", "+Inf",
    ]  # fmt: skip
    labels = {"node": "n1"}
    text = "{{ $labels.node }} {{ $labels.gone }} {{$value}} {{ $value | humanizePercentage }}"
    assert expand(text, labels, 0.912345) == "n1 <no value> 0.912345 91.23%"
    assert expand("{{ $value | humanize }}/{{ $value | humanize1024 }}", {}, 1.5e9) == (
        "1.5G/1.397Gi"
    )
    assert expand("{{ $value | title }}", {}, 1.0) == "{{ $value | title }}"  # left as written


def test_targets_are_scraped_concurrently_and_garbage_marks_only_its_target_down() -> None:
    import threading
    import time

    slow = threading.Event()

    def fetch(url: str, timeout: float) -> str:
        if "slow" in url:
            slow.wait(2)  # a target that hangs until its timeout
            raise OSError("timed out")
        if "bad" in url:
            return 'g{node="n2"} garbage\n'
        return 'g{node="n1"} 1\n'

    targets = [Target(f"http://{name}:1/metrics", name) for name in ("slow", "bad", "good")]
    src = LocalSource(targets, 15.0, 3600.0, fetch=fetch)
    src.prepare(["g"])
    started = time.monotonic()
    threading.Timer(0.5, slow.set).start()
    src.scrape_once(T0)
    assert time.monotonic() - started < 1.9  # not one after the other
    assert [ls["job"] for ls, _ in src.query("g", T0)] == ["good"]
    assert set(src.last_errors) == {"http://slow:1/metrics", "http://bad:1/metrics"}
    assert "is not a number" in src.last_errors["http://bad:1/metrics"]


def test_the_engines_process_freezes_the_gc_only_when_new_series_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages = Pages()
    pages.text = 'poolwatch_collector_up{collector="nfs"} 1\n'
    src = LocalSource([Target(URL, "node")], 15.0, 3600, fetch=pages, freeze_gc=True)
    src.prepare(["poolwatch_collector_up"])
    frozen: list[int] = []
    monkeypatch.setattr(LocalSource, "_freeze", staticmethod(lambda: frozen.append(1)))
    src.scrape_once(T0)
    src.scrape_once(T0 + 15)  # the same series: nothing new to freeze
    assert len(frozen) == 1
    pages.text += 'poolwatch_collector_up{collector="gpu"} 1\n'
    src.scrape_once(T0 + 30)
    assert len(frozen) == 2
    plain = LocalSource([Target(URL, "node")], 15.0, 3600, fetch=pages)  # an embedding's
    plain.prepare(["poolwatch_collector_up"])
    plain.scrape_once(T0)
    assert len(frozen) == 2
