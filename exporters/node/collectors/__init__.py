"""One module per collector; importing this package registers them all with the runner."""

from . import cache_dir, filesystem, host, infiniband, nfs

__all__ = ["cache_dir", "filesystem", "host", "infiniband", "nfs"]
