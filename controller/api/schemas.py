"""Request bodies, as pydantic models, so the OpenAPI document describes them exactly.

Create-pool keeps the seed's field names (pool-api.md s3.8): `apiVersion`, `kind`,
`metadata.labels["os.modelarts/name"]`, `spec.type`, `spec.scope`, `spec.resources[].flavor` and
`.count`, `spec.driver.gpuVersion/npuVersion/updateStrategy`. poolwatch pools are made of existing
nodes, so each resource entry also takes a `nodeSelector` (a label selector over free nodes) and
`haSpares` (how many of those nodes start as HA redundant spares). Billing and network fields are
accepted and ignored: there is nothing to buy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from poolwatch.api.upgrade import GPU_DRIVER_VERSION, NPU_DRIVER_VERSION

from .views import NAME_MAX, NAME_PATTERN

MAX_CREATE_NODES = 30  # the seed's advice for one create request (000:L178, 001:L1108)
MAX_FLAVORS = 10  # specifications per pool (001:L1121)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolLabels(BaseModel):
    """The seed's two labels; other labels are kept as they are."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str = Field(alias="os.modelarts/name", pattern=NAME_PATTERN, max_length=NAME_MAX,
                      description="the pool name: lowercase letters, digits and hyphens, a "
                      "letter first, no hyphen last")  # fmt: skip
    workspace: str = Field("0", alias="os.modelarts/workspace.id", max_length=64)


class PoolMetadata(_Body):
    labels: PoolLabels
    annotations: dict[str, str] = Field(default_factory=dict)


class PoolResource(_Body):
    flavor: str = Field(
        min_length=1,
        max_length=128,
        description="node.kubernetes.io/instance-type of the nodes to take",
    )
    count: int = Field(ge=1, le=MAX_CREATE_NODES, description="nodes of this flavor")
    nodeSelector: str = Field(
        "", max_length=1024, description="label selector the free nodes must also match"
    )
    haSpares: int = Field(0, ge=0, description="of these nodes, how many start as HA spares")


def _shaped(pattern: str, example: str) -> Callable[[str | None], str | None]:
    """A validator whose message gives an example, not the regular expression."""

    def check(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"expected a driver version like {example}, got {value[:40]!r}")
        return value

    return check


class Driver(_Body):
    """The versions become a node label and the upgrade command's POOLWATCH_VERSION, so each must
    have its platform's shape (nothing else passes)."""

    gpuVersion: Annotated[str | None, AfterValidator(_shaped(GPU_DRIVER_VERSION, "535.161.08"))] = (
        Field(None, max_length=32, json_schema_extra={"pattern": GPU_DRIVER_VERSION},
              description="NVIDIA driver, e.g. 535.161.08")
    )  # fmt: skip
    npuVersion: Annotated[str | None, AfterValidator(_shaped(NPU_DRIVER_VERSION, "24.1.rc2"))] = (
        Field(None, max_length=32, json_schema_extra={"pattern": NPU_DRIVER_VERSION},
              description="Ascend HDK driver, e.g. 24.1.rc2")
    )  # fmt: skip
    updateStrategy: Literal["force", "idle"] = "idle"


class PoolSpecBody(_Body):
    type: Literal["Dedicate"] = "Dedicate"
    scope: list[Literal["Train", "Infer", "Notebook"]] = Field(min_length=1, max_length=3)
    resources: list[PoolResource] = Field(min_length=1, max_length=MAX_FLAVORS)
    network: dict[str, str] | None = None
    jobFlavors: list[str] = Field(default_factory=list)
    driver: Driver | None = None


class CreatePool(_Body):
    apiVersion: Literal["v2"] = "v2"
    kind: Literal["Pool"] = "Pool"
    metadata: PoolMetadata
    spec: PoolSpecBody


class DeleteNodes(_Body):
    deleteNodeNames: list[str] = Field(min_length=1, max_length=100)  # items: node names


class UpgradeRequest(_Body):
    """A rolling driver upgrade: the target version in `driver` (the create body's names), the
    mode as `driver.updateStrategy` (idle = secure, force = forcible) and the batch size as
    a percentage or a node count (default 25 %, the seed's example)."""

    driver: Driver
    batchPercent: float | None = Field(None, gt=0, le=100)
    batchNodes: int | None = Field(None, ge=1, le=10000)
    waitTimeoutSeconds: float = Field(24 * 3600.0, gt=0, le=30 * 24 * 3600.0)
