"""The two Prometheus and the two Alertmanager versions every Prometheus-facing test runs on.

Debian's Prometheus 2.42 and Alertmanager 0.25 (on PATH) are what older pools still run; the
pinned Prometheus 3.x and Alertmanager 0.31 (built from their Go modules by scripts/tools.sh) are
what a current kube-prometheus-stack brings. A rule, a dashboard query or an exposition must be
right on both, so the tests that talk to one of these programs take the `prom` or `alertmanager`
fixture (registered in tests/conftest.py) and run once per version.

A version that is not available skips its half of the test with the reason: Debian's when its
package is not installed, the pinned one when Go is missing (under CI that is a failure, see
helpers.pinned_bin_dir).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property

import pytest

from tests.helpers import pinned_tool


@dataclass(frozen=True)
class Flavour:
    """One build of a program family: Debian's (found on PATH) or the pinned one (tools.sh).

    `names` maps the role ("prometheus", "promtool") to the command names tried in order; the
    pinned build always uses the role's own name."""

    label: str
    pinned: bool
    names: tuple[tuple[str, tuple[str, ...]], ...]

    def __str__(self) -> str:
        return self.label

    def tool(self, role: str) -> str:
        """Absolute path of `role` in this flavour; skips the test when it is not available."""
        if self.pinned:
            return pinned_tool(role)
        for name in dict(self.names)[role]:
            path = shutil.which(name)
            if path is not None:
                return path
        pytest.skip(f"{role} not on PATH (Debian package {self.names[0][1][0]} not installed)")


class Prometheus(Flavour):
    """A Prometheus and its promtool."""

    @property
    def prometheus(self) -> str:
        return self.tool("prometheus")

    @property
    def promtool(self) -> str:
        return self.tool("promtool")

    @cached_property
    def version(self) -> tuple[int, int]:
        """(major, minor) as `prometheus --version` reports it."""
        return _version(self.prometheus)

    @property
    def major(self) -> int:
        return self.version[0]


class Alertmanager(Flavour):
    """An Alertmanager and its amtool."""

    @property
    def alertmanager(self) -> str:
        return self.tool("alertmanager")

    @property
    def amtool(self) -> str:
        return self.tool("amtool")

    @cached_property
    def version(self) -> tuple[int, int]:
        return _version(self.alertmanager)


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    assert m, f"{binary} --version said: {out.stdout}{out.stderr}"
    return int(m[1]), int(m[2])


PROMETHEUS = (
    Prometheus(
        "prom2-debian", False, (("prometheus", ("prometheus",)), ("promtool", ("promtool",)))
    ),
    Prometheus("prom3-pinned", True, ()),
)
ALERTMANAGER = (
    Alertmanager(
        "am-debian",
        False,
        (("alertmanager", ("prometheus-alertmanager", "alertmanager")), ("amtool", ("amtool",))),
    ),
    Alertmanager("am-pinned", True, ()),
)


@pytest.fixture(params=PROMETHEUS, ids=str)
def prom(request: pytest.FixtureRequest) -> Prometheus:
    """Each Prometheus version in turn (function-scoped: a session-scoped parameter would make
    pytest regroup the whole session by version)."""
    return request.param


@pytest.fixture(params=ALERTMANAGER, ids=str)
def alertmanager(request: pytest.FixtureRequest) -> Alertmanager:
    """Each Alertmanager version in turn."""
    return request.param
