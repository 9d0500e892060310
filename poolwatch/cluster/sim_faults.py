"""Faults in the simulation: what each one does to a node, how it clears, and the random injector.

Each fault changes only what the real failure changes, so detection stays poolwatch's job:
- `ecc`: uncorrectable ECC on one device. Counters climb and pages retire (node metrics); the
  device plugin withdraws the device (XID 48), so allocatable drops by one.
- `gpu_lost`: a GPU falls off the bus. `up 0` in the metrics; allocatable drops by one.
- `npu_health`: npu-smi reports a major alarm on one chip (health 2); the Ascend device plugin
  withdraws it.
- `not_ready`: the kubelet stops reporting. Ready=False and the node lifecycle controller's
  `node.kubernetes.io/not-ready` taints (NoSchedule, NoExecute); the node is Unavailable.
- `kubelet_readonly`: the kubelet directory turns read-only (metrics only); new pods there
  cannot start.
- `cache_full`: the node's cache space fills to 97 % (metrics only): the /cache disk and the
  Kubernetes space, the kubelet data disk that ModelArts calls the node cache.
A job holding a hit device, or with a pod on a NotReady node, stalls (see sim_jobs). A repair
(`heal`, or `repair_seconds` later) clears the fault; a repaired ECC device is a replaced card,
its counters start again from zero.
"""

from __future__ import annotations

from poolwatch.cluster.simulated.jobs import stall
from poolwatch.cluster.simulated.spec import DEVICE_FAULTS, FAULTS, NOT_READY_TAINT, vendor_of
from poolwatch.cluster.simulated.state import SimNode, World

NODE_FAULTS = ("not_ready", "kubelet_readonly", "cache_full")


def applicable(node: SimNode, fault: str) -> list[int | None]:
    """Where `fault` can still strike on `node`: device indices, [None] for a node fault, []."""
    if node.creating:
        return []
    if fault in NODE_FAULTS:
        return [] if fault in node.faults else [None]
    vendor = DEVICE_FAULTS[fault]
    if vendor and vendor != vendor_of(node.resource):
        return []
    return [d.index for d in node.devices if fault not in d.faults]


def inject(world: World, fault: str, node_name: str, device: int | None = None) -> int | None:
    """Strike `node_name` with `fault`; returns the device index hit (None for node faults).

    Without `device`, a device fault hits the lowest-numbered device it can still hit."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
    node = world.nodes.get(node_name)
    if node is None:
        raise KeyError(f"no node {node_name!r} in the simulation")
    spots = applicable(node, fault)
    if fault in DEVICE_FAULTS and device is not None:
        if not 0 <= device < len(node.devices):
            raise ValueError(f"{node_name} has no device {device}")
        spots = [device] if device in spots else []
    if not spots:
        raise ValueError(f"{fault} cannot strike {node_name} (wrong vendor, creating, or already)")
    _apply(world, node, fault, spots[0])
    if world.spec.repair_seconds is not None:
        world.at(world.now + world.spec.repair_seconds, _repair, node.name, fault, spots[0],
                 world.now)  # fmt: skip
    return spots[0]


def _apply(world: World, node: SimNode, fault: str, index: int | None) -> None:
    holders: set[str] = set()
    if index is not None:
        dev = node.devices[index]
        dev.faults[fault] = world.now
        holders = {dev.holder} if dev.holder else set()
    else:
        node.faults[fault] = world.now
        if fault == "not_ready":
            node.ready = False
            node.taints = [t for t in node.taints if t[0] != NOT_READY_TAINT]
            node.taints += [(NOT_READY_TAINT, "", "NoSchedule"), (NOT_READY_TAINT, "", "NoExecute")]
            holders = {d.holder for d in node.devices if d.holder}
            message = f"Node {node.name} status is now: NodeNotReady"
            world.event("Node", node.name, "NodeNotReady", message, pool=node.pool)
    world.touch("node", node.name)
    for pod_key in sorted(holders):
        stall(world, world.pods[pod_key].job)


def heal(world: World, node_name: str, fault: str | None = None) -> None:
    """Clear `fault` (every fault when None) on the node, on every device it hit."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
    node = world.nodes.get(node_name)
    if node is None:
        raise KeyError(f"no node {node_name!r} in the simulation")
    for kind in FAULTS if fault is None else (fault,):
        if kind in NODE_FAULTS:
            _clear_node(world, node, kind)
        else:
            for dev in node.devices:
                dev.faults.pop(kind, None)
    world.touch("node", node.name)
    world.want_placement = True


def _repair(world: World, node_name: str, fault: str, index: int | None, since: float) -> None:
    """The scheduled repair of one injected fault; a no-op if it was cleared or struck again."""
    node = world.nodes[node_name]
    if index is None:
        if node.faults.get(fault) == since:
            _clear_node(world, node, fault)
    elif node.devices[index].faults.get(fault) == since:
        del node.devices[index].faults[fault]
    world.touch("node", node.name)
    world.want_placement = True


def _clear_node(world: World, node: SimNode, fault: str) -> None:
    if node.faults.pop(fault, None) is not None and fault == "not_ready":
        node.ready = True
        node.taints = [t for t in node.taints if t[0] != NOT_READY_TAINT]
        world.event("Node", node.name, "NodeReady", f"Node {node.name} status is now: NodeReady",
                    pool=node.pool)  # fmt: skip


def random_fault(world: World) -> None:
    """Strike a random fault (by weight) on a random node where it can still happen, then
    schedule the next one."""
    spec, rng = world.spec, world.rng
    weights = dict(spec.fault_weights)
    vendors = {"", *(vendor_of(p.resource) for p in spec.pools)}
    faults = [f for f in FAULTS if weights.get(f, 0) > 0 and DEVICE_FAULTS.get(f, "") in vendors]
    if faults:
        fault = rng.choices(faults, [weights[f] for f in faults])[0]
        where = [n for n in world.nodes.values() if applicable(n, fault)]
        if where:
            node = rng.choice(where)
            inject(world, fault, node.name, rng.choice(applicable(node, fault)))
    if spec.fault_interval:
        world.at(world.now + rng.expovariate(1.0 / spec.fault_interval), random_fault)
