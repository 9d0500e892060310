"""A fake of the `pynvml` module at its function boundary, fed with values captured on real GPUs.

The backend under test receives this object where it would receive `pynvml`; constants and the
NVMLError class are the real module's, so error codes behave as they do on a GPU node. GPUs are
built from `nvidia-smi --query-gpu` CSV captures (tests/fixtures/nvidia/, sources noted there), so
the figures the tests expect are the ones the real tools printed. A field that the capture shows as
`[N/A]` raises NVML_ERROR_NOT_SUPPORTED, as NVML does on that GPU.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1 << 20


def _num(text: str) -> float | None:
    text = text.strip()
    if not text or text.startswith("["):
        return None
    return float(text.split()[0])


def read_query_csv(path: Path) -> list[dict[str, str]]:
    """nvidia-smi --query-gpu CSV -> one dict per GPU, keys without the unit suffix."""
    rows = list(csv.reader(path.read_text().splitlines()))
    keys = [k.strip().split(" [", 1)[0] for k in rows[0]]
    return [dict(zip(keys, (v.strip() for v in row), strict=True)) for row in rows[1:] if row]


@dataclass
class FakeGpu:
    q: dict[str, str]  # one row of a --query-gpu capture
    procs: list[tuple[int, int | None]] | None = None  # (pid, bytes)
    lost: bool = False
    mig_uuids: list[str] = field(default_factory=list)
    nvlink: dict[int, dict[int, int]] | None = None  # link -> counter -> value

    def get(self, key: str) -> float | None:
        return _num(self.q.get(key, "[N/A]"))


class FakeNvml(SimpleNamespace):
    """pynvml with its functions replaced; constants and NVMLError stay the real ones."""

    def __init__(self, gpus: list[FakeGpu], driver: str = "590.48.01", library: bool = True):
        consts = {
            k: v
            for k, v in vars(pynvml).items()
            if k.isupper() or k.startswith("nvmlEventType") or k == "nvmlMemory_v2"
        }
        super().__init__(**consts)
        self.NVMLError = pynvml.NVMLError
        self.gpus, self.driver, self.library = gpus, driver, library
        self.xid_queue: list[tuple[int, int]] = []  # (gpu index, xid)
        self.registered: set[int] = set()
        self.calls = 0

    # -- helpers ---------------------------------------------------------------------------------
    def _err(self, code: int) -> pynvml.NVMLError:
        return pynvml.NVMLError(code)

    def _gpu(self, handle: Any) -> FakeGpu:
        self.calls += 1
        gpu = self.gpus[handle]
        if gpu.lost:
            raise self._err(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _val(self, handle: Any, key: str) -> float:
        gpu = self._gpu(handle)
        if gpu.q.get(key) in ("ERR!", "[Unknown Error]"):  # how nvidia-smi prints a failed query
            raise self._err(pynvml.NVML_ERROR_UNKNOWN)
        value = gpu.get(key)
        if value is None:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    # -- the NVML functions the backend calls ----------------------------------------------------
    def nvmlInit(self) -> None:
        if not self.library:
            raise self._err(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        if isinstance(h, tuple):  # a MIG handle
            return self.gpus[h[0]].mig_uuids[h[1]]
        return self._gpu(h).q["uuid"]

    def nvmlDeviceGetName(self, h: Any) -> str:
        return self._gpu(h).q["name"]

    def nvmlDeviceGetSerial(self, h: Any) -> str:
        return self._gpu(h).q.get("serial", "")

    def nvmlDeviceGetVbiosVersion(self, h: Any) -> str:
        return self._gpu(h).q.get("vbios_version", "")

    def nvmlDeviceGetPciInfo(self, h: Any) -> Any:
        return SimpleNamespace(busId=self._gpu(h).q.get("pci.bus_id", "").encode())

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> Any:
        # NVML returns both figures in one call; a capture without utilization.memory (the A100
        # CSV) gets 0 there, and no test reads it from such a capture.
        memory = self._gpu(h).get("utilization.memory") or 0.0
        return SimpleNamespace(gpu=self._val(h, "utilization.gpu"), memory=memory)

    def nvmlDeviceGetEncoderUtilization(self, h: Any) -> list[float]:
        return [self._val(h, "utilization.encoder"), 167000]

    def nvmlDeviceGetDecoderUtilization(self, h: Any) -> list[float]:
        return [self._val(h, "utilization.decoder"), 167000]

    def nvmlDeviceGetMemoryInfo(self, h: Any, version: int | None = None) -> Any:
        """v2 reports reserved memory apart, as nvidia-smi prints it; v1 counts it as used."""
        total = self._val(h, "memory.total") * MIB
        used = self._val(h, "memory.used") * MIB
        reserved = (self._gpu(h).get("memory.reserved") or 0) * MIB
        free = self._gpu(h).get("memory.free")
        free = free * MIB if free is not None else total - used - reserved
        if version is None:
            return SimpleNamespace(total=int(total), used=int(used + reserved), free=int(free))
        return SimpleNamespace(
            total=int(total), reserved=int(reserved), used=int(used), free=int(free)
        )

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        return int(self._val(h, "temperature.gpu"))

    def nvmlDeviceGetFieldValues(self, h: Any, ids: list[int]) -> list[Any]:
        temp = self._gpu(h).get("temperature.memory")
        ret = 0 if temp is not None else pynvml.NVML_ERROR_NOT_SUPPORTED
        return [SimpleNamespace(nvmlReturn=ret, value=SimpleNamespace(uiVal=int(temp or 0)))]

    def nvmlDeviceGetClockInfo(self, h: Any, clock: int) -> int:
        key = "clocks.current.sm" if clock == pynvml.NVML_CLOCK_SM else "clocks.current.memory"
        return int(self._val(h, key))

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        return round(self._val(h, "power.draw") * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: Any) -> int:
        self._gpu(h)
        raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)  # not in the CSV captures

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return round(self._val(h, "enforced.power.limit") * 1000)

    def nvmlDeviceGetTotalEccErrors(self, h: Any, etype: int, counter: int) -> int:
        kind = "corrected" if etype == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else "uncorrected"
        scope = "volatile" if counter == pynvml.NVML_VOLATILE_ECC else "aggregate"
        return int(self._val(h, f"ecc.errors.{kind}.{scope}.total"))

    def nvmlDeviceGetMemoryErrorCounter(
        self, h: Any, etype: int, counter: int, location: int
    ) -> int:
        kind = "corrected" if etype == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else "uncorrected"
        scope = "volatile" if counter == pynvml.NVML_VOLATILE_ECC else "aggregate"
        where = {pynvml.NVML_MEMORY_LOCATION_REGISTER_FILE: "register_file",
                 pynvml.NVML_MEMORY_LOCATION_SRAM: "sram"}[location]  # fmt: skip
        return int(self._val(h, f"ecc.errors.{kind}.{scope}.{where}"))

    def nvmlDeviceGetRetiredPages(self, h: Any, cause: int) -> list[int]:
        key = (
            "retired_pages.single_bit_ecc.count" if cause == 0 else "retired_pages.double_bit.count"
        )
        return [0x1000 * i for i in range(int(self._val(h, key)))]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: Any) -> int:
        self._val(h, "retired_pages.pending")
        return 0

    def nvmlDeviceGetRemappedRows(self, h: Any) -> tuple[int, int, int, int]:
        q = self._gpu(h).q
        if q.get("remapped_rows.correctable", "[N/A]").startswith("["):
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return (
            int(q["remapped_rows.correctable"]), int(q["remapped_rows.uncorrectable"]),
            int(q["remapped_rows.pending"] == "Yes"), int(q["remapped_rows.failure"] == "Yes"),
        )  # fmt: skip

    def nvmlDeviceGetPcieReplayCounter(self, h: Any) -> int:
        self._gpu(h)
        return 0

    def nvmlDeviceGetNvLinkState(self, h: Any, link: int) -> int:
        gpu = self._gpu(h)
        if gpu.nvlink is None or link not in gpu.nvlink:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return pynvml.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkErrorCounter(self, h: Any, link: int, counter: int) -> int:
        nvlink = self._gpu(h).nvlink or {}
        return nvlink[link][counter]

    def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[Any]:
        gpu = self._gpu(h)
        if gpu.procs is None:
            raise self._err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in gpu.procs]

    def nvmlDeviceGetMigMode(self, h: Any) -> list[int]:
        on = bool(self._gpu(h).mig_uuids)
        return [int(on), int(on)]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: Any) -> int:
        return len(self._gpu(h).mig_uuids)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: Any, i: int) -> tuple[int, int]:
        return (h, i)

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, h: Any, types: int, es: Any) -> None:
        self.registered.add(h)

    def nvmlEventSetWait_v2(self, es: Any, timeout_ms: int) -> Any:
        if not self.xid_queue:
            raise self._err(pynvml.NVML_ERROR_TIMEOUT)
        index, xid = self.xid_queue.pop(0)
        return SimpleNamespace(device=index, eventData=xid, eventType=8)
