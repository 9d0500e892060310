"""The Kubernetes implementation of the cluster interface (see `backend`).

`backend` (the `ClusterBackend` over the official client), `informer` (list + watch per resource),
`convert`, `jobs`, `podjobs` (API objects to the model), `state` (the informers' objects; pools
and plain-pod jobs derived), `read`/`write` (queries and node/job changes), `lease` (leader
election), `probe` (/readyz), `quantity` (resource quantities), `api` (the raw API client).
"""

from poolwatch.cluster.kubernetes.backend import KubernetesCluster

__all__ = ["KubernetesCluster"]
