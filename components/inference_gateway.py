"""The inference gateway: the LiteLLM proxy (image pinned to the release the proxy tests run) in front
of every Triton deployment, so an application has one host and one key for the OpenAI API of the `llm`
deployments and the KServe-v2 API of the `standard` ones (components/gateway_config.py renders its
config.yaml; static keys are checked by components/gateway/custom_auth.py, shipped in the same ConfigMap).

Facts checked against LiteLLM 1.108.7 (BerriAI/litellm, the installed `litellm[proxy]==1.108.7`):
- probes: `/health/liveliness` and `/health/readiness` (litellm/proxy/health_endpoints/_health_endpoints.py),
  both open without a key;
- read-only root: the proxy copies its admin UI to LITELLM_UI_PATH when set (litellm/proxy/proxy_server.py:
  "For read-only deployments ... set LITELLM_UI_PATH to a writable emptyDir volume"), so that path and
  /tmp are emptyDirs;
- `custom_auth` is loaded from the directory of the config file (litellm/proxy/types_utils/utils.py
  `get_instance_fn(value, config_file_path)`);
- metric names (litellm/integrations/prometheus.py, litellm/types/integrations/prometheus.py): counters
  are exposed with prometheus_client's `_total` suffix.
Image: ghcr.io/berriai/litellm:v<version> (release v1.108.7's notes: `cosign verify ... ghcr.io/berriai/litellm:v1.108.7`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import dashboards as db
from components import gateway_config as gc
from components import managed_data, security
from components.exposure import INGRESS_CLASS, AlbSource, ExposureSettings, allow_alb_ingress, ingress_annotations
from components.monitoring import DASHBOARD_LABEL, NAMESPACE as MONITORING_NAMESPACE
from components.triton import endpoints as triton_endpoints
from stack_config.gateway import GatewayConfig, GatewayKeyConfig

IMAGE_REPOSITORY = "ghcr.io/berriai/litellm"
NAME = "inference-gateway"
PORT = 4000
SERVICE_PORT = 80
CONFIG_DIR = "/etc/litellm"
UI_DIR = "/var/lib/litellm/ui"
SECRET_NAME = "inference-gateway"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "ai-platform"}
CUSTOM_AUTH_SOURCE = Path(__file__).parent / "gateway" / "custom_auth.py"
SYNC_KEYS_SOURCE = Path(__file__).parent / "gateway" / "sync_keys.py"
SYNC_JOB_LABELS = {"app.kubernetes.io/name": f"{NAME}-key-sync", "app.kubernetes.io/part-of": "ai-platform"}
MIGRATION_JOB_LABELS = {"app.kubernetes.io/name": f"{NAME}-migrations", "app.kubernetes.io/part-of": "ai-platform"}
# Database mode: the schema is migrated once per release by a Job, as LiteLLM's own chart does
# (deploy/charts/litellm-helm templates/migrations-job.yaml: `python litellm/proxy/prisma_migration.py`
# from /app, DISABLE_SCHEMA_UPDATE=true on the serving pods so replicas do not race on a rollout).
MIGRATION_COMMAND = ["python", "litellm/proxy/prisma_migration.py"]
IMAGE_WORKDIR = "/app"
DISABLE_SCHEMA_UPDATE_ENV = "DISABLE_SCHEMA_UPDATE"
# Where the migration writes a baseline on a read-only root filesystem (litellm_proxy_extras/utils.py).
MIGRATION_DIR_ENV = "LITELLM_MIGRATION_DIR"
# Database mode as our non-root uid on a read-only root: the release images bake the Prisma CLI and
# engines under /opt/prisma, "a fixed path every runtime uid can read ... Migrations now run offline
# under any uid" (LiteLLM release notes v1.90.6, docs.litellm.ai/release_notes/v1.90.6: BerriAI/litellm
# PR #33853, on every later line; v1.108.7's litellm/proxy/prisma_migration.py: "every shipped image
# bakes the client at build time"), so the
# image's PRISMA_* settings stay as they are. HOME points at the /tmp emptyDir: our uid has no home
# in the image, and anything Prisma or Node would cache under ~ must land on a writable volume.
WRITABLE_HOME = "/tmp"
POSTGRES_USER = "litellm"
POSTGRES_DB = "litellm"
LIVENESS_PATH = "/health/liveliness"
READINESS_PATH = "/health/readiness"
DASHBOARD_NAME = "dashboard-inference-api-usage"
CONFIG_HASH_ANNOTATION = "ai-platform/config-hash"
SECRET_HASH_ANNOTATION = "ai-platform/secret-hash"
CHECKOV_SKIPS = {
    "CKV_K8S_35": "LiteLLM resolves os.environ/ references in its config; the values come from a Secret by reference",
    "CKV_K8S_43": "the image tag is pinned in stack config (gateway.imageTag, the tested LiteLLM release)",
}
# The database-mode Jobs (key sync, migrations; their names end in a hash).
JOB_CHECKOV_SKIPS = {
    "CKV_K8S_35": "Prisma reads DATABASE_URL and sync_keys.py its keys from environment variables; the values come from a Secret by reference",
    "CKV_K8S_43": CHECKOV_SKIPS["CKV_K8S_43"],
}
SECRET_ENV = (gc.MASTER_KEY_ENV, gc.STATIC_KEYS_ENV, gc.UPSTREAM_KEY_ENV)
# With gateway.redis: the AUTH token in the Secret; host and port (not secret) set on the container.
REDIS_SECRET_ENV = (gc.REDIS_PASSWORD_ENV,)

# What the usage dashboard queries (components/dashboards.py LITELLM_METRICS, checked in the release);
# the max-budget gauge only the budget alert reads.
GATEWAY_METRICS = db.LITELLM_METRICS - {"litellm_api_key_max_budget_metric"}


def upstreams(deployments: Sequence[Any], models: dict[str, list[str]]) -> tuple[gc.TritonUpstream, ...]:
    """Every Triton deployment as the gateway routes it: an llm one's OpenAI frontend (with the model
    names gateway.models lists for it), a standard one's KServe-v2 HTTP root."""
    found = []
    for deployment in deployments:
        urls = triton_endpoints(deployment)
        if deployment.mode == "llm":
            found.append(gc.TritonUpstream(deployment.name, "llm", urls["openaiUrl"], tuple(models.get(deployment.name, ()))))
        else:
            found.append(gc.TritonUpstream(deployment.name, "standard", urls["httpUrl"]))
    return tuple(found)


def settings(config: GatewayConfig, upstreams: Sequence[gc.TritonUpstream]) -> gc.GatewaySettings:
    prices = {m: gc.ModelPrice(p.inputCostPerToken, p.outputCostPerToken) for m, p in config.prices.items()}
    redis = gc.CoordinationRedis(ssl=True) if config.redis.enabled else None
    auth = gc.DatabaseAuth() if config.authMode == "database" else gc.StaticKeyAuth()
    return gc.GatewaySettings(upstreams=tuple(upstreams), auth=auth, prices=prices, redis=redis)


def config_map_data(config: GatewayConfig, upstreams: Sequence[gc.TritonUpstream]) -> dict[str, str]:
    """config.yaml (secrets only as os.environ/ references) and the custom auth module beside it."""
    rendered = gc.render(settings(config, upstreams))
    if config.authMode == "database":  # the key sync Job's script instead of the auth hook
        return {"config.yaml": yaml.safe_dump(rendered, sort_keys=False), "sync_keys.py": SYNC_KEYS_SOURCE.read_text()}
    return {"config.yaml": yaml.safe_dump(rendered, sort_keys=False),
            f"{gc.CUSTOM_AUTH_MODULE}.py": CUSTOM_AUTH_SOURCE.read_text()}


def database_url(host: str, port: int, password: str) -> str:
    """Prisma's PostgreSQL URL; sslmode=require: RDS accepts TLS, nothing needs plaintext."""
    return f"postgresql://{POSTGRES_USER}:{password}@{host}:{port}/{POSTGRES_DB}?sslmode=require"


def static_keys_json(limits: dict[str, GatewayKeyConfig], keys: Sequence[str]) -> str:
    """GATEWAY_STATIC_KEYS as custom_auth.parse_keys (and sync_keys.py) read it; `keys` in the order
    of `limits`; budgets only when set (database mode)."""
    return json.dumps({name: {"key": key, **limit.model_dump(exclude_none=True)}
                       for (name, limit), key in zip(limits.items(), keys)}, sort_keys=True)


def config_hash(data: dict[str, str], config: GatewayConfig) -> str:
    """Of what the proxy reads once at start: config.yaml, custom_auth.py and the static keys' names and
    limits (custom_auth caches GATEWAY_STATIC_KEYS), so changing either rolls the pods."""
    keys = {name: limit.model_dump() for name, limit in config.staticKeys.items()}
    return hashlib.sha256(json.dumps([data, keys], sort_keys=True).encode()).hexdigest()[:16]


def secret_env(config: GatewayConfig) -> tuple[str, ...]:
    """The Secret's keys, each read by the container as the environment variable of that name."""
    base = SECRET_ENV if config.authMode == "static" else (gc.MASTER_KEY_ENV, gc.UPSTREAM_KEY_ENV, gc.DATABASE_URL_ENV)
    return base + (REDIS_SECRET_ENV if config.redis.enabled else ())


def key_sync_name(config: GatewayConfig) -> str:
    """The sync Job's name: a hash of the key set (names, limits, budgets) and the script, so a changed
    key set is a new Job that runs again (a Job's pod template cannot change in place)."""
    keys = {name: limit.model_dump() for name, limit in config.staticKeys.items()}
    digest = hashlib.sha256(json.dumps([keys, SYNC_KEYS_SOURCE.read_text()], sort_keys=True).encode()).hexdigest()[:10]
    return f"{NAME}-key-sync-{digest}"


def key_sync_job_spec(config: GatewayConfig) -> dict[str, Any]:
    """The LiteLLM image's python runs sync_keys.py from the ConfigMap against the Service."""
    env = [{"name": "GATEWAY_URL", "value": f"http://{NAME}.{config.namespace}.svc.cluster.local:{SERVICE_PORT}"},
           secret_env_var(gc.MASTER_KEY_ENV), {**secret_env_var(gc.STATIC_KEYS_ENV), "name": "GATEWAY_KEYS"}]
    return image_job_spec(config, "key-sync", SYNC_JOB_LABELS, {
        "command": ["python", f"{CONFIG_DIR}/sync_keys.py"], "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]},
        volumes=[{"name": "config", "configMap": {"name": NAME}}], backoff_limit=6)


def image_job_spec(config: GatewayConfig, container_name: str, labels: dict[str, str], container: dict[str, Any],
                   volumes: list[dict[str, Any]], backoff_limit: int) -> dict[str, Any]:
    """A Job spec running the gateway's image (pinned tag) as the proxy runs: non-root, read-only
    root, no ServiceAccount token."""
    return {"backoffLimit": backoff_limit, "template": {"metadata": {"labels": labels}, "spec": {
        "restartPolicy": "OnFailure", "automountServiceAccountToken": False,
        "securityContext": security.restricted_pod_security_context(),
        "containers": [{"name": container_name, "image": f"{IMAGE_REPOSITORY}:{config.imageTag}",
                        "imagePullPolicy": "Always", **container,
                        "securityContext": security.restricted_security_context(read_only_root=True)}],
        "volumes": volumes}}}


def job_metadata(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """A Job running the gateway's image (its pinned tag), reading the gateway's Secret as env vars."""
    return {"name": name, "namespace": namespace, "labels": labels, "annotations": security.checkov_skips(JOB_CHECKOV_SKIPS)}


def data_owner(name: str) -> managed_data.Owner:
    """How the gateway's data stores (gateway.redis, database mode's RDS) are named and described."""
    return managed_data.Owner(resource_name=name, ident="gateway", label="Inference gateway")


def secret_env_var(key: str) -> dict[str, Any]:
    """An environment variable named `key` from that key of the gateway's Secret."""
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key}}}


def migration_job_name(config: GatewayConfig) -> str:
    """One migration Job per LiteLLM release (a new image tag is a new Job that runs again)."""
    return f"{NAME}-migrations-{hashlib.sha256(config.imageTag.encode()).hexdigest()[:10]}"


def migration_job_spec(config: GatewayConfig) -> dict[str, Any]:
    """`prisma migrate deploy` of the pinned release against DATABASE_URL, then exit (its
    prisma_migration.py runs the proxy CLI with --skip_server_startup)."""
    env = [secret_env_var(gc.DATABASE_URL_ENV), {"name": DISABLE_SCHEMA_UPDATE_ENV, "value": "false"},
           {"name": MIGRATION_DIR_ENV, "value": "/tmp/migrations"}, {"name": "HOME", "value": WRITABLE_HOME}]
    return image_job_spec(config, "migrations", MIGRATION_JOB_LABELS, {
        "command": MIGRATION_COMMAND, "workingDir": IMAGE_WORKDIR, "env": env,
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
        volumes=[{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}], backoff_limit=4)


def container(config: GatewayConfig, redis_host: Optional[pulumi.Input[str]] = None) -> dict[str, Any]:
    """`redis_host`: the replication group's primary endpoint (gateway.redis), which config.yaml's
    coordination_redis reads as REDIS_HOST (TLS, port REDIS_PORT, AUTH token REDIS_PASSWORD)."""
    # TRITON_OPENAI_API_KEY is no credential (Triton's frontend takes none), but its name says key:
    # it comes from the Secret like the others, so no *_KEY variable holds a literal.
    plain: dict[str, Any] = {k: v for k, v in gc.upstream_env().items() if k != gc.UPSTREAM_KEY_ENV}
    plain["LITELLM_UI_PATH"] = UI_DIR
    if config.redis.enabled:
        if redis_host is None:
            raise ValueError("gateway.redis needs the replication group's endpoint")
        plain.update({gc.REDIS_HOST_ENV: redis_host, gc.REDIS_PORT_ENV: str(managed_data.REDIS_PORT)})
    if config.authMode == "database":
        plain[DISABLE_SCHEMA_UPDATE_ENV] = "true"  # the migration Job owns the schema
        plain["HOME"] = WRITABLE_HOME
    env = [{"name": k, "value": v} for k, v in plain.items()]
    env += [secret_env_var(var) for var in secret_env(config)]
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    return {
        "name": "litellm",
        "image": f"{IMAGE_REPOSITORY}:{config.imageTag}",
        "imagePullPolicy": "Always",  # the tag is pinned; Always re-checks its digest at start
        # The image's ENTRYPOINT is `litellm` with CMD `--port 4000` (BerriAI/litellm Dockerfile); these
        # args replace the CMD: the same command line tests/gateway_support.py starts the proxy with.
        "args": ["--config", f"{CONFIG_DIR}/config.yaml", "--port", str(PORT), "--num_workers", "1"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": config.cpu, "memory": config.memory},
                      "limits": {"cpu": config.cpu, "memory": config.memory}},
        "startupProbe": {**probe, "httpGet": {"path": LIVENESS_PATH, "port": "http"}, "failureThreshold": 30},
        "livenessProbe": {**probe, "httpGet": {"path": LIVENESS_PATH, "port": "http"}},
        "readinessProbe": {**probe, "httpGet": {"path": READINESS_PATH, "port": "http"}},
        "securityContext": security.restricted_security_context(read_only_root=True),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "ui", "mountPath": UI_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def deployment_spec(config: GatewayConfig, config_hash: str, secret_hash: Optional[pulumi.Input[str]] = None,
                    redis_host: Optional[pulumi.Input[str]] = None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": security.restricted_pod_security_context(),
        "containers": [container(config, redis_host)],
        "volumes": [{"name": "config", "configMap": {"name": NAME}},
                    {"name": "ui", "emptyDir": {"sizeLimit": "256Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if config.replicas > 1:
        pod["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": LABELS}}
            for key, when in (("topology.kubernetes.io/zone", "ScheduleAnyway"), ("kubernetes.io/hostname", "ScheduleAnyway"))]
    return {
        "replicas": config.replicas,
        "selector": {"matchLabels": LABELS},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        # A changed config.yaml or Secret rolls the pods (LiteLLM reads both once at start).
        "template": {"metadata": {"labels": LABELS, "annotations": template_annotations(config_hash, secret_hash)},
                     "spec": pod},
    }


def template_annotations(config_hash: str, secret_hash: Optional[pulumi.Input[str]]) -> dict[str, Any]:
    annotations: dict[str, Any] = {CONFIG_HASH_ANNOTATION: config_hash}
    if secret_hash is not None:
        annotations[SECRET_HASH_ANNOTATION] = secret_hash
    return annotations


def secret_hash(data: dict[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    """A digest of the Secret's values (64 bits of SHA-256 over ~300-bit random keys: reveals none of
    them), so a new key or Redis token rolls the pods; not a Pulumi secret, so the annotation stays
    readable in the plan and the cluster."""
    digest = pulumi.Output.all(**data).apply(
        lambda values: hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16])
    return pulumi.Output.unsecret(digest)


def usage_dashboard() -> dict:
    """Grafana "Inference API usage": requests, rate-limit hits, tokens, spend, budget left, latency per key and model."""
    rate = "sum by ({by}) (rate({metric}[5m]))"
    layout = db._Layout()
    layout.row("Requests")
    layout.add(db.timeseries("Requests per key", [(rate.format(by="api_key_alias", metric="litellm_proxy_total_requests_metric_total"),
                                                  "{{api_key_alias}}")], "reqps"), 12)
    layout.add(db.timeseries("Rate-limited (429) per key", [(
        'sum by (api_key_alias) (rate(litellm_proxy_failed_requests_metric_total{exception_status="429"}[5m]))',
        "{{api_key_alias}}")], "reqps"), 12)
    layout.row("Tokens and spend")
    layout.add(db.timeseries("Input tokens per key", [(rate.format(by="api_key_alias", metric="litellm_input_tokens_metric_total"),
                                                      "{{api_key_alias}}")], "short"), 8)
    layout.add(db.timeseries("Output tokens per key", [(rate.format(by="api_key_alias", metric="litellm_output_tokens_metric_total"),
                                                       "{{api_key_alias}}")], "short"), 8)
    layout.add(db.table("Spend (USD, 24h) per key and model",
                        "sum by (api_key_alias, model) (increase(litellm_spend_metric_total[24h]))"), 8)
    layout.add(db.table("Budget left (USD) per key",
                        "min by (api_key_alias) (litellm_remaining_api_key_budget_metric)",
                        "Keys with a gateway.staticKeys maxBudget (authMode database), as of their last request"), 24)
    layout.row("Latency")
    layout.add(db.timeseries("Request latency p50 / p95", [
        (f"histogram_quantile({q}, sum by (le) (rate(litellm_request_total_latency_metric_bucket[5m])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95)], "s"), 24)
    return db.dashboard("inference-api-usage", "Inference API usage",
                        "Requests, rate-limit hits, tokens and spend per key through the inference gateway (LiteLLM)",
                        ["ai-platform", "gateway"], [db._datasource_variable()], layout)


@dataclass(frozen=True)
class InferenceGatewayArgs:
    config: GatewayConfig
    upstreams: tuple[gc.TritonUpstream, ...]
    # (namespace, pod labels) that may call the gateway: OpenWebUI (viaGateway); configured
    # clients come from config.clients.
    pod_clients: tuple[tuple[str, dict[str, str]], ...] = ()
    service_monitor_labels: dict[str, str] = field(default_factory=dict)
    monitoring: Optional[pulumi.Resource] = None  # ServiceMonitor CRD, Grafana sidecar
    hostname: Optional[str] = None
    exposure: Optional[ExposureSettings] = None
    alb_source: Optional[AlbSource] = None
    waits_for: Sequence[pulumi.Resource] = ()
    # Where gateway.redis's replication group and database mode's RDS live.
    network: Optional[managed_data.ClusterNetwork] = None
    protect_data: bool = False  # database mode's RDS: `protect`


# /metrics is served on the API port without a key (for Prometheus): on the ALB it answers 404 from the
# load balancer itself. aws-load-balancer-controller (docs/guide/ingress/annotations.md, "actions"): an
# annotation `alb.ingress.kubernetes.io/actions.<name>` is the action of a path whose backend is service
# `<name>`, port name `use-annotation`.
METRICS_BLOCK = "block-metrics"
METRICS_BLOCK_ACTION = json.dumps({"type": "fixed-response", "fixedResponseConfig": {
    "contentType": "text/plain", "statusCode": "404", "messageBody": "not found"}})


def ingress_spec(hostname: str) -> dict[str, Any]:
    """The gateway's host on the shared ALB: /metrics blocked, everything else to the Service."""
    def path(prefix: str, service: str, port: dict) -> dict:
        return {"path": prefix, "pathType": "Prefix", "backend": {"service": {"name": service, "port": port}}}
    return {"ingressClassName": INGRESS_CLASS, "tls": [{"hosts": [hostname]}],
            "rules": [{"host": hostname, "http": {"paths": [
                path("/metrics", METRICS_BLOCK, {"name": "use-annotation"}),
                path("/", NAME, {"number": SERVICE_PORT})]}}]}


def client_rules(config: GatewayConfig, pod_clients: Sequence[tuple[str, dict[str, str]]]) -> list[dict]:
    """Who may call the gateway's port: the listed pods (OpenWebUI) and config.clients."""
    peers = [security.pod_peer(ns, labels) for ns, labels in pod_clients]
    peers += [security.pod_peer(client.namespace, client.podLabels) for client in config.clients]
    if config.authMode == "database":
        peers.append(security.pod_peer(config.namespace, SYNC_JOB_LABELS))  # the key sync Job
    return [security.ingress_rule(peers, [PORT])] if peers else []


class InferenceGateway(pulumi.ComponentResource):
    """Pass the Kubernetes provider in `opts.providers`. `keys`: app name -> its key (Pulumi secret)."""

    url: str
    master_key: pulumi.Output[str]
    keys: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: InferenceGatewayArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:inference:InferenceGateway", name, None, opts)
        config, ns = args.config, args.config.namespace
        namespace = security.namespace(ns, "restricted", "LiteLLM runs as a non-root uid on a read-only root filesystem",
                                       parent=self)
        ns_opts = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        data = config_map_data(config, args.upstreams)
        config_map = k8s.core.v1.ConfigMap(f"{name}-config", metadata={"name": NAME, "namespace": ns, "labels": LABELS},
                                           data=data, opts=ns_opts)
        redis = self._redis(name, args)
        db_url = self._database(name, args)
        secret, digest = self._secret(name, config, redis, db_url, ns_opts)
        migrations = self._migrations(name, config, secret)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"name": NAME, "namespace": ns, "labels": LABELS, "annotations": security.checkov_skips(CHECKOV_SKIPS)},
            spec=deployment_spec(config, config_hash(data, config), digest,
                                 redis.group.primary_endpoint_address if redis else None),
            # The pods start once the replication group is available (pulumi-aws waits for it).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, config_map, secret, *args.waits_for,
                                                                 *([redis.group] if redis else []), *migrations]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": NAME, "namespace": ns, "labels": {**LABELS, "ai-platform/metrics": "true"}},
            spec={"type": "ClusterIP", "selector": LABELS,
                  "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]},
            opts=ns_opts,
        )
        if config.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata={"name": NAME, "namespace": ns, "labels": LABELS},
                                              spec={"maxUnavailable": 1, "selector": {"matchLabels": LABELS}}, opts=ns_opts)
        if config.authMode == "database":
            # After the Deployment is ready (pulumi-kubernetes awaits its rollout) and the Service exists.
            k8s.batch.v1.Job(f"{name}-key-sync", metadata=job_metadata(key_sync_name(config), ns, SYNC_JOB_LABELS),
                             spec=key_sync_job_spec(config),
                             opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment, service, secret],
                                                         delete_before_replace=True))
        self._observability(name, args, service, ns_opts)
        self._policies(args, ns_opts)
        self._way_in(name, args, [deployment], ns_opts)
        self.register_outputs({"url": self.url})

    def _migrations(self, name: str, config: GatewayConfig, secret: pulumi.Resource) -> list[pulumi.Resource]:
        """Database mode: the schema Job the Deployment waits for (none in static mode)."""
        if config.authMode != "database":
            return []
        return [k8s.batch.v1.Job(f"{name}-migrations", metadata=job_metadata(migration_job_name(config), config.namespace,
                                                                          MIGRATION_JOB_LABELS),
                                 spec=migration_job_spec(config),
                                 opts=pulumi.ResourceOptions(parent=self, depends_on=[secret], delete_before_replace=True,
                                                             custom_timeouts=pulumi.CustomTimeouts(create="15m")))]

    def _redis(self, name: str, args: InferenceGatewayArgs) -> Optional[managed_data.Valkey]:
        """gateway.redis: LiteLLM's coordination Redis (rate-limit and spend counters shared by the
        replicas), OpenWebUI's Valkey builder. Counters only: rebuilt in a minute, so no snapshots."""
        rc = args.config.redis
        if not rc.enabled:
            return None
        if args.network is None:
            raise ValueError("gateway.redis needs the network (private subnets, cluster security group)")
        return managed_data.valkey(
            data_owner(name),
            managed_data.ValkeySpec(node_type=rc.nodeType, engine_version=rc.engineVersion, nodes=rc.nodes,
                                    description="Inference gateway (LiteLLM) rate-limit and spend counters"),
            args.network, parent=self)

    def _database(self, name: str, args: InferenceGatewayArgs) -> Optional[pulumi.Output[str]]:
        """Database mode: RDS PostgreSQL (OpenWebUI's builder), DATABASE_URL as a Pulumi secret."""
        if args.config.authMode != "database":
            return None
        if args.network is None:
            raise ValueError("gateway.authMode database needs the network (private subnets, cluster security group)")
        pg = args.config.database
        db = managed_data.postgres(
            data_owner(name),
            managed_data.PostgresSpec(instance_class=pg.instanceClass, engine_version=pg.engineVersion,
                                      allocated_storage_gib=pg.allocatedStorageGiB,
                                      max_allocated_storage_gib=pg.maxAllocatedStorageGiB,
                                      backup_retention_days=pg.backupRetentionDays, multi_az=pg.multiAz,
                                      db_name=POSTGRES_DB, username=POSTGRES_USER),
            args.network, args.protect_data, parent=self)
        return pulumi.Output.secret(pulumi.Output.all(db.instance.address, db.instance.port, db.password.result).apply(
            lambda parts: database_url(parts[0], int(parts[1]), parts[2])))

    def _secret(self, name: str, config: GatewayConfig, redis: Optional[managed_data.Valkey],
                db_url: Optional[pulumi.Output[str]], opts: pulumi.ResourceOptions) -> tuple[k8s.core.v1.Secret, pulumi.Output[str]]:
        """The master key and the static keys, generated (LiteLLM keys start with sk-), the Redis AUTH
        token with gateway.redis; and a digest of them for the pod template."""
        child = pulumi.ResourceOptions(parent=self)
        master = random.RandomPassword(f"{name}-master-key", length=48, special=False, opts=child)
        self.master_key = pulumi.Output.secret(master.result.apply(lambda k: f"sk-{k}"))
        self.keys = {
            app: pulumi.Output.secret(random.RandomPassword(f"{name}-key-{app}", length=40, special=False,
                                                            opts=child).result.apply(lambda k: f"sk-{k}"))
            for app in config.staticKeys}
        keys_json = pulumi.Output.all(*self.keys.values()).apply(lambda ks: static_keys_json(config.staticKeys, ks))
        data: dict[str, pulumi.Input[str]] = {
            gc.MASTER_KEY_ENV: self.master_key, gc.STATIC_KEYS_ENV: pulumi.Output.secret(keys_json),
            gc.UPSTREAM_KEY_ENV: pulumi.Output.secret(gc.upstream_env()[gc.UPSTREAM_KEY_ENV])}
        if redis is not None:
            data[gc.REDIS_PASSWORD_ENV] = pulumi.Output.secret(redis.token.result)
        if db_url is not None:
            data[gc.DATABASE_URL_ENV] = db_url
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": SECRET_NAME, "namespace": config.namespace, "labels": LABELS},
            type="Opaque",
            string_data=data,
            opts=opts,
        )
        return secret, secret_hash(data)

    def _observability(self, name: str, args: InferenceGatewayArgs, service: pulumi.Resource,
                       opts: pulumi.ResourceOptions) -> None:
        """ServiceMonitor (the stack's Prometheus selects it by release label) and the usage dashboard."""
        after_monitoring = [args.monitoring] if args.monitoring else []
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
            metadata={"name": NAME, "namespace": args.config.namespace, "labels": {**LABELS, **args.service_monitor_labels}},
            spec={"selector": {"matchLabels": {**LABELS, "ai-platform/metrics": "true"}},
                  "namespaceSelector": {"matchNames": [args.config.namespace]},
                  "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[service, *after_monitoring])),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata={"name": DASHBOARD_NAME, "namespace": MONITORING_NAMESPACE,
                      "labels": {**LABELS, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]}},
            data={"inference-api-usage.json": db.render(usage_dashboard())},
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_monitoring),
        )

    def _policies(self, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions) -> None:
        """The namespace denies ingress: Prometheus on the port (/metrics), the clients on the port."""
        ns = args.config.namespace
        security.allow_prometheus_scrape(ns, LABELS, [PORT], opts, name=f"{NAME}-allow-prometheus")
        rules = client_rules(args.config, args.pod_clients)
        if rules:
            security.allow_ingress(ns, f"{NAME}-allow-clients", LABELS, rules, opts)

    def _way_in(self, name: str, args: InferenceGatewayArgs, waits_for: list[pulumi.Resource],
                opts: pulumi.ResourceOptions) -> None:
        ns = args.config.namespace
        if not (args.hostname and args.exposure):
            self.url = f"http://{NAME}.{ns}.svc.cluster.local"
            return
        if args.alb_source is None:
            raise ValueError("exposing the gateway needs alb_source (the ALB's subnets) for its NetworkPolicy")
        settings = args.exposure
        annotations = {**ingress_annotations(settings.scheme, settings.certificate_arn, settings.group_name,
                                             LIVENESS_PATH, settings.inbound_cidrs),
                       f"alb.ingress.kubernetes.io/actions.{METRICS_BLOCK}": METRICS_BLOCK_ACTION}
        controller = [settings.controller] if settings.controller is not None else []
        k8s.networking.v1.Ingress(
            NAME, metadata={"name": NAME, "namespace": ns, "labels": LABELS, "annotations": annotations},
            spec=ingress_spec(args.hostname),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[*waits_for, *controller])))
        allow_alb_ingress(ns, LABELS, PORT, args.alb_source, opts)
        self.url = f"https://{args.hostname}"
