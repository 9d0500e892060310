"""Friendlier configuration input: on/off read as the words they are, a "did you mean" for an
unknown key, and a taken address named in the error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from poolwatch.core.config import ConfigError, load
from poolwatch.core.httpbase import Handler, Server
from poolwatch.exporters.node.settings import NodeExporterSettings


def test_yaml_on_and_off_are_accepted_where_a_setting_takes_those_words(tmp_path: Path) -> None:
    """YAML reads unquoted on/off as booleans; gpu and npu take the words "on" and "off"."""
    path = tmp_path / "node.yaml"
    path.write_text("gpu: on\nnpu: off\n")
    settings = load(NodeExporterSettings, path, {})
    assert (settings.gpu, settings.npu) == ("on", "off")
    from_env = load(NodeExporterSettings, None, {"POOLWATCH_GPU": "off"})
    assert from_env.gpu == "off"


def test_a_boolean_where_on_off_means_nothing_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("node: on\n")
    with pytest.raises(ConfigError, match="node: Input should be a valid string"):
        load(NodeExporterSettings, path, {})


def test_an_unknown_key_suggests_the_nearest_valid_one_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("lisen: ':9100'\ncollectors:\n  nfss:\n    timeout: 3s\n")
    with pytest.raises(ConfigError) as err:
        load(NodeExporterSettings, path, {})
    text = str(err.value)
    assert f"lisen: Extra inputs are not permitted; did you mean 'listen'? ({path}:1)" in text
    assert "collectors.nfss: Extra inputs are not permitted; did you mean 'collectors.nfs'?" in text


def test_a_taken_address_is_named_in_the_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot serve on 127.0.0.1:{port}: Address already"):
            Server(("127.0.0.1", port), Handler)
    finally:
        taken.close()
