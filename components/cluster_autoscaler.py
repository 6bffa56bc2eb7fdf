"""cluster-autoscaler: scales node groups (GPU pools down to zero) by pending pods."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import SYSTEM_NODE_LABEL
from components.iam import IrsaRole, IrsaRoleArgs

CHART = "cluster-autoscaler"
CHART_VERSION = "9.46.6"
CHART_REPOSITORY = "https://kubernetes.github.io/autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


def image_tag_for(kubernetes_version: str) -> str:
    """The autoscaler's minor version must match the cluster's."""
    return f"v{kubernetes_version}.0"


def autoscaler_policy(cluster_name: str, node_group_arns: list[str]) -> str:
    """Describe calls cannot be scoped by AWS; every mutating call is limited to this cluster's
    Auto Scaling groups (by their ownership tag) and node groups (by ARN)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Describe",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ScaleOwnGroups",
                "Effect": "Allow",
                "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
            },
            {
                "Sid": "ReadOwnNodeGroups",
                "Effect": "Allow",
                "Action": ["eks:DescribeNodegroup"],
                "Resource": node_group_arns,
            },
        ],
    })


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    cluster_name: str
    region: str
    kubernetes_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    node_group_arns: list[pulumi.Input[str]]
    expander: str
    scale_down_unneeded_time: str
    scale_down_delay_after_add: str
    scale_down_utilization_threshold: float
    # Pending pods below this priority never cause a scale-up (the flag's default, stated explicitly).
    expendable_pods_priority_cutoff: int = -10


class ClusterAutoscaler(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    release_name: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:cluster:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            args.oidc_provider_arn, args.oidc_issuer, NAMESPACE, SERVICE_ACCOUNT,
            policy=pulumi.Output.all(*args.node_group_arns).apply(lambda arns: autoscaler_policy(args.cluster_name, list(arns))),
        ), child, moved_from=self)

        release = k8s.helm.v3.Release(
            name,
            name="cluster-autoscaler",
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=NAMESPACE,
            values={
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_name},
                "image": {"tag": image_tag_for(args.kubernetes_version)},
                "rbac": {"serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                }},
                "extraArgs": {
                    "expander": args.expander,
                    "scale-down-unneeded-time": args.scale_down_unneeded_time,
                    "scale-down-delay-after-add": args.scale_down_delay_after_add,
                    "scale-down-utilization-threshold": str(args.scale_down_utilization_threshold),
                    "balance-similar-node-groups": "true",
                    "skip-nodes-with-system-pods": "false",
                    "skip-nodes-with-local-storage": "false",
                    # Set explicitly so the plan shows it; the platform's GPU pods stay at or above it.
                    "expendable-pods-priority-cutoff": str(args.expendable_pods_priority_cutoff),
                },
                "nodeSelector": SYSTEM_NODE_LABEL,
                "priorityClassName": "system-cluster-critical",
                "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "fsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                "containerSecurityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.role_arn = role.arn
        self.release = release
        self.release_name = release.name
        self.register_outputs({"roleArn": self.role_arn})
