"""The demo's child programs (Prometheus, Alertmanager) and its data-directory lock.

Children must never outlive the demo: a Prometheus left behind holds its port and its data
directory, and the next demo fails on both. So each child
- runs in its own process group (the demo signals the whole group, so anything a child starts
  goes too, and a Ctrl-C in the terminal reaches only the demo, which stops its parts in order);
- asks the kernel for SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`), which covers
  what no handler can: a SIGKILL of the demo, or a crash. The kernel sends that signal when the
  *thread* that forked the child ends, so children are started from the main thread only.

The lock (`flock` on DATA/demo.lock, released by the kernel when the process ends, however it
ends) refuses a second demo on the same data directory: two would overwrite each other's
simulated pool, alert state and API token.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl  # resolved here: the child, between fork and exec, must not load anything


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def _die_with_parent(parent: int) -> None:
    """preexec_fn: SIGTERM when the parent goes; exit at once if it already went."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold DATA/demo.lock for the life of this process; DemoError when another demo holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "demo.lock"
    f = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise DemoError(
            f"another poolwatch demo (pid {holder}) is using the data directory {data_dir}; "
            "stop it first, or give this one its own --data-dir (and --port-base)"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def tools_dir() -> Path:
    """Where scripts/tools.sh keeps the programs it builds (POOLWATCH_TOOLS_DIR)."""
    default = Path.home() / ".cache" / "poolwatch" / "tools"
    return Path(os.environ.get("POOLWATCH_TOOLS_DIR") or default)


def find_program(name: str, *path_names: str) -> tuple[str | None, str]:
    """(path, where from) of `name`: the pinned build of scripts/tools.sh when it has been
    built already (never building it here: that takes minutes), else the first of `name` and
    `path_names` on PATH (Debian calls Alertmanager `prometheus-alertmanager`)."""
    pinned = tools_dir() / "bin" / name
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned), "built from source by scripts/tools.sh"
    for candidate in (name, *path_names):
        if found := shutil.which(candidate):
            return found, "from PATH (the Debian package)"
    return None, "missing"


def version_of(binary: str) -> str:
    """The version a Prometheus-style program reports ("3.16.0"), or "" if it will not say."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    words = (out.stdout + out.stderr).split()
    for i, word in enumerate(words):
        if word == "version" and i + 1 < len(words):
            return words[i + 1]
    return ""


class Child:
    """One child program, its output in a log file, stopped with its whole process group."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("start children from the main thread (see the module docstring)")
        self.name, self.log_path = name, log_path
        parent = os.getpid()
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=lambda: _die_with_parent(parent),
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after `timeout`; waits, so nothing is left behind."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s; killing it", self.name, timeout)
        self._signal(signal.SIGKILL)  # whatever the child started and left
        self.proc.wait()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
