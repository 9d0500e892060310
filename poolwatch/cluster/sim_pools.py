"""Pools and quotas of the simulation: node creation, the pool status rules and their events.

Pool rules (seeds, statuses-and-events.md sections 1-2): a pool is Creating until its nodes are,
then Running; it is Abnormal while fewer than `min_available` (default 1) nodes are Available
("only when the number of available nodes is greater than 0, tasks can be delivered"), which is
also the Kubernetes backend's rule. A status change is a `PoolStatusChange` event, a change of the
available/abnormal/creating/deleting counts a `PoolResourcesStatusChange` event, in the seeds'
formats. Spare (HA redundant) nodes are in none of the four counts; `Pool.ha_spares` counts
those Spare now, as the Kubernetes backend does. Which count changes are
"Abnormal" the seeds do not say; here one is a Warning when abnormal rises or available falls.
"""

from __future__ import annotations

from poolwatch.cluster.model import NodeStatus, Pool, PoolStatus, Quota
from poolwatch.cluster.simulated.jobs import quota_hard
from poolwatch.cluster.simulated.spec import POOL_LABEL, STATUS_LABEL, PoolSpec, vendor_of
from poolwatch.cluster.simulated.state import SimDevice, SimNode, SimPod, World

# NodeStatus -> its place in available/abnormal/creating/deleting; Spare counts in none
_SLOT = {
    NodeStatus.AVAILABLE: 0, NodeStatus.UNAVAILABLE: 1, NodeStatus.ISOLATED: 1,
    NodeStatus.REPLACING: 1, NodeStatus.RESETTING: 1, NodeStatus.REBOOTING: 1,
    NodeStatus.REPAIRING: 1, NodeStatus.CREATING: 2, NodeStatus.DELETING: 3,
}  # fmt: skip


class PoolBook:
    """Each pool's status and node counts, kept up to date as node statuses change."""

    def __init__(self, world: World) -> None:
        self.world = world
        pools = world.spec.pools
        self.status = {p.name: PoolStatus.CREATING for p in pools}
        self.reported = {p.name: (0, 0, 0, 0) for p in pools}  # counts in the last event
        self.tally = {p.name: [0, 0, 0, 0] for p in pools}
        self.spares = {p.name: 0 for p in pools}  # nodes now Spare (the controller uses them)
        self.uid = {p.name: world.uid("pool", p.name) for p in pools}
        self.forced: set[str] = set()  # pools the controller marked Abnormal (no spare left)

    def add(self, p: PoolSpec) -> None:
        """A pool created at run time (the controller's create_pool); nodes join it after."""
        w = self.world
        self.status[p.name] = PoolStatus.CREATING
        self.reported[p.name], self.tally[p.name], self.spares[p.name] = (0, 0, 0, 0), [0] * 4, 0
        self.uid[p.name] = w.uid("pool", p.name)
        w.event("Pool", p.name, "PoolStatusChange", "Start creating pool", pool=p.name)

    def remove(self, name: str) -> None:
        for table in (self.status, self.reported, self.tally, self.spares, self.uid):
            table.pop(name, None)  # type: ignore[attr-defined]
        self.forced.discard(name)

    def join(self, node: SimNode, sign: int) -> None:
        """Count `node` (sign 1) or stop counting it (-1) in its pool, under its status."""
        if node.pool not in self.tally or node.status is None:
            return
        if (slot := _SLOT.get(node.status)) is not None:
            self.tally[node.pool][slot] += sign
        self.spares[node.pool] += sign * (node.status is NodeStatus.SPARE)

    def create(self) -> None:
        """Start creating every pool: its event, its nodes, and their joining later."""
        w = self.world
        for p in w.spec.pools:
            w.event("Pool", p.name, "PoolStatusChange", "Start creating pool", pool=p.name)
            for i in range(p.nodes):
                node = _new_node(w, p, i)
                w.nodes[node.name] = node
                w.pool_nodes[p.name].append(node)
                w.touch("node", node.name)
                for ds in w.spec.daemonsets:
                    _daemon_pod(w, node, ds)
            w.at(w.now + w.spec.create_seconds, _pool_created, p)

    def moved(self, node: SimNode, new: NodeStatus) -> None:
        """Count `node` under its new status."""
        if node.pool not in self.tally:  # a free node, in no pool
            return
        tally = self.tally[node.pool]
        if node.status is not None and (slot := _SLOT.get(node.status)) is not None:
            tally[slot] -= 1
        if (slot := _SLOT.get(new)) is not None:
            tally[slot] += 1
        self.spares[node.pool] += (new is NodeStatus.SPARE) - (node.status is NodeStatus.SPARE)

    def evaluate(self) -> None:
        """Emit the pool events for whatever the last action changed."""
        w = self.world
        for p in w.spec.pools:
            a, b, c, d = counts = tuple(self.tally[p.name])
            old = self.reported[p.name]
            if counts != old:
                self.reported[p.name] = (a, b, c, d)
                worse = b > old[1] or a < old[0]
                w.event("Pool", p.name, "PoolResourcesStatusChange",
                        "Pool resources status changed, available/abnormal/creating/deleting "
                        f"count from {'/'.join(map(str, old))} to {a}/{b}/{c}/{d}, "
                        f"timestamp: {int(w.now)}", "Warning" if worse else "Normal",
                        pool=p.name)  # fmt: skip
            if self.status[p.name] is PoolStatus.CREATING:
                if c:
                    continue
                self._set(p, PoolStatus.RUNNING)  # the seeds' order: Creating -> Running
            bad = a < p.min_available or p.name in self.forced
            self._set(p, PoolStatus.ABNORMAL if bad else PoolStatus.RUNNING)

    def _set(self, p: PoolSpec, new: PoolStatus) -> None:
        old = self.status[p.name]
        if new is not old:
            self.status[p.name] = new
            warn = "Warning" if new is PoolStatus.ABNORMAL else "Normal"
            self.world.event("Pool", p.name, "PoolStatusChange",
                             f"Pool status changed, from {old.value} to {new.value}.", warn,
                             pool=p.name)  # fmt: skip

    def pool_object(self, p: PoolSpec) -> Pool:
        return Pool(
            name=p.name, uid=self.uid[p.name], status=self.status[p.name], flavor=p.model,
            accelerator_resource=p.resource, ha_spares=self.spares[p.name], job_types=p.job_types,
            driver_version=p.driver_version, workspace=p.workspace, created=self.world.start,
        )  # fmt: skip

    def quota_objects(self) -> list[Quota]:
        """Per team a ResourceQuota (keys `requests.<resource>`, as Kubernetes spells quota on
        extended resources) and a Volcano Queue (bare resource names; half the hard quota is
        guaranteed); used = the requests of the team's non-terminal pods."""
        w, out = self.world, []
        for team in w.spec.teams:
            hard = quota_hard(w, team.share)
            half = {res: float(v // 2) for res, v in hard.items()}
            for kind, name, ns, used, floor, prefix in (
                ("ResourceQuota", "accelerators", team.namespace, w.ns_used.get(team.namespace),
                 {}, "requests."),
                ("Queue", team.queue, "", w.queue_used.get(team.queue), half, ""),
            ):  # fmt: skip
                usage = {res: (used or {}).get(res, 0.0) for res in hard}
                out.append(Quota(name, ns, kind, _pairs(hard, prefix), _pairs(floor, prefix),
                                 _pairs(usage, prefix)))  # fmt: skip
        return out


def _pairs(values: dict[str, float], prefix: str) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((prefix + k, v) for k, v in values.items()))


def _new_node(w: World, p: PoolSpec, i: int) -> SimNode:
    name = f"{p.name}-node-{i:02d}"
    vendor = vendor_of(p.resource)
    devices = [
        SimDevice(d, f"GPU-{w.uid('gpu', name, d)}" if vendor == "nvidia" else f"npu{d}-chip0")
        for d in range(p.accelerators)
    ]
    model = p.model.replace(" ", "-")  # label values hold no spaces
    flavor = f"{vendor}.{p.accelerators}x.{model}"
    labels = {"kubernetes.io/hostname": name, POOL_LABEL: p.name,
              "node.kubernetes.io/instance-type": flavor}  # fmt: skip
    if vendor == "nvidia":  # as GPU feature discovery labels a node
        labels["nvidia.com/gpu.product"] = model
        if p.driver_version:
            labels["nvidia.com/cuda.driver-version.full"] = p.driver_version
    else:
        labels["accelerator"] = "huawei-Ascend910"
    return SimNode(name, w.uid("node", name), p.name, p.resource, p.model, devices, w.now, labels)


def _daemon_pod(w: World, node: SimNode, daemonset: str) -> None:
    """A DaemonSet's pod on `node`: Running, in kube-system, holding no accelerators."""
    name = f"{daemonset}-{node.name}"
    pod = SimPod(name, "kube-system", w.uid("pod", "kube-system", name), node.name, "",
                 daemonset, {"cpu": 0.05}, (), (("app.kubernetes.io/name", daemonset),),
                 "Running")  # fmt: skip
    w.add_pod(pod, "")


def _pool_created(w: World, p: PoolSpec) -> None:
    """The pool's nodes join, the last `ha_spares` of them as cordoned HA spares."""
    for i, node in enumerate(w.pool_nodes[p.name]):
        node.creating = False
        if i >= p.nodes - p.ha_spares:
            node.labels[STATUS_LABEL] = NodeStatus.SPARE.value
            node.unschedulable = True
        w.touch("node", node.name)
    w.want_placement = True
