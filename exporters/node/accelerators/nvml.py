"""NVIDIA GPUs through NVML (the `pynvml` module of nvidia-ml-py).

What dcgm-exporter's users complain about, and what this backend does instead:
- "not supported" and sentinel values reported as numbers: every call goes through `_get`, which
  turns NVML_ERROR_NOT_SUPPORTED / NO_PERMISSION / NOT_FOUND and all-ones sentinels into `None`,
  and the collector omits `None` fields;
- XID values that never reset: XIDs arrive as events (an NVML event set, drained every run without
  waiting) and are counted per code, with the time each code was last seen; nothing is sticky;
- stale data after a GPU falls off the bus: NVML_ERROR_GPU_IS_LOST on any call (or the GPU missing
  from the device count) turns the device into `up 0` with only its identity; other GPUs go on.
MIG: the parent GPU is reported (per-instance utilisation is not available through NVML); the MIG
devices' UUIDs become aliases, so pods holding a MIG slice are attributed to the parent GPU.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

from prometheus_client.core import Metric

from poolwatch.core import catalog

from .model import BackendUnavailable, Device, ProcessUse, Reading

log = logging.getLogger(__name__)
_SENTINELS = {0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, -1}
_DEV = ("vendor", "model", "index", "uuid")


class GpuLost(Exception):
    pass


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlBackend:
    name = "nvml"

    def __init__(self, nvml: ModuleType | Any | None = None) -> None:
        if nvml is None:
            import pynvml

            nvml = pynvml
        self.nvml = nvml
        self._ready = False
        self._driver = ""
        self._events: Any = None
        self._known: dict[str, Device] = {}  # index -> last identity, to report a lost GPU
        self._xid: Counter[tuple[str, str]] = Counter()  # (uuid, xid) -> count
        self._xid_last: dict[tuple[str, str], float] = {}
        self._registered: set[str] = set()
        self._query_errors = 0  # failed queries of the device being read (nvidia-smi's ERR!)
        self._ignored = {
            nvml.NVML_ERROR_NOT_SUPPORTED,
            nvml.NVML_ERROR_NO_PERMISSION,
            nvml.NVML_ERROR_NOT_FOUND,
            nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
            nvml.NVML_ERROR_INVALID_ARGUMENT,
        }

    # -- NVML plumbing ---------------------------------------------------------------------------
    def _init(self) -> None:
        n = self.nvml
        try:
            n.nvmlInit()
        except n.NVMLError as err:
            if err.value in (n.NVML_ERROR_LIBRARY_NOT_FOUND, n.NVML_ERROR_DRIVER_NOT_LOADED):
                raise BackendUnavailable(f"NVML: {err}") from None
            raise
        self._driver = _text(n.nvmlSystemGetDriverVersion())
        self._ready = True
        try:
            self._events = n.nvmlEventSetCreate()
        except n.NVMLError as err:
            log.info("NVML event set unavailable (%s): no XID counts", err)

    def _get(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call NVML; None for 'not supported' and sentinels, GpuLost for a lost GPU."""
        n = self.nvml
        try:
            value = fn(*args)
        except n.NVMLError as err:
            if err.value == n.NVML_ERROR_GPU_IS_LOST:
                raise GpuLost(str(err)) from None
            if err.value in self._ignored:
                return None
            log.debug("NVML %s failed: %s", getattr(fn, "__name__", fn), err)
            self._query_errors += 1
            return None
        if isinstance(value, int) and value in _SENTINELS:
            return None
        return value

    # -- one run ---------------------------------------------------------------------------------
    def read(self) -> Reading:
        if not self._ready:
            self._init()
        n = self.nvml
        reading = Reading()
        count = n.nvmlDeviceGetCount()
        seen = set()
        gpu_extra = {s.name: catalog.new_family(s.name) for s in _GPU_SPECS}
        for i in range(count):
            index = str(i)
            seen.add(index)
            try:
                handle = n.nvmlDeviceGetHandleByIndex(i)
                device = self._device(index, handle, gpu_extra)
            except GpuLost:
                device = self._lost(index)
            except n.NVMLError as err:
                if err.value != n.NVML_ERROR_GPU_IS_LOST:
                    reading.problems.append(f"GPU {index}: {err}")
                    continue
                device = self._lost(index)
            if device is not None:
                reading.devices.append(device)
        for index in sorted(set(self._known) - seen):  # gone from the count: fell off the bus
            lost = self._lost(index)
            if lost is not None:
                reading.devices.append(lost)
        self._drain_events()
        self._xid_series(gpu_extra)
        reading.extra = list(gpu_extra.values())
        return reading

    def _lost(self, index: str) -> Device | None:
        known = self._known.get(index)
        if known is None:
            return None  # never seen it working: nothing honest to say about it
        return Device(
            vendor="nvidia", model=known.model, index=index, uuid=known.uuid,
            serial=known.serial, bus_id=known.bus_id, driver_version=known.driver_version,
            firmware_version=known.firmware_version, up=False,
        )  # fmt: skip

    def _device(self, index: str, h: Any, extra: dict[str, Metric]) -> Device:
        n, g = self.nvml, self._get
        self._query_errors = 0
        uuid = _text(g(n.nvmlDeviceGetUUID, h) or f"gpu-{index}")
        pci = g(n.nvmlDeviceGetPciInfo, h)
        d = Device(
            vendor="nvidia",
            model=_text(g(n.nvmlDeviceGetName, h) or "unknown"),
            index=index,
            uuid=uuid,
            serial=_text(g(n.nvmlDeviceGetSerial, h) or ""),
            bus_id=_text(getattr(pci, "busId", "") or ""),
            driver_version=self._driver,
            firmware_version=_text(g(n.nvmlDeviceGetVbiosVersion, h) or ""),
            health_level=0,
            aliases=(index, f"nvidia{index}", *self._mig_uuids(h)),
        )
        self._known[index] = replace(d, aliases=())
        self._register_events(index, h)
        self._usage(d, h, extra)
        self._power(d, h, extra)
        self._memory_health(d, h, extra)
        self._links(d, h, extra)
        procs = g(n.nvmlDeviceGetComputeRunningProcesses, h)
        if procs is not None:
            d.processes = [ProcessUse(p.pid, _bytes_or_none(p.usedGpuMemory)) for p in procs]
        # FI-02 (A050102, "the nvidia-smi output contains ERR"): nvidia-smi prints ERR! for a
        # field whose NVML query returned an error that is not "not supported"; count those
        extra["poolwatch_gpu_query_errors"].add_metric(d.labels(), self._query_errors)
        return d

    def _usage(self, d: Device, h: Any, extra: dict[str, Metric]) -> None:
        n, g, labels = self.nvml, self._get, d.labels()
        util = g(n.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            d.utilization = util.gpu / 100.0
            extra["poolwatch_gpu_memory_copy_utilization_ratio"].add_metric(
                labels, util.memory / 100.0
            )
        for fn, family in (
            (n.nvmlDeviceGetEncoderUtilization, "poolwatch_gpu_encoder_utilization_ratio"),
            (n.nvmlDeviceGetDecoderUtilization, "poolwatch_gpu_decoder_utilization_ratio"),
        ):
            value = g(fn, h)
            if value is not None:
                extra[family].add_metric(labels, value[0] / 100.0)
        # The v2 call splits the driver's reserved memory out of `used`, as nvidia-smi does; v1
        # counts it as used (480 MiB on an idle H100, seen on real hardware). Old drivers: v1.
        v2 = getattr(n, "nvmlMemory_v2", None)
        mem = g(n.nvmlDeviceGetMemoryInfo, h, v2) if v2 else None
        if mem is None:
            mem = g(n.nvmlDeviceGetMemoryInfo, h)
        if mem is not None:
            d.memory_total, d.memory_used, d.memory_free = mem.total, mem.used, mem.free
        temp = g(n.nvmlDeviceGetTemperature, h, n.NVML_TEMPERATURE_GPU)
        d.temperature = float(temp) if temp is not None else None
        d.memory_temperature = self._field_uint(h, n.NVML_FI_DEV_MEMORY_TEMP)
        sm = g(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM)
        mem_clock = g(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_MEM)
        d.core_clock = sm * 1e6 if sm is not None else None
        d.memory_clock = mem_clock * 1e6 if mem_clock is not None else None

    def _power(self, d: Device, h: Any, extra: dict[str, Metric]) -> None:
        n, g = self.nvml, self._get
        mw = g(n.nvmlDeviceGetPowerUsage, h)
        d.power = mw / 1000.0 if mw is not None else None
        mj = g(n.nvmlDeviceGetTotalEnergyConsumption, h)
        d.energy = mj / 1000.0 if mj is not None else None
        limit = g(n.nvmlDeviceGetEnforcedPowerLimit, h)
        if limit is not None:
            extra["poolwatch_gpu_power_limit_watts"].add_metric(d.labels(), limit / 1000.0)

    def _memory_health(self, d: Device, h: Any, extra: dict[str, Metric]) -> None:
        n, g, labels = self.nvml, self._get, d.labels()
        for err_name, err_type in (
            ("corrected", n.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            ("uncorrected", n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            for scope, counter in (("volatile", n.NVML_VOLATILE_ECC),
                                   ("aggregate", n.NVML_AGGREGATE_ECC)):  # fmt: skip
                count = g(n.nvmlDeviceGetTotalEccErrors, h, err_type, counter)
                if count is not None:
                    d.ecc_errors[(err_name, scope)] = float(count)
        for cause, code in (
            ("single_bit", n.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS),
            ("double_bit", n.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR),
        ):
            pages = g(n.nvmlDeviceGetRetiredPages, h, code)
            if pages is not None:
                d.retired_pages[cause] = float(len(pages))
        pending = g(n.nvmlDeviceGetRetiredPagesPendingStatus, h)
        if pending is not None:
            extra["poolwatch_gpu_retired_pages_pending"].add_metric(
                labels, 1 if pending == n.NVML_FEATURE_ENABLED else 0
            )
        rows = g(n.nvmlDeviceGetRemappedRows, h)
        if rows is not None:
            corr, unc, is_pending, failed = rows
            extra["poolwatch_gpu_remapped_rows"].add_metric([*labels, "correctable"], corr)
            extra["poolwatch_gpu_remapped_rows"].add_metric([*labels, "uncorrectable"], unc)
            extra["poolwatch_gpu_remapped_rows_pending"].add_metric(labels, 1 if is_pending else 0)
            extra["poolwatch_gpu_remapped_rows_failed"].add_metric(labels, 1 if failed else 0)
        replays = g(n.nvmlDeviceGetPcieReplayCounter, h)
        if replays is not None:
            extra["poolwatch_gpu_pcie_replays_total"].add_metric(labels, replays)

    def _links(self, d: Device, h: Any, extra: dict[str, Metric]) -> None:
        n, g = self.nvml, self._get
        counters = (("replay", n.NVML_NVLINK_ERROR_DL_REPLAY),
                    ("recovery", n.NVML_NVLINK_ERROR_DL_RECOVERY),
                    ("crc_flit", n.NVML_NVLINK_ERROR_DL_CRC_FLIT),
                    ("crc_data", n.NVML_NVLINK_ERROR_DL_CRC_DATA))  # fmt: skip
        for link in range(n.NVML_NVLINK_MAX_LINKS):
            state = g(n.nvmlDeviceGetNvLinkState, h, link)
            if state is None:
                break  # no NVLink (PCIe card) or past the last link
            if state != n.NVML_FEATURE_ENABLED:
                continue
            for name, code in counters:
                value = g(n.nvmlDeviceGetNvLinkErrorCounter, h, link, code)
                if value is not None:
                    extra["poolwatch_gpu_nvlink_errors_total"].add_metric(
                        [*d.labels(), str(link), name], value
                    )

    def _field_uint(self, h: Any, field_id: int) -> float | None:
        values = self._get(self.nvml.nvmlDeviceGetFieldValues, h, [field_id])
        if not values:
            return None
        v = values[0]
        if v.nvmlReturn != 0:
            return None
        raw = v.value.uiVal
        return None if raw in _SENTINELS or raw == 0 else float(raw)

    def _mig_uuids(self, h: Any) -> list[str]:
        n, g = self.nvml, self._get
        mode = g(n.nvmlDeviceGetMigMode, h)
        if not mode or mode[0] != n.NVML_DEVICE_MIG_ENABLE:
            return []
        out = []
        for i in range(g(n.nvmlDeviceGetMaxMigDeviceCount, h) or 0):
            mig = g(n.nvmlDeviceGetMigDeviceHandleByIndex, h, i)
            if mig is not None:
                uuid = g(n.nvmlDeviceGetUUID, mig)
                if uuid:
                    out.append(_text(uuid))
        return out

    # -- XID events -------------------------------------------------------------------------------
    def _register_events(self, index: str, h: Any) -> None:
        n = self.nvml
        if self._events is None or index in self._registered:
            return
        self._registered.add(index)
        try:
            n.nvmlDeviceRegisterEvents(h, n.nvmlEventTypeXidCriticalError, self._events)
        except n.NVMLError as err:
            log.info("GPU %s: XID events not available (%s)", index, err)

    def _drain_events(self) -> None:
        """Take every pending XID event without waiting."""
        n = self.nvml
        if self._events is None:
            return
        for _ in range(1000):  # bounded: a storm of events must not hold the run
            try:
                event = n.nvmlEventSetWait_v2(self._events, 0)
            except n.NVMLError as err:
                if err.value != n.NVML_ERROR_TIMEOUT:
                    log.debug("NVML event wait failed: %s", err)
                return
            uuid = _text(self._get(n.nvmlDeviceGetUUID, event.device) or "")
            key = (uuid, str(event.eventData))
            self._xid[key] += 1
            self._xid_last[key] = time.time()

    def _xid_series(self, extra: dict[str, Metric]) -> None:
        by_uuid = {d.uuid: d for d in self._known.values()}
        for (uuid, xid), count in sorted(self._xid.items()):
            d = by_uuid.get(uuid)
            if d is None:
                continue
            labels = [*d.labels(), xid]
            extra["poolwatch_gpu_xid_errors_total"].add_metric(labels, count)
            extra["poolwatch_gpu_xid_last_timestamp_seconds"].add_metric(
                labels, self._xid_last[(uuid, xid)]
            )


def _bytes_or_none(value: object) -> float | None:
    if value is None or (isinstance(value, int) and value in _SENTINELS):
        return None
    return float(value)  # type: ignore[arg-type]


_GPU_SPECS = [s for s in catalog.ALL_SPECS if s.name.startswith("poolwatch_gpu_")]
