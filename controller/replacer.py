"""HA replacement: a faulty node's place is taken by a Spare of the same pool and flavor.

Steps of one replacement (a row in the store, [001:L1416]):
  queued    waiting for the limits, a spare, or a conflict to clear (POL-01, POL-02, upgrade,
            a node Resetting [000:L320]); the pool is Abnormal while no spare is left
  starting  the spare is chosen and recorded *before* any write, so a controller restarted here
            (or a new leader sharing the state) resumes with the same spare
  running   faulty node labelled Replacing; the spare loses its Spare label and is uncordoned
            (three steps, each audited once: a resumed replacement skips, and audits as
            "found done", every step the current view already shows)
  done      the spare is Available: the faulty node becomes Repairing (a spare under repair;
            `PoolController.restore` turns it into the new Spare once fixed)
  failed    not done within `replace_timeout` of being requested (POL-03, 24 h), or cancelled
Limits, counted over all the pool's nodes (spares included), at least `replace_min`:
  starting+running <= 5 % (POL-02); started in the last 24 h <= 20 % (POL-01).
"""

from __future__ import annotations

from collections.abc import Callable

from poolwatch.cluster.model import Node, NodeStatus
from poolwatch.core.actions import ActionResult

from . import pools, reasons
from .context import Context
from .pools import STATUS_LABEL
from .store import Replacement

DAY = 24 * 3600.0


def _label(node: Node | None) -> str | None:
    """The node's poolwatch.io/status label (None: no such node or no label)."""
    return None if node is None else dict(node.labels).get(STATUS_LABEL)


class Replacer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # pools this process has marked Abnormal on the backend: a backend that holds the mark
        # in its process (Kubernetes) lost it with the controller that set it
        self._marked: set[str] = set()

    def request(self, key: str, pool: str, node: str, code: str) -> tuple[str, str]:
        """Queue a replacement of `node` (once per node) and try to start it now."""
        store = self.ctx.store
        mine = [r for r in store.replacements(pool, True) if r.node == node]
        if mine:
            state = mine[0].state
            return ("deferred" if state == "queued" else "done"), f"replacement already {state}"
        rid = store.add_replacement(key, pool, node, code, self.ctx.clock())
        self.step(self.ctx.clock(), only=rid)
        r = next(r for r in store.replacements(pool) if r.id == rid)
        if r.state == "queued":
            return "deferred", f"replacement queued: {r.detail}"
        if r.state == "failed":
            return "failed", f"replacement failed: {r.detail}"
        return "done", f"replacement {r.state} with spare {r.spare}"

    def cancel(self, node: str, why: str) -> None:
        for r in self.ctx.store.replacements(active=True):
            if r.node == node and r.state == "queued":
                self.ctx.store.update_replacement(r.id, state="failed", detail=why,
                                                  finished_at=self.ctx.clock())  # fmt: skip

    # -- the control loop ----------------------------------------------------------------------
    def step(self, now: float, only: int | None = None) -> None:
        store = self.ctx.store
        if only is None:
            self._adopt(now)
        active = [r for r in store.replacements(active=True) if only in (None, r.id)]
        if not active:
            self._mark_pools(now)
            return
        nodes = self.ctx.nodes()
        for r in active:
            if now - r.queued_at >= self.ctx.settings.replace_timeout:
                self._fail(
                    r,
                    now,
                    f"not finished within {self.ctx.settings.replace_timeout / 3600:g} h (POL-03)",
                )
            elif r.state == "queued":
                self._try_start(r, nodes, now)
            else:
                if r.state == "starting":
                    self._apply_start(r, resumed=True)  # a restart mid-way: the same spare
                    nodes = self.ctx.nodes()
                self._check_done(r, nodes, now)
                nodes = self.ctx.nodes()
        self._mark_pools(now)

    def _try_start(self, r: Replacement, nodes: dict[str, Node], now: float) -> None:
        store, s = self.ctx.store, self.ctx.settings
        node = nodes.get(r.node)
        if node is None or node.pool != r.pool or not pools.fault_of(node):
            self._fail(r, now, "the node is no longer isolated in the pool")
            return
        members = [n for n in nodes.values() if n.pool == r.pool]
        total = len(members)
        why = ""
        if store.pool(r.pool)["upgrading"]:
            why = "a driver upgrade is running"
        elif any(n.status is NodeStatus.RESETTING for n in members):
            why = "a node of the pool is resetting"
        else:
            everything = store.replacements(r.pool)
            busy = sum(x.state in ("starting", "running") for x in everything)
            today = sum(x.started_at > now - DAY for x in everything if x.started_at)
            if busy >= pools.allowed(s.replace_concurrent_ratio, total, s.replace_min):
                why = f"{busy} replacements in flight, the most for {total} nodes (POL-02)"
            elif today >= pools.allowed(s.replace_daily_ratio, total, s.replace_min):
                why = f"{today} replacements in 24 h, the most for {total} nodes (POL-01)"
        spare = None if why else self._spare(node, members)
        if not why and spare is None:
            why = "no spare of this flavor is left"
        if why:
            if why != r.detail:
                store.update_replacement(r.id, detail=why)
            return
        assert spare is not None  # noqa: S101 - narrowed above
        store.update_replacement(r.id, state="starting", spare=spare.name, started_at=now,
                                 detail="")  # fmt: skip
        started = Replacement(**{**r.__dict__, "state": "starting", "spare": spare.name,
                                 "started_at": now})  # fmt: skip
        self._apply_start(started)
        self._check_done(started, self.ctx.nodes(), now)

    def _spare(self, node: Node, members: list[Node]) -> Node | None:
        taken = {r.spare for r in self.ctx.store.replacements(node.pool, True) if r.spare}
        flavor = pools.flavor_of(node)
        for n in sorted(members, key=lambda m: m.name):
            if (n.status is NodeStatus.SPARE and n.name not in taken and not pools.fault_of(n)
                and pools.ready(n) and pools.flavor_of(n) == flavor):  # fmt: skip
                return n
        return None

    def _apply_start(self, r: Replacement, resumed: bool = False) -> None:
        """The start's three writes, each a step done at most once. `resumed`: the row was
        found `starting` (a controller, this one or a leader before it, died mid-way): a step
        the current view shows done already is audited as found, not written again."""
        b = self.ctx.backend
        replacing = {STATUS_LABEL: NodeStatus.REPLACING.value}
        wrote = self._step(r, f"label {r.node} Replacing", resumed,
                           lambda n: _label(n.get(r.node)) == NodeStatus.REPLACING.value,
                           lambda: b.label_node(r.node, replacing))  # fmt: skip
        wrote |= self._step(r, f"take {r.spare} out of the spares", resumed,
                            lambda n: _label(n.get(r.spare)) != NodeStatus.SPARE.value,
                            lambda: b.label_node(r.spare, {STATUS_LABEL: None}))  # fmt: skip
        wrote |= self._step(r, f"uncordon {r.spare}", resumed,
                            lambda n: r.spare in n and not n[r.spare].unschedulable,
                            lambda: b.cordon(r.spare, False))  # fmt: skip
        self.ctx.store.update_replacement(r.id, state="running")
        if wrote:
            self.ctx.node_event(r.node, r.pool, "NodeReplacing", "Normal",
                                f"Node being replaced by HA spare {r.spare}")  # fmt: skip

    def _step(
        self, r: Replacement, step: str, resumed: bool,
        done: Callable[[dict[str, Node]], bool], write: Callable[[], None],
    ) -> bool:  # fmt: skip
        """One step of a replacement, audited once: written (True), or, on a resumed
        replacement whose step the current view already shows, audited as found (False)."""
        if resumed and done(self.ctx.nodes()):
            self.ctx.audit("replaceNode", r.node, ActionResult("already", f"{step}: found "
                                                               "done"), r.key)  # fmt: skip
            return False
        self.ctx.fence()
        write()
        self.ctx.audit("replaceNode", r.node, ActionResult("done", step), r.key)
        return True

    def _check_done(self, r: Replacement, nodes: dict[str, Node], now: float) -> None:
        spare = nodes.get(r.spare)
        if spare is None or spare.status is not NodeStatus.AVAILABLE:
            return
        step = f"label {r.node} Repairing: replaced by {r.spare}"
        if _label(nodes.get(r.node)) == NodeStatus.REPAIRING.value:  # a leader died after it
            self.ctx.audit("replaceNode", r.node, ActionResult("already", f"{step}: found "
                                                               "done"), r.key)  # fmt: skip
        else:
            self.ctx.fence()
            self.ctx.backend.label_node(r.node, {STATUS_LABEL: NodeStatus.REPAIRING.value})
            self.ctx.audit("replaceNode", r.node, ActionResult("done", step), r.key)
        # the notice and the end it reports in one transaction: a controller that dies here
        # has done both or neither, so a restart neither repeats nor loses the notice
        labels = {"pool": r.pool, "node": r.node, "fault_code": r.fault_code}
        self.ctx.tell("NodeReplaced", f"{r.key}:{r.node}", f"node {r.node} replaced by "
                      f"{r.spare}", f"pool {r.pool}: {r.node} is under repair, "
                      f"{reasons.fault(r.fault_code)}; {r.spare} took its place", labels,
                      "info", then=lambda: self.ctx.store.update_replacement(
                          r.id, state="done", finished_at=now))  # fmt: skip
        self.ctx.stats[("replacement", "done")] += 1

    def _fail(self, r: Replacement, now: float, why: str) -> None:
        """End a replacement as failed. The state is recorded last, with the notice in one
        transaction: a controller that dies before it fails the replacement again (the label
        write is idempotent) and tells it once; recorded first, the notice would be lost, and a
        node left labelled Replacing would be taken for a lost replacement's and called done
        (`_adopt`)."""
        if r.state == "running":  # the faulty node stays isolated; its spare is in service
            self.ctx.backend.label_node(r.node, {STATUS_LABEL: None})
        self.ctx.audit("replaceNode", r.node, ActionResult("failed", why), r.key)
        self.ctx.tell("ReplacementFailed", f"{r.key}:{r.node}", f"replacement of node {r.node} "
                      "failed", f"pool {r.pool}: node {r.node}, isolated with "
                      f"{reasons.fault(r.fault_code)}: {why}",
                      {"pool": r.pool, "node": r.node, "fault_code": r.fault_code},
                      "critical", then=lambda: self.ctx.store.update_replacement(
                          r.id, state="failed", finished_at=now, detail=why))  # fmt: skip
        self.ctx.stats[("replacement", "failed")] += 1

    def _adopt(self, now: float) -> None:
        """A node labelled Replacing with no replacement in the store: a controller whose state
        was lost (no `state_path`, or a new leader without the shared state) left it. Its spare
        was released after that label was written, so the replacement is taken as done: the node
        becomes Repairing, and the operator is told to check the pool's spares."""
        mine = {r.node for r in self.ctx.store.replacements(active=True)}
        for n in self.ctx.nodes().values():
            if n.status is not NodeStatus.REPLACING or n.name in mine:
                continue
            self.ctx.backend.label_node(n.name, {STATUS_LABEL: NodeStatus.REPAIRING.value})
            detail = "a replacement without a record (state lost): taken as done"
            self.ctx.audit("replaceNode", n.name, ActionResult("done", detail), "")
            labels = {"pool": n.pool, "node": n.name}
            self.ctx.tell("ReplacementAdopted", f"adopt:{n.name}:{now}", f"node {n.name} "
                          "left Replacing by an earlier controller", f"pool {n.pool}: {detail};"
                          " check that its spare is in service", labels, "warning")  # fmt: skip

    def _mark_pools(self, now: float) -> None:
        """A pool with a replacement waiting for a spare is Abnormal, and the operator hears.
        A pool the state has marked before this process started is marked on the backend
        again, without a second notice (a restarted controller, a new leader)."""
        store = self.ctx.store
        waiting: dict[str, list[Replacement]] = {}
        for r in store.replacements(active=True):
            if r.state == "queued" and r.detail.startswith("no spare"):
                waiting.setdefault(r.pool, []).append(r)
        for pool in {*waiting, *store.pool_names()}:
            was = bool(store.pool(pool)["abnormal"])
            now_abnormal = pool in waiting
            if was == now_abnormal:
                if was and pool not in self._marked:  # marked by a controller before this one
                    self.ctx.backend.mark_pool(pool, True)
                    self._marked.add(pool)
                continue
            self.ctx.backend.mark_pool(pool, now_abnormal)  # the same twice is one change
            if now_abnormal:
                self._marked.add(pool)
            else:
                self._marked.discard(pool)

            def record(pool: str = pool, flag: bool = now_abnormal) -> None:
                store.set_pool(pool, abnormal=int(flag))

            if not now_abnormal:
                record()
                continue
            # the notice with the mark it reports, in one transaction (Notices.queue)
            names = ", ".join(f"{r.node} with {reasons.fault(r.fault_code)}"
                              for r in waiting[pool])  # fmt: skip
            self.ctx.tell("NoSpare", f"{pool}:{now}", f"pool {pool} has no spare left",
                          f"isolated node(s) {names} wait for a spare; the pool is Abnormal",
                          {"pool": pool}, "critical", then=record)  # fmt: skip
