"""The node exporter's configuration model (YAML keys, POOLWATCH_* variables and flags).

Every setting has one name everywhere: YAML `collectors.nfs.timeout` is the environment variable
`POOLWATCH_COLLECTORS__NFS__TIMEOUT`. Defaults are what a node in a training pool needs; each
collector's interval and timeout are its own, so a slow cache-directory walk never delays the
fast host counters.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from poolwatch.core.catalog.hccn import HCCN_INTERVALS
from poolwatch.core.catalog.npu import NPU_SMI_INTERVALS
from poolwatch.core.config import Listen, parse_duration, split_listen

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
DEFAULT_PORT = 9476


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(value: str | None) -> str | None:
    if value:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from None
    return value


Regex = Annotated[str | None, BeforeValidator(_regex)]


class CollectorSettings(_Strict):
    enabled: bool = True
    interval: PositiveDuration = 15.0
    timeout: PositiveDuration = 10.0

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> CollectorSettings:
        if self.timeout > self.interval:
            raise ValueError("timeout must not exceed interval (a run may not overlap the next)")
        return self


class _IncludeExclude(CollectorSettings):
    """node_exporter's mutually exclusive include/exclude regex pairs."""

    include: Regex = None
    exclude: Regex = None

    @model_validator(mode="after")
    def _one_of(self) -> _IncludeExclude:
        if self.include and self.exclude:
            raise ValueError("set include or exclude, not both")
        return self

    def wants(self, name: str) -> bool:
        if self.include:
            return re.fullmatch(self.include, name) is not None
        if self.exclude:
            return re.fullmatch(self.exclude, name) is None
        return True


class HostSettings(CollectorSettings):
    network_device_exclude: Regex = r"lo|veth.*|cali.*|flannel.*|cni.*|docker\d*|br-.*"
    disk_device_exclude: Regex = r"(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+|dm-\d+|sr\d+"


class FilesystemPath(_Strict):
    path: Path
    purpose: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    required: bool = True
    require_mount: bool = False


def _default_fs_paths() -> list[FilesystemPath]:
    # The cache directory is added by NodeExporterSettings from `cache_dir`. The container engine
    # and kubelet directories are optional: a host without them simply has nothing to report.
    return [
        FilesystemPath(path=Path("/var/lib/containerd"), purpose="container", required=False),
        FilesystemPath(path=Path("/var/lib/docker"), purpose="container", required=False),
        FilesystemPath(path=Path("/var/lib/kubelet"), purpose="kubelet", required=False),
    ]


class FilesystemSettings(CollectorSettings):
    paths: list[FilesystemPath] = Field(default_factory=_default_fs_paths)
    mount_timeout: PositiveDuration = 5.0
    stat_workers: Annotated[int, Field(ge=1, le=64)] = 4


class CacheDirSettings(CollectorSettings):
    interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 45.0
    time_budget: PositiveDuration = 30.0
    max_entries: Annotated[int, Field(ge=1)] = 2_000_000
    max_dirs: Annotated[int, Field(ge=1)] = 500

    @model_validator(mode="after")
    def _budget_within_timeout(self) -> CacheDirSettings:
        if self.time_budget >= self.timeout:
            raise ValueError("time_budget must be shorter than timeout")
        return self


class NpuSmiIntervals(_Strict):
    """Seconds between two readings of each group of npu-smi detail views (0: every run).

    Every npu-smi call is a process; the overview is read every run regardless."""

    utilization: Duration = NPU_SMI_INTERVALS["utilization"]
    clocks: Duration = NPU_SMI_INTERVALS["clocks"]
    health: Duration = NPU_SMI_INTERVALS["health"]
    ecc: Duration = NPU_SMI_INTERVALS["ecc"]
    inventory: Duration = NPU_SMI_INTERVALS["inventory"]


class HccnToolIntervals(_Strict):
    """Seconds between two readings of each hccn_tool view (0: every run)."""

    link: Duration = HCCN_INTERVALS["link"]
    link_stat: Duration = HCCN_INTERVALS["link_stat"]
    stat: Duration = HCCN_INTERVALS["stat"]
    optical: Duration = HCCN_INTERVALS["optical"]


class AcceleratorSettings(CollectorSettings):
    """NVML and npu-smi calls can stall when a device misbehaves: the timeout bounds a run."""

    npu_smi_intervals: NpuSmiIntervals = Field(default_factory=NpuSmiIntervals)
    hccn_tool_intervals: HccnToolIntervals = Field(default_factory=HccnToolIntervals)
    # per-container copies of device gauges (poolwatch_container_accelerator_<gauge>): "needed"
    # keeps those a dashboard reads and those an enabled compat set has a seed name for, "all"
    # every one, "none" only utilisation and memory (always there)
    container_views: Literal["needed", "all", "none"] = "needed"


def _default_resources() -> list[str]:
    return ["nvidia.com/gpu", "nvidia.com/mig-*", "huawei.com/Ascend*"]


def _default_job_labels() -> list[str]:
    return [
        "training.kubeflow.org/job-name",  # Kubeflow PyTorchJob/TFJob/MPIJob
        "volcano.sh/job-name",  # Volcano vcjob
        "batch.kubernetes.io/job-name",  # batch/v1 Job
        "job-name",  # batch/v1 Job before Kubernetes 1.27
    ]


class PodResourcesSettings(CollectorSettings):
    """Who holds which device, from the kubelet's pod-resources API (v1)."""

    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    socket: Path = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
    resources: list[str] = Field(default_factory=_default_resources)  # fnmatch patterns
    job_labels: list[str] = Field(default_factory=_default_job_labels)  # [] switches labels off
    # The Kubernetes API for pod labels: this kubeconfig; unset, the in-cluster service account
    # when KUBERNETES_SERVICE_HOST is set, else none (training_job then comes from pod names)
    kubeconfig: Path | None = None


class ContainerSettings(CollectorSettings):
    """Per-container CPU, memory and disk I/O from cgroup v2."""

    cgroupfs: Path = Path("/sys/fs/cgroup")


class Collectors(_Strict):
    host: HostSettings = Field(default_factory=HostSettings)
    filesystem: FilesystemSettings = Field(default_factory=FilesystemSettings)
    cache_dir: CacheDirSettings = Field(default_factory=CacheDirSettings)
    infiniband: _IncludeExclude = Field(default_factory=_IncludeExclude)
    nfs: _IncludeExclude = Field(default_factory=_IncludeExclude)
    accelerator: AcceleratorSettings = Field(default_factory=AcceleratorSettings)
    pod_resources: PodResourcesSettings = Field(default_factory=PodResourcesSettings)
    container: ContainerSettings = Field(default_factory=ContainerSettings)


class Roots(_Strict):
    """Where the host's trees are; in a container they are mounted at /host/..."""

    procfs: Path = Path("/proc")
    sysfs: Path = Path("/sys")
    rootfs: Path = Path("/")


class NodeExporterSettings(_Strict):
    listen: Listen = f"0.0.0.0:{DEFAULT_PORT}"
    web_config_file: Path | None = None
    node: str = ""
    pool: str = ""
    pool_file: Path | None = None
    cache_dir: Path = Path("/cache")
    compat: list[Literal["modelarts"]] = Field(default_factory=list)
    gpu: Literal["auto", "on", "off"] = "auto"  # auto: NVML if it loads, quietly off if not
    npu: Literal["auto", "on", "off"] = "auto"  # auto: npu-smi if it is on PATH or at `npu_smi`
    npu_smi: str = "npu-smi"  # executable name or path; a wrapper works too
    # NIC link, RoCE and optical readings of NPU nodes; falls back to the driver's install path
    hccn_tool: str = "hccn_tool"
    stale_grace: Duration = 0.0
    roots: Roots = Field(default_factory=Roots)
    collectors: Collectors = Field(default_factory=Collectors)

    @field_validator("compat", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def listen_address(self) -> tuple[str, int]:
        return split_listen(self.listen)

    def node_name(self) -> str:
        """Config `node`, else the NODE_NAME the DaemonSet sets from the downward API, else host."""
        return self.node or os.environ.get("NODE_NAME", "") or socket.gethostname()

    def pool_name(self) -> str:
        """Config `pool`, else the first line of `pool_file` (a projected node label), else ''."""
        if self.pool or self.pool_file is None:
            return self.pool
        try:
            return self.pool_file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError):
            return ""

    def filesystem_paths(self) -> list[FilesystemPath]:
        """The cache directory first (required, purpose cache), then the configured paths."""
        cache = FilesystemPath(path=self.cache_dir, purpose="cache", required=True)
        return [cache, *(p for p in self.collectors.filesystem.paths if p.path != self.cache_dir)]
