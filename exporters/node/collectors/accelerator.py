"""accelerator: GPUs (NVML) and NPUs (npu-smi) in one vendor-neutral schema, with pod attribution.

One collector owns every `poolwatch_accelerator_*` family, so a GPU and an NPU series of the same
family form one block in the exposition; each backend is isolated inside it. A backend whose
driver is absent in `auto` mode says so once and stays off (`poolwatch_accelerator_backend_up` is
then absent); one that fails marks the collector down for that run while the other backend's
devices are still served. A lost device (fell off the bus) keeps only `up 0`, health 3 and its
identity; its other series go away, and a `lost` event is counted. Per-container series come from
the latest device -> owner mapping (`attribution.owners`), which a separate collector refreshes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import Metric

from poolwatch.core.catalog.accelerator import CONTAINER_VIEWS, container_views_kept

from ..accelerators.model import Backend, BackendUnavailable, Device, Reading
from ..attribution.owners import DeviceOwners, Owner
from ..collector import PartialFailure, families, register
from ..settings import AcceleratorSettings, NodeExporterSettings

log = logging.getLogger(__name__)
P = "poolwatch_accelerator_"

# Per-container view family -> the device family whose samples it copies.
_VIEWS = {
    v.name: "poolwatch_" + v.name.removeprefix("poolwatch_container_") for v in CONTAINER_VIEWS
}
_DEV_KEYS = ("vendor", "model", "index", "uuid")

# Device attribute -> family, for the plain optional gauges.
_SIMPLE = {
    "utilization": P + "utilization_ratio",
    "memory_total": P + "memory_total_bytes",
    "memory_used": P + "memory_used_bytes",
    "memory_free": P + "memory_free_bytes",
    "temperature": P + "temperature_celsius",
    "memory_temperature": P + "memory_temperature_celsius",
    "power": P + "power_watts",
    "energy": P + "energy_joules_total",
    "core_clock": P + "core_clock_hertz",
    "memory_clock": P + "memory_clock_hertz",
    "error_code": P + "error_code",
}


class AcceleratorCollector:
    name = "accelerator"

    def __init__(
        self,
        settings: AcceleratorSettings,
        backends: list[tuple[Backend, bool]],
        owners: DeviceOwners | None = None,
        compat: frozenset[str] = frozenset({"modelarts"}),
    ) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        # per-container copies of device gauges: the largest series multiplier on a busy node
        kept = container_views_kept(settings.container_views, compat)
        self._view_sources = {v: src for v, src in _VIEWS.items() if v in kept}
        self.backends = backends  # (backend, required): required means --gpu on / --npu on
        self.owners = owners or DeviceOwners()
        self._off: set[str] = set()
        self._was_up: dict[tuple[str, ...], bool] = {}
        self._events: Counter[tuple[tuple[str, ...], str]] = Counter()
        self._seen_held: dict[tuple[str, ...], tuple[Owner, ...]] = {}
        # (owner labels + device labels) -> [allocated seconds, idle seconds]; a series goes
        # when the owner lets go of the device (as kube-state-metrics drops a deleted pod's)
        self._booked: dict[tuple[str, ...], list[float]] = {}
        self._last_collect: float | None = None
        self.clock = time.monotonic

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        problems: list[str] = []
        extra: list[Metric] = []
        self._count: Counter[tuple[str, str]] = Counter()  # (vendor, "up"|"idle")
        self._held: dict[tuple[str, ...], tuple[Owner, ...]] = {}  # device labels -> owners
        for backend, required in self.backends:
            if backend.name in self._off:
                continue
            reading = self._read(backend, required, problems)
            if reading is None:
                continue
            fams[P + "backend_up"].add_metric([backend.name], 0 if reading.problems else 1)
            if reading.processes is not None:
                fams["poolwatch_npu_tool_processes"].add_metric(
                    [reading.processes[0]], reading.processes[1]
                )
            problems += [f"{backend.name}: {p}" for p in reading.problems]
            extra += reading.extra
            for device in reading.devices:
                self._device(device, fams)
        self._event_series(fams)
        for vendor in sorted({v for v, _ in self._count}):
            fams["poolwatch_node_accelerators"].add_metric([vendor], self._count[(vendor, "up")])
            if self.owners.mode != "none":
                idle = self._count[(vendor, "idle")]
                fams["poolwatch_node_accelerators_idle"].add_metric([vendor], idle)
        for family in extra:  # vendor-only families: one block per name, whichever backend
            exposed = family.name + ("_total" if family.type == "counter" else "")
            fams[exposed].samples += family.samples
        self._views(fams)
        self._account(fams)
        yield from fams.values()
        if problems:
            raise PartialFailure("; ".join(problems))

    def _read(self, backend: Backend, required: bool, problems: list[str]) -> Reading | None:
        try:
            return backend.read()
        except BackendUnavailable as err:
            if required:
                problems.append(f"{backend.name}: {err}")
            else:
                log.info("%s not available on this node (%s); it stays off", backend.name, err)
                self._off.add(backend.name)
            return None
        except Exception as err:
            log.debug("%s failed", backend.name, exc_info=True)
            return Reading(problems=[f"{type(err).__name__}: {err}"])

    def _device(self, d: Device, fams: dict[str, Metric]) -> None:
        labels = d.labels()
        key = tuple(labels)
        was_up = self._was_up.get(key)
        if was_up is not None and was_up != d.up:
            self._events[(key, "recovered" if d.up else "lost")] += 1
            log.warning("%s %s %s", d.vendor, d.uuid, "recovered" if d.up else "lost")
        elif was_up is None and not d.up:
            self._events[(key, "lost")] += 1
            log.warning("%s %s is lost", d.vendor, d.uuid)
        self._was_up[key] = d.up
        fams[P + "info"].add_metric(
            [*labels, d.serial, d.bus_id, d.driver_version, d.firmware_version], 1
        )
        fams[P + "up"].add_metric(labels, 1 if d.up else 0)
        health = d.health_level if d.up else 3
        if health is not None:
            fams[P + "health_level"].add_metric(labels, health)
            fams[P + "healthy"].add_metric(labels, 1 if health == 0 else 0)
        if not d.up:
            return  # a lost device's readings are gone, not stale numbers
        for attr, family in _SIMPLE.items():
            value = getattr(d, attr)
            if value is not None:
                fams[family].add_metric(labels, value)
        if d.memory_total and d.memory_used is not None:
            fams[P + "memory_used_ratio"].add_metric(labels, d.memory_used / d.memory_total)
        for (error, scope), count in sorted(d.ecc_errors.items()):
            fams[P + "ecc_errors_total"].add_metric([*labels, error, scope], count)
        for cause, pages in sorted(d.retired_pages.items()):
            fams[P + "retired_pages"].add_metric([*labels, cause], pages)
        if d.processes is not None:
            fams[P + "processes"].add_metric(labels, len(d.processes))
        self._containers(d, fams)

    def _containers(self, d: Device, fams: dict[str, Metric]) -> None:
        owners = self.owners.owners((d.uuid, *d.aliases))
        if self.owners.mode == "cgroup" and d.processes:  # no kubelet: whose pids use it
            found = (self.owners.owner_of_pid(p.pid) for p in d.processes)
            owners = tuple(dict.fromkeys(o for o in found if o is not None))
        self._count[(d.vendor, "up")] += 1
        if owners:
            self._held[tuple(d.labels())] = owners
        else:
            self._count[(d.vendor, "idle")] += 1
        if self.owners.mode != "none":
            fams[P + "owners"].add_metric(d.labels(), len({(o.namespace, o.pod) for o in owners}))
        for owner in owners:
            labels = [*_owner_labels(owner), *d.labels()]
            if d.utilization is not None:
                fams["poolwatch_container_accelerator_utilization_ratio"].add_metric(
                    labels, d.utilization
                )
            if d.memory_total is not None:
                fams["poolwatch_container_accelerator_memory_total_bytes"].add_metric(
                    labels, d.memory_total
                )
            used = self._owner_memory(d, owner, len(owners))
            if used is not None:
                fams["poolwatch_container_accelerator_memory_used_bytes"].add_metric(labels, used)

    def _views(self, fams: dict[str, Metric]) -> None:
        """Copy each held device's gauges into the per-container view families, whichever
        backend produced them (NPU-only families included)."""
        held, self._held = self._held, {}
        self._seen_held = held
        if not held:
            return
        for view, source in self._view_sources.items():
            for sample in fams[source].samples:
                key = tuple(sample.labels[k] for k in _DEV_KEYS)
                for owner in held.get(key, ()):
                    fams[view].add_metric([*_owner_labels(owner), *key], sample.value)

    def _account(self, fams: dict[str, Metric]) -> None:
        """Add the time since the last collection to every held device's booked seconds, and to
        its idle seconds when it ran at 0 %. The interval is capped at twice the collector's, so
        a stalled exporter does not book hours it did not watch."""
        now = self.clock()
        dt = 0.0 if self._last_collect is None else now - self._last_collect
        dt = min(max(dt, 0.0), 2 * self.interval)
        self._last_collect = now
        util = {
            tuple(s.labels[k] for k in _DEV_KEYS): s.value
            for s in fams[P + "utilization_ratio"].samples
        }
        booked: dict[tuple[str, ...], list[float]] = {}
        for device, owners in self._seen_held.items():
            for owner in owners:
                key = (*_owner_labels(owner), *device)
                alloc, idle = self._booked.get(key, [0.0, 0.0])
                booked[key] = [alloc + dt, idle + (dt if util.get(device) == 0 else 0.0)]
        self._booked = booked
        for key, (alloc, idle) in sorted(booked.items()):
            fams["poolwatch_container_accelerator_allocated_seconds_total"].add_metric(
                list(key), alloc
            )
            fams["poolwatch_container_accelerator_idle_seconds_total"].add_metric(list(key), idle)

    def _owner_memory(self, d: Device, owner: Owner, n_owners: int) -> float | None:
        """The owner's processes' memory when the driver lists it per process and the pids map
        to the owner; the device's own figure when the owner is alone on it; else nothing."""
        pids = self.owners.pids_of(owner)
        if d.processes is not None and pids:
            mine = [p.memory_bytes for p in d.processes if p.pid in pids]
            if mine and all(m is not None for m in mine):
                return float(sum(m for m in mine if m is not None))
        return d.memory_used if n_owners == 1 else None

    def _event_series(self, fams: dict[str, Metric]) -> None:
        for (key, event), count in sorted(self._events.items()):
            fams[P + "events_total"].add_metric([*key, event], count)


def _owner_labels(owner: Owner) -> list[str]:
    return [owner.namespace, owner.pod, owner.container, owner.training_job]


def build_backends(settings: NodeExporterSettings) -> list[tuple[Backend, bool]]:
    """The backends the settings ask for; `on` makes a missing driver an error."""
    from ..accelerators.hccn_tool import HccnToolBackend
    from ..accelerators.npu_smi import NpuSmiBackend
    from ..accelerators.nvml import NvmlBackend

    out: list[tuple[Backend, bool]] = []
    if settings.gpu != "off":
        out.append((NvmlBackend(), settings.gpu == "on"))
    if settings.npu != "off":
        # Each npu-smi call gets half the collector's timeout, so the overview and one round of
        # per-chip views fit inside one run.
        acc = settings.collectors.accelerator
        timeout = acc.timeout / 2
        npu = NpuSmiBackend(
            settings.npu_smi, timeout=timeout, intervals=acc.npu_smi_intervals.model_dump()
        )
        out.append((npu, settings.npu == "on"))
        # hccn_tool is optional even with --npu on: inference cards (310/310P) have no RoCE
        # port and no hccn_tool. Huawei documents it as not safe to run concurrently, so one
        # call at a time. Budgets: npu-smi 0.75 and hccn_tool 0.2 of the collector's timeout
        # (each backend's reading stops at 1.5 and 2 x its per-call timeout), so a wedged
        # driver still lets the run finish, with what it measured, before the deadline.
        out.append((
            HccnToolBackend(
                settings.hccn_tool, timeout=acc.timeout / 10,
                dev_root=settings.roots.rootfs / "dev", max_workers=1,
                intervals=acc.hccn_tool_intervals.model_dump(),
            ),
            False,
        ))  # fmt: skip
    return out


@register("accelerator", lambda s: s.collectors.accelerator)
def _factory(settings: NodeExporterSettings) -> AcceleratorCollector:
    from ..attribution.pod_resources import shared_owners

    # The same mapping the pod_resources collector refreshes on its own schedule.
    return AcceleratorCollector(
        settings.collectors.accelerator,
        build_backends(settings),
        shared_owners(),
        frozenset(settings.compat),
    )
