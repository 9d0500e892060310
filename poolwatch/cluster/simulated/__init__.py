"""The simulated implementation of the cluster interface (see `backend`): the embedded default.

`spec` (what to simulate), `state` (the mutable world and its frozen snapshots), `jobs`
(generator, gang placement, job lifecycle), `faults` (fault injection), `pools` (pool status rules,
events, quotas), `feed` (object store and watch stream), `persist` (save and resume),
`nodeview` (what one node's exporter would see; the demo renders it as metrics).
"""

from poolwatch.cluster.simulated.backend import SimulatedCluster

__all__ = ["SimulatedCluster"]
