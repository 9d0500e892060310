"""One module per collector; importing this package registers them all with the runner."""

from . import (
    accelerator,
    cache_dir,
    container,
    filesystem,
    host,
    infiniband,
    nfs,
    pod_resources,
)

__all__ = [
    "accelerator",
    "cache_dir",
    "container",
    "filesystem",
    "host",
    "infiniband",
    "nfs",
    "pod_resources",
]
