"""The wheel holds every part of the stack and nothing from tests/ or bench/ (flat layout)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PARTS = ("poolwatch", "exporters", "rules", "alerts", "dashboards", "controller")


@pytest.mark.timeout(300)
def test_wheel_contains_all_parts(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("poolwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == set(PARTS)
    assert "poolwatch/py.typed" in names
    assert "exporters/node/collectors/nfs.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "poolwatch = poolwatch.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
