"""Exposure of the platform's UIs (OpenWebUI, Grafana): the AWS Load Balancer Controller with its
IRSA role, and an Ingress helper that puts each UI behind one shared, HTTPS-only ALB.

Without a hostname and certificate a UI stays ClusterIP-only; `port_forward_command` gives the
exact command the stack exports instead of a URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import security
from components.cluster import SYSTEM_NODE_LABEL
from components.iam import IrsaRole, IrsaRoleArgs
from components.network import subnet_cidrs

CHART = "aws-load-balancer-controller"
CHART_VERSION = "1.14.0"  # controller v2.14.0
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"
POLICY_FILE = Path(__file__).parent / "policies" / "aws-load-balancer-controller.json"
# TLS 1.3 with 1.2 fallback: the current recommended ALB policy.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
LOCAL_PORT = 8080


def load_balancer_controller_policy(partition: str) -> str:
    """The upstream recommended policy (docs/install/iam_policy.json). Its tag conditions on
    `elbv2.k8s.aws/cluster` limit every mutating call to load balancers, target groups and security
    groups the controller created itself; the describe calls cannot be scoped by AWS. Upstream
    writes the `aws` partition; other partitions get their own ARNs."""
    return POLICY_FILE.read_text().replace("arn:aws:", f"arn:{partition}:")


def ingress_annotations(scheme: str, certificate_arn: str, group_name: str, healthcheck_path: str,
                        inbound_cidrs: list[str] = ()) -> dict[str, str]:
    """ALB Ingress annotations: HTTPS with the ACM certificate, HTTP only to redirect, pods as
    targets (`ip`, no NodePort hop), one ALB shared by every Ingress of the group."""
    annotations = {
        "alb.ingress.kubernetes.io/scheme": scheme,
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
        "alb.ingress.kubernetes.io/ssl-redirect": "443",
        "alb.ingress.kubernetes.io/certificate-arn": certificate_arn,
        "alb.ingress.kubernetes.io/ssl-policy": SSL_POLICY,
        "alb.ingress.kubernetes.io/group.name": group_name,
        "alb.ingress.kubernetes.io/healthcheck-path": healthcheck_path,
        # Chat responses stream for minutes; the 60 s default cuts long generations off.
        "alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=600",
    }
    if inbound_cidrs:
        annotations["alb.ingress.kubernetes.io/inbound-cidrs"] = ",".join(inbound_cidrs)
    return annotations


def port_forward_command(namespace: str, service: str, service_port: int = 80) -> str:
    return f"kubectl -n {namespace} port-forward svc/{service} {LOCAL_PORT}:{service_port}"


@dataclass(frozen=True)
class ExposureSettings:
    """What every UI Ingress shares (from config `exposure`)."""

    scheme: str
    certificate_arn: str
    group_name: str
    inbound_cidrs: list[str] = field(default_factory=list)
    # The controller release: Ingresses wait for it (its webhook must be up to admit them).
    controller: Optional[pulumi.Resource] = None


INTERNAL_ALB_REASON = "internal ALB: its ENIs have private-subnet IPs, like pods"


@dataclass(frozen=True)
class AlbSource:
    """Where the shared ALB connects to the UI pods from (IP targets: its own ENIs in its subnets)."""

    cidrs: tuple[str, ...]
    internal: bool  # private subnets: the range holds pods too, and the policy says so


class AlbSourceError(ValueError):
    pass


def alb_source(scheme: str, vpc_cidr: str, zone_count: int, brought_vpc: bool,
               configured: tuple[str, ...] = ()) -> AlbSource:
    """The one rule for the UIs' ALB-ingress NetworkPolicies (OpenWebUI and Grafana).

    `exposure.albSourceCidrs` when set; else the subnets this stack made for the ALB (public for an
    internet-facing ALB, private for an internal one). A brought VPC's subnet CIDRs are unknown
    here: an internal ALB then admits the VPC CIDR (it admits pods either way, and says so), but an
    internet-facing one must be given its public subnets' CIDRs: the VPC CIDR would admit every pod
    of the cluster (security.allow_alb_ingress), the very thing the policy exists to keep out."""
    internal = scheme == "internal"
    if configured:
        return AlbSource(tuple(configured), internal)
    if not brought_vpc:
        public, private = subnet_cidrs(vpc_cidr, zone_count)
        return AlbSource(tuple(private if internal else public), internal)
    if internal:
        return AlbSource((vpc_cidr,), True)
    raise AlbSourceError("an internet-facing ALB in a brought VPC needs exposure.albSourceCidrs "
                         "(the CIDRs of network.existingVpc.publicSubnetIds)")


def allow_alb_ingress(namespace: str, pod_labels: dict[str, str], port: int, source: AlbSource,
                      opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """The ALB may reach `port` of the `pod_labels` pods: from its subnets, declared as admitting
    pods when they are private ones."""
    if source.internal:
        return security.allow_from_vpc_clients(namespace, "allow-alb-ingress", pod_labels, [port],
                                               list(source.cidrs), INTERNAL_ALB_REASON, opts)
    return security.allow_alb_ingress(namespace, pod_labels, [port], list(source.cidrs), opts)


def ui_ingress(name: str, namespace: pulumi.Input[str], hostname: str, service_name: str, service_port: int,
               healthcheck_path: str, settings: ExposureSettings, opts: pulumi.ResourceOptions) -> k8s.networking.v1.Ingress:
    """One UI behind the shared ALB, routed by host. Callers pass `parent`/`provider` in `opts`."""
    depends_on = [settings.controller] if settings.controller is not None else []
    return k8s.networking.v1.Ingress(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            namespace=namespace,
            annotations=ingress_annotations(settings.scheme, settings.certificate_arn, settings.group_name,
                                            healthcheck_path, settings.inbound_cidrs),
        ),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=INGRESS_CLASS,
            tls=[k8s.networking.v1.IngressTLSArgs(hosts=[hostname])],
            rules=[k8s.networking.v1.IngressRuleArgs(
                host=hostname,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[k8s.networking.v1.HTTPIngressPathArgs(
                    path="/",
                    path_type="Prefix",
                    backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                        name=service_name,
                        port=k8s.networking.v1.ServiceBackendPortArgs(number=service_port),
                    )),
                )]),
            )],
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends_on)),
    )


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    cluster_name: str
    region: str
    partition: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    replicas: int = 2


class LoadBalancerController(pulumi.ComponentResource):
    """AWS Load Balancer Controller (Helm, pinned) running as its own IRSA role."""

    role_arn: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:exposure:LoadBalancerController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = IrsaRole(f"{name}-irsa", IrsaRoleArgs(
            args.oidc_provider_arn, args.oidc_issuer, NAMESPACE, SERVICE_ACCOUNT,
            policy=load_balancer_controller_policy(args.partition),
        ), child, moved_from=self)

        self.release = k8s.helm.v3.Release(
            name,
            name="aws-load-balancer-controller",
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=NAMESPACE,
            values={
                "clusterName": args.cluster_name,
                "region": args.region,
                # Set explicitly: with IMDS hop limit 1 the pods cannot look the VPC up themselves.
                "vpcId": args.vpc_id,
                "replicaCount": args.replicas,
                "serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role.arn},
                },
                # Leave `type: LoadBalancer` Services without a class to whoever owns them; a
                # mutating webhook on every Service would also block Service creation whenever
                # the controller is down.
                "enableServiceMutatorWebhook": False,
                "ingressClass": INGRESS_CLASS,
                "createIngressClassResource": True,
                "nodeSelector": SYSTEM_NODE_LABEL,
                "priorityClassName": "system-cluster-critical",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            },
            # The webhook must be serving before any Ingress is admitted; wait for the rollout.
            skip_await=False,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.role_arn = role.arn
        self.register_outputs({"roleArn": self.role_arn})
