"""ACK "Quota" (资源配额监控大盘) [002:L123-L144]: one table per resource, repeated by resource.

The seed lists Quota(cpu), Quota(memory), Quota(nvidia.com/gpu), Quota(aliyun.com/gpu-mem) and
Quota(aliyun.com/gpu); the panel repeats over the `resource` variable, so every resource some
quota names gets its table (huawei.com/Ascend910 included) and none is hard-coded. A namespace
ResourceQuota names its resources `requests.<name>`; the variable strips that prefix and the
queries accept both spellings. Max and Used come from ResourceQuotas and Volcano queues, Min (the
guaranteed share) from queues, as an ElasticQuota's min. Queues are cluster-scoped
(namespace ""), so they show whichever namespace is chosen.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Repeat

from ..board import board, link, query_var
from ..panels import Col, table

UID = "poolwatch-ack-quota"
SEL = 'resource=~"(requests\\\\.)?$resource", namespace=~"($namespace)?"'
BY = "namespace, quota, resource"


def _quota_table():  # type: ignore[no-untyped-def]
    cols = [
        Col("Elastic Quota Name", label="quota"),
        Col("Namespace", label="namespace"),
        Col("Resource Name", label="resource"),
        Col("Max Quota", f"max by ({BY}) (poolwatch_quota_max{{{SEL}}})"),
        Col("Min Quota", f"max by ({BY}) (poolwatch_quota_min{{{SEL}}})"),
        Col("Used Quota", f"max by ({BY}) (poolwatch_quota_used{{{SEL}}})"),
    ]
    panel = table(
        "Quota($resource)",
        cols,
        "Limits and use of each quota of the resource; one table per resource.",
    )
    panel.repeat = Repeat(direction="v", variable="resource")
    return panel


def build() -> Dashboard:
    return board(
        UID, "poolwatch / ACK / Quota",
        "Max, min and used amount of every resource quota, one table per resource (ACK Quota "
        "dashboard).",
        ["ack"],
        [query_var("resource", "label_values(poolwatch_quota_max, resource)", "Resource",
                   regex="/^(?:requests\\.)?(.+)$/"),
         query_var("namespace", "label_values(poolwatch_quota_max, namespace)", "Namespace")],
        [(9, [(_quota_table(), 24)])],
        links=[link("Cluster", "poolwatch-ack-cluster"),
               link("TrainingJobs", "poolwatch-ack-training-jobs")],
    )  # fmt: skip
