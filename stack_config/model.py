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
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]

# Ranges no client on the internet can come from: EKS refuses "reserved addresses" in
# publicAccessCidrs (EKS User Guide, config-cluster-endpoint), and a private network reaches the
# API through the private endpoint (apiAccessCidrs), never through the public one.
NON_PUBLIC_RANGES = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
))
# RFC 5737 documentation ranges: accepted as placeholders (the committed prod config ships one) so
# a plan can be made, but `pulumi up` and `platformctl preflight` refuse them (placeholder_cidrs()).
DOCUMENTATION_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


def _inside(cidr: str, ranges) -> bool:
    net = ipaddress.IPv4Network(cidr)
    return any(net.subnet_of(r) for r in ranges)
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
    # Admitted on TCP 443 to the EKS cluster security group, i.e. to the private endpoint: VPN,
    # peered / transit-gateway networks, a CI runner's subnet or security group.
    apiAccessCidrs: list[Cidr] = []
    apiAccessSecurityGroupIds: list[SecurityGroupId] = []
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
        private = [c for c in self.publicAccessCidrs if _inside(c, NON_PUBLIC_RANGES)]
        if private and self.endpointPublicAccess:
            found.append(("publicAccessCidrs", f"{', '.join(private)}: not internet address(es), so never the source of a "
                          "request to the public endpoint (EKS refuses reserved ranges); admit private networks to the "
                          "private endpoint with apiAccessCidrs"))
        if "0.0.0.0/0" in self.apiAccessCidrs:
            found.append(("apiAccessCidrs", "0.0.0.0/0 would open 443 on the cluster security group (the control plane "
                          "and every managed node) to anything routed into the VPC: list the networks that deploy"))
        if not self.endpointPrivateAccess and (self.apiAccessCidrs or self.apiAccessSecurityGroupIds):
            found.append(("endpointPrivateAccess", "must be true when apiAccessCidrs / apiAccessSecurityGroupIds are set "
                          "(they open the private endpoint)"))
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
        found.extend(endpoint_problems(self))
        found.extend(stack_problems(self))
        found.extend(triton_problems(self))
        found.extend(openwebui_problems(self))
        problems(found)
        return self


def endpoint_problems(config: "StackConfig") -> list[tuple[str, str]]:
    """A private-only API endpoint the deployer cannot reach. EKS's cluster security group admits
    only itself (EKS User Guide, sec-group-reqs), so without a public endpoint the Kubernetes
    provider of `pulumi up` needs a network admitted on 443 that is routed into the VPC, and a VPC
    this stack creates is connected to nothing while that same `pulumi up` runs."""
    cluster = config.cluster
    if cluster.endpointPublicAccess:
        if not cluster.endpointPrivateAccess and config.network.existingVpc is None and "0.0.0.0/0" not in cluster.publicAccessCidrs:
            # EKS User Guide, config-cluster-endpoint: without the private endpoint, publicAccessCidrs
            # must include the nodes' egress (the NAT gateways), whose addresses this stack creates.
            return [("cluster.endpointPrivateAccess", "false with publicAccessCidrs restricted: nodes would reach the "
                     "API from the NAT gateways' addresses, which this stack creates and so cannot be listed; nodes "
                     "would never join. Set cluster.endpointPrivateAccess: true")]
        return []
    public = ("set cluster.endpointPublicAccess: true with cluster.publicAccessCidrs listing your deployers' "
              "egress addresses (VPN, office, the CI runner's NAT)")
    if config.network.existingVpc is None:
        return [("cluster.endpointPublicAccess", "false in a VPC this stack creates: nothing can reach a private-only "
                 "API during the first `pulumi up` (no peering, transit gateway or VPN is attached to a VPC that "
                 f"does not exist yet). Either {public}, or set network.existingVpc to a VPC already connected to "
                 "your network and list those networks in cluster.apiAccessCidrs / cluster.apiAccessSecurityGroupIds")]
    if not (cluster.apiAccessCidrs or cluster.apiAccessSecurityGroupIds):
        return [("cluster.endpointPublicAccess", "false with no other way in: the cluster security group admits only "
                 "itself. List the networks that reach the VPC (VPN, peered, the CI runner's) in cluster.apiAccessCidrs "
                 f"and/or their security groups in cluster.apiAccessSecurityGroupIds, or {public}")]
    return []


def placeholder_cidrs(config: "StackConfig") -> list[tuple[str, str]]:
    """(key, cidr) of every documentation-range CIDR (RFC 5737) in the API access lists: fine for an
    offline plan, refused by `pulumi up` and `platformctl preflight` (the deployer is not there)."""
    cluster = config.cluster
    found = []
    for key, cidrs in (("cluster.publicAccessCidrs", cluster.publicAccessCidrs if cluster.endpointPublicAccess else []),
                       ("cluster.apiAccessCidrs", cluster.apiAccessCidrs)):
        found += [(f"{key}[{i}]", c) for i, c in enumerate(cidrs) if _inside(c, DOCUMENTATION_RANGES)]
    return found


# Keys whose values must be Pulumi secrets (`pulumi config set --secret`). Filled by the sections
# that take secret values; the loader refuses them in plain text.
SECRET_KEYS: set[str] = {SLACK_WEBHOOK_KEY, SMTP_PASSWORD_KEY, OIDC_CLIENT_SECRET_KEY}

__all__ = ["StackConfig", "GpuNodeGroupConfig", "SecretStr", "SECRET_KEYS"]
