"""Seed aliases: scaling, label matching, rates across collections, counter resets."""

import pytest
from prometheus_client.core import Sample

from exporters.node.collector import families
from exporters.node.compat import CompatExpander


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


def test_no_compat_no_aliases() -> None:
    assert CompatExpander([]).expand(_disk(1), at=1.0) == []


def test_match_selects_by_purpose() -> None:
    fams = families("filesystem")
    fam = fams["poolwatch_filesystem_used_ratio"]
    fam.add_metric(["/cache", "cache", "/", "ext4"], 0.5)
    fam.add_metric(["/var/lib/docker", "container", "/", "ext4"], 0.25)
    out = _by_name(CompatExpander(["modelarts"]).expand([fam], at=1.0))
    assert [s.value for s in out["ma_node_cache_space_used_percent"].samples] == [50.0]
    assert [s.value for s in out["ma_node_container_space_used_percent"].samples] == [25.0]
