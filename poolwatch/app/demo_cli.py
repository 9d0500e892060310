"""`poolwatch demo` from a terminal: run the demo until a signal and print where everything
is (`run`), and ask a running demo to inject or heal a fault over its HTTP API
(`send_fault`)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from poolwatch.app.demo import INFO_FILE, Demo
from poolwatch.app.demo_procs import DemoError

log = logging.getLogger(__name__)


def run(port_base: int, data_dir: Path, prometheus: bool, seed: int, speed: float) -> int:
    """`poolwatch demo`: start, print the URLs, run until a signal, stop everything."""
    demo = Demo(port_base, data_dir, prometheus, seed, speed, acting=True, scenario=True)
    # apprise logs two lines per delivery; the inbox logs one per notification it receives
    logging.getLogger("apprise").setLevel(logging.WARNING)
    done = threading.Event()
    # SIGHUP too: closing the terminal must stop the demo and its children like Ctrl-C
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    try:
        demo.start()
    except DemoError as err:
        log.error("%s", err)
        return 1
    except OSError as err:
        demo.stop()
        log.error("cannot start the demo: %s (is another program using ports %d-%d? try "
                  "--port-base)", err, port_base, port_base + 9)  # fmt: skip
        return 1
    sys.stdout.write(_banner(demo))
    sys.stdout.flush()
    while not done.wait(0.5):
        for name, child in list(demo.children.items()):
            if child.exited() is not None:
                log.warning("%s exited (%s); see %s", name, child.exited(), child.log_path)
                del demo.children[name]
    log.info("stopping")
    demo.stop()
    return 0


def _banner(demo: Demo) -> str:
    urls = demo.urls()
    width = max(map(len, urls))
    state = "resumed the simulated pool" if demo.resumed else "a new simulated pool"
    home = urls["demo home (start here)"]
    lines = [f"poolwatch demo is running ({state}; data in {demo.data_dir}); Ctrl-C stops it.",
             f"Open {home} first: it links every part below."]  # fmt: skip
    lines += [f"  {name:<{width}}  {url}" for name, url in urls.items()]
    lines += [f"  {p.describe()}" for p in demo.programs.values()]
    return "\n".join(lines) + "\n"


def send_fault(data_dir: Path, verb: str, doc: dict[str, Any]) -> int:
    """`poolwatch demo inject|heal`: ask the demo running on `data_dir` over its HTTP API."""
    import urllib.error
    import urllib.request

    try:
        info = json.loads((data_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.error("no running demo found in %s (start one with `poolwatch demo`, or pass the "
                  "--data-dir it uses)", data_dir)  # fmt: skip
        return 1
    url = f"{info['site']}/api/{verb}"
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, json.dumps(doc).encode(), headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the demo's 127.0.0.1
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        log.error("%s", json.loads(err.read() or b"{}").get("error", f"HTTP {err.code}"))
        return 2 if err.code in (400, 404) else 1
    except OSError as err:
        log.error("the demo at %s does not answer (%s); is it still running?", info["site"], err)
        return 1
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


__all__ = ["run", "send_fault"]
