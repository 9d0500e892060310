"""Kubernetes containers from cgroup paths, named from the kubelet's log directories.

Two readers share this module: the pod_resources collector's fallback (which process belongs to
which container, from `/proc/<pid>/cgroup`) and the container collector (which cgroup directory is
which container, from a bounded walk of the kubepods hierarchy).

Cgroup paths. The kubelet puts every pod under `kubepods`, one level per QoS class except
Guaranteed, then one cgroup per container:
- systemd driver: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
  cri-containerd-<id>.scope` (the uid's `-` written as `_`; Guaranteed pods sit directly in
  `kubepods.slice/kubepods-pod<uid>.slice`; runtimes prefix `cri-containerd-`, `docker-`, `crio-`);
- cgroupfs driver: `kubepods/burstable/pod<uid>/<id>` (Guaranteed: `kubepods/pod<uid>/<id>`).
Anything before `kubepods` is tolerated (kind's `kubelet.slice/kubelet-kubepods.slice`, a node in a
container), and so are cgroups nested inside a container's. CRI-O's `crio-conmon-<id>.scope` is its
monitor process, not the container: ignored.

Names. The pod-resources API is not asked here (it may be what is down). The kubelet writes
`/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log` for every container and links
`/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` to it, so a container id
gives (namespace, pod, container) and a pod uid gives (namespace, pod). A container id without a
link (logs rotated away, the directory not mounted) keeps the first 12 characters of its id as its
container name; an unknown pod uid gives namespace "" and the uid as the pod name. Namespaces and
pod names are DNS labels (no `_`), which is what makes the directory names unambiguous.

Training jobs. `job_of(pod)` derives a job from the pod name; `jobs(namespace, pod)`, when given,
replaces it (`attribution.pod_labels.TrainingJobs`: the pod's job label, else the name), so these
owners carry the same training_job as the pod-resources mapping.

Pod sandboxes (the `pause` process that holds the pod's namespaces) have a container cgroup but no
log link; they are recognised by their only process's comm and never reported as a container.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .owners import Owner

log = logging.getLogger(__name__)

ID_PREFIX = 12  # what `crictl ps` and `docker ps` show of a container id
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}"
_POD = re.compile(rf"(?:.*-)?pod({_UID})(?:\.slice)?")
_CONTAINER = re.compile(
    r"(?:(?:cri-containerd|containerd|docker|crio)-)?([0-9a-f]{64})(?:\.scope)?"
)


@dataclass(frozen=True)
class CgroupRef:
    """A cgroup under kubepods: the pod's uid and the container's id ("" for the pod's own)."""

    pod_uid: str
    container_id: str


def parse_cgroup_path(path: str) -> CgroupRef | None:
    """A cgroup path (absolute, or relative to the cgroupfs root) -> its pod and container."""
    parts = [p for p in path.split("/") if p]
    start = next((i for i, p in enumerate(parts) if "kubepods" in p), None)
    if start is None:
        return None
    for i in range(start, len(parts)):
        pod = _POD.fullmatch(parts[i])
        if pod is None:
            continue
        uid = pod.group(1).replace("_", "-")
        if i + 1 == len(parts):
            return CgroupRef(uid, "")
        container = _CONTAINER.fullmatch(parts[i + 1])
        return CgroupRef(uid, container.group(1)) if container else None
    return None


def parse_proc_cgroup(text: str) -> CgroupRef | None:
    """`/proc/<pid>/cgroup` (v2 `0::/path`, or v1 `N:controllers:/path` lines) -> the container."""
    for line in text.splitlines():
        _, _, path = line.partition(":")
        _, _, path = path.partition(":")
        ref = parse_cgroup_path(path)
        if ref is not None:
            return ref
    return None


def read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def is_pause(procfs: Path, pid: int) -> bool:
    """True when `pid` is a pod sandbox's pause process (comm `pause`)."""
    try:
        return read_text(procfs / str(pid) / "comm").strip() == "pause"
    except OSError:
        return False


def _dirs(path: Path | str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                yield e
        except OSError:
            continue


_SAID_NO_PODS: set[Path] = set()


class PodNames:
    """Pod uid and container id -> names, from `/var/log/pods` and `/var/log/containers`."""

    def __init__(
        self,
        pods_dir: Path,
        containers_dir: Path,
        job_of: Callable[[str], str] = lambda _: "",
        jobs: Callable[[str, str], str] | None = None,
    ) -> None:
        self.pods_dir, self.containers_dir, self.job_of = pods_dir, containers_dir, job_of
        # (namespace, pod) -> training job; by default the name-based job_of
        self.jobs: Callable[[str, str], str] = jobs or (lambda _namespace, pod: job_of(pod))
        self._pods: dict[str, tuple[str, str]] = {}  # uid -> (namespace, pod)
        self._uids: dict[tuple[str, str], str] = {}  # (namespace, pod) -> uid
        self._containers: dict[str, tuple[str, str, str]] = {}  # id -> (namespace, pod, container)
        self._warned = False

    def refresh(self) -> None:
        pods: dict[str, tuple[str, str]] = {}
        for entry in _dirs(self.pods_dir):
            parts = entry.name.split("_")
            if len(parts) == 3 and all(parts):
                pods[parts[2]] = (parts[0], parts[1])
        containers: dict[str, tuple[str, str, str]] = {}
        try:
            with os.scandir(self.containers_dir) as it:
                links = [e.name for e in it]
        except OSError:
            links = []
        for name in links:
            head, _, cid = name.removesuffix(".log").rpartition("-")
            parts = head.split("_", 2)
            if len(cid) == 64 and len(parts) == 3 and all(parts):
                pod, namespace, container = parts
                containers[cid] = (namespace, pod, container)
        if not pods and not self._warned and self.pods_dir not in _SAID_NO_PODS:
            _SAID_NO_PODS.add(self.pods_dir)  # two collectors read the same dir: say it once
            log.info("no pod log directories under %s: pods are named by uid", self.pods_dir)
            self._warned = True
        self._pods, self._containers = pods, containers
        self._uids = {names: uid for uid, names in pods.items()}

    def uid_of(self, namespace: str, pod: str) -> str:
        return self._uids.get((namespace, pod), "")

    def owner(self, ref: CgroupRef) -> Owner:
        """The names of a container (or, with container_id "", of the pod with container "")."""
        known = self._containers.get(ref.container_id) if ref.container_id else None
        if known is not None:
            namespace, pod, container = known
        elif ref.pod_uid in self._pods:
            (namespace, pod), container = self._pods[ref.pod_uid], ref.container_id[:ID_PREFIX]
        else:
            return Owner("", ref.pod_uid, ref.container_id[:ID_PREFIX], "", ref.pod_uid)
        return Owner(namespace, pod, container, self.jobs(namespace, pod), ref.pod_uid)


def container_cgroups(
    root: Path, max_dirs: int = 20_000
) -> tuple[list[tuple[Path, CgroupRef]], bool]:
    """Container cgroup directories under `root` (a cgroup v2 mount), and whether the walk stopped
    at `max_dirs` directories. Only the kubepods hierarchy is walked, plus two levels above it to
    find it when it is nested (kind, a node in a container)."""
    found, truncated = container_cgroup_paths(str(root), max_dirs)
    return [(Path(p), ref) for p, ref in found], truncated


def container_cgroup_paths(
    root: str, max_dirs: int = 20_000
) -> tuple[list[tuple[str, CgroupRef]], bool]:
    """`container_cgroups` with plain string paths: the walk runs every collection over a few
    hundred directories, and pathlib's parsing was most of its cost."""
    found: list[tuple[str, CgroupRef]] = []
    budget = max_dirs
    cut = len(root.rstrip("/")) + 1
    stack: list[tuple[str, int, bool]] = [(root, 0, False)]
    while stack:
        path, depth, inside = stack.pop()
        for entry in sorted(_dirs(path), key=lambda e: e.name, reverse=True):
            budget -= 1
            if budget < 0:
                return found, True
            child = entry.path
            kube = inside or "kubepods" in entry.name
            if kube:
                ref = parse_cgroup_path(child[cut:])
                if ref is not None and ref.container_id:
                    found.append((child, ref))
                elif depth < 8:
                    stack.append((child, depth + 1, True))
            elif depth < 2:
                stack.append((child, depth + 1, False))
    return found, False


def read_small(path: str) -> str:
    """A small procfs/cgroupfs file as text, with no pathlib or text-wrapper overhead (the
    container collector reads about ten of them per container per collection)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


class PodIndex:
    """Which host pid runs in which container, from `/proc/<pid>/cgroup`; refreshed on demand."""

    def __init__(
        self,
        procfs: Path,
        pods_dir: Path,
        containers_dir: Path | None = None,
        job_of: Callable[[str], str] = lambda _: "",
        jobs: Callable[[str, str], str] | None = None,
    ) -> None:
        self.procfs = procfs
        self.names = PodNames(
            pods_dir, containers_dir or pods_dir.parent / "containers", job_of, jobs
        )
        self._by_pid: dict[int, Owner] = {}

    def refresh(self) -> None:
        """Rescan. Raises OSError when procfs itself cannot be listed; a process that exits
        during the scan is simply not in the result."""
        self.names.refresh()
        with os.scandir(self.procfs) as it:
            pids = [int(e.name) for e in it if e.name.isdigit()]
        by_pid: dict[int, Owner] = {}
        sandbox: dict[str, bool] = {}
        owners: dict[CgroupRef, Owner] = {}
        for pid in pids:
            try:
                ref = parse_proc_cgroup(read_text(self.procfs / str(pid) / "cgroup"))
            except OSError:
                continue
            if ref is None or not ref.container_id:
                continue
            if ref.container_id not in sandbox:  # a sandbox cgroup holds only its pause process
                sandbox[ref.container_id] = is_pause(self.procfs, pid)
            if sandbox[ref.container_id]:
                continue
            if ref not in owners:
                owners[ref] = self.names.owner(ref)
            by_pid[pid] = owners[ref]
        self._by_pid = by_pid

    def pids_by_owner(self) -> dict[Owner, frozenset[int]]:
        out: dict[Owner, set[int]] = {}
        for pid, owner in self._by_pid.items():
            out.setdefault(owner, set()).add(pid)
        return {owner: frozenset(pids) for owner, pids in out.items()}

    def owner_of_pid(self, pid: int) -> Owner | None:
        return self._by_pid.get(pid)
