"""The demo serves the repository's docs, and its alerts link to them with absolute URLs."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from poolwatch.app import demo_docs, demo_rules
from poolwatch.app.demo_inbox import Inbox
from poolwatch.app.demo_site import Site
from poolwatch.rules.loader import default_files, load


def test_every_shipped_runbook_anchor_exists_on_the_docs_page() -> None:
    page = demo_docs.render("rules.md")
    assert page is not None
    text = page.decode()
    for item in load(default_files()):
        for rule in item.group.rules:
            path, _, anchor = rule.annotations.runbook.partition("#")
            assert path == "docs/rules.md"
            assert f'id="{anchor}"' in text, rule.name


@pytest.mark.parametrize("name", ["../README.md", "..%2FREADME.md", "sub/x.md", "rules.txt",
                                  ".hidden.md", "no-such-page.md"])  # fmt: skip
def test_only_files_directly_in_docs_are_served(name: str) -> None:
    assert demo_docs.render(name) is None


def test_the_demo_compiles_its_rules_with_its_own_site_as_runbook_base(tmp_path: Path) -> None:
    base = demo_docs.runbook_base("http://127.0.0.1:9484/")
    _, prom = demo_rules.write(default_files()[:1], tmp_path / "rules", 10.0, 1.0, base)
    [compiled] = list(prom.glob("*.rules.yaml"))
    rules = yaml.safe_load(compiled.read_text())["groups"][0]["rules"]
    assert rules
    for r in rules:
        assert r["annotations"]["runbook_url"].startswith("http://127.0.0.1:9484/docs/rules.md#")


def test_the_site_serves_the_docs_pages(tmp_path: Path) -> None:
    site = Site(("127.0.0.1", 0), None, Inbox(tmp_path / "inbox.sqlite"))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{site.server_address[1]}"
        with urllib.request.urlopen(f"{url}/docs/", timeout=10) as r:
            assert 'href="rules.md"' in r.read().decode()
        with urllib.request.urlopen(f"{url}/docs/rules.md", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/html")
            assert 'id="poolwatchcachediralmostfull"' in r.read().decode()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}/docs/..%2Fpyproject.toml", timeout=10)
        assert err.value.code == 404
    finally:
        site.shutdown()
        site.server_close()
