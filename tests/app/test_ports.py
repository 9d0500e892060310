"""One port table: every serving part's default port, the client commands' defaults and the demo
(with its default base) agree, so a client pointed at a part's default reaches that part in a
demo too. Before the table the demo and the standalone defaults were shifted by one (the demo's
controller sat where `poolwatch alerts status` looked for the receiver)."""

from __future__ import annotations

import argparse
import dataclasses

from poolwatch.alerts.settings import AlertsSettings
from poolwatch.api.settings import ApiSettings
from poolwatch.app.cli import parser
from poolwatch.app.demo import Ports
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.ports import BASE, OFFSETS, port
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node.settings import NodeExporterSettings
from poolwatch.rules.settings import RuleEngineSettings


def _port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def test_the_table_has_one_port_per_name() -> None:
    assert sorted(OFFSETS.values()) == list(range(len(OFFSETS)))


def test_every_serving_part_defaults_to_its_port_in_the_table() -> None:
    defaults = {
        "node-exporter": NodeExporterSettings().listen,
        "cluster-exporter": ClusterExporterSettings().listen,
        "rules": RuleEngineSettings(source="local", state="s.db").listen,
        "alerts": AlertsSettings.model_fields["listen"].default,
        "controller": ControllerSettings().listen,
        "api": ApiSettings(prometheus="http://p", token_file="t").listen,  # noqa: S106
    }
    assert {name: _port(v) for name, v in defaults.items()} == {n: port(n) for n in defaults}


def test_the_demo_puts_each_part_on_its_own_default_port() -> None:
    demo = Ports.from_base(BASE)
    assert demo.node == port("node-exporter")
    assert demo.cluster == port("cluster-exporter")
    assert demo.rules == port("rules")
    assert demo.alerts == port("alerts")
    assert demo.controller == port("controller")
    assert demo.api == port("api")
    assert len({getattr(demo, f.name) for f in dataclasses.fields(demo)}) == len(OFFSETS)


def test_a_client_command_defaults_to_the_server_it_talks_to() -> None:
    args = parser().parse_args(["rules", "alerts"])
    assert isinstance(args, argparse.Namespace)
    assert _port(args.url) == port("rules") == Ports.from_base(BASE).rules


def test_the_demo_moves_with_its_base() -> None:
    assert Ports.from_base(20000).api == 20000 + OFFSETS["api"]
