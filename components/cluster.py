"""EKS cluster: control plane, IRSA, core add-ons, system node group, storage classes and the
Kubernetes provider that everything on the cluster is created with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.iam import irsa_trust_policy, managed_policy_arn, service_trust_policy

SYSTEM_NODE_LABEL = {"ai-platform/node-role": "system"}


@dataclass(frozen=True)
class SystemNodeGroupArgs:
    instance_types: list[str]
    capacity_type: str
    min_size: int
    desired_size: int
    max_size: int
    disk_size_gib: int


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    region: str
    partition: str
    kubernetes_version: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    endpoint_public_access: bool
    endpoint_private_access: bool
    public_access_cidrs: list[str]
    log_types: list[str]
    deletion_protection: bool
    system_node_group: SystemNodeGroupArgs
    admin_role_arns: list[str] = field(default_factory=list)
    log_retention_days: int = 90
    # Admitted on 443 to the cluster security group (the private endpoint's ENIs).
    api_access_cidrs: list[str] = field(default_factory=list)
    api_access_security_group_ids: list[str] = field(default_factory=list)


def block_device_mappings(disk_size_gib: int, ami_type: str) -> list[dict]:
    """EBS volumes of a node (Kubernetes-free spelling of the launch template's mappings): encrypted
    gp3, `disk_size_gib` on the volume container images and pods' ephemeral storage live on.

    AL2023 keeps everything on its root volume `/dev/xvda`. Bottlerocket has two: `/dev/xvda` holds
    the OS (left at the AMI's size) and `/dev/xvdb` is the data volume mounted at /local for images
    and containers (bottlerocket README "Default Volumes"; karpenter-provider-aws
    pkg/providers/amifamily/bottlerocket.go maps /dev/xvda 4Gi + /dev/xvdb), 20 GiB unless mapped.
    """
    encrypted = {"volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"}
    if ami_type.startswith("BOTTLEROCKET"):
        return [
            {"device_name": "/dev/xvda", "ebs": dict(encrypted)},
            {"device_name": "/dev/xvdb", "ebs": {"volume_size": disk_size_gib, **encrypted}},
        ]
    return [{"device_name": "/dev/xvda", "ebs": {"volume_size": disk_size_gib, **encrypted}}]


def node_launch_template(name: str, disk_size_gib: int, tags: dict[str, str], opts: pulumi.ResourceOptions,
                         ami_type: str = "AL2023_x86_64_STANDARD") -> aws.ec2.LaunchTemplate:
    """Launch template shared by managed node groups: IMDSv2 only with a hop limit of 1, so pods
    cannot reach the node's instance credentials, and encrypted gp3 volumes sized for images
    (`block_device_mappings`)."""
    return aws.ec2.LaunchTemplate(
        name,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
        ),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=mapping["device_name"], ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(**mapping["ebs"]),
            )
            for mapping in block_device_mappings(disk_size_gib, ami_type)
        ],
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type="instance", tags=tags)],
        update_default_version=True,
        opts=opts,
    )


def kubeconfig_for(cluster_name: str, region: str, endpoint: str, certificate_authority: str) -> str:
    """Kubeconfig that authenticates with `aws eks get-token` (no long-lived credentials in it)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        }}}],
    })


API_PORT = 443


def api_access_rules(
    name: str, cluster_security_group_id: pulumi.Input[str], cidrs: list[str], security_group_ids: list[str],
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """`<name>-api-access-<n>`: TCP 443 into the EKS cluster security group from each CIDR, then each
    security group. EKS creates that group admitting only itself and attaches it to the private
    endpoint's network interfaces (and managed nodes), so these rules are what lets a VPN, a peered
    network or a CI runner reach a private endpoint (EKS User Guide: cluster-endpoint, "Accessing a
    private only API server"; sec-group-reqs)."""
    sources = [{"cidr_ipv4": c} for c in cidrs] + [{"referenced_security_group_id": g} for g in security_group_ids]
    return [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-access-{index}",
            security_group_id=cluster_security_group_id,
            ip_protocol="tcp",
            from_port=API_PORT,
            to_port=API_PORT,
            description="Kubernetes API (private endpoint) from a configured deployer network",
            opts=opts,
            **source,
        )
        for index, source in enumerate(sources)
    ]


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]  # issuer host/path without https://, as IRSA conditions use it
    kubeconfig: pulumi.Output[str]  # secret
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    k8s_provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = self._control_plane(name, args)
        # Created by EKS with the cluster, so unknown until then: read together with the ARN, which a
        # preview (and the offline plan's mocks, which echo vpcConfig's inputs) also leaves unknown.
        cluster_security_group_id = pulumi.Output.all(cluster.arn, cluster.vpc_config).apply(lambda a: a[1].cluster_security_group_id)
        access_rules = api_access_rules(
            name, cluster_security_group_id,
            list(args.api_access_cidrs) if args.endpoint_private_access else [],
            list(args.api_access_security_group_ids) if args.endpoint_private_access else [],
            child,
        )
        self._admins(name, args, cluster)
        oidc = self._oidc(name, cluster)
        node_role, system_nodes = self._system_nodes(name, args, cluster)
        post_node_addons = self._post_node_addons(name, args, cluster, oidc, system_nodes)
        kubeconfig = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda ca: ca.data)).apply(
            lambda parts: kubeconfig_for(parts[0], args.region, parts[1], parts[2])
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            # The rules admitting the deployer exist before the first call to the API.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes, *post_node_addons, *access_rules]),
        )
        self._storage_classes(name)
        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.node_role_arn = node_role.arn
        self.node_role_name = node_role.name
        self.cluster_security_group_id = cluster_security_group_id
        self.register_outputs({
            "name": self.name,
            "endpoint": self.endpoint,
            "oidcProviderArn": self.oidc_provider_arn,
            "kubeconfig": self.kubeconfig,
        })

    def _control_plane(self, name: str, args: ClusterArgs) -> aws.eks.Cluster:
        """The EKS cluster with its role, Secrets encryption key and control-plane log group."""
        child = pulumi.ResourceOptions(parent=self)
        partition = args.partition
        cluster_role = aws.iam.Role(f"{name}-cluster", assume_role_policy=service_trust_policy("eks.amazonaws.com"), opts=child)
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=cluster_role.name,
            policy_arn=managed_policy_arn(partition, "AmazonEKSClusterPolicy"), opts=child,
        )

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes Secrets in {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=child,
        )
        aws.kms.Alias(f"{name}-secrets", name=f"alias/{args.cluster_name}-secrets", target_key_id=secrets_key.key_id, opts=child)

        # Created by us (not implicitly by EKS) so retention is set and the group is removed with the stack.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=child,
        )

        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_public_access=args.endpoint_public_access,
                endpoint_private_access=args.endpoint_private_access,
                public_access_cidrs=args.public_access_cidrs if args.endpoint_public_access else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
            ),
            enabled_cluster_log_types=args.log_types,
            deletion_protection=args.deletion_protection,
            bootstrap_self_managed_addons=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy, log_group]),
        )

        return cluster

    def _admins(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster) -> None:
        child = pulumi.ResourceOptions(parent=self)
        partition = args.partition
        for index, role_arn in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(f"{name}-admin-{index}", cluster_name=cluster.name, principal_arn=role_arn, type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
            )


    def _oidc(self, name: str, cluster: aws.eks.Cluster) -> aws.iam.OpenIdConnectProvider:
        """The cluster's OIDC provider for IRSA (sets oidc_provider_arn, oidc_issuer)."""
        child = pulumi.ResourceOptions(parent=self)
        issuer_url = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = oidc.url.apply(lambda url: url.removeprefix("https://"))

        return oidc

    def _system_nodes(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster) -> tuple[aws.iam.Role, aws.eks.NodeGroup]:
        """The node role, the add-ons nodes need to become Ready, and the system node group."""
        child = pulumi.ResourceOptions(parent=self)
        partition = args.partition
        node_role = aws.iam.Role(f"{name}-node", assume_role_policy=service_trust_policy("ec2.amazonaws.com"), opts=child)
        node_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=node_role.name, policy_arn=managed_policy_arn(partition, policy), opts=child)
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore")
        ]

        # vpc-cni and kube-proxy must exist before nodes can become Ready; the rest needs nodes.
        # The VPC CNI enforces NetworkPolicies only with its network policy agent switched on; without
        # it every policy the platform creates would be accepted by the API and silently do nothing.
        addon_config = {"vpc-cni": json.dumps({"enableNetworkPolicy": "true"})}
        pre_node_addons = [
            aws.eks.Addon(
                f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon,
                configuration_values=addon_config.get(addon),
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", opts=child,
            )
            for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
        ]

        system = args.system_node_group
        system_lt = node_launch_template(f"{name}-system", system.disk_size_gib, {"Name": f"{args.cluster_name}-system"}, child)
        system_nodes = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_group_name_prefix=f"{args.cluster_name}-system-",
            node_role_arn=node_role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=system.instance_types,
            capacity_type=system.capacity_type,
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=system.min_size, desired_size=system.desired_size, max_size=system.max_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=system_lt.id, version=system_lt.latest_version.apply(str)),
            labels=SYSTEM_NODE_LABEL,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*node_policies, *pre_node_addons],
                # The autoscaler owns desiredSize once the group exists.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

        return node_role, system_nodes

    def _post_node_addons(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster, oidc: aws.iam.OpenIdConnectProvider,
                          system_nodes: aws.eks.NodeGroup) -> list[aws.eks.Addon]:
        """The add-ons that run on nodes: CoreDNS and the EBS CSI driver (with its IRSA role)."""
        child = pulumi.ResourceOptions(parent=self)
        partition = args.partition
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=irsa_trust_policy(oidc.arn, self.oidc_issuer, "kube-system", "ebs-csi-controller-sa"),
            opts=child,
        )
        ebs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi", role=ebs_role.name,
            policy_arn=managed_policy_arn(partition, "service-role/AmazonEBSCSIDriverPolicy"), opts=child,
        )
        post_node_addons = [
            aws.eks.Addon(
                f"{name}-coredns", cluster_name=cluster.name, addon_name="coredns",
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes]),
            ),
            aws.eks.Addon(
                f"{name}-aws-ebs-csi-driver", cluster_name=cluster.name, addon_name="aws-ebs-csi-driver",
                service_account_role_arn=ebs_role.arn,
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes, ebs_policy]),
            ),
        ]

        return post_node_addons

    def _storage_classes(self, name: str) -> None:
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.k8s_provider)
        # gp3 is the default class; gp3-retain keeps the EBS volume when its claim is deleted, for data
        # that must survive a release being replaced (UI databases, Prometheus in prod).
        for class_name, reclaim, default in (("gp3", "Delete", True), ("gp3-retain", "Retain", False)):
            k8s.storage.v1.StorageClass(
                f"{name}-{class_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=class_name,
                    annotations={"storageclass.kubernetes.io/is-default-class": "true" if default else "false"},
                ),
                provisioner="ebs.csi.aws.com",
                parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"},
                reclaim_policy=reclaim,
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True,
                opts=k8s_opts,
            )
