"""Triton Inference Server, one per `tritonDeployments` entry, serving models straight from its
prefix of the S3 model repository through an IRSA role that can read only that prefix.

`standard` runs `tritonserver` (KServe v2 HTTP/gRPC + metrics); `llm` runs Triton's
OpenAI-compatible frontend from the -vllm-python-py3 image (OpenAI API, health and metrics on port
9000) with the KServe frontends enabled beside it.

The pod spec is built by plain functions (`container_command`, `probes`, `pod_spec`) so tests and
reviewers can read exactly what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import security
from components.gpu_scheduling import INFERENCE_PRIORITY_CLASS, MANAGED_BY, gpu_pod_placement
from components.gpu_node_group import GPU_RESOURCE
from components.triton_autoscaling import triton_hpa
from stack_config.triton import STARTUP_PERIOD_SECONDS, TritonDeploymentConfig

IMAGE_REPOSITORY = "nvcr.io/nvidia/tritonserver"
OPENAI_FRONTEND = "/opt/tritonserver/python/openai/openai_frontend/main.py"
# The Triton images run as `triton-server` (uid/gid 1000).
TRITON_UID = 1000

PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002, "openai": 9000}
# Ports each mode listens on, and the one Prometheus scrapes (/metrics).
MODE_PORTS = {"standard": ("http", "grpc", "metrics"), "llm": ("openai", "http", "grpc")}
METRICS_PORT = {"standard": "metrics", "llm": "openai"}
APP_PROTOCOL = {"http": "http", "grpc": "kubernetes.io/h2c", "metrics": "http", "openai": "http"}

# Checks that do not apply to the Triton Deployment, with why (listed in docs/security.md).
CHECKOV_SKIPS = {
    "CKV_K8S_40": "the image's files belong to its triton-server user (uid 1000); another uid cannot run it",
    "CKV_K8S_43": "the image tag is pinned in stack config; NGC tags are immutable releases",
}
# Only `llm` keeps a writable root: vLLM, PyTorch and the tokenizer write caches in many places.
LLM_CHECKOV_SKIPS = {
    **CHECKOV_SKIPS,
    "CKV_K8S_22": "vLLM, PyTorch and the HuggingFace tokenizer write caches across the image's filesystem ($HOME, compile caches)",
}
# Where `standard` mode may write under its read-only root: Triton copies the S3 model repository
# to a temporary directory (under /tmp) before loading it.
STANDARD_WRITABLE_DIRS = {"tmp": "/tmp"}

# Nodes of a GPU pool may have to be created first (scale from zero): give `pulumi up` and the
# Deployment controller that much beyond the model download budget before calling it failed.
NODE_PROVISIONING_SECONDS = 900

# The internal NLB, for the AWS Load Balancer Controller (kubernetes-sigs/aws-load-balancer-controller
# v2.14.0, the chart components/exposure.py pins). The stack turns the controller's Service mutating
# webhook off, so no loadBalancerClass is injected: the controller takes a Service only with type
# `external` plus a target type (pkg/service/service_utils.go); `nlb` would go to the legacy in-tree
# controller, which ignores the target type. `external` also makes the in-tree controller leave it.
# IP targets: the NLB connects straight to pod IPs. Client IP preservation, off by default for IP
# targets, is pinned off: the pods then see the NLB's private addresses (its subnets), which is what
# the NetworkPolicy admits.
INTERNAL_NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=false",
}


def resource_name(deployment: str) -> str:
    """Name of the Deployment, Service, ServiceAccount... of a Triton deployment: the deployment's
    own name, so its URL is http://<name>.<namespace>.svc.cluster.local."""
    return deployment


def service_account_name(deployment: str) -> str:
    return resource_name(deployment)


def selector_labels(deployment: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "triton", "app.kubernetes.io/instance": deployment}


def model_repository_url(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def container_command(config: TritonDeploymentConfig, bucket: str) -> tuple[list[str], list[str]]:
    """(command, args) of the Triton container for the deployment's mode."""
    repository = model_repository_url(bucket, config.modelPrefix)
    if config.mode == "llm":
        args = [
            f"--model-repository={repository}",
            f"--openai-port={PORTS['openai']}",
            "--enable-kserve-frontends",
            f"--kserve-http-port={PORTS['http']}",
            f"--kserve-grpc-port={PORTS['grpc']}",
        ]
        if config.tokenizer:
            args.append(f"--tokenizer={config.tokenizer}")
        return ["python3", OPENAI_FRONTEND], args

    control = config.modelControl
    args = [
        f"--model-repository={repository}",
        f"--model-control-mode={control.mode}",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
    ]
    if control.mode == "poll":
        args.append(f"--repository-poll-secs={control.poll_seconds}")
    elif control.mode == "explicit":
        args += [f"--load-model={model}" for model in control.loadModels]
    return ["tritonserver"], args


def probes(config: TritonDeploymentConfig) -> dict[str, dict]:
    """Startup, readiness and liveness probes. The startup probe holds the others off for
    `startupTimeoutSeconds` while models download from S3 and load onto the GPU."""
    if config.mode == "llm":
        # The OpenAI frontend starts listening only once every model is loaded; /health/ready
        # then follows the engine.
        ready = {"httpGet": {"path": "/health/ready", "port": "openai"}}
        live = {"tcpSocket": {"port": "openai"}}
    else:
        ready = {"httpGet": {"path": "/v2/health/ready", "port": "http"}}
        live = {"httpGet": {"path": "/v2/health/live", "port": "http"}}
    return {
        "startupProbe": {**ready, "periodSeconds": STARTUP_PERIOD_SECONDS, "timeoutSeconds": 5,
                         "failureThreshold": config.startup_failure_threshold},
        "readinessProbe": {**ready, "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        # Liveness restarts a replica (and reloads every model): only after a minute of silence.
        "livenessProbe": {**live, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
    }


def container_ports(mode: str) -> list[dict]:
    return [{"name": name, "containerPort": PORTS[name], "protocol": "TCP"} for name in MODE_PORTS[mode]]


def pod_spec(config: TritonDeploymentConfig, bucket: str, region: str,
             priority_class: str = INFERENCE_PRIORITY_CLASS) -> dict[str, Any]:
    """The Deployment's pod spec (Kubernetes spelling)."""
    command, args = container_command(config, bucket)
    gpus = str(config.gpusPerReplica)
    read_only_root = config.mode == "standard"
    writable_volumes: list[dict] = []
    writable_mounts: list[dict] = []
    if read_only_root:
        # No size limit: the model copy can be as large as the models; the node disk bounds it.
        writable_volumes = [{"name": name, "emptyDir": {}} for name in STANDARD_WRITABLE_DIRS]
        writable_mounts = [{"name": name, "mountPath": path} for name, path in STANDARD_WRITABLE_DIRS.items()]
    container = {
        "name": "triton",
        "image": f"{IMAGE_REPOSITORY}:{config.imageTag}",
        "command": command,
        "args": args,
        "ports": container_ports(config.mode),
        "env": [
            # Triton's S3 client takes the region from AWS_DEFAULT_REGION; IRSA's web identity
            # variables are injected by the EKS pod identity webhook from the ServiceAccount.
            {"name": "AWS_DEFAULT_REGION", "value": region},
            {"name": "AWS_REGION", "value": region},
        ],
        # The same CPU limit as request: a GPU node's CPUs are shared by its GPU pods, and one
        # replica's tokenizer/pre-processing must not starve the others (checkov CKV_K8S_11).
        "resources": {
            "requests": {"cpu": config.resources.cpu, "memory": config.resources.memory, GPU_RESOURCE: gpus},
            "limits": {"cpu": config.resources.cpu, "memory": config.resources.memory, GPU_RESOURCE: gpus},
        },
        # Tags are pinned; Always re-checks the tag's digest at pod start (layers stay cached).
        "imagePullPolicy": "Always",
        "securityContext": security.restricted_security_context(read_only_root=read_only_root, run_as_user=TRITON_UID),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}, *writable_mounts],
        **probes(config),
    }
    spec: dict[str, Any] = {
        "serviceAccountName": service_account_name(config.name),
        # The pod needs no Kubernetes API access; the IRSA token is a separate projected volume.
        "automountServiceAccountToken": False,
        "securityContext": security.restricted_pod_security_context(run_as_user=TRITON_UID),
        **gpu_pod_placement(config.gpuPool, priority_class),
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        # /dev/shm must be a sized memory volume: the runtime's default 64Mi breaks Python
        # backends and vLLM, and an env var cannot change it. It counts against the memory limit.
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": config.shmSize}}, *writable_volumes],
    }
    if config.maxReplicas > 1:
        # Soft spreading: a hard zone rule could leave a replica Pending forever, because the
        # autoscaler cannot pick the zone of a new node in a multi-zone node group.
        spec["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": selector_labels(config.name)}, "matchLabelKeys": ["pod-template-hash"]}
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
    return spec


def deployment_spec(config: TritonDeploymentConfig, bucket: str, region: str,
                    priority_class: str = INFERENCE_PRIORITY_CLASS) -> dict[str, Any]:
    labels = {**MANAGED_BY, **selector_labels(config.name), "ai-platform/triton-mode": config.mode}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(config.name)},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec(config, bucket, region, priority_class)},
        "revisionHistoryLimit": 5,
        # The default 10 minutes would declare a rollout failed while a large model still downloads.
        "progressDeadlineSeconds": config.startupTimeoutSeconds + NODE_PROVISIONING_SECONDS,
        "strategy": (
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
            if config.rolloutStrategy == "surge" else {"type": "Recreate"}
        ),
    }
    if not config.autoscaled:
        # With an HPA the replica count is the HPA's; setting it here would reset it on every update.
        spec["replicas"] = config.minReplicas
    return spec


def in_cluster_host(deployment: str, namespace: str) -> str:
    return f"{resource_name(deployment)}.{namespace}.svc.cluster.local"


def endpoints(config: TritonDeploymentConfig) -> dict[str, str]:
    """In-cluster URLs of a deployment. gRPC is host:port, as tritonclient takes it."""
    host = in_cluster_host(config.name, config.namespace)
    urls = {
        "httpUrl": f"http://{host}:{PORTS['http']}",
        "grpcUrl": f"{host}:{PORTS['grpc']}",
        "metricsUrl": f"http://{host}:{PORTS[METRICS_PORT[config.mode]]}/metrics",
    }
    if config.mode == "llm":
        # No trailing slash: OpenAI clients append /models, /chat/completions.
        urls["openaiUrl"] = f"http://{host}:{PORTS['openai']}/v1"
    return urls


def serving_ports(mode: str) -> list[str]:
    """The ports clients call (every port of the mode but the Prometheus-only metrics port)."""
    return [name for name in MODE_PORTS[mode] if name != "metrics"]


def port_forward_command(config: TritonDeploymentConfig) -> str:
    """`kubectl port-forward` to the Service's serving ports, for the in-cluster URLs from a
    workstation (it enters the pod's network namespace: NetworkPolicies do not apply)."""
    ports = " ".join(f"{PORTS[name]}:{PORTS[name]}" for name in serving_ports(config.mode))
    return f"kubectl -n {config.namespace} port-forward svc/{resource_name(config.name)} {ports}"


def network_policies(config: TritonDeploymentConfig, openai_clients: Sequence[tuple[str, dict[str, str]]],
                     opts: pulumi.ResourceOptions, gateway: Optional[tuple[str, dict[str, str]]] = None) -> None:
    """The namespace denies all ingress: open only what this deployment serves, each port to the
    clients the README names for it (Prometheus: metrics; OpenWebUI: the OpenAI port of `llm`;
    `clients`: the serving ports; the inference gateway: the KServe-v2 HTTP port of `standard`, listed
    in `openai_clients` for `llm`), and let its pods out only to DNS and HTTPS (S3 model
    repository, STS for IRSA, model hub). The internal NLB's policy comes with the NLB."""
    ns, base, pod_labels = config.namespace, resource_name(config.name), selector_labels(config.name)
    security.allow_prometheus_scrape(ns, pod_labels, [PORTS[METRICS_PORT[config.mode]]], opts, name=f"{base}-allow-prometheus")
    if config.mode == "llm":
        for index, (client_ns, client_labels) in enumerate(openai_clients):
            security.allow_from_pods(ns, f"{base}-allow-openai-client-{index}", pod_labels, [PORTS["openai"]],
                                     client_ns, client_labels, opts)
    elif gateway is not None:
        security.allow_from_pods(ns, f"{base}-allow-gateway", pod_labels, [PORTS["http"]], gateway[0], gateway[1], opts)
    if config.clients:
        peers = [security.pod_peer(client.namespace, client.podLabels) for client in config.clients]
        security.allow_ingress(ns, f"{base}-allow-clients", pod_labels,
                               [security.ingress_rule(peers, [PORTS[p] for p in serving_ports(config.mode)])], opts)
    security.allow_dns_egress(ns, opts, pod_labels, name=f"{base}-allow-dns-egress")
    security.allow_https_egress(ns, pod_labels, opts, name=f"{base}-allow-https-egress")


def _load_balancer_host(status) -> Optional[str]:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return (ingress[0].hostname or ingress[0].ip) if ingress else None


@dataclass(frozen=True)
class TritonServerArgs:
    config: TritonDeploymentConfig
    bucket_name: str
    region: str
    role_arn: pulumi.Input[str]
    # The namespace, when another component creates it (shared by several deployments); else
    # this component creates it (Pod Security `restricted`).
    namespace_resource: Optional[k8s.core.v1.Namespace] = None
    priority_class_name: str = INFERENCE_PRIORITY_CLASS
    # Labels the stack's Prometheus selects ServiceMonitors by (kube-prometheus-stack: release).
    service_monitor_labels: dict[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})
    # What the pods wait for: the ServiceMonitor CRD (kube-prometheus-stack release), the priority
    # classes, the custom metrics API (HPA), the GPU pool's validation Job, the controller that
    # serves the internal NLB.
    monitoring: Optional[pulumi.Resource] = None
    priority_classes: Sequence[pulumi.Resource] = ()
    metrics_adapter: Optional[pulumi.Resource] = None
    gpu_validation: Optional[pulumi.Resource] = None
    load_balancer_controller: Optional[pulumi.Resource] = None
    # What must be in the model repository before Triton starts (the prefix's `.keep` marker:
    # Triton exits on a repository path with nothing under it): the Deployment waits for it.
    repository_objects: Sequence[pulumi.Resource] = ()
    # Internal NLB clients come from inside the VPC (the NetworkPolicy admits this range).
    vpc_cidr: str = "10.0.0.0/8"
    # Pods that call the OpenAI endpoint of an `llm` deployment: (namespace, pod labels) of
    # OpenWebUI, from its config (none when OpenWebUI is off).
    openai_clients: Sequence[tuple[str, dict[str, str]]] = ()
    # The inference gateway's pods (namespace, labels): admitted on a `standard` deployment's HTTP
    # port (for `llm` it is one of openai_clients).
    gateway_client: Optional[tuple[str, dict[str, str]]] = None


def waits_for(args: TritonServerArgs) -> list[pulumi.Resource]:
    optional = (args.metrics_adapter, args.gpu_validation, args.load_balancer_controller)
    return [*([args.monitoring] if args.monitoring else []), *args.priority_classes, *[r for r in optional if r]]


class TritonServer(pulumi.ComponentResource):
    namespace: str
    service_name: str
    http_url: str
    grpc_url: str
    metrics_url: str
    openai_base_url: Optional[str]  # llm only
    # externalHttpUrl, externalGrpcUrl (and externalOpenaiUrl for llm) when behind an internal NLB
    external_urls: dict[str, pulumi.Output[str]]
    namespace_resource: k8s.core.v1.Namespace
    outputs: dict[str, Any]

    def __init__(self, name: str, args: TritonServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:triton:TritonServer", name, None, opts)
        config = args.config
        ns = config.namespace
        base = resource_name(config.name)
        labels = {**MANAGED_BY, **selector_labels(config.name)}

        if args.namespace_resource is None:
            self.namespace_resource = security.namespace(
                ns, "restricted", "Triton runs as non-root with every capability dropped",
                parent=self,
            )
        else:
            self.namespace_resource = args.namespace_resource
        k8s_opts = pulumi.ResourceOptions(
            parent=self, depends_on=[self.namespace_resource, *waits_for(args)],
        )

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": service_account_name(config.name), "namespace": ns, "labels": labels,
                      "annotations": {"eks.amazonaws.com/role-arn": args.role_arn}},
            automount_service_account_token=False,
            opts=k8s_opts,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": base, "namespace": ns, "labels": labels, "annotations": {
                # Pulumi waits for the rollout; allow for a node scale-up plus the model download.
                "pulumi.com/timeoutSeconds": str(config.startupTimeoutSeconds + NODE_PROVISIONING_SECONDS),
                **security.checkov_skips(LLM_CHECKOV_SKIPS if config.mode == "llm" else CHECKOV_SKIPS),
            }},
            spec=deployment_spec(config, args.bucket_name, args.region, args.priority_class_name),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[service_account, *args.repository_objects])),
        )

        service_ports = [{"name": port, "port": PORTS[port], "targetPort": port, "protocol": "TCP",
                          "appProtocol": APP_PROTOCOL[port]} for port in MODE_PORTS[config.mode]]
        self._metrics(name, args, labels, service_ports, k8s_opts)
        network_policies(config, args.openai_clients, k8s_opts, args.gateway_client)
        if config.minReplicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata={"name": base, "namespace": ns, "labels": labels},
                # Node drains (upgrades, scale-down) take one replica at a time.
                spec={"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(config.name)}},
                opts=k8s_opts,
            )
        if config.autoscaled:
            triton_hpa(f"{name}-hpa", ns, base, labels, config.minReplicas, config.maxReplicas,
                       config.targetQueueComputeRatio,
                       pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[deployment])))
        self.external_urls = {}
        if config.expose == "internalNlb":
            self.external_urls = self._internal_nlb(name, args, labels, service_ports, k8s_opts)
        self._set_outputs(args)

    def _metrics(self, name: str, args: TritonServerArgs, labels: dict[str, str], service_ports: list[dict],
                 opts: pulumi.ResourceOptions) -> None:
        """The ClusterIP Service (it alone carries the metrics label) and its ServiceMonitor."""
        config, base = args.config, resource_name(args.config.name)
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": base, "namespace": config.namespace, "labels": {**labels, "ai-platform/metrics": "true"}},
            spec={"type": "ClusterIP", "selector": selector_labels(config.name), "ports": service_ports},
            opts=opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata={"name": base, "namespace": config.namespace, "labels": {**labels, **args.service_monitor_labels}},
            spec={
                # Only the ClusterIP Service carries the metrics label, so an NLB Service for the
                # same pods is never scraped twice.
                "selector": {"matchLabels": {**selector_labels(config.name), "ai-platform/metrics": "true"}},
                "namespaceSelector": {"matchNames": [config.namespace]},
                "endpoints": [{"port": METRICS_PORT[config.mode], "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}],
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[service])),
        )

    @staticmethod
    def _internal_nlb(name: str, args: TritonServerArgs, labels: dict[str, str], service_ports: list[dict],
                      opts: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
        """The serving ports behind an internal NLB, admitted from the VPC; its URLs."""
        config, base = args.config, resource_name(args.config.name)
        serving = [p for p in service_ports if p["name"] in serving_ports(config.mode)]
        security.allow_from_vpc_clients(
            config.namespace, f"{base}-allow-nlb", selector_labels(config.name), [p["port"] for p in serving], [args.vpc_cidr],
            "internal NLB with IP targets and client IP preservation off: connections come from its "
            "private-subnet ENIs, like pods' addresses", opts)
        nlb = k8s.core.v1.Service(
            f"{name}-nlb",
            metadata={"name": f"{base}-nlb", "namespace": config.namespace, "labels": labels,
                      "annotations": INTERNAL_NLB_ANNOTATIONS},
            spec={"type": "LoadBalancer", "selector": selector_labels(config.name), "ports": serving},
            opts=opts,
        )
        hostname = nlb.status.apply(_load_balancer_host)
        urls = {"externalHttpUrl": hostname.apply(lambda h: f"http://{h}:{PORTS['http']}"),
                "externalGrpcUrl": hostname.apply(lambda h: f"{h}:{PORTS['grpc']}")}
        if config.mode == "llm":
            urls["externalOpenaiUrl"] = hostname.apply(lambda h: f"http://{h}:{PORTS['openai']}/v1")
        return urls

    def _set_outputs(self, args: TritonServerArgs) -> None:
        config = args.config
        ns, base = config.namespace, resource_name(config.name)
        urls = endpoints(config)
        self.namespace = ns
        self.service_name = base
        self.http_url = urls["httpUrl"]
        self.grpc_url = urls["grpcUrl"]
        self.metrics_url = urls["metricsUrl"]
        self.openai_base_url = urls.get("openaiUrl")
        self.outputs = {
            "mode": config.mode,
            "namespace": ns,
            "service": base,
            "modelPrefix": config.modelPrefix,
            "modelRepository": model_repository_url(args.bucket_name, config.modelPrefix),
            # For `platformctl models validate/push`: the Deployment to restart after a push when
            # Triton reads the repository only at start, and the GPUs a model may use.
            "deployment": base,
            "modelControl": config.modelControl.mode,
            "gpusPerReplica": config.gpusPerReplica,
            "roleArn": args.role_arn,
            **urls,
            **self.external_urls,
            "portForward": port_forward_command(config),
        }
        self.register_outputs(self.outputs)
