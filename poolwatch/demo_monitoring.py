"""The demo's Prometheus and Alertmanager: their configuration files and how they are started.

Who does what in the demo:
- Prometheus scrapes the three exporters, evaluates the shipped rules (compiled for it, periods
  scaled to `--speed`, see demo_rules) and sends its alerts to Alertmanager;
- Alertmanager groups them, applies silences (its own web page, or `amtool`) and posts them to
  the alerts receiver, which delivers the notifications (here: to the demo inbox);
- the rule engine in local mode evaluates the same rules inside the demo and hands the firing
  alerts' actions (isolate, replace, restart the job) to the controller. It is the embedded
  default: on a machine without Prometheus it also sends the notifications itself.

Each program is the pinned build of scripts/tools.sh when that has been built (Prometheus 3,
Alertmanager 0.35), else the one on PATH (Debian's Prometheus 2.42, Alertmanager 0.25).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from poolwatch.app.demo_procs import Child, find_program, version_of

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Program:
    name: str
    path: str | None
    origin: str
    version: str

    @classmethod
    def find(cls, name: str, *path_names: str) -> Program:
        path, origin = find_program(name, *path_names)
        return cls(name, path, origin, version_of(path) if path else "")

    def describe(self) -> str:
        if self.path is None:
            return f"{self.name}: not installed"
        return f"{self.name} {self.version or '(version unknown)'}, {self.origin}"


def prometheus_config(
    jobs: tuple[tuple[str, int], ...],
    scrape_interval: str,
    rule_dir: Path | None = None,
    alertmanager_port: int | None = None,
) -> str:
    """Scrape `jobs` ((job, port) on 127.0.0.1); load rule_dir's *.rules.yaml; alert to
    Alertmanager on `alertmanager_port`."""
    lines = [f"global: {{scrape_interval: {scrape_interval}, "
             f"evaluation_interval: {scrape_interval}}}"]  # fmt: skip
    if rule_dir is not None:
        lines += ["rule_files:", f"  - '{rule_dir}/*.rules.yaml'"]
    if alertmanager_port is not None:
        target = f"'{HOST}:{alertmanager_port}'"
        lines += ["alerting:", "  alertmanagers:",
                  f"    - static_configs: [{{targets: [{target}]}}]"]  # fmt: skip
    lines.append("scrape_configs:")
    for job, port in jobs:
        # honor_labels: the simulated endpoint speaks for many nodes through their `node` label
        lines += [f"  - job_name: {job}", "    honor_labels: true",
                  f"    static_configs: [{{targets: ['{HOST}:{port}']}}]"]  # fmt: skip
    return "\n".join(lines) + "\n"


def alertmanager_config(receiver_url: str, speed: float) -> str:
    """One route to the alerts receiver's webhook; waits scaled to `speed` (never under 1 s)."""

    def scaled(seconds: float, floor: float) -> str:
        return f"{max(floor, seconds / speed):g}s"

    return (
        "route:\n"
        "  receiver: poolwatch\n"
        "  group_by: [alertname, pool, node]\n"
        f"  group_wait: {scaled(10, 1)}\n"
        f"  group_interval: {scaled(300, 5)}\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: poolwatch\n"
        "    webhook_configs:\n"
        f"      - url: {receiver_url}/alertmanager\n"
        "        send_resolved: true\n"
        "        max_alerts: 0\n"
    )


def start_prometheus(program: Program, data_dir: Path, config: str, port: int) -> Child:
    cfg = data_dir / "prometheus.yml"
    cfg.write_text(config, encoding="utf-8")
    return Child("prometheus", [
        str(program.path), f"--config.file={cfg}", f"--storage.tsdb.path={data_dir / 'prometheus'}",
        f"--web.listen-address={HOST}:{port}", f"--web.external-url=http://{HOST}:{port}/",
        "--log.level=warn",
    ], data_dir / "prometheus.log")  # fmt: skip


def start_alertmanager(program: Program, data_dir: Path, config: str, port: int) -> Child:
    cfg = data_dir / "alertmanager.yml"
    cfg.write_text(config, encoding="utf-8")
    store = data_dir / "alertmanager"
    store.mkdir(exist_ok=True)
    return Child("alertmanager", [
        str(program.path), f"--config.file={cfg}", f"--storage.path={store}",
        f"--web.listen-address={HOST}:{port}", "--cluster.listen-address=", "--log.level=warn",
    ], data_dir / "alertmanager.log")  # fmt: skip
