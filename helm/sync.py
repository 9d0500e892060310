"""Copy what poolwatch generates into the chart: compiled rules and dashboard JSON.

The chart embeds two generated artifacts and must never drift from their sources:

* `helm/poolwatch/files/rules/<group>.rules.yaml`: `poolwatch rules compile` of the shipped rule
  files (rules/default/*.yaml). The chart's PrometheusRule and rules ConfigMap are built from
  these files, so they are plain Prometheus rule files, not the compiler's PrometheusRule.
* `helm/poolwatch/files/rule-model/rules.json`: the same rules before compilation (expression,
  comparison, threshold, timing, severity, labels, annotation texts split around their
  `{{ $threshold }}`/`{{ $clear }}` placeholders, actions) and the fault codes an `isolate` action
  may name. The chart compiles the PrometheusRule and the rules ConfigMap from it with
  `rules.overrides` applied (templates/_rules.tpl), as `poolwatch rules compile --overrides` does.
* `helm/poolwatch/files/dashboards/*.json`: `dashboards/generated/*.json`, written by
  `poolwatch dashboards build` (copied as they are; absent until that part has built them).

    .venv/bin/python helm/sync.py            # rewrite the chart's copies
    .venv/bin/python helm/sync.py --check    # exit 1 and name every stale file (tests run this)

Exit status: 0 when written or current, 1 when --check finds stale copies, 2 when the rules do
not compile (the rule loader's file:line errors are printed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "poolwatch"
RULES_OUT = CHART / "files" / "rules"
MODEL_OUT = CHART / "files" / "rule-model"
#: the placeholder forms of the annotation texts that templates/_rules.tpl knows how to fill in
_PLACEHOLDER = re.compile(r"{{\s*\$(threshold|clear)\s*(?:\|\s*(\w+)\s*)?}}")
CHART_PIPES = (None, "percent")
DASHBOARDS_OUT = CHART / "files" / "dashboards"
DASHBOARDS_SRC = ROOT / "dashboards" / "generated"


class SyncError(Exception):
    """The sources could not be compiled; the message names file and line."""


def _shipped_rules() -> list:
    """The shipped rule files, loaded from this checkout; SyncError names a bad file and line."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from poolwatch.rules.loader import RuleFileError, default_files, load

    try:
        return load(default_files())
    except RuleFileError as err:
        raise SyncError(str(err)) from None


def compiled_rules() -> dict[str, bytes]:
    """`poolwatch rules compile` output for the shipped rules: file name -> content."""
    loaded = _shipped_rules()
    from poolwatch.rules import compile as compiler

    with tempfile.TemporaryDirectory(prefix="poolwatch-helm-sync-") as tmp:
        written = compiler.write(loaded, Path(tmp), {})
        return {p.name: p.read_bytes() for p in written if p.name != compiler.MANIFEST}


def _segments(text: str, rule: str) -> list[dict[str, str]]:
    """`text` as literal pieces and placeholders ({var, pipe, raw}); SyncError for a placeholder
    form the chart's templates cannot fill in (they would print a wrong number)."""
    out: list[dict[str, str]] = []
    at = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.group(2) not in CHART_PIPES:
            raise SyncError(
                f"rule {rule}: {m.group(0)!r}: the chart fills in only {{{{ $threshold }}}} and "
                "{{ $threshold | percent }} (and the same for $clear); add the filter to "
                "helm/poolwatch/templates/_rules.tpl and CHART_PIPES in helm/sync.py"
            )
        if m.start() > at:
            out.append({"text": text[at : m.start()]})
        out.append({"var": m.group(1), "pipe": m.group(2) or "", "raw": m.group(0)})
        at = m.end()
    if at < len(text):
        out.append({"text": text[at:]})
    return out


def rule_model() -> dict[str, bytes]:
    """The shipped rules before compilation, for the chart to compile with the overrides."""
    loaded = _shipped_rules()
    from poolwatch.rules import compile as compiler
    from poolwatch.rules.fault_codes import FAULT_CODES
    from poolwatch.rules.model import duration_seconds

    groups = []
    for item in loaded:
        g = item.group
        rules = []
        for r in g.rules:
            rules.append({
                "name": r.name,
                "expr": r.expr.strip(),
                "op": r.op,
                "threshold": r.threshold,
                "clear": r.clear,
                "for": r.for_,
                "periods": r.periods,
                "window": r.window.model_dump() if r.window is not None else None,
                "severity": r.severity,
                "labels": r.labels,
                "seed_ids": ",".join(r.seed),
                "summary": _segments(r.annotations.summary, r.name),
                "description": _segments(r.annotations.description, r.name),
                "runbook": r.annotations.runbook,
                "actions": compiler._actions(r),
                "dry_run": str(r.dry_run).lower(),
            })  # fmt: skip
        groups.append({
            "group": g.group, "name": f"poolwatch-{g.group}", "interval": g.interval,
            "intervalSeconds": duration_seconds(g.interval), "rules": rules,
        })  # fmt: skip
    model = {"faultCodes": sorted(FAULT_CODES), "groups": groups}
    return {"rules.json": (json.dumps(model, indent=1, ensure_ascii=False) + "\n").encode()}


def dashboards(source: Path = DASHBOARDS_SRC) -> dict[str, bytes]:
    """The generated dashboard JSON files: file name -> content (empty before they exist)."""
    return {p.name: p.read_bytes() for p in sorted(source.glob("*.json"))}


def expected() -> dict[Path, dict[str, bytes]]:
    """What each generated chart directory must hold, exactly."""
    return {RULES_OUT: compiled_rules(), MODEL_OUT: rule_model(), DASHBOARDS_OUT: dashboards()}


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale(want: dict[Path, dict[str, bytes]]) -> list[str]:
    """Chart files that differ from `want`, are missing, or should not be there."""
    problems = []
    for directory, files in want.items():
        present = {p.name: p for p in directory.glob("*") if p.is_file() and p.name != ".gitkeep"}
        for name, content in sorted(files.items()):
            path = directory / name
            if name not in present:
                problems.append(f"{_shown(path)}: missing")
            elif present[name].read_bytes() != content:
                problems.append(f"{_shown(path)}: out of date")
        for name in sorted(set(present) - set(files)):
            problems.append(f"{_shown(directory / name)}: no longer generated")
    return problems


def write(want: dict[Path, dict[str, bytes]]) -> list[Path]:
    """Make each directory hold exactly its expected files; return the paths changed."""
    changed = []
    for directory, files in want.items():
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*"):
            if path.is_file() and path.name != ".gitkeep" and path.name not in files:
                path.unlink()
                changed.append(path)
        for name, content in files.items():
            path = directory / name
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
                changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="report stale copies, change nothing")
    args = p.parse_args(argv)
    try:
        want = expected()
    except SyncError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    if args.check:
        problems = stale(want)
        for line in problems:
            sys.stderr.write(f"{line}\n")
        if problems:
            sys.stderr.write("run: .venv/bin/python helm/sync.py\n")
        return 1 if problems else 0
    for path in write(want):
        sys.stdout.write(f"{_shown(path)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
