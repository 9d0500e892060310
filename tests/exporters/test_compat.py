"""Seed aliases: scaling, label matching, rates across collections, counter resets."""

import pytest
from prometheus_client.core import Sample

from poolwatch.exporters.node.collector import families
from poolwatch.exporters.node.compat import CompatExpander


def _disk(read_bytes: float):
    fams = families("host")
    fam = fams["poolwatch_node_disk_read_bytes_total"]
    fam.add_metric(["vda"], read_bytes)
    fam.samples = [
        Sample(s.name, {"node": "n", "pool": "", **s.labels}, s.value) for s in fam.samples
    ]
    return [fam]


def _by_name(families_):
    return {f.name: f for f in families_}


def test_rate_alias_needs_two_collections_and_skips_resets() -> None:
    x = CompatExpander(["modelarts"])
    first = _by_name(x.expand(_disk(1024 * 100), at=1000.0))
    assert first["ma_node_disk_read_rate_kilobytes_seconds"].samples == []
    assert first["ma_node_disk_read_bytes"].samples[0].value == 1024 * 100
    second = _by_name(x.expand(_disk(1024 * 400), at=1010.0))
    rate = second["ma_node_disk_read_rate_kilobytes_seconds"].samples[0]
    assert rate.value == pytest.approx(30.0)  # 300 KiB in 10 s
    assert rate.labels["device"] == "vda"
    reset = _by_name(x.expand(_disk(10), at=1020.0))
    assert reset["ma_node_disk_read_rate_kilobytes_seconds"].samples == []


def test_a_series_that_vanished_is_forgotten() -> None:
    """A disk unplugged and plugged back has no rate on its first collection back (its old
    point is gone, not compared across the gap), and the state holds nothing for it meanwhile."""
    x = CompatExpander(["modelarts"])
    x.expand(_disk(100), at=1000.0)
    x.expand([], at=1010.0)  # the disk is gone
    assert not any(x._prev.values())  # bounded: nothing kept for a series no longer there
    back = _by_name(x.expand(_disk(10**6), at=1020.0))
    assert back["ma_node_disk_read_rate_kilobytes_seconds"].samples == []
    again = _by_name(x.expand(_disk(10**6 + 1024 * 10), at=1030.0))
    assert again["ma_node_disk_read_rate_kilobytes_seconds"].samples[0].value == pytest.approx(1)


def test_no_compat_no_aliases() -> None:
    assert CompatExpander([]).expand(_disk(1), at=1.0) == []


def test_match_selects_by_purpose() -> None:
    fams = families("filesystem")
    fam = fams["poolwatch_filesystem_used_ratio"]
    fam.add_metric(["/var/lib/kubelet", "kubelet", "/", "ext4"], 0.5)
    fam.add_metric(["/cache", "cache", "/cache", "ext4"], 0.75)  # not the Kubernetes space
    fam.add_metric(["/var/lib/docker", "container", "/", "ext4"], 0.25)
    out = _by_name(CompatExpander(["modelarts"]).expand([fam], at=1.0))
    assert [s.value for s in out["ma_node_cache_space_used_percent"].samples] == [50.0]
    assert [s.value for s in out["ma_node_container_space_used_percent"].samples] == [25.0]


def _ident(fam):
    fam.samples = [Sample(s.name, {"node": "n", "pool": "", **s.labels}, s.value)
                   for s in fam.samples]  # fmt: skip
    return fam


def test_npu_memory_names_mean_hbm_on_910_class_and_ddr_on_310_class() -> None:
    """ModelArts' legacy ma_*_npu_memory_* names are HBM on Snt9 (910-class) chips and DDR on
    Snt3 (310-class) ones: one family each, from both sources, never both for one chip (a 910A
    also has DDR, which stays out)."""
    fams = families("accelerator")
    hbm = fams["poolwatch_accelerator_memory_used_ratio"]
    hbm.add_metric(["huawei", "Ascend910B3", "0", "NPU-0"], 0.5)
    hbm.add_metric(["huawei", "910A", "1", "NPU-1"], 0.25)
    hbm.add_metric(["nvidia", "H100", "0", "GPU-0"], 0.9)
    ddr = fams["poolwatch_npu_ddr_memory_used_ratio"]
    ddr.add_metric(["huawei", "910A", "1", "NPU-1"], 0.75)
    ddr.add_metric(["huawei", "310P3", "2", "NPU-2"], 0.125)
    out = CompatExpander(["modelarts"]).expand([_ident(hbm), _ident(ddr)], at=1.0)
    util = [f for f in out if f.name == "ma_node_npu_memory_util"]
    assert len(util) == 1  # one family in the exposition, whatever the sources
    got = {s.labels["model"]: s.value for s in util[0].samples}
    assert got == {"Ascend910B3": 50.0, "910A": 25.0, "310P3": 12.5}
    # the chip-specific names keep their own meaning
    hbm_util = next(f for f in out if f.name == "ma_node_npu_hbm_util")
    assert {s.labels["model"] for s in hbm_util.samples} == {"Ascend910B3", "910A"}
