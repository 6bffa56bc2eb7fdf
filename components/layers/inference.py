"""Inference layer: the S3 model repository (with a read-only IRSA role per Triton deployment), the
prometheus-adapter that Triton's HPAs read, the TensorRT builds (`modelBuilds`: one Job each, which
the target Triton Deployment waits for), the Triton fleet and the inference gateway in front of it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import pulumi

import stack_config
from components.layers.context import ClusterContext, moved
from components.layers.gpu_stack import GpuStackReadiness
from components.managed_data import ClusterNetwork
from components.model_builds import ModelBuild, ModelBuildArgs, file_sha256, source_upload
from components.inference_gateway import LABELS as GATEWAY_POD_LABELS
from components.inference_gateway import InferenceGateway, InferenceGatewayArgs, upstreams
from components.model_repository import ModelRepository, ModelRepositoryArgs, RepositoryReader
from components.openwebui import LABELS as OPENWEBUI_POD_LABELS
from components.triton import TritonServer, TritonServerArgs, service_account_name
from components.triton_autoscaling import PrometheusAdapter, PrometheusAdapterArgs
from stack_config.gateway import OPENWEBUI_KEY, GatewayConfig
from stack_config.gpu_stack import TRITON_WAITS_FOR_VALIDATION
from stack_config.model_builds import ModelBuildConfig
from stack_config.openwebui import OpenWebUiConfig
from stack_config.triton import ModelRepositoryConfig, TritonDeploymentConfig


@dataclass(frozen=True)
class InferenceArgs:
    deployments: tuple[TritonDeploymentConfig, ...]
    repository: ModelRepositoryConfig
    protect_data: bool
    # OpenWebUI calls the OpenAI port of every `llm` deployment, from its configured namespace.
    openwebui: OpenWebUiConfig
    # TensorRT builds, each into a standard deployment's prefix (stack config `modelBuilds`).
    builds: tuple[ModelBuildConfig, ...] = ()
    gateway: GatewayConfig = GatewayConfig()
    gateway_hostname: Optional[str] = None  # exposure.gatewayHostname


def openai_clients(args: InferenceArgs) -> list[tuple[str, dict[str, str]]]:
    """Who calls the OpenAI port of an `llm` deployment: OpenWebUI unless it goes through the
    gateway, and the gateway (OpenWebUI first: its policy keeps index 0 while it calls directly)."""
    clients = []
    if args.openwebui.enabled and not (args.openwebui.viaGateway and args.gateway.enabled):
        clients.append((args.openwebui.namespace, OPENWEBUI_POD_LABELS))
    if args.gateway.enabled:
        clients.append((args.gateway.namespace, GATEWAY_POD_LABELS))
    return clients


def gateway_args(args: InferenceArgs, cluster: ClusterContext, gpu: GpuStackReadiness) -> InferenceGatewayArgs:
    config = args.gateway
    via = args.openwebui.enabled and args.openwebui.viaGateway
    return InferenceGatewayArgs(
        config=config, upstreams=upstreams(args.deployments, config.models),
        pod_clients=((args.openwebui.namespace, OPENWEBUI_POD_LABELS),) if via else (),
        service_monitor_labels={"release": gpu.prometheus_release}, monitoring=gpu.monitoring,
        hostname=args.gateway_hostname if cluster.exposure else None, exposure=cluster.exposure,
        alb_source=cluster.alb_source, waits_for=(cluster.cluster,),
        network=ClusterNetwork(name_prefix=cluster.cluster_name, vpc_id=cluster.vpc_id,
                               private_subnet_ids=cluster.private_subnet_ids,
                               cluster_security_group_id=cluster.cluster_security_group_id),
        protect_data=args.protect_data,
    )


def repository_args(args: InferenceArgs, cluster: ClusterContext) -> ModelRepositoryArgs:
    config = args.repository
    return ModelRepositoryArgs(
        bucket_name=config.bucket_name(cluster.stack, cluster.region), partition=cluster.partition,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
        readers=[RepositoryReader(d.name, d.namespace, service_account_name(d.name), d.modelPrefix) for d in args.deployments],
        protect_data=args.protect_data, noncurrent_version_days=config.noncurrentVersionDays,
        noncurrent_versions_kept=config.noncurrentVersionsKept, kms_key_arn=config.kmsKeyArn,
        publisher_principal_arns=config.publisher.trustedPrincipalArns, publisher_allow_delete=config.publisher.allowDelete,
        publisher_prefixes=publisher_prefixes(args),
    )


def publisher_prefixes(args: InferenceArgs) -> tuple[str, ...]:
    """With TensorRT builds, the publisher also uploads their sources (`sources/<name>/`); without,
    the repository's default (every deployment's prefix)."""
    if not args.builds:
        return ()
    sources = [build.source.rsplit("/", 1)[0] for build in args.builds]
    return tuple(dict.fromkeys([*(d.modelPrefix for d in args.deployments), *sources]))


class Inference(pulumi.ComponentResource):
    """Pass the AWS and Kubernetes providers in `opts.providers`; the children inherit them."""

    servers: dict[str, TritonServer]
    exports: dict[str, Any]
    gateway: Optional[InferenceGateway]

    def __init__(self, name: str, args: InferenceArgs, cluster: ClusterContext, gpu: GpuStackReadiness,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:layers:Inference", name, None, opts)
        self.servers, self.exports, self.gateway = {}, {}, None
        if not args.deployments:
            self.register_outputs({})
            return
        repository = ModelRepository("model-repository", repository_args(args, cluster), moved(self))
        adapter = None
        if any(d.autoscaled for d in args.deployments):
            adapter = PrometheusAdapter("prometheus-adapter", PrometheusAdapterArgs(monitoring=gpu.monitoring), moved(self, cluster.cluster))
        # Quota namespaces already exist (GPU scheduling); the first deployment in any other creates it.
        namespaces = dict(gpu.namespaces)
        build_jobs = self._builds(args, cluster, gpu, repository, namespaces)
        for deployment in args.deployments:
            server_args = self._server_args(args, deployment, cluster, gpu, repository, adapter, namespaces)
            # Triton starts once its plans are in the repository; the first deploy's GPU peak stays
            # the larger of the build and Triton, not their sum.
            server_args = replace(server_args, repository_objects=[
                *server_args.repository_objects, *build_jobs.get(deployment.name, [])])
            server = TritonServer(f"triton-{deployment.name}", server_args, moved(self, cluster.cluster))
            namespaces.setdefault(deployment.namespace, server.namespace_resource)
            self.servers[deployment.name] = server
        self.exports = {"modelBucket": repository.bucket_name, "modelPublisherPolicyArn": repository.publisher_policy_arn}
        if repository.publisher_role_arn is not None:
            self.exports["modelPublisherRoleArn"] = repository.publisher_role_arn
        self.exports["tritonDeployments"] = {name: server.outputs for name, server in self.servers.items()}
        if args.gateway.enabled:
            self.gateway = InferenceGateway("inference-gateway", gateway_args(args, cluster, gpu),
                                            pulumi.ResourceOptions(parent=self, depends_on=[cluster.cluster]))
            self.exports.update({"gatewayUrl": self.gateway.url, "gatewayMasterKey": self.gateway.master_key})
        self.register_outputs({})

    @property
    def openai_base_urls(self) -> list[pulumi.Output[str]]:
        """Triton's OpenAI frontend of every `llm` deployment, in config order."""
        return [server.openai_base_url for server in self.servers.values() if server.openai_base_url]

    def _source_uploads(self, args: InferenceArgs, cluster: ClusterContext,
                        repository: ModelRepository) -> dict[str, tuple[pulumi.Resource, Optional[str]]]:
        """Per source key a build's `sourceFile` names: its upload (named after the first build of
        that key) and the file's SHA-256, read once. A missing file (None) is only possible offline:
        a real preview or update stops at the config (stack_config.refuse_missing_source_files), and
        the plan's first-deploy check warns about it."""
        uploads: dict[str, tuple[pulumi.Resource, Optional[str]]] = {}
        for build in args.builds:
            if build.source_file and build.source not in uploads:
                path = stack_config.PROJECT_DIR / build.source_file
                upload = source_upload(f"model-build-{build.name}-source", args.repository.bucket_name(cluster.stack, cluster.region),
                                       build.source, path, args.repository.kmsKeyArn,
                                       pulumi.ResourceOptions(parent=self, depends_on=repository.bucket_ready))
                uploads[build.source] = (upload, file_sha256(path))
        return uploads

    def _builds(self, args: InferenceArgs, cluster: ClusterContext, gpu: GpuStackReadiness,
                repository: ModelRepository, namespaces: dict) -> dict[str, list[pulumi.Resource]]:
        """One ModelBuild per `modelBuilds` entry; the Jobs per target deployment. The config checks
        hold that each target is a standard deployment in a namespace GPU scheduling creates, and
        that builds sharing a source key share its sourceFile (one upload every build of the key
        waits for)."""
        by_name = {d.name: d for d in args.deployments}
        uploads = self._source_uploads(args, cluster, repository)
        jobs: dict[str, list[pulumi.Resource]] = {}
        for build in args.builds:
            deployment = by_name[build.deployment]
            validation_job = gpu.validation_jobs.get(deployment.gpuPool) if TRITON_WAITS_FOR_VALIDATION else None
            waits = [namespaces[deployment.namespace], *gpu.priority_classes, repository.prefix_markers[deployment.name],
                     *([validation_job] if validation_job else []),
                     # its pod scales the pool from zero
                     *cluster.gpu_node_groups, *([cluster.autoscaler] if cluster.autoscaler else [])]
            upload, digest = uploads.get(build.source, (None, None))
            model_build = ModelBuild(f"model-build-{build.name}", ModelBuildArgs(
                build=build, deployment=deployment, bucket_name=args.repository.bucket_name(cluster.stack, cluster.region),
                region=cluster.region, partition=cluster.partition, oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer, kms_key_arn=args.repository.kmsKeyArn, waits_for=waits,
                source_object=upload, source_sha256=digest,
            ), pulumi.ResourceOptions(parent=self, depends_on=[cluster.cluster]))
            jobs.setdefault(deployment.name, []).append(model_build.job)
        return jobs

    def openwebui_endpoints(self, openwebui: OpenWebUiConfig) -> tuple[list[Any], Optional[pulumi.Output[str]]]:
        """OpenWebUI's base URLs and key: the gateway's /v1 with its `openwebui` key (viaGateway,
        when there is an llm deployment to chat with), else Triton's frontends (no key)."""
        if self.gateway is not None and openwebui.viaGateway and self.openai_base_urls:
            return [f"{self.gateway.url}/v1"], self.gateway.keys.get(OPENWEBUI_KEY)
        return list(self.openai_base_urls), None

    @staticmethod
    def _server_args(args: InferenceArgs, deployment: TritonDeploymentConfig, cluster: ClusterContext,
                     gpu: GpuStackReadiness, repository: ModelRepository, adapter: Optional[PrometheusAdapter],
                     namespaces: dict) -> TritonServerArgs:
        # The pool's validation Job first: it then has the pool's GPUs to itself (a pool sized for
        # Triton alone has none spare for it), and a broken GPU stack stops before Triton.
        validation_job = gpu.validation_jobs.get(deployment.gpuPool) if TRITON_WAITS_FOR_VALIDATION else None
        nlb = cluster.load_balancer_controller if deployment.expose == "internalNlb" else None
        return TritonServerArgs(
            config=deployment, bucket_name=args.repository.bucket_name(cluster.stack, cluster.region),
            region=cluster.region, role_arn=repository.reader_role_arns[deployment.name],
            repository_objects=[repository.prefix_markers[deployment.name]],
            namespace_resource=namespaces.get(deployment.namespace),
            service_monitor_labels={"release": gpu.prometheus_release},
            monitoring=gpu.monitoring, priority_classes=gpu.priority_classes,
            metrics_adapter=adapter.release if adapter else None, gpu_validation=validation_job, load_balancer_controller=nlb,
            vpc_cidr=cluster.vpc_cidr,
            openai_clients=openai_clients(args),
            gateway_client=(args.gateway.namespace, GATEWAY_POD_LABELS) if args.gateway.enabled else None,
        )
