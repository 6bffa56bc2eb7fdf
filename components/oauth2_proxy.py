"""oauth2-proxy in front of an upstream that trusts identity headers (OpenWebUI's trusted-header
mode): it signs users in against the OIDC issuer and is the only thing allowed to reach the
upstream (NetworkPolicy), so a client can never present the identity headers itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import security

IMAGE = "quay.io/oauth2-proxy/oauth2-proxy:v7.12.0"
PORT = 4180
SERVICE_PORT = 80


def proxy_args(issuer_url: str, client_id: str, upstream: str, redirect_url: str, scopes: str) -> list[str]:
    return [
        "--provider=oidc",
        f"--oidc-issuer-url={issuer_url}",
        f"--client-id={client_id}",
        f"--upstream={upstream}",
        f"--http-address=0.0.0.0:{PORT}",
        f"--redirect-url={redirect_url}",
        f"--scope={scopes}",
        "--email-domain=*",
        # X-Forwarded-Email / -User / -Preferred-Username to the upstream, set from the session...
        "--pass-user-headers=true",
        # ...and the same headers removed from what the client sent, so they cannot be forged.
        "--skip-auth-strip-headers=true",
        "--reverse-proxy=true",
        "--cookie-secure=true",
        "--cookie-samesite=lax",
        "--skip-provider-button=true",
        "--silence-ping-logging=true",
    ]


@dataclass(frozen=True)
class OAuth2ProxyArgs:
    namespace: pulumi.Input[str]
    issuer_url: str
    client_id: str
    client_secret: pulumi.Input[str]
    scopes: str
    redirect_url: str
    upstream_service: str
    upstream_port: int
    # Labels of the upstream's pods: only the proxy may reach them.
    upstream_pod_labels: dict[str, str]
    upstream_container_port: int
    name: str = "oauth2-proxy"
    replicas: int = 2


def pod_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ai-platform"}


def pod_spec(args: OAuth2ProxyArgs) -> k8s.core.v1.PodSpecArgs:
    upstream = f"http://{args.upstream_service}.{args.namespace}.svc.cluster.local:{args.upstream_port}/"
    return k8s.core.v1.PodSpecArgs(
        security_context=k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True, run_as_user=65532, run_as_group=65532,
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        containers=[k8s.core.v1.ContainerArgs(
            name="oauth2-proxy",
            image=IMAGE,
            args=proxy_args(args.issuer_url, args.client_id, upstream, args.redirect_url, args.scopes),
            env=[security.secret_env("OAUTH2_PROXY_CLIENT_SECRET", args.name, "client-secret"),
                 security.secret_env("OAUTH2_PROXY_COOKIE_SECRET", args.name, "cookie-secret")],
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/ping", port="http"), period_seconds=20),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/ready", port="http"), period_seconds=10),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}),
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False, read_only_root_filesystem=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
        )],
    )


class OAuth2Proxy(pulumi.ComponentResource):
    service_name: str
    service_port: int
    pod_labels: dict[str, str]
    container_port: int

    def __init__(self, name: str, args: OAuth2ProxyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:exposure:OAuth2Proxy", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)
        labels = pod_labels(args.name)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=args.name, namespace=args.namespace, labels=labels)

        # 32 ASCII characters = a 32-byte AES key, one of the sizes oauth2-proxy accepts.
        cookie_secret = random.RandomPassword(f"{name}-cookie-secret", length=32, special=False,
                                              opts=pulumi.ResourceOptions(parent=self))
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=metadata,
            type="Opaque",
            string_data={
                "client-secret": pulumi.Output.secret(args.client_secret),
                "cookie-secret": cookie_secret.result,
            },
            opts=k8s_opts,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                                                         spec=pod_spec(args)),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=SERVICE_PORT, target_port="http")],
            ),
            opts=k8s_opts,
        )
        self._upstream_policy(name, args, labels, k8s_opts)
        self.service_name = args.name
        self.service_port = SERVICE_PORT
        self.pod_labels = labels
        self.container_port = PORT
        self.register_outputs({})

    @staticmethod
    def _upstream_policy(name: str, args: OAuth2ProxyArgs, labels: dict[str, str], opts: pulumi.ResourceOptions) -> None:
        # The upstream accepts identity headers from whoever reaches it; only the proxy may.
        # (Enforced where the CNI enforces NetworkPolicy: on EKS, the VPC CNI's network policy agent.)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-only",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.upstream_service}-from-{args.name}-only",
                                                namespace=args.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.upstream_pod_labels),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels))],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=args.upstream_container_port, protocol="TCP")],
                )],
            ),
            opts=opts,
        )
