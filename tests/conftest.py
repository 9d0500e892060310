import sys
from pathlib import Path

# tests import their helpers as a plain module (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).parent))

# every test that runs Prometheus, promtool, Alertmanager or amtool takes one of these fixtures
# and so runs on Debian's version and on the pinned current one (tests/prom_versions.py)
from prom_versions import alertmanager, prom  # noqa: F401
