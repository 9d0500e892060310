"""Build the Go chart renderer once and render the chart with it (the helm tests' harness).

helm is not installable here, so `main.go` renders the chart with Go's text/template, Debian's
sprig and Helm's extra functions. It is built in GOPATH mode against /usr/share/gocode (Debian's
Go packages), offline, into a directory keyed by the hash of its sources: a second run (and a
second test session) reuses the binary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHART = ROOT / "helm" / "poolwatch"
GOPATH = Path("/usr/share/gocode")


class BuildUnavailable(Exception):
    """go, or Debian's sprig/yaml.v3 sources, are missing: the tests skip with this reason."""


class RenderError(Exception):
    """The chart did not render; the message is the renderer's stderr (template and line)."""


def cache_dir(config: Any) -> Path:
    """Where the binary is kept: pytest's cache, or the temp dir under -p no:cacheprovider."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("helm_render"))
    return Path(tempfile.gettempdir()) / f"poolwatch-helm-render-{os.getuid()}"


def build(cache: Path) -> Path:
    """The renderer binary, built into `cache/<source hash>/` unless it is there already."""
    go = shutil.which("go")
    if go is None:
        raise BuildUnavailable("go is not installed (Debian: golang-go)")
    for pkg in ("github.com/Masterminds/sprig", "gopkg.in/yaml.v2"):
        if not (GOPATH / "src" / pkg).is_dir():
            raise BuildUnavailable(f"{GOPATH / 'src' / pkg} missing (Debian's Go packages)")
    sources = sorted(HERE.glob("*.go"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    binary = cache / digest / "helm_render"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: Debian ships sources, not a module proxy
        "GOPATH": str(GOPATH),
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(cache / "gocache"),
    }
    tmp = binary.with_suffix(".tmp")
    result = subprocess.run(
        [go, "build", "-o", str(tmp), "."],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"go build failed:\n{result.stderr}")
    tmp.rename(binary)  # atomic: a concurrent session never runs a half-written binary
    return binary


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


class Renderer:
    """Renders like `helm template`; `strict` (the default) also fails on a reference to a value
    that does not exist, as `helm lint --strict` does, so a misspelt key cannot render as empty."""

    def __init__(self, binary: Path, chart: Path = CHART, strict: bool = True) -> None:
        self.binary, self.chart, self.strict = binary, chart, strict

    def run(
        self, values: Sequence[Path] = (), sets: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> str:
        cmd = [str(self.binary), *(["--strict"] if self.strict else [])]
        for v in values:
            cmd += ["-f", str(v)]
        for s in sets:
            cmd += ["--set", s]
        cmd += [*extra, str(self.chart)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RenderError(result.stderr.strip())
        return result.stdout

    def render(
        self, values: Sequence[Path] = (), sets: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> Rendered:
        text = self.run(values, sets, extra)
        # libyaml's loader: the rendered chart is ~13,000 lines, 10x faster than pure Python
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
        return Rendered(text, docs)

    def notes(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        return self.run(values, sets, ["--notes"])
