"""Foundation layer: the network, the EKS cluster, the GPU node groups, the cluster add-ons that
others wait for (cluster-autoscaler, AWS Load Balancer Controller) and the CI role. It hands the
layers on top a typed ClusterContext."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi

from components.ci_role import CiRole, CiRoleArgs
from components.cluster import Cluster, ClusterArgs, SystemNodeGroupArgs
from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.exposure import ExposureSettings, LoadBalancerController, LoadBalancerControllerArgs, alb_source
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.karpenter import Karpenter, KarpenterArgs
from components.layers.context import ClusterContext, moved
from components.network import Network, NetworkArgs
from stack_config.gpu_stack import advertised_resources, gpu_node_labels
from stack_config.model import CiRoleConfig, ClusterAutoscalerConfig, ClusterConfig, GpuNodeGroupConfig, NetworkConfig
from stack_config.openwebui import ExposureConfig


@dataclass(frozen=True)
class FoundationArgs:
    stack: str
    region: str
    partition: str
    network: NetworkConfig
    cluster: ClusterConfig
    gpu_node_groups: tuple[GpuNodeGroupConfig, ...]
    cluster_autoscaler: ClusterAutoscalerConfig
    ci_role: CiRoleConfig
    exposure: ExposureConfig
    # nodeGroups: a managed node group per GPU pool + cluster-autoscaler; karpenter: a NodePool per pool.
    gpu_provisioner: str = "nodeGroups"
    keep_gpu_node_groups: bool = False  # karpenter: node groups stay beside the NodePools (moving between modes)
    tags: Mapping[str, str] = field(default_factory=dict)  # the provider's default tags, for Karpenter's nodes

    @property
    def karpenter(self) -> bool:
        return self.gpu_provisioner == "karpenter"

    @property
    def cluster_name(self) -> str:
        return f"ai-platform-{self.stack}"


def network_args(args: FoundationArgs) -> NetworkArgs:
    net, existing = args.network, args.network.existingVpc
    return NetworkArgs(
        cluster_name=args.cluster_name, region=args.region, vpc_cidr=net.vpcCidr,
        availability_zones=net.availabilityZones, nat_gateways=net.natGateways,
        existing_vpc_id=existing.vpcId if existing else None,
        existing_public_subnet_ids=tuple(existing.publicSubnetIds) if existing else (),
        existing_private_subnet_ids=tuple(existing.privateSubnetIds) if existing else (),
        karpenter_discovery=args.karpenter,
    )


def cluster_args(args: FoundationArgs, network: Network) -> ClusterArgs:
    cluster, system = args.cluster, args.cluster.systemNodeGroup
    return ClusterArgs(
        cluster_name=args.cluster_name, region=args.region, partition=args.partition,
        kubernetes_version=cluster.kubernetesVersion, vpc_id=network.vpc_id, private_subnet_ids=network.private_subnet_ids,
        endpoint_public_access=cluster.endpointPublicAccess, endpoint_private_access=cluster.endpointPrivateAccess,
        public_access_cidrs=cluster.publicAccessCidrs, log_types=cluster.logTypes,
        deletion_protection=cluster.deletionProtection, admin_role_arns=cluster.adminRoleArns,
        api_access_cidrs=cluster.apiAccessCidrs, api_access_security_group_ids=cluster.apiAccessSecurityGroupIds,
        system_node_group=SystemNodeGroupArgs(
            instance_types=system.instanceTypes, capacity_type=system.capacityType, min_size=system.minSize,
            desired_size=system.desiredSize, max_size=system.maxSize, disk_size_gib=system.diskSizeGiB,
        ),
    )


def gpu_node_group_args(args: FoundationArgs, pool: GpuNodeGroupConfig, cluster: Cluster, network: Network) -> GpuNodeGroupArgs:
    return GpuNodeGroupArgs(
        cluster_name=cluster.name, cluster_name_static=args.cluster_name, node_role_arn=cluster.node_role_arn,
        subnet_ids=network.private_subnet_ids, pool_name=pool.name, instance_types=pool.instanceTypes,
        capacity_type=pool.capacityType, min_size=pool.minSize, desired_size=pool.desiredSize, max_size=pool.maxSize,
        ami_type=pool.amiType, disk_size_gib=pool.diskSizeGiB,
        resources=advertised_resources(pool),  # time-slicing multiplies nvidia.com/gpu; mixed MIG: mig-<profile>
        max_unavailable=pool.maxUnavailable, extra_labels={**pool.labels, **gpu_node_labels(pool)},
        cluster=cluster,
    )


def autoscaler_args(args: FoundationArgs, cluster: Cluster, pools: list[GpuNodeGroup]) -> ClusterAutoscalerArgs:
    autoscaler = args.cluster_autoscaler
    return ClusterAutoscalerArgs(
        cluster_name=args.cluster_name, region=args.region, kubernetes_version=args.cluster.kubernetesVersion,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        node_group_arns=[pool.node_group_arn for pool in pools], expander=autoscaler.expander,
        scale_down_unneeded_time=autoscaler.scaleDownUnneededTime,
        scale_down_delay_after_add=autoscaler.scaleDownDelayAfterAdd,
        scale_down_utilization_threshold=autoscaler.scaleDownUtilizationThreshold,
        expendable_pods_priority_cutoff=autoscaler.expendablePodsPriorityCutoff,
    )


def karpenter_args(args: FoundationArgs, cluster: Cluster) -> KarpenterArgs:
    return KarpenterArgs(
        cluster_name=args.cluster_name, region=args.region, partition=args.partition, pools=args.gpu_node_groups,
        node_role_arn=cluster.node_role_arn, node_role_name=cluster.node_role_name,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        cluster_security_group_id=cluster.cluster_security_group_id, node_tags=dict(args.tags),
    )


def ci_role_args(args: FoundationArgs, cluster: Cluster) -> CiRoleArgs:
    config = args.ci_role
    return CiRoleArgs(
        stack=args.stack, partition=args.partition, repository=config.repository,
        branches=tuple(config.branches), environments=tuple(config.environments),
        policy_arns=tuple(config.policyArns), preview_role=config.previewRole,
        preview_policy_arns=tuple(config.previewPolicyArns),
        permissions_boundary_arn=config.permissionsBoundaryArn,
        oidc_provider_arn=config.oidcProviderArn, max_session_hours=config.maxSessionHours,
        # The roles get EKS access entries on this cluster (deploy: admin, preview: view).
        cluster_name=cluster.name if config.clusterAccess else None,
    )


class Foundation(pulumi.ComponentResource):
    """Pass the AWS provider in `opts.providers`; the children inherit it."""

    context: ClusterContext
    network: Network
    cluster: Cluster
    gpu_node_groups: list[GpuNodeGroup]  # empty with gpuProvisioner karpenter (unless keepGpuNodeGroups)
    karpenter: Optional[Karpenter]
    exports: dict[str, Any]

    def __init__(self, name: str, args: FoundationArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:layers:Foundation", name, None, opts)
        self.network = Network("network", network_args(args), moved(self))
        self.cluster = cluster = Cluster("cluster", cluster_args(args, self.network), moved(self))
        self.gpu_node_groups, self.karpenter = [], None
        capacity: tuple[pulumi.Resource, ...] = ()
        autoscaler = None  # scales a GPU pool up from zero (for the validation Jobs, too)
        if not args.karpenter or args.keep_gpu_node_groups:
            self.gpu_node_groups = [
                GpuNodeGroup(f"gpu-{pool.name}", gpu_node_group_args(args, pool, cluster, self.network), moved(self))
                for pool in args.gpu_node_groups
            ]
            capacity = tuple(self.gpu_node_groups)
        if args.karpenter:
            self.karpenter = Karpenter("karpenter", karpenter_args(args, cluster),
                                       pulumi.ResourceOptions(parent=self, providers=[cluster.k8s_provider], depends_on=[cluster]))
            autoscaler, capacity = self.karpenter.release, (*capacity, *self.karpenter.node_pools)
        elif args.cluster_autoscaler.enabled:
            autoscaler = ClusterAutoscaler("cluster-autoscaler", autoscaler_args(args, cluster, self.gpu_node_groups),
                                           moved(self, providers=[cluster.k8s_provider])).release
        self.exports = {}
        if args.ci_role.enabled:
            ci = CiRole("ci", ci_role_args(args, cluster), moved(self))
            self.exports["ciRoleArn"] = ci.deploy_role_arn
            if ci.preview_role_arn is not None:
                self.exports["ciPreviewRoleArn"] = ci.preview_role_arn
        self.context = self._context(args, autoscaler, capacity, self._load_balancer_controller(args))
        self.register_outputs({"clusterName": cluster.name})

    def _load_balancer_controller(self, args: FoundationArgs) -> Optional[pulumi.Resource]:
        """Before anything asks for a load balancer (Triton's internal NLB, the UIs' ALB): only it
        serves them, and Pulumi waits for their addresses."""
        if not args.exposure.loadBalancerController:
            return None
        cluster = self.cluster
        return LoadBalancerController("aws-load-balancer-controller", LoadBalancerControllerArgs(
            cluster_name=args.cluster_name, region=args.region, partition=args.partition, vpc_id=self.network.vpc_id,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        ), moved(self, cluster, providers=[cluster.k8s_provider])).release

    def _context(self, args: FoundationArgs, autoscaler: Optional[pulumi.Resource], capacity: tuple[pulumi.Resource, ...],
                 lb_controller: Optional[pulumi.Resource]) -> ClusterContext:
        exposure, net, cluster = args.exposure, args.network, self.cluster
        settings = ExposureSettings(
            scheme=exposure.scheme, certificate_arn=exposure.certificateArn, group_name=exposure.groupName,
            inbound_cidrs=list(exposure.inboundCidrs), controller=lb_controller,
        ) if exposure.certificateArn and lb_controller else None
        source = alb_source(exposure.scheme, net.vpcCidr, len(net.availabilityZones), net.existingVpc is not None,
                            tuple(exposure.albSourceCidrs)) if settings else None
        return ClusterContext(
            stack=args.stack, cluster_name=args.cluster_name, region=args.region, partition=args.partition,
            kubernetes_version=args.cluster.kubernetesVersion, vpc_cidr=net.vpcCidr, vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            cluster_security_group_id=cluster.cluster_security_group_id,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
            k8s_provider=cluster.k8s_provider, cluster=cluster, autoscaler=autoscaler,
            load_balancer_controller=lb_controller, gpu_node_groups=capacity,
            exposure=settings, alb_source=source,
        )
