"""Karpenter (`ai-platform:gpuProvisioner: karpenter`): the GPU pools' nodes come from NodePools
instead of managed node groups + cluster-autoscaler.

In order: the interruption queue (SQS) with its EventBridge rules, the controller's IRSA role (the
upstream policy scoped to this cluster), the discovery tag on the cluster security group, the CRD
chart, the controller chart on the system node group, then the EC2NodeClasses and NodePools. The
manifests, values and policies come from the pure builders in `components.karpenter_manifests`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import karpenter_manifests as km
from components.cluster import SYSTEM_NODE_LABEL
from components.iam import IrsaRole, IrsaRoleArgs
from stack_config.gpu_instances import GPU_INSTANCE_TYPES
from stack_config.gpu_pools import ACCELERATOR_LABEL, GpuNodeGroupConfig, accelerator_labels, sharing_node_labels


def pool_spec(pool: GpuNodeGroupConfig) -> km.GpuPoolSpec:
    """A `gpuNodeGroups` entry as the NodePool builder takes it: the same labels its node group's
    nodes carry (user labels, sharing labels, accelerator), physical GPUs per instance for the limit."""
    return km.GpuPoolSpec(
        name=pool.name, instance_types=tuple(pool.instanceTypes), capacity_type=pool.capacityType,
        max_size=pool.maxSize, gpus_per_instance=GPU_INSTANCE_TYPES[pool.instanceTypes[0]].gpus,
        ami_type=pool.amiType, disk_size_gib=pool.diskSizeGiB,
        labels={**pool.labels, **sharing_node_labels(pool)},
        accelerator=accelerator_labels(pool).get(ACCELERATOR_LABEL), max_unavailable=pool.maxUnavailable,
    )


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str  # static: the discovery tag's value, the queue's name
    region: str
    partition: str
    pools: tuple[GpuNodeGroupConfig, ...]
    node_role_arn: pulumi.Input[str]  # the cluster's node role (it has the EKS access entry)
    node_role_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    node_tags: Mapping[str, str] = field(default_factory=dict)  # on instances, volumes, launch templates
    settings: km.PoolSettings = km.PoolSettings()


def account_of(arn: str) -> str:
    return arn.split(":")[4]


class Karpenter(pulumi.ComponentResource):
    """Pass the AWS and Kubernetes providers in `opts.providers`. `release` is the controller;
    `node_pools` are what GPU pods wait for (readiness, like the node groups in nodeGroups mode)."""

    release: k8s.helm.v3.Release
    node_pools: list[k8s.apiextensions.CustomResource]
    queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:cluster:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        queue = self._interruption_queue(name, args, child)
        role = IrsaRole(f"{name}-controller", IrsaRoleArgs(
            args.oidc_provider_arn, args.oidc_issuer, km.NAMESPACE, km.SERVICE_ACCOUNT,
            policy=pulumi.Output.all(args.node_role_arn, queue.arn).apply(lambda a: km.controller_policy(km.ControllerScope(
                cluster_name=args.cluster_name, region=args.region, account_id=account_of(a[0]),
                node_role_arn=a[0], queue_arn=a[1], partition=args.partition))),
            description=f"Karpenter controller of {args.cluster_name}",
        ), child)
        # Nodes get the cluster security group (as managed node group nodes do); it is EKS's, so tagged, not owned.
        sg_tag = aws.ec2.Tag(f"{name}-cluster-sg-discovery", resource_id=args.cluster_security_group_id,
                             key=km.DISCOVERY_TAG, value=args.cluster_name, opts=child)
        crds = k8s.helm.v3.Release(
            f"{name}-crd", name="karpenter-crd", chart=km.CRD_CHART, version=km.CHART_VERSION,
            namespace=km.NAMESPACE, opts=child)
        self.release = k8s.helm.v3.Release(
            name, name="karpenter", chart=km.CHART, version=km.CHART_VERSION, namespace=km.NAMESPACE,
            skip_crds=True,  # the karpenter-crd release owns (and upgrades) them
            values=km.controller_values(cluster_name=args.cluster_name, interruption_queue_name=queue.name,
                                        node_selector=SYSTEM_NODE_LABEL, role_arn=role.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds]))
        self.node_pools = self._pools(name, args, [self.release, crds, sg_tag])
        self.queue_name = queue.name
        self.register_outputs({"queueName": queue.name, "roleArn": role.arn})

    def _interruption_queue(self, name: str, args: KarpenterArgs, child: pulumi.ResourceOptions) -> aws.sqs.Queue:
        queue = aws.sqs.Queue(f"{name}-interruption", name=f"{args.cluster_name}-karpenter",
                              message_retention_seconds=km.INTERRUPTION_QUEUE_RETENTION_SECONDS,
                              sqs_managed_sse_enabled=True, opts=child)
        aws.sqs.QueuePolicy(f"{name}-interruption", queue_url=queue.url,
                            policy=queue.arn.apply(km.interruption_queue_policy), opts=child)
        for rule_name, pattern in km.INTERRUPTION_RULES.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{rule_name}", event_pattern=json.dumps(pattern),
                                            description=f"Karpenter interruption: {rule_name}", opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{rule_name}", rule=rule.name, arn=queue.arn, target_id="KarpenterInterruptionQueue", opts=child)
        return queue

    def _pools(self, name: str, args: KarpenterArgs, after: list[pulumi.Resource]) -> list[k8s.apiextensions.CustomResource]:
        """EC2NodeClasses, then the NodePools that reference them, once the controller runs: it adds
        their finalizers, so it must also outlive them on delete."""
        specs = [pool_spec(pool) for pool in args.pools]
        classes = []
        for doc in km.ec2_node_classes(specs, cluster_name=args.cluster_name, node_role_name="", tags=dict(args.node_tags)):
            doc["spec"]["role"] = args.node_role_name  # known once the role exists
            classes.append(_custom_resource(f"{name}-{doc['metadata']['name']}", doc,
                                            pulumi.ResourceOptions(parent=self, depends_on=after)))
        return [
            _custom_resource(f"{name}-pool-{spec.name}", km.node_pool(spec, args.settings),
                             pulumi.ResourceOptions(parent=self, depends_on=[*after, *classes]))
            for spec in specs
        ]


def _custom_resource(name: str, doc: dict, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=doc["apiVersion"], kind=doc["kind"],
                                            metadata=doc["metadata"], spec=doc["spec"], opts=opts)
