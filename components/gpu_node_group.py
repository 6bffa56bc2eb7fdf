"""A GPU pool: an EKS managed node group on an NVIDIA AMI, always tainted, labelled with its pool
name (and `k8s.amazonaws.com/accelerator`), and tagged so cluster-autoscaler can scale it up from
zero nodes for the resources its pods request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.cluster import node_launch_template
from stack_config.gpu_stack import GPU_RESOURCE as GPU_RESOURCE  # re-exported for the GPU components

POOL_LABEL = "ai-platform/gpu-pool"
NODE_TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
# The EKS API spells taint effects differently from Kubernetes.
_EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def gpu_toleration() -> dict[str, str]:
    """The toleration every GPU workload of the platform carries (Kubernetes spelling)."""
    return {"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"], "effect": GPU_TAINT["effect"]}


def autoscaler_node_template_tags(cluster_name: str, labels: dict[str, str], resources: Mapping[str, int]) -> dict[str, str]:
    """ASG tags cluster-autoscaler reads to build a node template while the group has no nodes
    (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md): without them it cannot
    know a new node would carry the label, taint and extended resources (nvidia.com/gpu, or
    nvidia.com/mig-<profile> with the mixed MIG strategy) a pending pod needs, and never scales up
    from zero. A resource tag overrides the GPU count the autoscaler derives from the instance type
    (aws_manager.go buildNodeFromTemplate), so `nvidia.com/gpu: 0` is said where MIG hides the GPUs."""
    prefix = NODE_TEMPLATE_PREFIX
    tags = {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{cluster_name}": "owned",
        f"{prefix}/taint/{GPU_TAINT['key']}": f"{GPU_TAINT['value']}:{GPU_TAINT['effect']}",
    }
    tags.update({f"{prefix}/resources/{name}": str(count) for name, count in sorted(resources.items())})
    tags.update({f"{prefix}/label/{key}": value for key, value in labels.items()})
    return tags


@dataclass(frozen=True)
class GpuNodeGroupArgs:
    cluster_name: pulumi.Input[str]
    cluster_name_static: str  # known before deploy; used in tag keys
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    pool_name: str
    instance_types: list[str]
    capacity_type: str
    min_size: int
    desired_size: int
    max_size: int
    ami_type: str
    disk_size_gib: int
    # Extended resources one node advertises (stack_config.gpu_stack.advertised_resources).
    resources: Mapping[str, int]
    max_unavailable: int = 1
    extra_labels: dict[str, str] = field(default_factory=dict)
    # The cluster it joins (its node group, add-ons, access entries): created after it.
    cluster: Optional[pulumi.Resource] = None


class GpuNodeGroup(pulumi.ComponentResource):
    node_group_name: pulumi.Output[str]
    node_group_arn: pulumi.Output[str]
    labels: dict[str, str]
    taint: dict[str, str]

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:gpu:GpuNodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.labels = {**args.extra_labels, POOL_LABEL: args.pool_name}
        self.taint = dict(GPU_TAINT)
        tags = autoscaler_node_template_tags(args.cluster_name_static, self.labels, args.resources)

        launch_template = node_launch_template(
            f"{name}-lt", args.disk_size_gib, {"Name": f"{args.cluster_name_static}-gpu-{args.pool_name}"}, child,
            ami_type=args.ami_type,
        )
        node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_group_name_prefix=f"{args.cluster_name_static}-gpu-{args.pool_name}-",
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            instance_types=args.instance_types,
            capacity_type=args.capacity_type,
            ami_type=args.ami_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.min_size, desired_size=args.desired_size, max_size=args.max_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=args.max_unavailable),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=launch_template.id, version=launch_template.latest_version.apply(str)),
            labels=self.labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT["key"], value=GPU_TAINT["value"], effect=_EKS_EFFECT[GPU_TAINT["effect"]])],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.cluster] if args.cluster else [],
                # cluster-autoscaler owns desiredSize after creation; re-applying config must not undo it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

        # Node group tags are not copied to its Auto Scaling group, which is where the autoscaler
        # looks: tag the ASG itself.
        asg_name = node_group.resources.apply(lambda resources: resources[0].autoscaling_groups[0].name)
        for key, value in tags.items():
            aws.autoscaling.Tag(
                f"{name}-asg-{key.removeprefix('k8s.io/cluster-autoscaler/').replace('/', '-').replace('.', '-')}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=child,
            )

        self.node_group_name = node_group.node_group_name
        self.node_group_arn = node_group.arn
        self.register_outputs({"nodeGroupName": self.node_group_name, "labels": self.labels, "taint": self.taint})
