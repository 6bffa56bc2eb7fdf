"""Apps layer: OpenWebUI on the `llm` Triton deployments (directly or through the inference gateway),
behind the shared ALB when exposed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components.layers.context import ClusterContext, moved
from components.openwebui import OpenWebUi, OpenWebUiArgs, PostgresNetwork, WorkloadIdentity
from stack_config.openwebui import OpenWebUiConfig


@dataclass(frozen=True)
class AppsArgs:
    openwebui: OpenWebUiConfig
    protect_data: bool
    hostname: Optional[str] = None  # exposure.openWebUiHostname
    oidc_client_secret: Optional[str] = None  # secret config value


def openwebui_args(args: AppsArgs, cluster: ClusterContext, openai_base_urls: list[pulumi.Input[str]],
                   openai_api_key: Optional[pulumi.Input[str]] = None) -> OpenWebUiArgs:
    config, exposure = args.openwebui, cluster.exposure
    return OpenWebUiArgs(
        config=config, openai_base_urls=openai_base_urls, openai_api_key=openai_api_key,
        protect_data=args.protect_data, hostname=args.hostname if exposure else None, exposure=exposure,
        alb_source=cluster.alb_source,
        oidc_client_secret=pulumi.Output.secret(args.oidc_client_secret) if args.oidc_client_secret else None,
        postgres_network=PostgresNetwork(
            name_prefix=cluster.cluster_name, vpc_id=cluster.vpc_id, private_subnet_ids=cluster.private_subnet_ids,
            cluster_security_group_id=cluster.cluster_security_group_id,
        ) if config.persistence.database == "postgres" else None,
        # Used with replicas > 1: uploads in S3 through an IRSA role.
        uploads_bucket_name=config.persistence.uploads.bucket_name(cluster.stack, cluster.region),
        workload_identity=WorkloadIdentity(cluster.partition, cluster.region, cluster.oidc_provider_arn, cluster.oidc_issuer),
    )


class Apps(pulumi.ComponentResource):
    """Pass the AWS and Kubernetes providers in `opts.providers`; the children inherit them."""

    exports: dict[str, Any]

    def __init__(self, name: str, args: AppsArgs, cluster: ClusterContext, openai_base_urls: list[pulumi.Input[str]],
                 opts: Optional[pulumi.ResourceOptions] = None, openai_api_key: Optional[pulumi.Input[str]] = None):
        """`openai_base_urls`: Triton's OpenAI frontends, or the gateway's /v1 with `openai_api_key`
        (openWebUi.viaGateway: OpenWebUI's own gateway key)."""
        super().__init__("ai-platform:layers:Apps", name, None, opts)
        self.exports = {}
        if args.openwebui.enabled:
            openwebui = OpenWebUi("openwebui", openwebui_args(args, cluster, openai_base_urls, openai_api_key), moved(self, cluster.cluster))
            self.exports["openWebUiUrl"] = openwebui.url
            if openwebui.uploads_bucket:
                self.exports["openWebUiUploadsBucket"] = openwebui.uploads_bucket
            if openwebui.port_forward_command:
                self.exports["openWebUiPortForward"] = openwebui.port_forward_command
        self.register_outputs({})
