"""Sample collection for the local source: a target (`[JOB=]URL`), fetching its text
exposition, and parsing it into samples, skipping before any label parsing the metrics no
rule reads."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_LABEL = re.compile(r'[\s,]*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")
Scraped = tuple[str, str, dict[str, str], float]  # name, raw series text, labels, value


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(
    text: str, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """(name, raw series text, labels, value) of each sample in a text exposition whose name is
    wanted. Comments, TYPE/HELP lines and unwanted names are skipped before any label parsing.
    Raises ValueError on a line that is not a sample."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if not wanted(name):
                continue
            labels: dict[str, str] = {}
            pos = brace + 1
            while True:
                m = _LABEL.match(line, pos)
                if m is None:
                    break
                labels[m.group(1)] = _unescape(m.group(2))
                pos = m.end()
            end = line.find("}", pos)
            if end == -1:
                raise ValueError(f"line {lineno}: unterminated label set")
            raw, rest = line[: end + 1], line[end + 1 :]
        else:
            if space == -1:
                raise ValueError(f"line {lineno}: no value")
            name = line[:space]
            if not wanted(name):
                continue
            labels, raw, rest = {}, name, line[space:]
        fields = rest.split()
        if not fields:
            raise ValueError(f"line {lineno}: no value")
        try:
            value = float(fields[0])
        except ValueError:
            raise ValueError(f"line {lineno}: value {fields[0]!r} is not a number") from None
        yield name, raw, labels, value


@dataclass(frozen=True)
class Target:
    url: str
    job: str = "poolwatch"

    @property
    def instance(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc

    @classmethod
    def parse(cls, spec: str) -> Target:
        """'[JOB=]URL' (the job label defaults to 'poolwatch'); ValueError when not a URL."""
        job, sep, url = spec.partition("=")
        if not sep or "://" in job:
            job, url = "poolwatch", spec
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--target: expected [JOB=]http(s)://HOST:PORT/metrics, got {spec!r}")
        return cls(url, job)


#: the engine itself, as a scrape target of its own local source
SELF_TARGET = Target("http://localhost/rules-engine", "poolwatch-rules")


def _fetch(url: str, timeout: float) -> str:
    req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
        return resp.read().decode("utf-8")
