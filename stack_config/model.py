"""The one configuration model of a stack: every `ai-platform:*` key, plus `aws:region`.

Keys are camelCase exactly as they are written in `Pulumi.<stack>.yaml`. This module holds the
network and cluster sections and assembles `StackConfig` from the section modules (`gpu_pools`,
`gpu_stack`, `triton`, `openwebui`, `ci`), which build on `base` and never import this module.
Defaults must match the `config:` section of `Pulumi.yaml` (a test holds them together).

Checks that involve several fields collect every problem of an object and raise them together
(see `base.problems()`), so one run reports everything that is wrong, each under its own key path.
Checks across sections take the typed sections they read; `StackConfig`'s validator calls them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal, Optional, Sequence

from pydantic import Field, SecretStr, model_validator

from .base import (
    PROBLEMS_ERROR, CapacityType, Cidr, ConfigModel, DnsLabel, Duration, IamRoleArn, NamespaceName, Region, problems,
    scaling_problems,
)
from .ci import CiRoleConfig
from .gateway import GatewayConfig, gateway_problems
from .gpu_pools import ClusterAutoscalerConfig, GpuAmiType, GpuInstanceTypeName, GpuNodeGroupConfig, GpuProvisioner
from .gpu_pools import provisioner_problems
from .gpu_stack import SLACK_WEBHOOK_KEY, SMTP_PASSWORD_KEY, GpuStackConfig
from .gpu_stack import stack_problems as gpu_stack_problems
from .model_builds import ModelBuildConfig, model_build_problems
from .openwebui import OIDC_CLIENT_SECRET_KEY, ExposureConfig, OpenWebUiConfig
from .openwebui import alb_source_problems, stack_problems as openwebui_problems
from .triton import ModelRepositoryConfig, TritonDeploymentConfig, triton_problems


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


def _inside(cidr: str, ranges: Sequence[ipaddress.IPv4Network]) -> bool:
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
        problems(scaling_problems(self.minSize, self.desiredSize, self.maxSize))
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


# --- the stack -------------------------------------------------------------------------------

class StackConfig(ConfigModel):
    """Everything a stack can set. `region` comes from `aws:region`; the rest from `ai-platform:*`."""

    region: Region
    owner: Annotated[str, Field(min_length=1)] = "platform-team"
    costCenter: Annotated[str, Field(min_length=1)] = "ml-inference"
    protectData: bool = True
    network: NetworkConfig
    cluster: ClusterConfig = ClusterConfig()
    gpuNodeGroups: Annotated[list[GpuNodeGroupConfig], Field(min_length=1)]
    clusterAutoscaler: ClusterAutoscalerConfig = ClusterAutoscalerConfig()
    gpuProvisioner: GpuProvisioner = "nodeGroups"
    # With gpuProvisioner karpenter: keep the GPU managed node groups (no autoscaler) while moving.
    keepGpuNodeGroups: bool = False
    gpuStack: GpuStackConfig = GpuStackConfig()
    modelRepository: ModelRepositoryConfig = ModelRepositoryConfig()
    tritonDeployments: list[TritonDeploymentConfig] = []
    modelBuilds: list[ModelBuildConfig] = []
    ciRole: CiRoleConfig = CiRoleConfig()
    alertSlackWebhookUrl: Optional[SecretStr] = None
    alertSmtpPassword: Optional[SecretStr] = None
    openWebUi: OpenWebUiConfig = OpenWebUiConfig()
    exposure: ExposureConfig = ExposureConfig()
    openWebUiOidcClientSecret: Optional[SecretStr] = None
    gateway: GatewayConfig = GatewayConfig()

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
        found.extend(provisioner_problems(self.gpuProvisioner, self.gpuNodeGroups, self.clusterAutoscaler,
                                          "clusterAutoscaler" in self.model_fields_set, self.keepGpuNodeGroups))
        found.extend(gpu_stack_problems(self.gpuStack, pools=self.gpuNodeGroups, autoscaler=self.clusterAutoscaler,
                                        triton=self.tritonDeployments, slack_webhook=self.alertSlackWebhookUrl,
                                        smtp_password=self.alertSmtpPassword, provisioner=self.gpuProvisioner))
        found.extend(triton_problems(self.tritonDeployments, pools=self.gpuNodeGroups,
                                     scheduling=self.gpuStack.scheduling, exposure=self.exposure))
        found.extend(model_build_problems(self.modelBuilds, self.tritonDeployments, self.gpuNodeGroups,
                                          self.gpuStack.scheduling.gpuQuotas))
        found.extend(openwebui_problems(self.openWebUi, self.exposure, region=self.region,
                                        oidc_client_secret=self.openWebUiOidcClientSecret))
        found.extend(gateway_problems(self.gateway, deployments=self.tritonDeployments, via_gateway=self.openWebUi.viaGateway,
                                      openwebui_enabled=self.openWebUi.enabled, hostname=self.exposure.gatewayHostname))
        found.extend(alb_source_problems(self.exposure, vpc_cidr=self.network.vpcCidr,
                                         brought_vpc=self.network.existingVpc is not None))
        problems(found)
        return self


def endpoint_problems(config: StackConfig) -> list[tuple[str, str]]:
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


def placeholder_cidrs(config: StackConfig) -> list[tuple[str, str]]:
    """(key, cidr) of every documentation-range CIDR (RFC 5737) in the API access lists: fine for an
    offline plan, refused by `pulumi up` and `platformctl preflight` (the deployer is not there)."""
    cluster = config.cluster
    found = []
    for key, cidrs in (("cluster.publicAccessCidrs", cluster.publicAccessCidrs if cluster.endpointPublicAccess else []),
                       ("cluster.apiAccessCidrs", cluster.apiAccessCidrs)):
        found += [(f"{key}[{i}]", c) for i, c in enumerate(cidrs) if _inside(c, DOCUMENTATION_RANGES)]
    return found


# Keys whose values must be Pulumi secrets (`pulumi config set --secret`): the top-level secret
# keys the sections name (gpu_stack: alerting, openwebui: OIDC); the loader refuses them in plain text.
SECRET_KEYS: set[str] = {SLACK_WEBHOOK_KEY, SMTP_PASSWORD_KEY, OIDC_CLIENT_SECRET_KEY}

# Names defined in other modules stay importable from here, where they used to be defined.
__all__ = [
    "CONTROL_PLANE_LOG_TYPES", "DOCUMENTATION_RANGES", "NON_PUBLIC_RANGES", "PROBLEMS_ERROR", "SECRET_KEYS",
    "SUPPORTED_KUBERNETES_VERSIONS", "CapacityType", "Cidr", "ClusterAutoscalerConfig", "ClusterConfig", "ConfigModel",
    "DnsLabel", "Duration", "ExistingVpcConfig", "GpuAmiType", "GpuInstanceTypeName", "GpuNodeGroupConfig",
    "IamRoleArn", "NamespaceName", "NetworkConfig", "SecretStr", "SecurityGroupId", "StackConfig",
    "SystemNodeGroupConfig", "endpoint_problems", "placeholder_cidrs", "problems",
]
