"""A real headless Chromium (Debian's `chromium`) for the page tests: the DOM after scripts ran,
and a screenshot checked to be more than a blank page.

Why the browser and not an HTML parser: "the page renders" means what a person sees. Swagger UI
draws itself with JavaScript, a page with a broken stylesheet or an empty body is blank, and only
a browser says so. Each call gets its own profile directory, and every network feature that would
reach beyond 127.0.0.1 (sync, component updates, QUIC) is off.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium missing")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")  # fmt: skip


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout, check=False)  # fmt: skip


def dom(url: str, budget_ms: int = 8000, timeout: float = 90) -> str:
    """The page's DOM once loaded and its scripts have had `budget_ms` of virtual time."""
    out = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return out.stdout.decode()


def screenshot(url: str, path: Path, size: str = "1400,1000", budget_ms: int = 5000,
               timeout: float = 90) -> Path:  # fmt: skip
    """A PNG of the page as the browser draws it."""
    out = _run([f"--virtual-time-budget={budget_ms}", f"--screenshot={path}",
                f"--window-size={size}", url], timeout)  # fmt: skip
    assert path.exists(), out.stderr.decode()[-2000:]
    return path


def ink(path: Path) -> float:
    """Share of the screenshot's pixels that are not the background colour (0: blank)."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 24) or []
    background = max(colors)[0]
    return 1 - background / (img.width * img.height)
