"""End to end: the shipped hang rule (MA-J-02) fires on the simulated pool for the hung job only,
and resolves once the hang is healed.

Wired as the demo wires it: the simulated nodes' endpoint and the cluster exporter serve over
HTTP on 127.0.0.1, the local rule engine scrapes them and evaluates every shipped rule. What is
not real is the clock: the rule needs at least ten minutes of flat utilisation and ten of
unchanged I/O, so the test steps simulated time and hands the engine the instant of each scrape
and evaluation (its `at` arguments) instead of waiting half an hour of wall time.

Two clocks: the shipped rules evaluated in simulated time, and the demo's own copy of them scaled
to `--speed` (demo_rules), evaluated in the "real" time of a demo running that fast.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolwatch.app import demo_rules
from poolwatch.app.demo_endpoints import SimulatedNodes
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import GPU, JobRequest, PoolSpec, SimulationSpec, TeamSpec
from poolwatch.core.web.config import WebConfig
from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node.server import serve
from poolwatch.rules.engine import Engine
from poolwatch.rules.loader import default_files, load
from poolwatch.rules.local import LocalSource, Target
from poolwatch.rules.state import StateStore
from tests.helpers import free_port

T0 = 1_700_000_100.0  # a multiple of 300: the rule's 5-minute periods start on the hour
MIN = 60.0
SPEC = SimulationSpec(
    pools=(PoolSpec("gpu-a", 3, 8, GPU, "NVIDIA H100 80GB HBM3", ha_spares=1),),
    teams=(TeamSpec("team-a", "team-a", ("alice",), share=1.0),),
    initial_jobs=0,
    jobs_per_hour=0,
    fault_interval=None,
    repair_seconds=None,
    hang_detect_minutes=10,  # the demo's: the platform's minimum
)

#: the demo's jobs opt in to the controller's restart upon suspension (its scripted story)
OPT_IN = (
    ("fault-tolerance/job-retry-num", "3"),
    ("fault-tolerance/restart-upon-suspension", "true"),
)


class Pool:
    """The simulated pool's two endpoints and a local engine over them."""

    def __init__(self, tmp: Path, rule_files: list[Path], opt_in: bool = True) -> None:
        self.cluster = SimulatedCluster(SPEC, clock=lambda: T0)
        for name in ("healthy", "stuck"):  # 8 cards each, one node each
            self.cluster.submit(JobRequest("team-a", "gpu-a", per_worker=8, name=name,
                                           duration=6 * 3600.0,
                                           annotations=OPT_IN if opt_in else ()))  # fmt: skip
        self.nodes = SimulatedNodes(self.cluster)
        ports = free_port(), free_port()
        self.exporter = ClusterExporter(self.cluster, ClusterExporterSettings(
            listen=f"127.0.0.1:{ports[1]}", backend="simulated"))  # fmt: skip
        self.servers = [
            serve(self.nodes, ("127.0.0.1", ports[0]), WebConfig(),  # type: ignore[arg-type]
                  lambda: (True, "ok\n")),
            serve_cluster(self.exporter, ("127.0.0.1", ports[1]), WebConfig()),
        ]  # fmt: skip
        self.cluster_url = f"http://127.0.0.1:{ports[1]}/metrics"
        targets = [Target(f"http://127.0.0.1:{ports[0]}/metrics", "poolwatch-simulated-nodes"),
                   Target(self.cluster_url, "poolwatch-cluster")]  # fmt: skip
        self.source = LocalSource(targets, scrape_interval=15.0)
        self.engine = Engine(load(rule_files), self.source, StateStore(tmp / "rules.db"))
        assert self.engine.refused == {}
        self.fired: dict[float, set[str]] = {}  # simulated time -> jobs with a firing hang alert

    def start(self) -> None:
        self.exporter.start()
        for httpd in self.servers:
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.cluster.step(60)  # both jobs Running (30 s start-up)
        self.nodes.refresh()
        self._exported("hang_detect_seconds", 2)

    def _exported(self, what: str, count: int) -> None:
        """Wait for the cluster exporter's watch to catch up (it runs in its own thread)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.cluster_url, timeout=5) as resp:
                lines = [ln for ln in resp.read().decode().splitlines()
                         if what in ln and not ln.startswith("#")]  # fmt: skip
            if len(lines) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"the cluster exporter never served {count} {what} series")

    def stop(self) -> None:
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()
        self.exporter.stop()

    def run(
        self, seconds: float, step: float, real: float = 1.0, every: int = 1, ctl: Any = None
    ) -> None:
        """Advance `seconds` of simulated time in `step`s, scraping after each step and
        evaluating every `every` steps; the engine's clock runs `real` times simulated time."""
        for i in range(round(seconds / step)):
            self.cluster.step(step)
            self.nodes.refresh()
            at = T0 + (self.cluster.now - T0) * real
            self.source.scrape_once(at=at)
            if i % every == every - 1:
                states = self.engine.evaluate(at=at)
                if ctl is not None:  # the demo's acting half: the actions go to the controller
                    self.engine.dispatch([], [ctl], at=at)
                    ctl.reconcile()
                self.fired[self.cluster.now] = {
                    s.labels["training_job"] for s in states
                    if s.rule == "PoolwatchJobHang" and s.state == "firing"
                }  # fmt: skip

    def firing(self) -> set[str]:
        return self.fired[max(self.fired)]

    def first_fired(self, job: str) -> float:
        return min(t for t, jobs in self.fired.items() if job in jobs)


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[type[Pool]]:
    pools: list[Pool] = []

    def make(rule_files: list[Path], opt_in: bool = True) -> Pool:
        p = Pool(tmp_path, rule_files, opt_in)
        pools.append(p)
        p.start()
        return p

    yield make  # type: ignore[misc]
    for p in pools:
        p.stop()


def _story(pool: Pool, step: float, real: float, every: int) -> None:
    """Both jobs run 5 minutes, `stuck` hangs; 20 minutes later its hang is healed."""
    pool.run(5 * MIN, step, real, every)
    hung_at = pool.cluster.now
    assert pool.cluster.hang("team-a/stuck") == "team-a/stuck"
    pool.run(10 * MIN, step, real, every)
    # not before its detection time: ten minutes of unchanged I/O after the last period with I/O
    assert all(not jobs for jobs in pool.fired.values()), pool.fired
    pool.run(10 * MIN, step, real, every)
    assert pool.firing() == {"stuck"}  # the hung job, and only it
    assert all(jobs <= {"stuck"} for jobs in pool.fired.values())
    # it fires between its detection time and one 5-minute period (plus an evaluation) after it
    assert 10 * MIN < pool.first_fired("stuck") - hung_at <= 17 * MIN
    state = next(s for s in pool.engine.alerts.values() if s.rule == "PoolwatchJobHang")
    assert state.labels["namespace"] == "team-a"
    assert "no I/O" in state.annotations["description"]
    assert pool.cluster.heal("stuck") == ["team-a/stuck"]
    pool.run(2 * MIN, step, real, every)
    assert pool.firing() == set()  # computing and reading again: resolved
    resolved = [s for s in pool.engine.alerts.values() if s.rule == "PoolwatchJobHang"]
    assert [s.state for s in resolved] in ([], ["resolved"])


def test_the_shipped_hang_rule_fires_for_the_hung_job_only_and_resolves_after_heal(
    make_pool: type[Pool],
) -> None:
    pool = make_pool(default_files())
    _story(pool, step=15.0, real=1.0, every=4)  # a 15 s scrape, the rule group's 1-minute interval


def test_the_demos_scaled_rules_fire_for_the_hung_job_at_speed_20(
    make_pool: type[Pool], tmp_path: Path
) -> None:
    """The demo at `--speed 20`: twenty simulated seconds per real second, the rules' periods
    divided by 20 and their timestamps stretched (demo_rules), a scrape and an evaluation every
    real second, as the demo schedules them. The same story in the same simulated minutes."""
    scaled, _ = demo_rules.write(default_files(), tmp_path / "rules", 20, 2.0)
    pool = make_pool(scaled)
    _story(pool, step=20.0, real=1 / 20, every=1)


@pytest.mark.parametrize("opt_in", [True, False])
def test_the_demos_controller_restarts_a_hung_job_that_opted_in(
    make_pool: Any, tmp_path: Path, opt_in: bool
) -> None:
    """As the demo acts: the firing alert's restart-job goes to the controller, which restarts
    the job when it opted in to restart upon suspension (the demo's jobs do); the restarted job
    computes and reads again, so the alert resolves without a heal. A job that did not opt in
    stays hung, and its alert firing: the resolution is the restart's doing."""
    from poolwatch.controller.service import PoolController
    from poolwatch.controller.settings import ControllerSettings

    pool = make_pool(default_files(), opt_in)
    settings = ControllerSettings(backend="simulated", dry_run=False,
                                  state_path=tmp_path / "controller.db")  # fmt: skip
    ctl = PoolController(pool.cluster, settings, clock=lambda: pool.cluster.now)
    pool.cluster.hang("stuck")
    pool.run(20 * MIN, 15.0, 1.0, 4, ctl)
    job = next(j for j in pool.cluster.jobs() if j.name == "stuck")
    assert any(pool.fired.values())  # it fired
    assert job.restarts == (1 if opt_in else 0)
    assert pool.cluster.hung_jobs() == ([] if opt_in else ["team-a/stuck"])
    assert pool.firing() == (set() if opt_in else {"stuck"})


# -- striking a hang in a running demo: the CLI, the site's API, the scripted story ------------
def test_inject_and_heal_a_hang_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`poolwatch demo inject hang` and `heal` against the demo's site over HTTP. The stand-in
    for the rest of the demo holds only what the site's fault API touches (the pool and its
    node metrics), so no exporter, engine or Prometheus starts."""
    from types import SimpleNamespace

    from poolwatch.app.cli import main
    from poolwatch.app.demo import INFO_FILE
    from poolwatch.app.demo_inbox import Inbox
    from poolwatch.app.demo_site import Site

    cluster = SimulatedCluster(SPEC, clock=lambda: T0)
    cluster.submit(JobRequest("team-a", "gpu-a", per_worker=8, name="train"))
    cluster.step(60)
    node = next(p.node for p in cluster.pods() if p.job == "train")
    nodes = SimulatedNodes(cluster)
    site = Site(("127.0.0.1", free_port()), SimpleNamespace(cluster=cluster, nodes=nodes),
                Inbox(tmp_path / "inbox.sqlite"))  # fmt: skip
    threading.Thread(target=site.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{site.server_address[1]}"
    (tmp_path / INFO_FILE).write_text(f'{{"site": "{url}"}}')
    demo = ["demo", "--data-dir", str(tmp_path)]
    try:
        assert main([*demo[:1], "inject", "hang", node, *demo[1:]]) == 0
        assert '"job": "team-a/train"' in capsys.readouterr().out
        assert cluster.hung_jobs() == ["team-a/train"]
        assert main([*demo[:1], "inject", "hang", "train", *demo[1:]]) == 2  # hung already
        assert "job team-a/train is hung" in caplog.text
        assert main([*demo[:1], "inject", "hang", "no-such-job", *demo[1:]]) == 2
        assert "no node or training job 'no-such-job'" in caplog.text
        with urllib.request.urlopen(f"{url}/api/faults", timeout=5) as resp:
            listed = json.loads(resp.read())
        assert "hang" in listed["faults"]
        assert listed["hung_jobs"] == ["team-a/train"]
        assert main([*demo[:1], "heal", "team-a/train", *demo[1:]]) == 0
        assert '"jobs": ["team-a/train"]' in capsys.readouterr().out
        assert cluster.hung_jobs() == []
    finally:
        site.shutdown()
        site.server_close()


def test_the_scripted_story_hangs_a_job_and_strikes_nothing_else_under_it(tmp_path: Path) -> None:
    """After the first fault the story hangs a running job; the faults after it keep off that
    job's node, so nothing stalls or restarts the job before the hang rule finds it."""
    from poolwatch.app.demo_scenario import EVERY, FIRST_AT, Scenario

    cluster = SimulatedCluster(SPEC, clock=lambda: T0)
    for name in ("a", "b"):  # one per node: the lost GPU stalls one, the other can hang
        cluster.submit(JobRequest("team-a", "gpu-a", per_worker=8, name=name, duration=7200))
    story = Scenario(cluster, tmp_path / "scenario.json")
    for _ in range(round((FIRST_AT + 4 * EVERY) / 10) + 1):  # the hang and three faults more
        cluster.step(10)
        story.tick()
    kinds = [fault for _, fault, _ in story.struck]
    assert kinds[:2] == ["gpu_lost", "hang"]
    assert "not_ready" in kinds  # which prefers a node with a running job
    assert cluster.hung_jobs() == ["team-a/b"]
    hung_node = next(p.node for p in cluster.pods() if p.job == "b")
    assert story.struck[1][2] == hung_node
    assert [node for _, _, node in story.struck[2:]].count(hung_node) == 0
