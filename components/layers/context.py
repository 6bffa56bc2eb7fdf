"""What the Foundation layer hands to the layers on the cluster, and how layers parent what they move."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.exposure import AlbSource, ExposureSettings

# Components built at the top of the stack before the layers existed: now a layer's children,
# they answer to their old URN (parent: the stack); their children inherit the alias
# (pulumi/pulumi pkg/resource/deploy/step_generator.go `generateAliases`).
MOVED = pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)


def moved(layer: pulumi.Resource, *depends_on: pulumi.Resource,
          providers: Sequence[pulumi.ProviderResource] = ()) -> pulumi.ResourceOptions:
    """Options of a component moved under `layer`: it inherits the layer's providers (plus `providers`)."""
    return pulumi.ResourceOptions(parent=layer, aliases=[MOVED], depends_on=list(depends_on), providers=list(providers))


@dataclass(frozen=True)
class ClusterContext:
    """The cluster as the layers on it see it. Ordering travels here as resources to wait on."""

    stack: str
    cluster_name: str  # known before deploy, for names and tags
    region: str
    partition: str
    kubernetes_version: str
    vpc_cidr: str
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    cluster_security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    k8s_provider: k8s.Provider
    # Kubernetes objects wait for the cluster (its node group, add-ons, access entries).
    cluster: pulumi.Resource
    # Scales a GPU pool up from zero (cluster-autoscaler, or the Karpenter controller); None when off.
    autoscaler: Optional[pulumi.Resource]
    # The AWS Load Balancer Controller release: whatever asks for a load balancer waits for it.
    load_balancer_controller: Optional[pulumi.Resource]
    # The GPU pools' capacity: their managed node groups, or their Karpenter NodePools.
    gpu_node_groups: tuple[pulumi.Resource, ...]
    # The shared ALB of the UIs (None: no certificate or controller, UIs stay ClusterIP) and where
    # it connects from, decided once (components.exposure.alb_source).
    exposure: Optional[ExposureSettings]
    alb_source: Optional[AlbSource]
