"""ai-platform: reads the stack config into one typed model and wires the components together."""

import pulumi
import pulumi_aws as aws

import stack_config
from components.ci_role import CiRole, CiRoleArgs
from components.cluster import Cluster, ClusterArgs, SystemNodeGroupArgs
from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.network import Network, NetworkArgs, subnet_cidrs
from components.gpu_operator import GpuOperator, GpuOperatorArgs, GpuPool
from components.gpu_scheduling import GpuScheduling, GpuSchedulingArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.model_repository import ModelRepository, ModelRepositoryArgs, RepositoryReader
from components.triton import NODE_PROVISIONING_SECONDS, TritonServer, TritonServerArgs, service_account_name
from components.triton_autoscaling import PrometheusAdapter, PrometheusAdapterArgs
from components.exposure import ExposureSettings, LoadBalancerController, LoadBalancerControllerArgs, ui_ingress
from components.openwebui import LABELS as OPENWEBUI_POD_LABELS, OpenWebUi, OpenWebUiArgs, PostgresNetwork, WorkloadIdentity
from components import monitoring as monitoring_component
from stack_config.gpu_stack import TRITON_WAITS_FOR_VALIDATION, advertised_resources, gpu_node_labels

try:
    config = stack_config.load_from_pulumi()
except stack_config.ConfigError as error:
    raise pulumi.RunError(str(error)) from None  # one message, no traceback, nothing registered

stack = pulumi.get_stack()
cluster_name = f"ai-platform-{stack}"
aws_provider = aws.Provider(
    "aws",
    region=config.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags={
        "Project": "ai-platform",
        "Stack": stack,
        "Owner": config.owner,
        "CostCenter": config.costCenter,
        "ManagedBy": "pulumi",
    }),
)
aws_opts = pulumi.ResourceOptions(providers={"aws": aws_provider})

existing = config.network.existingVpc
network = Network("network", NetworkArgs(
    cluster_name=cluster_name,
    region=config.region,
    vpc_cidr=config.network.vpcCidr,
    availability_zones=config.network.availabilityZones,
    nat_gateways=config.network.natGateways,
    existing_vpc_id=existing.vpcId if existing else None,
    existing_public_subnet_ids=tuple(existing.publicSubnetIds) if existing else (),
    existing_private_subnet_ids=tuple(existing.privateSubnetIds) if existing else (),
), aws_opts)

system = config.cluster.systemNodeGroup
cluster = Cluster("cluster", ClusterArgs(
    cluster_name=cluster_name,
    region=config.region,
    partition=config.partition,
    kubernetes_version=config.cluster.kubernetesVersion,
    vpc_id=network.vpc_id,
    private_subnet_ids=network.private_subnet_ids,
    endpoint_public_access=config.cluster.endpointPublicAccess,
    endpoint_private_access=config.cluster.endpointPrivateAccess,
    public_access_cidrs=config.cluster.publicAccessCidrs,
    log_types=config.cluster.logTypes,
    deletion_protection=config.cluster.deletionProtection,
    admin_role_arns=config.cluster.adminRoleArns,
    api_access_cidrs=config.cluster.apiAccessCidrs,
    api_access_security_group_ids=config.cluster.apiAccessSecurityGroupIds,
    system_node_group=SystemNodeGroupArgs(
        instance_types=system.instanceTypes, capacity_type=system.capacityType, min_size=system.minSize,
        desired_size=system.desiredSize, max_size=system.maxSize, disk_size_gib=system.diskSizeGiB,
    ),
), aws_opts)

gpu_pools = [
    GpuNodeGroup(f"gpu-{pool.name}", GpuNodeGroupArgs(
        cluster_name=cluster.name,
        cluster_name_static=cluster_name,
        node_role_arn=cluster.node_role_arn,
        subnet_ids=network.private_subnet_ids,
        pool_name=pool.name,
        instance_types=pool.instanceTypes,
        capacity_type=pool.capacityType,
        min_size=pool.minSize,
        desired_size=pool.desiredSize,
        max_size=pool.maxSize,
        ami_type=pool.amiType,
        disk_size_gib=pool.diskSizeGiB,
        resources=advertised_resources(pool),  # time-slicing multiplies nvidia.com/gpu; mixed MIG: mig-<profile>
        max_unavailable=pool.maxUnavailable,
        extra_labels={**pool.labels, **gpu_node_labels(pool)},
        depends_on=[cluster],
    ), aws_opts)
    for pool in config.gpuNodeGroups
]

cluster_autoscaler = None  # scales a GPU pool up from zero (for the validation Jobs, too)
if config.clusterAutoscaler.enabled:
    autoscaler = config.clusterAutoscaler
    cluster_autoscaler = ClusterAutoscaler("cluster-autoscaler", ClusterAutoscalerArgs(
        cluster_name=cluster_name,
        region=config.region,
        kubernetes_version=config.cluster.kubernetesVersion,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        node_group_arns=[pool.node_group_arn for pool in gpu_pools],
        expander=autoscaler.expander,
        scale_down_unneeded_time=autoscaler.scaleDownUnneededTime,
        scale_down_delay_after_add=autoscaler.scaleDownDelayAfterAdd,
        scale_down_utilization_threshold=autoscaler.scaleDownUtilizationThreshold,
        k8s_provider=cluster.k8s_provider,
        expendable_pods_priority_cutoff=autoscaler.expendablePodsPriorityCutoff,
    ), aws_opts)

if config.ciRole.enabled:
    ci = CiRole("ci", CiRoleArgs.from_config(config.ciRole, stack, config.partition, cluster_name=cluster.name), aws_opts)
    pulumi.export("ciRoleArn", ci.deploy_role_arn)
    if ci.preview_role_arn is not None:
        pulumi.export("ciPreviewRoleArn", ci.preview_role_arn)

# --- GPU stack on the cluster: scheduling, monitoring (CRDs first), then the GPU operator ----------
gpu_stack = config.gpuStack
on_cluster = pulumi.ResourceOptions(depends_on=[cluster])
exposure_config = config.exposure
# The ALB's subnets (public when internet-facing), for the UIs' NetworkPolicies. A brought VPC's
# subnet layout is unknown here: allow its whole CIDR (network.vpcCidr) instead.
alb_source_cidrs = [config.network.vpcCidr] if existing else subnet_cidrs(
    config.network.vpcCidr, len(config.network.availabilityZones))[0 if exposure_config.scheme == "internet-facing" else 1]
grafana_exposed = bool(exposure_config.certificateArn and exposure_config.loadBalancerController and exposure_config.grafanaHostname)
scheduling = GpuScheduling("gpu-scheduling", GpuSchedulingArgs(
    k8s_provider=cluster.k8s_provider,
    gpu_quotas=gpu_stack.scheduling.gpuQuotas,
), on_cluster)
monitoring = Monitoring("monitoring", MonitoringArgs(
    k8s_provider=cluster.k8s_provider,
    monitoring=gpu_stack.monitoring,
    alerting=gpu_stack.alerting,
    thresholds=gpu_stack.alertThresholds,
    slack_webhook_url=config.alertSlackWebhookUrl.get_secret_value() if config.alertSlackWebhookUrl else None,
    smtp_password=config.alertSmtpPassword.get_secret_value() if config.alertSmtpPassword else None,
    vpc_cidr=config.network.vpcCidr,
    grafana_alb_scheme=exposure_config.scheme if grafana_exposed else None,
    grafana_alb_source_cidrs=alb_source_cidrs if grafana_exposed else (),
    prometheus_adapter=any(d.autoscaled for d in config.tritonDeployments),
    # Triton's Deployments wait progressDeadlineSeconds for a start; so does TritonServerNotReady.
    triton_startup_budget_seconds=max((d.startupTimeoutSeconds + NODE_PROVISIONING_SECONDS
                                       for d in config.tritonDeployments),
                                      default=monitoring_component.DEFAULT_STARTUP_BUDGET_SECONDS),
), on_cluster)
gpu_operator = GpuOperator("gpu-operator", GpuOperatorArgs(
    k8s_provider=cluster.k8s_provider,
    config=gpu_stack.operator,
    validation=gpu_stack.validation,
    pools=[GpuPool(pool.name, pool.sharing, advertised_resources(pool)) for pool in config.gpuNodeGroups],
    prometheus_release=monitoring.release_name,
    depends_on=[monitoring.release],  # the ServiceMonitor CRD must exist before the operator
    validation_depends_on=[*scheduling.priority_classes.values(), *gpu_pools,
                           *([cluster_autoscaler.release] if cluster_autoscaler else [])],
), on_cluster)

# --- AWS Load Balancer Controller: before anything asks for a load balancer (Triton's internal NLB,
# the UIs' ALB): only it serves them, and Pulumi waits for their addresses ---------------------------
lb_controller = None
if exposure_config.loadBalancerController:
    lb_controller = LoadBalancerController("aws-load-balancer-controller", LoadBalancerControllerArgs(
        cluster_name=cluster_name,
        region=config.region,
        partition=config.partition,
        vpc_id=network.vpc_id,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        k8s_provider=cluster.k8s_provider,
    ), pulumi.ResourceOptions.merge(aws_opts, on_cluster))

# --- Triton on the S3 model repository, autoscaled on queue/compute time ----------------------------
triton_servers: dict[str, TritonServer] = {}
if config.tritonDeployments:
    repository_config = config.modelRepository
    model_bucket = repository_config.bucket_name(stack, config.region)
    repository = ModelRepository("model-repository", ModelRepositoryArgs(
        bucket_name=model_bucket,
        partition=config.partition,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        readers=[RepositoryReader(d.name, d.namespace, service_account_name(d.name), d.modelPrefix)
                 for d in config.tritonDeployments],
        protect_data=config.protectData,
        noncurrent_version_days=repository_config.noncurrentVersionDays,
        noncurrent_versions_kept=repository_config.noncurrentVersionsKept,
        kms_key_arn=repository_config.kmsKeyArn,
        publisher_principal_arns=repository_config.publisher.trustedPrincipalArns,
        publisher_allow_delete=repository_config.publisher.allowDelete,
    ), aws_opts)
    adapter = None
    if any(d.autoscaled for d in config.tritonDeployments):
        adapter = PrometheusAdapter("prometheus-adapter", PrometheusAdapterArgs(
            k8s_provider=cluster.k8s_provider,
            depends_on=[monitoring.release],
        ), on_cluster)
    # Quota namespaces already exist (GPU scheduling); the first deployment in any other creates it.
    triton_namespaces = dict(scheduling.namespaces)
    for deployment in config.tritonDeployments:
        # The pool's validation Job first: it then has the pool's GPUs to itself (a pool sized for
        # Triton alone has none spare for it), and a broken GPU stack stops before Triton.
        validation_job = gpu_operator.validation_jobs.get(deployment.gpuPool) if TRITON_WAITS_FOR_VALIDATION else None
        server = TritonServer(f"triton-{deployment.name}", TritonServerArgs(
            config=deployment,
            bucket_name=model_bucket,
            region=config.region,
            role_arn=repository.reader_role_arns[deployment.name],
            repository_objects=[repository.prefix_markers[deployment.name]],
            k8s_provider=cluster.k8s_provider,
            namespace_resource=triton_namespaces.get(deployment.namespace),
            service_monitor_labels={"release": monitoring.release_name},
            depends_on=[monitoring.release, *scheduling.priority_classes.values(), *([adapter] if adapter else []),
                        *([validation_job] if validation_job else []),
                        *([lb_controller.release] if lb_controller and deployment.expose == "internalNlb" else [])],
            vpc_cidr=config.network.vpcCidr,
            # OpenWebUI calls the OpenAI port of every `llm` deployment, from its configured namespace.
            openai_clients=[(config.openWebUi.namespace, OPENWEBUI_POD_LABELS)] if config.openWebUi.enabled else [],
        ), on_cluster)
        triton_namespaces.setdefault(deployment.namespace, server.namespace_resource)
        triton_servers[deployment.name] = server
    pulumi.export("modelBucket", repository.bucket_name)
    pulumi.export("modelPublisherPolicyArn", repository.publisher_policy_arn)
    if repository.publisher_role_arn is not None:
        pulumi.export("modelPublisherRoleArn", repository.publisher_role_arn)
    pulumi.export("tritonDeployments", {name: server.outputs for name, server in triton_servers.items()})

# --- UIs: OpenWebUI on the llm deployments, Grafana, one shared ALB ---------------------------------
exposure = ExposureSettings(
    scheme=exposure_config.scheme,
    certificate_arn=exposure_config.certificateArn,
    group_name=exposure_config.groupName,
    inbound_cidrs=list(exposure_config.inboundCidrs),
    controller=lb_controller.release,
) if exposure_config.certificateArn and lb_controller else None

grafana_url = monitoring.grafana_url
if exposure and grafana_exposed:  # the same condition Monitoring opened Grafana's port to the ALB on
    ui_ingress("grafana", monitoring_component.NAMESPACE, exposure_config.grafanaHostname,
               f"{monitoring_component.RELEASE_NAME}-grafana", 80, "/api/health", exposure,
               pulumi.ResourceOptions(parent=monitoring, provider=cluster.k8s_provider, depends_on=[monitoring.release]))
    grafana_url = f"https://{exposure_config.grafanaHostname}"


if config.openWebUi.enabled:
    openwebui_config = config.openWebUi
    openwebui = OpenWebUi("openwebui", OpenWebUiArgs(
        config=openwebui_config,
        # Triton's OpenAI frontend of every `llm` deployment, in config order.
        openai_base_urls=[server.openai_base_url for server in triton_servers.values() if server.openai_base_url],
        k8s_provider=cluster.k8s_provider,
        protect_data=config.protectData,
        hostname=exposure_config.openWebUiHostname if exposure else None,
        exposure=exposure,
        alb_source_cidrs=alb_source_cidrs,
        oidc_client_secret=(pulumi.Output.secret(config.openWebUiOidcClientSecret.get_secret_value())
                            if config.openWebUiOidcClientSecret else None),
        postgres_network=PostgresNetwork(
            name_prefix=cluster_name,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            cluster_security_group_id=cluster.cluster_security_group_id,
        ) if openwebui_config.persistence.database == "postgres" else None,
        # Used with replicas > 1: uploads in S3 through an IRSA role.
        uploads_bucket_name=openwebui_config.persistence.uploads.bucket_name(stack, config.region),
        workload_identity=WorkloadIdentity(config.partition, config.region, cluster.oidc_provider_arn, cluster.oidc_issuer),
    ), pulumi.ResourceOptions.merge(aws_opts, on_cluster))
    pulumi.export("openWebUiUrl", openwebui.url)
    if openwebui.uploads_bucket:
        pulumi.export("openWebUiUploadsBucket", openwebui.uploads_bucket)
    if openwebui.port_forward_command:
        pulumi.export("openWebUiPortForward", openwebui.port_forward_command)

pulumi.export("region", config.region)
pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("gpuNodeGroups", [
    {"name": pool.name, "instanceTypes": pool.instanceTypes, "capacityType": pool.capacityType,
     "minSize": pool.minSize, "maxSize": pool.maxSize, "nodeGroupName": group.node_group_name}
    for pool, group in zip(config.gpuNodeGroups, gpu_pools)
])
pulumi.export("grafanaUrl", grafana_url)
pulumi.export("alertmanagerUrl", monitoring.alertmanager_url)
pulumi.export("grafanaAdminUser", monitoring.grafana_admin_user)
pulumi.export("grafanaAdminPassword", monitoring.grafana_admin_password)
