"""Pure builders for GPU capacity provisioned by Karpenter (`ai-platform:gpuProvisioner: karpenter`).

Nothing here registers a resource: every function turns plain values into the objects a component
applies (NodePool and EC2NodeClass manifests, the controller chart's values, its IAM policy
documents, the interruption queue's policy and EventBridge patterns). Upstream, all at
aws/karpenter-provider-aws tag v1.14.0 (the source of the `oci://public.ecr.aws/karpenter/karpenter`
chart 1.14.0):
  - APIs: pkg/apis/crds/karpenter.sh_nodepools.yaml, pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml
  - default volumes per AMI family: pkg/providers/amifamily/{al2023,bottlerocket,resolver}.go
  - chart values: charts/karpenter/values.yaml, templates/deployment.yaml
  - controller policy, queue, rules: website/content/en/docs/getting-started/getting-started-with-karpenter/cloudformation.yaml
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, Mapping, Optional

CHART = "oci://public.ecr.aws/karpenter/karpenter"
CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"  # published with the same version (hack/release/common.sh)
CHART_VERSION = "1.14.0"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"

NODEPOOL_API_VERSION = "karpenter.sh/v1"
NODECLASS_API_VERSION = "karpenter.k8s.aws/v1"
NODECLASS_GROUP = "karpenter.k8s.aws"
NODECLASS_KIND = "EC2NodeClass"

POOL_LABEL = "ai-platform/gpu-pool"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
DISCOVERY_TAG = "karpenter.sh/discovery"

# AMI aliases pinned to dated releases; Karpenter resolves them through SSM per Kubernetes version
# (amifamily/al2023.go, bottlerocket.go), so a release must exist for the cluster's version:
#  - al2023@v20260714: awslabs/amazon-eks-ami CHANGELOG "AMI Release v20260714" lists
#    amazon-eks-node-al2023-{x86_64,arm64}-nvidia-1.33-v20260714 (and 1.34-1.36).
#  - bottlerocket@v1.54.0: AMI bottlerocket-aws-k8s-1.33-nvidia-aarch64-v1.54.0-5043decc (Bottlerocket
#    publishes x86_64 and aarch64 NVIDIA variants per release).
# Never `@latest`: a new AMI would replace (drift) every GPU node unannounced.
AMI_ALIASES = {"AL2023": "al2023@v20260714", "Bottlerocket": "bottlerocket@v1.54.0"}
AMI_FAMILY = {
    "AL2023_x86_64_NVIDIA": "AL2023",
    "AL2023_ARM_64_NVIDIA": "AL2023",
    "BOTTLEROCKET_x86_64_NVIDIA": "Bottlerocket",
    "BOTTLEROCKET_ARM_64_NVIDIA": "Bottlerocket",
}
# `kubernetes.io/arch` values (Kubernetes spelling, not the EKS AMI type's).
AMI_NODE_ARCH = {
    "AL2023_x86_64_NVIDIA": "amd64",
    "AL2023_ARM_64_NVIDIA": "arm64",
    "BOTTLEROCKET_x86_64_NVIDIA": "amd64",
    "BOTTLEROCKET_ARM_64_NVIDIA": "arm64",
}
# Karpenter prefers reserved, then spot, then on-demand when a pool allows several
# (docs/concepts/nodepools.md, "Capacity Type"): SPOT means spot with on-demand as the fallback.
CAPACITY_TYPES = {"SPOT": ["spot", "on-demand"], "ON_DEMAND": ["on-demand"]}
# Bottlerocket's OS volume (/dev/xvda) keeps Karpenter's default size (amifamily/bottlerocket.go);
# images, containers and logs live on the data volume /dev/xvdb.
BOTTLEROCKET_OS_VOLUME = "4Gi"


@dataclass(frozen=True)
class GpuPoolSpec:
    """One `gpuNodeGroups` entry, as plain values."""

    name: str
    instance_types: tuple[str, ...]
    capacity_type: Literal["SPOT", "ON_DEMAND"]
    max_size: int
    gpus_per_instance: int  # physical GPUs of each instance type (all alike in a pool)
    ami_type: str  # one of AMI_FAMILY
    disk_size_gib: int
    # User labels plus the platform's sharing labels (device-plugin / MIG config); the pool and
    # accelerator labels are added here.
    labels: Mapping[str, str] = field(default_factory=dict)
    # `nvidia-<models>`; None where nodes advertise no nvidia.com/gpu (mixed MIG).
    accelerator: Optional[str] = None
    max_unavailable: int = 1


@dataclass(frozen=True)
class PoolSettings:
    """How Karpenter ages and consolidates GPU nodes (the same for every pool)."""

    consolidate_after: str = "10m"  # like cluster-autoscaler's scale-down-unneeded-time
    expire_after: str = "720h"
    termination_grace_period: str = "1h"


def node_class_name(family: str, disk_size_gib: int) -> str:
    """An EC2NodeClass per AMI family (`AL2023`, `Bottlerocket`: one alias serves both
    architectures) and data volume size, which a class fixes."""
    return f"gpu-{family.lower()}-{disk_size_gib}gib"


def node_pool(pool: GpuPoolSpec, settings: PoolSettings = PoolSettings()) -> dict:
    labels = {**pool.labels, POOL_LABEL: pool.name}
    if pool.accelerator:
        labels[ACCELERATOR_LABEL] = pool.accelerator
    requirements = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(CAPACITY_TYPES[pool.capacity_type])},
        {"key": "kubernetes.io/arch", "operator": "In", "values": [AMI_NODE_ARCH[pool.ami_type]]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    return {
        "apiVersion": NODEPOOL_API_VERSION,
        "kind": "NodePool",
        "metadata": {"name": pool.name, "labels": {POOL_LABEL: pool.name}},
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeClassRef": {"group": NODECLASS_GROUP, "kind": NODECLASS_KIND,
                                     "name": node_class_name(AMI_FAMILY[pool.ami_type], pool.disk_size_gib)},
                    "requirements": requirements,
                    "taints": [dict(GPU_TAINT)],
                    "expireAfter": settings.expire_after,
                    "terminationGracePeriod": settings.termination_grace_period,
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": settings.consolidate_after,
                "budgets": [{"nodes": str(pool.max_unavailable)}],
            },
            # The hard cap: Karpenter launches no node that would take the pool past it.
            "limits": {GPU_RESOURCE: pool.max_size * pool.gpus_per_instance},
        },
    }


def _ebs(size: str, kms_key_id: Optional[str]) -> dict:
    ebs = {"volumeSize": size, "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    if kms_key_id:
        ebs["kmsKeyID"] = kms_key_id
    return ebs


def block_device_mappings(family: str, disk_size_gib: int, kms_key_id: Optional[str] = None) -> list[dict]:
    """The volume the image keeps images and pods on gets `disk_size_gib`: AL2023's root /dev/xvda;
    Bottlerocket's data volume /dev/xvdb (its OS volume /dev/xvda stays small). Given mappings replace
    Karpenter's defaults entirely, so Bottlerocket's OS volume is listed too (encrypted as well)."""
    size = f"{disk_size_gib}Gi"
    if family == "Bottlerocket":
        return [
            {"deviceName": "/dev/xvda", "ebs": _ebs(BOTTLEROCKET_OS_VOLUME, kms_key_id)},
            {"deviceName": "/dev/xvdb", "ebs": _ebs(size, kms_key_id)},
        ]
    return [{"deviceName": "/dev/xvda", "ebs": _ebs(size, kms_key_id)}]


def ec2_node_class(family: str, disk_size_gib: int, *, cluster_name: str, node_role_name: str,
                   tags: Mapping[str, str] = {}, kms_key_id: Optional[str] = None) -> dict:
    discovery = {"tags": {DISCOVERY_TAG: cluster_name}}
    name = node_class_name(family, disk_size_gib)
    return {
        "apiVersion": NODECLASS_API_VERSION,
        "kind": NODECLASS_KIND,
        "metadata": {"name": name},
        "spec": {
            "role": node_role_name,
            "amiSelectorTerms": [{"alias": AMI_ALIASES[family]}],
            "subnetSelectorTerms": [dict(discovery)],
            "securityGroupSelectorTerms": [dict(discovery)],
            # IMDSv2 only, and one hop: pods (a hop further) cannot read the node role's credentials.
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": block_device_mappings(family, disk_size_gib, kms_key_id),
            "tags": dict(tags),
        },
    }


def ec2_node_classes(pools: list[GpuPoolSpec], **kwargs) -> list[dict]:
    """The EC2NodeClasses the pools reference, each once, in a stable order."""
    keys = sorted({(AMI_FAMILY[p.ami_type], p.disk_size_gib) for p in pools})
    return [ec2_node_class(family, disk, **kwargs) for family, disk in keys]


# --- the controller ---------------------------------------------------------------------------

DEFAULT_CONTROLLER_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def controller_values(*, cluster_name: str, interruption_queue_name: str, node_selector: Mapping[str, str],
                      role_arn: Optional[str] = None, replicas: int = 2,
                      resources: Mapping = DEFAULT_CONTROLLER_RESOURCES) -> dict:
    """Values for the karpenter chart. `role_arn` annotates the ServiceAccount for IRSA; leave it
    None with an EKS Pod Identity association. The controller runs on the system node group
    (`node_selector`), never on a node it provisions (the chart's default affinity keeps it off
    nodes labelled karpenter.sh/nodepool), with its default CriticalAddonsOnly toleration only."""
    service_account: dict = {"create": True, "name": SERVICE_ACCOUNT}
    if role_arn is not None:
        service_account["annotations"] = {"eks.amazonaws.com/role-arn": role_arn}
    return {
        "settings": {"clusterName": cluster_name, "interruptionQueue": interruption_queue_name},
        "serviceAccount": service_account,
        "replicas": replicas,
        "controller": {"resources": {k: dict(v) for k, v in resources.items()}},
        "nodeSelector": {"kubernetes.io/os": "linux", **node_selector},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
    }


# --- the controller's AWS side ----------------------------------------------------------------

@dataclass(frozen=True)
class ControllerScope:
    """What the controller's policies are scoped to (all known once the cluster, node role and
    queue exist; a component calls the builders inside an `Output.apply`)."""

    cluster_name: str
    region: str
    account_id: str
    node_role_arn: str
    queue_arn: str
    partition: str = "aws"


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def _arns(s: ControllerScope, *kinds: str, account: str = "*") -> list[str]:
    return [f"arn:{s.partition}:ec2:{s.region}:{account}:{kind}/*" for kind in kinds]


def _owned(s: ControllerScope, prefix: str) -> dict:
    return {f"aws:{prefix}/kubernetes.io/cluster/{s.cluster_name}": "owned"}


_EC2_TAGGED = ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
_NODEPOOL_ANY = {"StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}


def node_lifecycle_policy(s: ControllerScope) -> str:
    """KarpenterControllerNodeLifecyclePolicy: launch, tag and terminate only this cluster's nodes."""
    request_tags = {**_owned(s, "RequestTag"), "aws:RequestTag/eks:eks-cluster-name": s.cluster_name}
    return _doc(
        {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
         "Resource": [f"arn:{s.partition}:ec2:{s.region}::image/*", f"arn:{s.partition}:ec2:{s.region}::snapshot/*",
                      *_arns(s, "security-group", "subnet", "capacity-reservation", "placement-group")],
         "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
        {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
         "Resource": _arns(s, "launch-template")[0], "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Condition": {"StringEquals": _owned(s, "ResourceTag"), **_NODEPOOL_ANY}},
        {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow", "Resource": _arns(s, *_EC2_TAGGED),
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
         "Condition": {"StringEquals": request_tags, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow", "Resource": _arns(s, *_EC2_TAGGED),
         "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": {**request_tags, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceTagging", "Effect": "Allow", "Resource": _arns(s, "instance")[0],
         "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": _owned(s, "ResourceTag"), **_NODEPOOL_ANY,
                       "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": s.cluster_name},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
        {"Sid": "AllowScopedDeletion", "Effect": "Allow", "Resource": _arns(s, "instance", "launch-template"),
         "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Condition": {"StringEquals": _owned(s, "ResourceTag"), **_NODEPOOL_ANY}},
    )


def iam_integration_policy(s: ControllerScope) -> str:
    """KarpenterControllerIAMIntegrationPolicy: pass only the node role; manage only the instance
    profiles it creates for this cluster's EC2NodeClasses."""
    profiles = f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*"
    region_tag = "topology.kubernetes.io/region"
    owned_resource = {**_owned(s, "ResourceTag"), f"aws:ResourceTag/{region_tag}": s.region}
    owned_request = {**_owned(s, "RequestTag"), "aws:RequestTag/eks:eks-cluster-name": s.cluster_name,
                     f"aws:RequestTag/{region_tag}": s.region}
    return _doc(
        {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Resource": s.node_role_arn, "Action": "iam:PassRole",
         "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
        {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow", "Resource": profiles,
         "Action": ["iam:CreateInstanceProfile"],
         "Condition": {"StringEquals": owned_request, "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow", "Resource": profiles,
         "Action": ["iam:TagInstanceProfile"],
         "Condition": {"StringEquals": {**owned_resource, **owned_request},
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                      "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow", "Resource": profiles,
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "Condition": {"StringEquals": owned_resource, "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
    )


def _cluster_arn(s: ControllerScope) -> str:
    return f"arn:{s.partition}:eks:{s.region}:{s.account_id}:cluster/{s.cluster_name}"


def resource_discovery_policy(s: ControllerScope) -> str:
    """KarpenterControllerResourceDiscoveryPolicy: reads (Describe calls cannot be scoped but to the region)."""
    describe = ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"]
    return _doc(
        {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*", "Action": describe,
         "Condition": {"StringEquals": {"aws:RequestedRegion": s.region}}},
        {"Sid": "AllowSSMReadActions", "Effect": "Allow", "Resource": f"arn:{s.partition}:ssm:{s.region}::parameter/aws/service/*",
         "Action": "ssm:GetParameter"},
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
        {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Resource": "*", "Action": "iam:ListInstanceProfiles"},
        {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow",
         "Resource": f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*", "Action": "iam:GetInstanceProfile"},
    )


def controller_policies(s: ControllerScope) -> dict[str, str]:
    """The upstream controller policy, as upstream splits it (each document stays under the 6,144
    character limit of a managed policy): name suffix -> JSON document."""
    return {
        "node-lifecycle": node_lifecycle_policy(s),
        "iam-integration": iam_integration_policy(s),
        "eks-integration": _doc({"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow",
                                 "Resource": _cluster_arn(s), "Action": "eks:DescribeCluster"}),
        "interruption": _doc({"Sid": "AllowInterruptionQueueActions", "Effect": "Allow", "Resource": s.queue_arn,
                              "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]}),
        "zonal-shift": _doc({"Sid": "AllowZonalShiftStatusReadOnly", "Effect": "Allow", "Resource": "*",
                             "Action": ["arc-zonal-shift:GetManagedResource"],
                             "Condition": {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": _cluster_arn(s)}}}),
        "resource-discovery": resource_discovery_policy(s),
    }


def controller_policy(s: ControllerScope) -> str:
    """The statements of `controller_policies` in one document, for the one inline policy of the
    controller's IRSA role: compact, they stay under IAM's 10,240-character inline limit per role
    (test_karpenter_wiring holds it for the longest names this stack makes)."""
    statements = [st for doc in controller_policies(s).values() for st in json.loads(doc)["Statement"]]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


# The interruption queue: EventBridge delivers these events, the controller drains nodes ahead of them.
INTERRUPTION_QUEUE_RETENTION_SECONDS = 300
INTERRUPTION_RULES: dict[str, dict] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation-interruption": {"source": ["aws.ec2"],
                                          "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}


def interruption_queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS) may send; nothing may use the queue without TLS."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "EC2InterruptionPolicy",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
             "Action": "sqs:SendMessage", "Resource": queue_arn},
            {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": queue_arn,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": "*"},
        ],
    }, indent=2)
