"""The chart through the real Helm (the pinned helm built by scripts/tools.sh): `helm template`,
`helm lint --strict`, the NOTES of a client-side dry-run install, and install/upgrade/uninstall
against an API server.

Helm runs with its own home under a temporary directory (no repositories, no plugins, no user
settings) and, for everything but install/upgrade/uninstall, a kubeconfig that does not exist,
so nothing here can reach a cluster by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "poolwatch"
EXAMPLES = sorted((CHART / "examples").glob("*-values.yaml"))


class HelmError(Exception):
    """helm exited non-zero; the message is its output (Helm's own error text)."""


@dataclass
class Rendered:
    """The chart's manifests for one value set, parsed."""

    text: str
    docs: list[dict[str, Any]]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name_suffix: str) -> dict[str, Any]:
        found = [d for d in self.kinds(kind) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"{kind} *{name_suffix}: {len(found)} found"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") in ("Deployment", "DaemonSet")]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader (the rendered chart is ~13,000 lines: 10x faster than pure Python)
    without YAML 1.1's `=` "value" tag, which Kubernetes' YAML (1.2) does not have: the CRDs list
    `=` as an operator string."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> list[Any]:
    """Every non-empty YAML document in `text`."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def parse_manifests(text: str) -> list[dict[str, Any]]:
    return load_yaml(text)


class Helm:
    """One helm binary with an isolated home; `kubeconfig` is used only by install/upgrade/
    uninstall/status (the API server under test)."""

    def __init__(self, binary: str, home: Path | None = None, kubeconfig: Path | None = None):
        self.binary = binary
        self.home = home or Path(tempfile.mkdtemp(prefix="poolwatch-helm-"))
        self.kubeconfig = kubeconfig

    def env(self, cluster: bool = False) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.home / "no-cluster.kubeconfig"),
        }
        if cluster:
            assert self.kubeconfig is not None, "no API server to talk to"
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def run(self, args: Sequence[str], cluster: bool = False, timeout: float = 120) -> str:
        """helm `args`; its stdout, or HelmError with what it printed."""
        result = subprocess.run(
            [self.binary, *args], env=self.env(cluster), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise HelmError((result.stderr + result.stdout).strip())
        return result.stdout

    @staticmethod
    def value_args(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[str]:
        out: list[str] = []
        for v in values:
            out += ["-f", str(v)]
        for s in sets:
            out += ["--set", s]
        return out

    def template(
        self,
        values: Sequence[Path] = (),
        sets: Sequence[str] = (),
        extra: Sequence[str] = (),
        name: str = "release-name",
        chart: Path = CHART,
    ) -> Rendered:
        """`helm template` (the chart's values.schema.json is applied, as at install)."""
        args = ["template", name, str(chart), *self.value_args(values, sets), *extra]
        text = self.run(args)
        return Rendered(text, parse_manifests(text))

    def lint(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """`helm lint --strict`; HelmError unless the chart is clean for these values."""
        return self.run(["lint", "--strict", str(CHART), *self.value_args(values, sets)])

    def notes(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """The NOTES an install prints, from a client-side dry run (no cluster)."""
        args = ["install", "release-name", str(CHART), "--dry-run=client", "-o", "json"]
        doc = json.loads(self.run([*args, *self.value_args(values, sets)]))
        return doc["info"]["notes"]

    def write_values(self, values: dict[str, Any]) -> Path:
        """A values file holding `values`, in Helm's home."""
        directory = self.home / "values"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"values-{len(list(directory.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path
