"""ai-platform: the stack config, the providers, four layers on one cluster context, the exports.

    Foundation (network, EKS, GPU node groups, autoscaler, LB controller, CI role) -> ClusterContext
      -> GpuStack (scheduling, monitoring + Grafana, GPU operator) -> readiness
      -> Inference (model repository, prometheus-adapter, Triton fleet, inference gateway) -> OpenAI endpoints
      -> Apps (OpenWebUI)
"""

import pulumi
import pulumi_aws as aws

import stack_config
from components.layers import Apps, AppsArgs, Foundation, FoundationArgs, GpuStack, GpuStackArgs, Inference, InferenceArgs


def secret(value):
    return value.get_secret_value() if value else None


try:
    config = stack_config.load_from_pulumi()
except stack_config.ConfigError as error:
    raise pulumi.RunError(str(error)) from None  # one message, no traceback, nothing registered

stack = pulumi.get_stack()
tags = {"Project": "ai-platform", "Stack": stack, "Owner": config.owner, "CostCenter": config.costCenter, "ManagedBy": "pulumi"}
aws_provider = aws.Provider("aws", region=config.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))

foundation = Foundation("foundation", FoundationArgs(
    stack=stack, region=config.region, partition=config.partition, network=config.network, cluster=config.cluster,
    gpu_node_groups=tuple(config.gpuNodeGroups), cluster_autoscaler=config.clusterAutoscaler, ci_role=config.ciRole,
    exposure=config.exposure, gpu_provisioner=config.gpuProvisioner, tags=tags,
    keep_gpu_node_groups=config.keepGpuNodeGroups,
), pulumi.ResourceOptions(providers={"aws": aws_provider}))
cluster = foundation.context
on_cluster = pulumi.ResourceOptions(providers={"aws": aws_provider, "kubernetes": cluster.k8s_provider})

gpu = GpuStack("gpu-stack", GpuStackArgs(
    gpu_stack=config.gpuStack, gpu_node_groups=tuple(config.gpuNodeGroups),
    triton_deployments=tuple(config.tritonDeployments), grafana_hostname=config.exposure.grafanaHostname,
    slack_webhook_url=secret(config.alertSlackWebhookUrl), smtp_password=secret(config.alertSmtpPassword),
), cluster, on_cluster)
inference = Inference("inference", InferenceArgs(
    deployments=tuple(config.tritonDeployments), repository=config.modelRepository, protect_data=config.protectData,
    openwebui=config.openWebUi, builds=tuple(config.modelBuilds), gateway=config.gateway,
    gateway_hostname=config.exposure.gatewayHostname,
), cluster, gpu.readiness, on_cluster)
openwebui_urls, openwebui_key = inference.openwebui_endpoints(config.openWebUi)
apps = Apps("apps", AppsArgs(
    openwebui=config.openWebUi, protect_data=config.protectData, hostname=config.exposure.openWebUiHostname,
    oidc_client_secret=secret(config.openWebUiOidcClientSecret),
), cluster, openwebui_urls, on_cluster, openai_api_key=openwebui_key)

exports = {
    **foundation.exports, **inference.exports, **apps.exports,
    "region": config.region,
    "clusterName": foundation.cluster.name,
    "kubeconfig": foundation.cluster.kubeconfig,
    "oidcProviderArn": cluster.oidc_provider_arn,
    "vpcId": cluster.vpc_id,
    "privateSubnetIds": cluster.private_subnet_ids,
    "gpuNodeGroups": [
        {"name": pool.name, "instanceTypes": pool.instanceTypes, "capacityType": pool.capacityType,
         "minSize": pool.minSize, "maxSize": pool.maxSize, "nodeGroupName": group.node_group_name if group else None}
        # gpuProvisioner karpenter: no node groups; the pool is the NodePool of the same name.
        for pool, group in zip(config.gpuNodeGroups, foundation.gpu_node_groups or [None] * len(config.gpuNodeGroups))
    ],
    "grafanaUrl": gpu.grafana_url,
    "alertmanagerUrl": gpu.monitoring.alertmanager_url,
    "grafanaAdminUser": gpu.monitoring.grafana_admin_user,
    "grafanaAdminPassword": gpu.monitoring.grafana_admin_password,
}
for key, value in exports.items():
    pulumi.export(key, value)
