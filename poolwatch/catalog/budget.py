"""The node exporter's series budget: how many series a node of a given shape exports.

Why: cardinality is what a node costs Prometheus, and on an accelerator node it is driven by a
few multipliers (devices, containers, the devices each container holds, NIC ports, NFS mounts).
This computes, from the catalog alone, the series each unit of the shape brings, so an operator
can see the cost of a node before deploying, and the benchmark can check a real exposition
against it (`poolwatch catalog --budget`).

The figures are ceilings for the steady state: every family a unit can have is counted, with the
label values it takes (ECC error x scope = 4, retired-page causes 2, optical lanes 4, NVLink
links x 4 error kinds). A family a card does not have (DDR on 910B, encoder use on an NPU) makes
the real count lower; event series (XIDs, device events, filesystem errors) appear only when
something happens and are not counted. Seed aliases are counted for the compat sets given, and
per-container copies of device gauges for the `container_views` setting given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from poolwatch.core.catalog.accelerator import CONTAINER_VIEWS, container_views_kept
from poolwatch.core.catalog.model import Alias, MetricSpec

NODE_COLLECTORS = frozenset({
    "runner", "host", "filesystem", "cache_dir", "infiniband", "nfs", "accelerator",
    "pod_resources", "container",
})  # fmt: skip
OWNER = {"namespace", "pod", "container"}
DEV = {"vendor", "model", "index", "uuid"}
# label -> values it takes per unit, for labels beyond the unit's own
_VALUES = {"error": 2, "scope": 2, "cause": 2, "lane": 4, "kind": 2}
_EVENTS = {"event", "xid"}  # series that appear only when something happens


@dataclass(frozen=True)
class Shape:
    """What a node has. Defaults: the benchmark's accelerator node (bench/fake_node.py)."""

    gpus: int = 8
    npu_chips: int = 16
    containers: int = 200  # one container per pod: network series are per pod
    gpu_holders: int = 8  # containers holding one GPU each
    npu_holders: int = 16  # containers holding one NPU chip each
    ib_ports: int = 16
    ib_hcas: int = 8
    npu_ports: int = 0  # NPU RoCE ports hccn_tool reads (/dev/davinciN)
    net_devices: int = 2
    disks: int = 2
    nfs_mounts: int = 10
    nfs_ops: int = 15  # per-operation lines per mount
    filesystems: int = 1
    cache_dirs: int = 4
    nvlinks: int = 18  # per GPU (NVML_NVLINK_MAX_LINKS)
    cpu_modes: int = 10
    backends: int = 3  # nvml, npu_smi, hccn_tool
    vendors: int = 2
    tools: int = 2  # npu-smi, hccn_tool

    @classmethod
    def parse(cls, text: str) -> Shape:
        """`gpus=8,npu_chips=16,...`; unknown keys and non-integers are errors naming them."""
        known = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            if not sep or key not in known:
                raise ValueError(f"shape: {part!r} is not one of {', '.join(sorted(known))}=N")
            try:
                values[key] = int(raw)
            except ValueError:
                raise ValueError(f"shape: {key}={raw!r} is not a whole number") from None
            if values[key] < 0:
                raise ValueError(f"shape: {key} must not be negative")
        return cls(**values)


# unit -> the Shape field that counts it (None: one per node)
UNITS: dict[str, str | None] = {
    "node": None, "collector": None, "gpu": "gpus", "npu_chip": "npu_chips",
    "container": "containers", "container_gpu": "gpu_holders", "container_npu": "npu_holders",
    "ib_port": "ib_ports", "ib_hca": "ib_hcas", "npu_port": "npu_ports",
    "net_device": "net_devices", "disk": "disks", "nfs_mount": "nfs_mounts",
    "filesystem": "filesystems", "cache_directory": "cache_dirs",
}  # fmt: skip


def _units(spec: MetricSpec, shape: Shape) -> dict[str, float]:
    """unit -> series of `spec` per unit (several units for vendor-neutral device families)."""
    labels = set(spec.labels)
    if labels & _EVENTS or spec.name == "poolwatch_filesystem_device_error":
        return {}
    extra = 1.0
    for label in labels:
        extra *= _VALUES.get(label, 1)
    if spec.collector == "runner":
        return {"collector": 1.0}
    if labels >= OWNER and labels >= DEV:
        if spec.name.startswith("poolwatch_container_gpu_"):
            return {"container_gpu": extra}
        if spec.name.startswith("poolwatch_container_npu_"):
            return {"container_npu": extra}
        return {"container_gpu": extra, "container_npu": extra}
    if spec.name == "poolwatch_accelerator_allocation_info":
        return {"container_gpu": 1.0, "container_npu": 1.0}
    if labels >= OWNER:
        return {"container": extra}
    if labels >= DEV:
        if "link" in labels:
            extra *= shape.nvlinks * 4
        if spec.name.startswith("poolwatch_gpu_"):
            return {"gpu": extra}
        if spec.name.startswith("poolwatch_npu_"):
            return {"npu_chip": extra}
        return {"gpu": extra, "npu_chip": extra}
    if "device_id" in labels:
        return {"npu_port": extra}
    if spec.collector == "infiniband":
        return {"ib_port": extra} if "port" in labels else {"ib_hca": extra}
    if spec.collector == "nfs":
        return {"nfs_mount": extra * (shape.nfs_ops if "operation" in labels else 1)}
    if spec.collector in ("filesystem", "cache_dir"):
        return {"filesystem" if spec.collector == "filesystem" else "cache_directory": extra}
    if spec.collector == "host" and "device" in labels:
        return {"disk" if "disk" in spec.name else "net_device": extra}
    per_node = {
        "mode": shape.cpu_modes if spec.collector == "host" else 1,
        "backend": shape.backends,
        "vendor": shape.vendors,
        "tool": shape.tools,
    }
    for label, n in per_node.items():
        if label in labels:
            extra *= n
    return {"node": extra}


def _alias_units(alias: Alias, base: dict[str, float], shape: Shape) -> dict[str, float]:
    """The units an alias has series for: its vendor match narrows a device family to one
    vendor, and a match on a multi-valued label keeps one of its values."""
    out = dict(base)
    match = dict(alias.match)
    vendor = match.pop("vendor", None)
    if vendor is not None:
        keep = "gpu" if vendor == "nvidia" else "npu"
        out = {u: n for u, n in out.items() if not u.endswith(("gpu", "npu", "npu_chip"))
               or keep in u}  # fmt: skip
    one_of = {  # a match on these keeps one of their values
        "mode": shape.cpu_modes,
        "purpose": max(shape.filesystems, 1),
        "operation": max(shape.nfs_ops, 1),
    }
    for label in match:
        divide = _VALUES.get(label, one_of.get(label, 1))
        out = {u: n / divide for u, n in out.items()}
    return out


def per_unit(
    specs: Iterable[MetricSpec],
    shape: Shape | None = None,
    compat: Iterable[str] = (),
    container_views: str = "needed",
) -> dict[str, dict[str, float]]:
    """unit -> {"canonical": series per unit, "aliases": alias series per unit}."""
    shape = shape or Shape()
    compat_set = frozenset(compat)
    kept_views = container_views_kept(container_views, compat_set)
    all_views = {v.name for v in CONTAINER_VIEWS}
    out: dict[str, dict[str, float]] = {u: {"canonical": 0.0, "aliases": 0.0} for u in UNITS}
    for spec in specs:
        if spec.collector not in NODE_COLLECTORS:
            continue
        if spec.name in all_views and spec.name not in kept_views:
            continue
        base = _units(spec, shape)
        for unit, n in base.items():
            out[unit]["canonical"] += n
        for alias in spec.aliases:
            if alias.compat in compat_set:
                for unit, n in _alias_units(alias, base, shape).items():
                    out[unit]["aliases"] += n
    return out


def budget(
    specs: Iterable[MetricSpec],
    shape: Shape | None = None,
    compat: Iterable[str] = (),
    container_views: str = "needed",
    collectors: int = 8,
) -> dict[str, int]:
    """unit -> series the node's units of that kind export, and "total"."""
    shape = shape or Shape()
    table = per_unit(specs, shape, compat, container_views)
    out: dict[str, int] = {}
    for unit, field in UNITS.items():
        count = collectors if unit == "collector" else 1 if field is None else getattr(shape, field)
        out[unit] = round((table[unit]["canonical"] + table[unit]["aliases"]) * count)
    out["total"] = sum(out.values())
    return out


def markdown(
    specs: Iterable[MetricSpec],
    shape: Shape | None = None,
    compat: Iterable[str] = (),
    container_views: str = "needed",
) -> str:
    """The budget as a table: series per unit, units in the shape, series in all."""
    shape = shape or Shape()
    specs = list(specs)
    table = per_unit(specs, shape, compat, container_views)
    totals = budget(specs, shape, compat, container_views)
    compat_text = ", ".join(sorted(compat)) or "none"
    lines = [
        f"Series budget (compat: {compat_text}; container_views: {container_views}); "
        "ceilings for the steady state, event series not counted.",
        "",
        "| unit | series per unit | of them platform names (compat) | units | series |",
        "|---|---:|---:|---:|---:|",
    ]
    for unit, field in UNITS.items():
        n = table[unit]
        units = (
            "8 (collectors)"
            if unit == "collector"
            else 1
            if field is None
            else getattr(shape, field)
        )
        per = n["canonical"] + n["aliases"]
        lines.append(f"| {unit} | {per:g} | {n['aliases']:g} | {units} | {totals[unit]} |")
    lines.append(f"| **total** | | | | **{totals['total']}** |")
    return "\n".join(lines) + "\n"


def as_dict(shape: Shape) -> Mapping[str, int]:
    return {f.name: getattr(shape, f.name) for f in fields(shape)}


def unit_of_sample(spec: MetricSpec, labels: Mapping[str, str]) -> str:
    """The unit one exported sample of `spec` (or of one of its aliases) is counted under, so a
    real exposition can be held against the budget unit by unit."""
    units = _units(spec, Shape())
    if not units:
        return "node"  # event series: not budgeted, counted with the node
    if len(units) == 1:
        return next(iter(units))
    nvidia = labels.get("vendor") == "nvidia"
    for unit in units:
        if unit.endswith("gpu") == nvidia:
            return unit
    return next(iter(units))
