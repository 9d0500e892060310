"""PromQL fragments more than one board uses, so a fix lands everywhere at once.

Joins follow the catalog's keys: device series carry `node` and `uuid`; pod-attributed series
carry `namespace` and `training_job`, which join `poolwatch_training_job_info` (owner, queue,
job_type, accelerator_resource); cluster series carry `pool` and `node`.
"""

from __future__ import annotations

from .panels import DEV, RES

JOB_KEY = "namespace, training_job"


def job_info(where: str = "", by: str = "", pool: bool = True) -> str:
    """One series per job of the chosen kind, value 1, with the labels in `by`; `pool` False
    for boards without a pool variable (a virtual cluster spans pools)."""
    sel = RES.replace("resource", "accelerator_resource")
    sel = (sel if pool else sel.replace('pool=~"$pool", ', "")) + (", " + where if where else "")
    return f"max by ({JOB_KEY}{', ' + by if by else ''}) (poolwatch_training_job_info{{{sel}}})"


def running(expr: str, pool: bool = True) -> str:
    """`expr` (keyed by namespace and training_job) kept only for jobs now Running."""
    sel = 'pool=~"$pool", status="Running"' if pool else 'status="Running"'
    return f"({expr}) and on ({JOB_KEY}) (poolwatch_training_job_status{{{sel}}} == 1)"


def with_job_labels(expr: str, labels: str, where: str = "", pool: bool = True) -> str:
    """Copy job labels (owner, queue, ...) onto pod-attributed series of jobs of the kind."""
    return f"({expr}) * on ({JOB_KEY}) group_left ({labels}) {job_info(where, labels, pool)}"


def as_resource(expr: str) -> str:
    """Name job_info's accelerator_resource `resource`, the cluster series' label for it."""
    return f'label_replace({expr}, "resource", "$1", "accelerator_resource", "(.+)")'


def devices_held(metric: str, by: str) -> str:
    """Sum of a device metric over the devices some pod holds (owners > 0), 0 where none."""
    total = f"sum by ({by}) ({metric}{{{DEV}}})"
    held = f"sum by ({by}) ({metric}{{{DEV}}} and on (node, uuid) (poolwatch_accelerator_owners{{{DEV}}} > 0))"  # noqa: E501
    return f"({held}) or ({total} * 0)"


def node_ip(by: str = "node") -> str:
    """The node's IP as the scrape of its node exporter knows it.

    The catalog has no node address (poolwatch_cluster_node_info carries uid only), so this
    reads the target labels: `host_ip` where the scrape config copies the pod's host IP into it
    (Prometheus Operator: `__meta_kubernetes_pod_host_ip`), else the `instance` address without
    its port (a static or hostNetwork target). Neither present: the cell stays empty."""
    from_instance = (f'label_replace(poolwatch_node_accelerators{{{DEV}}}, "ip", "$1", "instance", '
                     '"(.*):[0-9]+")')  # fmt: skip
    return f'max by ({by}, ip) (label_replace({from_instance}, "ip", "$1", "host_ip", "(.+)"))'
