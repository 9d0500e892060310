"""Our fast renderer writes exactly what prometheus-client's generate_latest writes."""

import math

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from test_container_views import OWNER
from test_golden import CASES
from test_nvml import a100s, h100

from poolwatch.exporters.node.accelerators.nvml import NvmlBackend
from poolwatch.exporters.node.attribution.owners import DeviceOwners
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.compat import CompatExpander
from poolwatch.exporters.node.settings import AcceleratorSettings
from poolwatch.exporters.node.store import _Families, render


def _both(families: list) -> tuple[bytes, bytes]:
    return render(families), generate_latest(_Families(families))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_collectors_on_captures_render_identically(name: str) -> None:
    families = list(CASES[name]().collect())
    families += CompatExpander(["modelarts"]).expand(families, 1.0)
    ours, theirs = _both(families)
    assert ours == theirs
    assert ours.count(b"\n") > 20


def test_accelerator_exposition_renders_identically() -> None:
    from nvml_fake import FakeNvml

    gpus = [*a100s(), h100()]
    owners = DeviceOwners()
    owners.replace({gpus[0].q["uuid"]: (OWNER,)}, "pod-resources")
    coll = AcceleratorCollector(
        AcceleratorSettings(), [(NvmlBackend(FakeNvml(gpus)), True)], owners
    )
    families = list(coll.collect())
    ours, theirs = _both(families)
    assert ours == theirs
    assert b"poolwatch_container_accelerator_utilization_ratio{" in ours


def test_escapes_special_values_and_empty_label_sets() -> None:
    g = GaugeMetricFamily("x_ratio", 'help with \\ and\nnewline "q"', labels=["a", "b"])
    g.add_metric(['back\\slash "quoted"', "new\nline"], 0.5)
    g.add_metric(["é ünïcode", ""], math.nan)
    g.add_metric(["inf", "x"], math.inf)
    g.add_metric(["-inf", "x"], -math.inf)
    c = CounterMetricFamily("y", "a counter", labels=[])
    c.add_metric([], 3)
    e = GaugeMetricFamily("z", "no samples")
    ours, theirs = _both([g, c, e])
    assert ours == theirs


def test_identity_labels_render_as_if_every_sample_carried_them() -> None:
    g = GaugeMetricFamily("x_ratio", "h", labels=["device", "zone"])
    g.add_metric(["sda", "a"], 1)
    g.add_metric(['we"ird', "b\\c"], 2)  # takes the escaping path
    ident = {"node": 'n"1', "pool": "p%s"}  # a quote to escape, a % that must stay literal
    ours = render([g], ident)
    relabeled = GaugeMetricFamily("x_ratio", "h", labels=["device", "zone"])
    relabeled.samples = [s._replace(labels={**ident, **s.labels}) for s in g.samples]
    assert ours == generate_latest(_Families([relabeled]))  # type: ignore[arg-type]
    assert b'node="n\\"1"' in ours
    assert b'pool="p%s"' in ours


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(st.floats(), st.integers(-(10**20), 10**20), st.sampled_from([0.0, -0.0, 1e6])))
def test_fast_float_formatting_is_prometheus_clients(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    from poolwatch.core.exposition import _go_float

    assert _go_float(value) == floatToGoString(value)
