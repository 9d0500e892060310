"""The vendor-neutral reading of one device, and the interface every backend implements.

A backend turns its driver's view (NVML calls, npu-smi tables) into `Device` values; the accelerator
collector renders them into the `poolwatch_accelerator_*` families. A field left `None` means the
driver does not report it for this device ("not supported", "N/A", a sentinel): it is omitted from
the exposition, never exported as a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import Metric


@dataclass(frozen=True)
class ProcessUse:
    """A process holding device memory (pid in the host's namespace)."""

    pid: int
    memory_bytes: float | None = None


@dataclass
class Device:
    vendor: str  # "nvidia" | "huawei"
    model: str
    index: str
    uuid: str
    serial: str = ""
    bus_id: str = ""
    driver_version: str = ""
    firmware_version: str = ""
    up: bool = True  # False once the driver says the device is lost
    health_level: int | None = None  # 0 OK, 1 Warning, 2 Alarm, 3 Critical
    error_code: float | None = None
    utilization: float | None = None  # 0-1
    memory_total: float | None = None  # bytes
    memory_used: float | None = None
    memory_free: float | None = None
    temperature: float | None = None  # celsius
    memory_temperature: float | None = None
    power: float | None = None  # watts
    energy: float | None = None  # joules, counter
    core_clock: float | None = None  # hertz
    memory_clock: float | None = None
    # (error "corrected"|"uncorrected", scope "volatile"|"aggregate") -> count
    ecc_errors: dict[tuple[str, str], float] = field(default_factory=dict)
    retired_pages: dict[str, float] = field(default_factory=dict)  # cause -> pages
    processes: list[ProcessUse] | None = None
    # ids under which the kubelet may list this device (pod-resources device_ids)
    aliases: tuple[str, ...] = ()

    def labels(self) -> list[str]:
        return [self.vendor, self.model, self.index, self.uuid]


@dataclass
class Reading:
    """What one backend run produced: devices plus families only this vendor has."""

    devices: list[Device] = field(default_factory=list)
    extra: list[Metric] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # partial failures, e.g. one bad device
    # (tool, processes started) for a backend that runs a command per call (npu-smi, hccn_tool)
    processes: tuple[str, int] | None = None


class BackendUnavailable(Exception):
    """The vendor's driver or tool is not on this node (no libnvidia-ml, no npu-smi)."""


class Backend(Protocol):
    name: str  # "nvml" | "npu_smi"

    def read(self) -> Reading:
        """One reading of every device; raises BackendUnavailable or an error for a failed run."""
        ...
