"""The one configuration model of a stack: every `ai-platform:*` key, plus `aws:region`.

Keys are camelCase exactly as they are written in `Pulumi.<stack>.yaml`. Defaults here must match
the `config:` section of `Pulumi.yaml` (a test holds them together).

Checks that involve several fields collect every problem of an object and raise them together
(see `problems()`), so one run reports everything that is wrong, each under its own key path.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .gpu_instances import AMI_ARCH, GPU_INSTANCE_TYPES, why_not_gpu

PROBLEMS_ERROR = "ai_platform_problems"


def problems(found: list[tuple[str, str]]) -> None:
    """Raise every (field, message) problem of one object at once; no-op when empty."""
    if found:
        raise PydanticCustomError(PROBLEMS_ERROR, "{count} problem(s)", {"count": len(found), "problems": found})


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


# --- reusable field types -------------------------------------------------------------------

def _cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "not a valid IPv4 CIDR ({reason})", {"reason": str(exc)}) from None
    return value


def _gpu_type(value: str) -> str:
    reason = why_not_gpu(value)
    if reason:
        raise PydanticCustomError("gpu_type", reason)
    return value


def _iam_role_arn(value: str) -> str:
    if not re.fullmatch(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise PydanticCustomError("arn", "not an IAM role ARN (arn:aws:iam::<account>:role/<name>): {value!r}", {"value": value})
    return value


def _duration(value: str) -> str:
    if not re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?", value) or not value:
        raise PydanticCustomError("duration", "not a duration like 10m or 1h30m: {value!r}", {"value": value})
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
GpuInstanceTypeName = Annotated[str, AfterValidator(_gpu_type)]
IamRoleArn = Annotated[str, AfterValidator(_iam_role_arn)]
Duration = Annotated[str, AfterValidator(_duration)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
NamespaceName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
CapacityType = Literal["ON_DEMAND", "SPOT"]
GpuAmiType = Literal[tuple(AMI_ARCH)]  # type: ignore[valid-type]


# --- network ---------------------------------------------------------------------------------

class ExistingVpcConfig(ConfigModel):
    vpcId: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]+$")]
    publicSubnetIds: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = []
    privateSubnetIds: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]], Field(min_length=2)]


class NetworkConfig(ConfigModel):
    vpcCidr: Cidr = "10.0.0.0/16"  # with existingVpc: that VPC's CIDR (NetworkPolicies allow it)
    availabilityZones: Annotated[list[str], Field(min_length=2, max_length=6)]
    natGateways: Literal["single", "perAz"] = "single"
    existingVpc: Optional[ExistingVpcConfig] = None

    @model_validator(mode="after")
    def _check(self):
        found = []
        net = ipaddress.IPv4Network(self.vpcCidr)
        if net.prefixlen > 20:
            found.append(("vpcCidr", f"must be /20 or larger to hold the subnets (got /{net.prefixlen})"))
        if len(set(self.availabilityZones)) != len(self.availabilityZones):
            found.append(("availabilityZones", f"lists a zone twice: {self.availabilityZones}"))
        problems(found)
        return self


def _scaling_problems(min_size: int, desired: int, max_size: int) -> list[tuple[str, str]]:
    found = []
    if max_size < min_size:
        found.append(("maxSize", f"must be >= minSize (got {max_size} < {min_size})"))
    if desired < min_size:
        found.append(("desiredSize", f"must be >= minSize (got {desired} < {min_size})"))
    elif desired > max_size:
        found.append(("desiredSize", f"must be <= maxSize (got {desired} > {max_size})"))
    return found


# --- cluster ---------------------------------------------------------------------------------

SUPPORTED_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


class SystemNodeGroupConfig(ConfigModel):
    instanceTypes: Annotated[list[str], Field(min_length=1)] = ["m6i.large"]
    capacityType: CapacityType = "ON_DEMAND"
    minSize: Annotated[int, Field(ge=1)] = 2
    desiredSize: Annotated[int, Field(ge=1)] = 2
    maxSize: Annotated[int, Field(ge=1)] = 4
    diskSizeGiB: Annotated[int, Field(ge=20)] = 50

    @model_validator(mode="after")
    def _check(self):
        problems(_scaling_problems(self.minSize, self.desiredSize, self.maxSize))
        return self


class ClusterConfig(ConfigModel):
    kubernetesVersion: Literal[SUPPORTED_KUBERNETES_VERSIONS] = "1.33"  # type: ignore[valid-type]
    endpointPublicAccess: bool = True
    endpointPrivateAccess: bool = True
    publicAccessCidrs: list[Cidr] = ["0.0.0.0/0"]
    adminRoleArns: list[IamRoleArn] = []
    logTypes: list[Literal[CONTROL_PLANE_LOG_TYPES]] = ["api", "audit", "authenticator"]  # type: ignore[valid-type]
    deletionProtection: bool = False
    systemNodeGroup: SystemNodeGroupConfig = SystemNodeGroupConfig()

    @model_validator(mode="after")
    def _check(self):
        found = []
        if not (self.endpointPublicAccess or self.endpointPrivateAccess):
            found.append(("endpointPrivateAccess", "at least one of endpointPublicAccess / endpointPrivateAccess must be true"))
        if self.endpointPublicAccess and not self.publicAccessCidrs:
            found.append(("publicAccessCidrs", "must list at least one CIDR when endpointPublicAccess is true"))
        if "audit" not in self.logTypes:
            found.append(("logTypes", "must include 'audit' (control-plane audit logs stay on)"))
        problems(found)
        return self


# --- GPU pools -------------------------------------------------------------------------------

# Imported here, not at the top: gpu_stack builds on ConfigModel/problems defined above.
from .gpu_stack import (  # noqa: E402
    ACCELERATOR_LABEL, DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF, GpuSharingConfig, GpuStackConfig, SLACK_WEBHOOK_KEY,
    SMTP_PASSWORD_KEY, sharing_problems, stack_problems,
)
from .triton import ModelRepositoryConfig, TritonDeploymentConfig, triton_problems  # noqa: E402
from .ci import CiRoleConfig  # noqa: E402
from .openwebui import OIDC_CLIENT_SECRET_KEY, ExposureConfig, OpenWebUiConfig, stack_problems as openwebui_problems  # noqa: E402

class GpuNodeGroupConfig(ConfigModel):
    name: DnsLabel
    instanceTypes: Annotated[list[GpuInstanceTypeName], Field(min_length=1)]
    capacityType: CapacityType = "ON_DEMAND"
    minSize: Annotated[int, Field(ge=0)] = 0
    desiredSize: Annotated[int, Field(ge=0)] = 0
    maxSize: Annotated[int, Field(ge=0)] = 2
    amiType: GpuAmiType = "AL2023_x86_64_NVIDIA"
    diskSizeGiB: Annotated[int, Field(ge=50, le=16384)] = 100
    labels: dict[str, str] = {}
    maxUnavailable: Annotated[int, Field(ge=1)] = 1
    sharing: Optional[GpuSharingConfig] = None

    @property
    def gpus_per_node(self) -> int:
        return GPU_INSTANCE_TYPES[self.instanceTypes[0]].gpus

    @model_validator(mode="after")
    def _check(self):
        found = _scaling_problems(self.minSize, self.desiredSize, self.maxSize)
        if self.maxSize == 0 and self.minSize == 0:
            found.append(("maxSize", "must be >= 1 (a pool with maxSize 0 can never run a node)"))
        types = [GPU_INSTANCE_TYPES[t] for t in self.instanceTypes]
        wrong_arch = [t.name for t in types if t.arch != AMI_ARCH[self.amiType]]
        if wrong_arch:
            found.append(("instanceTypes", f"{', '.join(wrong_arch)} cannot run amiType {self.amiType} ({AMI_ARCH[self.amiType]})"))
        if len({t.gpus for t in types}) > 1:
            counts = ", ".join(f"{t.name}={t.gpus}" for t in types)
            found.append(("instanceTypes", f"must all have the same GPU count so the pool can scale from zero (got {counts})"))
        if len(set(self.instanceTypes)) != len(self.instanceTypes):
            found.append(("instanceTypes", "lists an instance type twice"))
        reserved = [k for k in self.labels if k.startswith(("ai-platform/", "nvidia.com/")) or k == ACCELERATOR_LABEL]
        if reserved:
            found.append(("labels", f"{', '.join(reserved)}: the ai-platform/ and nvidia.com/ prefixes and "
                                    f"{ACCELERATOR_LABEL} are set by the platform"))
        found.extend(sharing_problems(self))
        problems(found)
        return self


# --- cluster autoscaler ----------------------------------------------------------------------

class ClusterAutoscalerConfig(ConfigModel):
    enabled: bool = True
    expander: Literal["least-waste", "priority", "random", "most-pods", "price"] = "least-waste"
    scaleDownUnneededTime: Duration = "10m"
    scaleDownDelayAfterAdd: Duration = "10m"
    scaleDownUtilizationThreshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Pending pods with a lower priority never cause a scale-up (--expendable-pods-priority-cutoff).
    # The platform's GPU pods (validation 0, Triton 100000) must stay at or above it.
    expendablePodsPriorityCutoff: Annotated[int, Field(ge=-2147483648, le=1000000000)] = DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF


# --- the stack -------------------------------------------------------------------------------

class StackConfig(ConfigModel):
    """Everything a stack can set. `region` comes from `aws:region`; the rest from `ai-platform:*`."""

    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    owner: Annotated[str, Field(min_length=1)] = "platform-team"
    costCenter: Annotated[str, Field(min_length=1)] = "ml-inference"
    protectData: bool = True
    network: NetworkConfig
    cluster: ClusterConfig = ClusterConfig()
    gpuNodeGroups: Annotated[list[GpuNodeGroupConfig], Field(min_length=1)]
    clusterAutoscaler: ClusterAutoscalerConfig = ClusterAutoscalerConfig()
    gpuStack: GpuStackConfig = GpuStackConfig()
    modelRepository: ModelRepositoryConfig = ModelRepositoryConfig()
    tritonDeployments: list[TritonDeploymentConfig] = []
    ciRole: CiRoleConfig = CiRoleConfig()
    alertSlackWebhookUrl: Optional[SecretStr] = None
    alertSmtpPassword: Optional[SecretStr] = None
    openWebUi: OpenWebUiConfig = OpenWebUiConfig()
    exposure: ExposureConfig = ExposureConfig()
    openWebUiOidcClientSecret: Optional[SecretStr] = None

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @model_validator(mode="after")
    def _check(self):
        found: list[tuple[str, Any]] = []
        seen: dict[str, int] = {}
        for index, pool in enumerate(self.gpuNodeGroups):
            if pool.name in seen:
                found.append((f"gpuNodeGroups[{index}].name", f"duplicate pool name {pool.name!r} (also gpuNodeGroups[{seen[pool.name]}])"))
            seen.setdefault(pool.name, index)
        foreign = [az for az in self.network.availabilityZones if not az.startswith(self.region)]
        if foreign:
            found.append(("network.availabilityZones", f"{', '.join(foreign)} not in region {self.region}"))
        found.extend(stack_problems(self))
        found.extend(triton_problems(self))
        found.extend(openwebui_problems(self))
        problems(found)
        return self


# Keys whose values must be Pulumi secrets (`pulumi config set --secret`). Filled by the sections
# that take secret values; the loader refuses them in plain text.
SECRET_KEYS: set[str] = {SLACK_WEBHOOK_KEY, SMTP_PASSWORD_KEY, OIDC_CLIENT_SECRET_KEY}

__all__ = ["StackConfig", "GpuNodeGroupConfig", "SecretStr", "SECRET_KEYS"]
