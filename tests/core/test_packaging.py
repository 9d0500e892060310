"""The wheel installs one top-level package, `poolwatch`, holding every part and nothing else.

The parts keep their own folders in the checkout (exporters/, rules/, ...) and are mapped under
`poolwatch.` by setuptools' package-dir: a generic name such as `rules` or `alerts` must never land
in site-packages, where it would clash with any other project's.
"""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PARTS = ("exporters", "rules", "alerts", "dashboards", "controller", "api")


def _checkout_modules() -> set[str]:
    """Every module file of the checkout, named as the wheel should hold it."""
    out = {
        f"poolwatch/{p.relative_to(ROOT / 'poolwatch')}" for p in (ROOT / "poolwatch").rglob("*.py")
    }
    for part in PARTS:
        out |= {f"poolwatch/{p.relative_to(ROOT)}" for p in (ROOT / part).rglob("*.py")}
    return out


@pytest.mark.timeout(300)
def test_wheel_installs_only_poolwatch_with_every_module(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("poolwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"poolwatch"}
    missing = _checkout_modules() - set(names)
    assert not missing, f"modules left out of the wheel (add their package to pyproject): {missing}"
    for data in ("poolwatch/py.typed", "poolwatch/rules/default/accelerator.yaml",
                 "poolwatch/exporters/node/attribution/podresources/api.proto"):  # fmt: skip
        assert data in names
    assert any(n.startswith("poolwatch/alerts/templates/") for n in names)
    assert any(n.startswith("poolwatch/dashboards/generated/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "poolwatch = poolwatch.app.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_parts_import_from_outside_the_checkout(tmp_path: Path) -> None:
    """From another directory only `poolwatch.<part>` imports; the bare part names do not exist."""
    code = (
        "import importlib, sys\n"
        "for p in ('exporters', 'rules', 'alerts', 'dashboards', 'controller'):\n"
        "    importlib.import_module('poolwatch.' + p)\n"
        "    try:\n"
        "        importlib.import_module(p)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    sys.exit('bare ' + p + ' importable')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout


def test_no_module_imports_a_part_by_its_bare_name() -> None:
    """`import rules` works by accident inside the checkout (it is the working directory) and would
    load a second copy of the module beside `poolwatch.rules`; every import names `poolwatch.`."""
    offenders = []
    for folder in ("poolwatch", *PARTS, "tests", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_relative_to(ROOT / "poolwatch") and path.parent != ROOT / "poolwatch":
                rel = path.relative_to(ROOT / "poolwatch")
                if rel.parts[0] in PARTS:
                    continue  # the same file as ROOT/<part>/..., reached through the link
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                              for n in names if n.split(".")[0] in PARTS]  # fmt: skip
    assert not offenders, offenders
