"""Golden expositions per collector on captured inputs, linted by the real `promtool check metrics`.

Set POOLWATCH_UPDATE_GOLDEN=1 to rewrite the files after checking the diff (node_exporter's
end-to-end-test.sh `-u` pattern)."""

import os

import pytest
from helpers import FIXTURES, not_about_seed_names, promtool_findings
from prom_versions import Prometheus

from poolwatch.exporters.node.collectors.host import HostCollector
from poolwatch.exporters.node.collectors.infiniband import InfinibandCollector
from poolwatch.exporters.node.collectors.nfs import NfsCollector
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.settings import HostSettings, _IncludeExclude
from poolwatch.exporters.node.store import ExpositionStore

CASES = {
    "host": lambda: HostCollector(HostSettings(), FIXTURES / "proc"),
    "infiniband": lambda: InfinibandCollector(_IncludeExclude(), FIXTURES / "sys"),
    "nfs": lambda: NfsCollector(_IncludeExclude(), FIXTURES / "proc"),
}


def render(name: str, compat: tuple[str, ...] = ("modelarts",)) -> bytes:
    collector = CASES[name]()
    store = ExpositionStore({"node": "golden-node", "pool": "golden-pool"})
    Runner([collector], store, compat).run_once(collector)
    return store.states()[0].body


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_exposition(name: str) -> None:
    path = FIXTURES / "golden" / f"{name}.prom"
    body = render(name)
    if os.environ.get("POOLWATCH_UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes(), f"exposition of {name} changed; see the diff"


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_passes_promtool_lint(name: str, prom: Prometheus) -> None:
    assert promtool_findings(render(name, compat=()), prom.promtool) == set()
    assert not_about_seed_names(promtool_findings(render(name), prom.promtool)) == set()
