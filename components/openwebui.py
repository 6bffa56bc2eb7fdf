"""OpenWebUI on the platform's LLMs (Triton's OpenAI-compatible endpoints): its own namespace,
secrets only by reference, data that survives the release and the stack being replaced, one of
three authentication modes, and optionally exposed through the shared ALB.

More than one replica (postgres only) keeps nothing durable in the pods: the database and the
vector store (pgvector) in RDS PostgreSQL, uploads in a dedicated S3 bucket through an IRSA role,
websocket sessions and app state in ElastiCache (Valkey) shared by every replica.

Environment variable names are OpenWebUI's (backend/open_webui/config.py and env.py); see the
README for the version they were checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import json

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import managed_data, security
from components.iam import IrsaRole, IrsaRoleArgs
from components.s3 import bucket_arn, private_bucket
from components.exposure import AlbSource, ExposureSettings, allow_alb_ingress, port_forward_command, ui_ingress
from components.oauth2_proxy import OAuth2Proxy, OAuth2ProxyArgs
from stack_config.openwebui import OpenWebUiConfig

IMAGE_REPOSITORY = "ghcr.io/open-webui/open-webui"
NAME = "open-webui"
PORT = 8080
SERVICE_PORT = 80

# Every path OpenWebUI writes, found by running the release the image tag pins (PyPI open-webui
# 0.11.0, laid out as its Dockerfile lays out the image) as a non-root uid on a read-only root
# under strace (docs/security.md, "OpenWebUI's writable paths"). Everything else stays read-only.
# DATA_DIR (backend/open_webui/env.py): the SQLite database, uploads/, vector_db/ and cache/, where
# the Dockerfile points HF_HOME, SENTENCE_TRANSFORMERS_HOME, WHISPER_MODEL_DIR and TIKTOKEN_CACHE_DIR.
DATA_DIR = "/app/backend/data"
# STATIC_DIR (env.py, config.py): at every start OpenWebUI deletes its files and copies the
# frontend's static files in; it also holds fonts/, assets/ and swagger-ui/ that only the image
# has, so the emptyDir is seeded from the image by an init container.
STATIC_DIR = "/app/backend/open_webui/static"
# tempfile (document loaders), SQLite's temporary files (it uses /var/tmp when writable, else
# /tmp) and torch's inductor cache.
TMP_DIR = "/tmp"
STATIC_SEED_DIR = "/seed"
SECRET_NAME = "open-webui"
POSTGRES_PORT = managed_data.POSTGRES_PORT
POSTGRES_USER = "openwebui"
POSTGRES_DB = "openwebui"
REDIS_PORT = managed_data.REDIS_PORT
# The ServiceAccount of the pods in multi-replica mode; the IRSA trust names exactly this one.
SERVICE_ACCOUNT = "open-webui"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "ai-platform"}

# Every variable this component sets, as OpenWebUI reads it (`os.getenv`/`os.environ.get` in
# backend/open_webui/config.py and env.py, checked against the upstream source; the README names
# the version). A name outside this set is a typo OpenWebUI would silently ignore.
VERIFIED_ENV_NAMES = frozenset({
    "ENABLE_OLLAMA_API", "ENABLE_OPENAI_API", "OPENAI_API_BASE_URLS", "OPENAI_API_KEYS",
    "ENABLE_PERSISTENT_CONFIG", "WEBUI_SECRET_KEY", "WEBUI_URL", "CORS_ALLOW_ORIGIN",
    "WEBUI_SESSION_COOKIE_SECURE", "ANONYMIZED_TELEMETRY", "DO_NOT_TRACK", "DATABASE_URL",
    "WEBUI_AUTH", "ENABLE_SIGNUP", "DEFAULT_USER_ROLE", "ENABLE_INITIAL_ADMIN_SIGNUP",
    "WEBUI_ADMIN_EMAIL", "WEBUI_ADMIN_PASSWORD",
    "ENABLE_OAUTH_SIGNUP", "OPENID_PROVIDER_URL", "OPENID_REDIRECT_URI", "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET", "OAUTH_PROVIDER_NAME", "OAUTH_SCOPES",
    "WEBUI_AUTH_TRUSTED_EMAIL_HEADER", "WEBUI_AUTH_TRUSTED_NAME_HEADER",
    # Multi-replica mode: storage (config.py), vector store (config.py), websockets and shared
    # state (env.py; WEBSOCKET_REDIS_URL defaults to REDIS_URL, set both to be explicit).
    "STORAGE_PROVIDER", "S3_BUCKET_NAME", "S3_REGION_NAME", "S3_KEY_PREFIX",
    "VECTOR_DB", "PGVECTOR_DB_URL",
    "ENABLE_WEBSOCKET_SUPPORT", "WEBSOCKET_MANAGER", "WEBSOCKET_REDIS_URL", "REDIS_URL",
})


def writable_volumes(data_volume: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) of the main container: `data_volume` (the claim, or scratch with more
    replicas) at DATA_DIR, and emptyDirs at STATIC_DIR and TMP_DIR. The static files are 66 MB."""
    volumes = [data_volume,
               {"name": "static", "emptyDir": {"sizeLimit": "256Mi"}},
               {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    mounts = [{"name": "data", "mountPath": DATA_DIR},
              {"name": "static", "mountPath": STATIC_DIR},
              {"name": "tmp", "mountPath": TMP_DIR}]
    return volumes, mounts


def static_seed_container(image: str, uid: int) -> dict[str, Any]:
    """Copies the image's STATIC_DIR into the `static` emptyDir before OpenWebUI starts. `cp -R`
    keeps no owner: the copies belong to `uid`, so OpenWebUI can replace them at start."""
    return {
        "name": "seed-static",
        "image": image,
        "imagePullPolicy": "Always",
        "command": ["cp", "-R", f"{STATIC_DIR}/.", f"{STATIC_SEED_DIR}/"],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": security.restricted_security_context(read_only_root=True, run_as_user=uid),
        "volumeMounts": [{"name": "static", "mountPath": STATIC_SEED_DIR}],
    }


def join_base_urls(urls: Sequence[str]) -> str:
    """`OPENAI_API_BASE_URLS`: `;`-separated, no trailing slash (OpenWebUI appends `/models` etc.
    to each, and `.../v1//models` is a 404 on Triton's frontend)."""
    return ";".join(url.rstrip("/") for url in urls)


def database_url(host: str, port: int, password: str) -> str:
    # sslmode=require: RDS accepts TLS by default; nothing in the cluster needs plaintext.
    return f"postgresql://{POSTGRES_USER}:{password}@{host}:{port}/{POSTGRES_DB}?sslmode=require"


def redis_url(host: str, port: int, token: str) -> str:
    # rediss: ElastiCache refuses plaintext when transit encryption is required; the empty user
    # name makes the token the AUTH password (the `default` user).
    return f"rediss://:{token}@{host}:{port}/0"


def uploads_policy(partition: str, bucket: str, prefix: str) -> str:
    """OpenWebUI's uploads: read, write and delete objects under `prefix/` (its keys are
    `<prefix>/<file>`), list only that prefix. Nothing else in the bucket, no bucket-level
    changes. Built from the bucket *name*, so the document is known at preview. The admin's
    "delete all files" lists the whole bucket and is refused; deleting files one by one works."""
    arn = bucket_arn(partition, bucket)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListUploads",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/", f"{prefix}/*"]}},
            },
            {
                "Sid": "ReadWriteUploads",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{arn}/{prefix}/*",
            },
        ],
    })


def shared_state_env(config: OpenWebUiConfig, bucket: str, region: str) -> dict[str, str]:
    """The non-secret settings of multi-replica mode (the URLs with credentials are in the Secret)."""
    return {
        # Uploads in S3: a file uploaded through one replica is served by every other one.
        # No S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY: without them OpenWebUI's S3 client uses the
        # default AWS credential chain, i.e. the IRSA web identity token of the ServiceAccount.
        "STORAGE_PROVIDER": "s3",
        "S3_BUCKET_NAME": bucket,
        "S3_REGION_NAME": region,
        "S3_KEY_PREFIX": config.persistence.uploads.keyPrefix,
        # The default vector store (Chroma) is files under the data dir: per pod, lost on restart.
        "VECTOR_DB": "pgvector",
        # Socket.IO through Redis, so an event emitted on one replica reaches a browser connected
        # to another. With websocket support on, the browser uses the websocket transport only,
        # so the ALB needs no sticky sessions (long-polling would hop between replicas).
        "ENABLE_WEBSOCKET_SUPPORT": "true",
        "WEBSOCKET_MANAGER": "redis",
    }


def plain_env(config: OpenWebUiConfig, hostname: Optional[str], has_llms: bool) -> dict[str, str]:
    """The non-secret settings, by OpenWebUI's variable names. Secrets are added by reference."""
    auth = config.auth
    env = {
        "ENABLE_OLLAMA_API": "false",
        # No LLM deployment yet: keep OpenWebUI from falling back to api.openai.com.
        "ENABLE_OPENAI_API": "true" if has_llms else "false",
        # The stack is the source of truth: without this, OpenWebUI keeps the values of its first
        # start in its database and ignores a second `llm` deployment added later.
        "ENABLE_PERSISTENT_CONFIG": "false",
        "WEBUI_AUTH": "true",
        "DEFAULT_USER_ROLE": auth.defaultUserRole,
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
    }
    if hostname:
        env.update({
            "WEBUI_URL": f"https://{hostname}",
            "CORS_ALLOW_ORIGIN": f"https://{hostname}",
            "WEBUI_SESSION_COOKIE_SECURE": "true",
        })
    if auth.mode == "builtin":
        env["ENABLE_SIGNUP"] = "true" if auth.enableSignup else "false"
        if auth.adminEmail:
            env["WEBUI_ADMIN_EMAIL"] = auth.adminEmail
        elif not auth.enableSignup:
            # Sign-up is closed, so the very first account (the admin) needs this one exception.
            env["ENABLE_INITIAL_ADMIN_SIGNUP"] = "true"
    elif auth.mode == "oidc":
        oidc = auth.oidc
        env.update({
            "ENABLE_SIGNUP": "false",
            "ENABLE_OAUTH_SIGNUP": "true" if oidc.enableSignup else "false",
            "OPENID_PROVIDER_URL": oidc.providerUrl,
            "OAUTH_CLIENT_ID": oidc.clientId,
            "OAUTH_PROVIDER_NAME": oidc.providerName,
            "OAUTH_SCOPES": oidc.scopes,
        })
        if hostname:
            env["OPENID_REDIRECT_URI"] = f"https://{hostname}/oauth/oidc/callback"
    else:  # trusted-header: oauth2-proxy has authenticated the user and set these headers
        env.update({
            "ENABLE_SIGNUP": "false",
            "WEBUI_AUTH_TRUSTED_EMAIL_HEADER": auth.emailHeader,
            "WEBUI_AUTH_TRUSTED_NAME_HEADER": auth.nameHeader,
        })
    return env


# Where the RDS instance (and Valkey) live; reachable only from the cluster's security group.
PostgresNetwork = managed_data.ClusterNetwork


@dataclass(frozen=True)
class WorkloadIdentity:
    """What the IRSA role of OpenWebUI's ServiceAccount needs (multi-replica mode)."""

    partition: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]


@dataclass(frozen=True)
class OpenWebUiArgs:
    config: OpenWebUiConfig
    # One per `llm` Triton deployment, in config order.
    openai_base_urls: list[pulumi.Input[str]]
    protect_data: bool
    hostname: Optional[str] = None
    exposure: Optional[ExposureSettings] = None
    oidc_client_secret: Optional[pulumi.Input[str]] = None
    postgres_network: Optional[PostgresNetwork] = None
    # Multi-replica mode (replicas > 1): the uploads bucket to create and the IRSA inputs.
    uploads_bucket_name: Optional[str] = None
    workload_identity: Optional[WorkloadIdentity] = None
    # Where the ALB connects from when exposed (IP targets): the subnets it lives in.
    alb_source: Optional[AlbSource] = None
    # The key for openai_base_urls (one, the gateway's /v1: openWebUi.viaGateway); None: Triton's
    # frontends, which take no key (a generated placeholder).
    openai_api_key: Optional[pulumi.Input[str]] = None


def checkov_skip_reasons(run_as: int) -> dict[str, str]:
    skips = {
        "CKV_K8S_35": "OpenWebUI reads its settings only from environment variables; the values come from a Secret by reference",
        "CKV_K8S_43": "the image tag is pinned in stack config (never :main)",
    }
    if run_as < 10000:
        skips["CKV_K8S_40"] = "openWebUi.runAsUser is set below 10000 in stack config"
    return skips


def container_env(args: "OpenWebUiArgs", shared_env: dict[str, str], secret_keys: Sequence[str]) -> list[k8s.core.v1.EnvVarArgs]:
    """Plain settings, the Triton URLs, then every Secret key by reference."""
    url_count = len(args.openai_base_urls)
    env = [k8s.core.v1.EnvVarArgs(name=k, value=v)
           for k, v in {**plain_env(args.config, args.hostname, url_count > 0), **shared_env}.items()]
    if url_count:
        env.append(k8s.core.v1.EnvVarArgs(
            name="OPENAI_API_BASE_URLS",
            value=pulumi.Output.all(*args.openai_base_urls).apply(join_base_urls),
        ))
    env.extend(security.secret_env(key, SECRET_NAME, key) for key in secret_keys)
    return env


def container(config: OpenWebUiConfig, env: list[k8s.core.v1.EnvVarArgs], mounts: list[dict[str, Any]]) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name=NAME,
        image=f"{IMAGE_REPOSITORY}:{config.imageTag}",
        image_pull_policy="Always",  # the tag is pinned; Always re-checks its digest at start
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
        env=env,
        volume_mounts=mounts,
        # First start runs migrations and downloads the embedding model: give it 10 minutes
        # before liveness applies.
        startup_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port="http"),
            period_seconds=10, failure_threshold=60),
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port="http"),
            period_seconds=20, timeout_seconds=5, failure_threshold=3),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/ready", port="http"),
            period_seconds=10, timeout_seconds=5, failure_threshold=3),
        # Embedding documents is CPU-heavy: the limit keeps one upload from starving the node.
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "4Gi"}),
        security_context=security.restricted_security_context(read_only_root=True, run_as_user=config.runAsUser),
    )


def deployment_spec(config: OpenWebUiConfig, env: list[k8s.core.v1.EnvVarArgs],
                    data_volume: dict[str, Any]) -> k8s.apps.v1.DeploymentSpecArgs:
    single, run_as = config.replicas == 1, config.runAsUser
    volumes, mounts = writable_volumes(data_volume)
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=config.replicas,
        # Recreate with one replica: the old pod must release the volume (and SQLite)
        # before the new one starts; two writers would corrupt the database.
        strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate") if single else
        k8s.apps.v1.DeploymentStrategyArgs(type="RollingUpdate", rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
            max_unavailable=0, max_surge=1)),
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS),
            spec=k8s.core.v1.PodSpecArgs(
                # OpenWebUI never calls the Kubernetes API.
                automount_service_account_token=False,
                service_account_name=None if single else SERVICE_ACCOUNT,
                # fsGroup: the kubelet makes the volumes (and a claim written by an
                # earlier root pod) group-writable for the uid.
                security_context=security.restricted_pod_security_context(run_as_user=run_as),
                init_containers=[static_seed_container(f"{IMAGE_REPOSITORY}:{config.imageTag}", run_as)],
                containers=[container(config, env, mounts)],
                volumes=volumes,
            ),
        ),
    )


class OpenWebUi(pulumi.ComponentResource):
    namespace: str
    service_name: str
    url: str
    port_forward_command: Optional[str]
    database_endpoint: Optional[pulumi.Output[str]]
    uploads_bucket: Optional[str]
    redis_endpoint: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: OpenWebUiArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:apps:OpenWebUi", name, None, opts)
        config, ns = args.config, args.config.namespace
        if config.auth.mode == "trusted-header" and not (args.hostname and args.exposure):
            raise ValueError("trusted-header mode needs the hostname and exposure settings (checked by the config model)")
        # The image's files under /app are root's and world-readable (Dockerfile: UID/GID build args
        # default to 0), so any non-root uid runs it; what it writes is on volumes (writable_volumes).
        namespace = security.namespace(ns, "restricted", "OpenWebUI runs as a non-root uid on a read-only root filesystem",
                                       parent=self)
        ns_opts = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        secret_data, shared_env, role_arn = self._secret_data(name, args)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SECRET_NAME, namespace=ns, labels=LABELS),
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in secret_data.items()},
            opts=ns_opts,
        )
        data_volume, identity = self._data_volume(name, args, role_arn, ns_opts)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS,
                                                annotations=security.checkov_skips(checkov_skip_reasons(config.runAsUser))),
            spec=deployment_spec(config, container_env(args, shared_env, list(secret_data)), data_volume),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, secret, *identity]),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=LABELS),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", selector=LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=SERVICE_PORT, target_port="http")],
            ),
            opts=ns_opts,
        )
        self._way_in(name, args, [namespace, deployment], ns_opts)
        self.namespace = ns
        self.service_name = NAME
        self.register_outputs({"url": self.url, "uploadsBucket": self.uploads_bucket})

    def _secret_data(self, name: str, args: OpenWebUiArgs) -> tuple[dict[str, pulumi.Input[str]], dict[str, str],
                                                                   Optional[pulumi.Output[str]]]:
        """The Secret's keys, the shared-state settings and the uploads role (more than one replica)."""
        config, auth = args.config, args.config.auth
        webui_secret_key = random.RandomPassword(f"{name}-secret-key", length=48, special=False,
                                                 opts=pulumi.ResourceOptions(parent=self))
        # Triton's OpenAI frontend takes no key, but OpenWebUI pairs one key with each URL; a
        # generated placeholder keeps a real-looking credential out of the manifests.
        placeholder_key = random.RandomPassword(f"{name}-openai-key", length=32, special=False,
                                                opts=pulumi.ResourceOptions(parent=self))
        url_count = len(args.openai_base_urls)
        secret_data: dict[str, pulumi.Input[str]] = {
            "WEBUI_SECRET_KEY": webui_secret_key.result,
            "OPENAI_API_KEYS": pulumi.Output.from_input(args.openai_api_key or placeholder_key.result).apply(
                lambda key: ";".join([key] * max(url_count, 1))),
        }
        if auth.mode == "builtin" and auth.adminEmail:
            admin_password = random.RandomPassword(f"{name}-admin-password", length=24, special=False,
                                                   opts=pulumi.ResourceOptions(parent=self))
            secret_data["WEBUI_ADMIN_PASSWORD"] = admin_password.result
        if auth.mode == "oidc":
            secret_data["OAUTH_CLIENT_SECRET"] = pulumi.Output.secret(args.oidc_client_secret)
        self.database_endpoint = None
        if config.persistence.database == "postgres":
            if args.postgres_network is None:
                raise ValueError("postgres persistence needs postgres_network")
            secret_data["DATABASE_URL"] = self._postgres(name, config, args.postgres_network, args.protect_data)
        self.uploads_bucket = None
        self.redis_endpoint = None
        if config.replicas == 1:
            return secret_data, {}, None
        # More than one replica: every piece of state leaves the pod (the config model refuses
        # replicas > 1 with SQLite, so DATABASE_URL is set here).
        if "DATABASE_URL" not in secret_data:
            raise ValueError("replicas > 1 needs postgres persistence (checked by the config model)")
        if args.uploads_bucket_name is None or args.workload_identity is None:
            raise ValueError("replicas > 1 needs uploads_bucket_name and workload_identity")
        # The same database holds the vector store; RDS ships pgvector and OpenWebUI runs
        # CREATE EXTENSION vector itself (the master user may).
        secret_data["PGVECTOR_DB_URL"] = secret_data["DATABASE_URL"]
        role_arn = self._uploads(name, config, args.uploads_bucket_name, args.workload_identity, args.protect_data)
        url = self._redis(name, config, args.postgres_network)
        secret_data["REDIS_URL"] = url
        secret_data["WEBSOCKET_REDIS_URL"] = url
        self.uploads_bucket = args.uploads_bucket_name
        return secret_data, shared_state_env(config, args.uploads_bucket_name, args.workload_identity.region), role_arn

    def _data_volume(self, name: str, args: OpenWebUiArgs, role_arn: Optional[pulumi.Output[str]],
                     ns_opts: pulumi.ResourceOptions) -> tuple[dict[str, Any], list[pulumi.Resource]]:
        """The pod's data volume, and the ServiceAccount the pods wait for (more than one replica)."""
        config, ns = args.config, args.config.namespace
        if config.replicas == 1:
            # One replica: SQLite (or, with postgres, uploads and the Chroma vector store) lives
            # here, on an EBS volume that attaches to one node.
            k8s.core.v1.PersistentVolumeClaim(
                f"{name}-data",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-data", namespace=ns, labels=LABELS),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=config.persistence.storageClass,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                        requests={"storage": f"{config.persistence.volumeSizeGiB}Gi"}),
                ),
                # Deleting the stack or replacing the claim must not delete the chats.
                opts=pulumi.ResourceOptions.merge(ns_opts, pulumi.ResourceOptions(
                    retain_on_delete=True, protect=args.protect_data)),
            )
            return {"name": "data", "persistentVolumeClaim": {"claimName": f"{NAME}-data"}}, []
        # Nothing durable lives here any more (database and vectors in PostgreSQL, uploads in
        # S3, sessions in Redis): only caches (the embedding model, local copies of uploads),
        # rebuilt by any new pod. The pods' identity for S3: the EKS pod identity webhook mounts
        # its own projected web-identity token, so the API token stays unmounted.
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVICE_ACCOUNT, namespace=ns, labels=LABELS,
                annotations={"eks.amazonaws.com/role-arn": role_arn}),
            automount_service_account_token=False,
            opts=ns_opts,
        )
        return {"name": "data", "emptyDir": {"sizeLimit": "10Gi"}}, [account]

    def _way_in(self, name: str, args: OpenWebUiArgs, waits_for: list[pulumi.Resource], ns_opts: pulumi.ResourceOptions) -> None:
        """oauth2-proxy in front (trusted-header), the ALB Ingress and its NetworkPolicy, or port-forward."""
        ns, auth = args.config.namespace, args.config.auth
        front_service, front_port, health = NAME, SERVICE_PORT, "/health"
        front_labels, front_container_port = LABELS, PORT
        if auth.mode == "trusted-header":
            oidc = auth.oidc
            proxy = OAuth2Proxy(f"{name}-oauth2-proxy", OAuth2ProxyArgs(
                namespace=ns, issuer_url=oidc.issuer_url, client_id=oidc.clientId, client_secret=args.oidc_client_secret,
                scopes=oidc.scopes, redirect_url=f"https://{args.hostname}/oauth2/callback",
                upstream_service=NAME, upstream_port=SERVICE_PORT, upstream_pod_labels=LABELS, upstream_container_port=PORT,
            ), pulumi.ResourceOptions(parent=self, depends_on=waits_for))
            front_service, front_port, health = proxy.service_name, proxy.service_port, "/ping"
            front_labels, front_container_port = proxy.pod_labels, proxy.container_port
        if not (args.hostname and args.exposure):
            self.url = "http://localhost:8080"
            self.port_forward_command = port_forward_command(ns, front_service, front_port)
            return
        ui_ingress(NAME, ns, args.hostname, front_service, front_port, health, args.exposure, ns_opts)
        # The namespace denies ingress: let the ALB (IP targets) reach the front pods only.
        if args.alb_source is None:
            raise ValueError("exposing OpenWebUI needs alb_source (the ALB's subnets) for its NetworkPolicy")
        allow_alb_ingress(ns, front_labels, front_container_port, args.alb_source, ns_opts)
        self.url = f"https://{args.hostname}"
        self.port_forward_command = None

    def _postgres(self, name: str, config: OpenWebUiConfig, net: PostgresNetwork, protect_data: bool) -> pulumi.Output[str]:
        pg = config.persistence.postgres
        db = managed_data.postgres(self._owner(name), managed_data.PostgresSpec(
            instance_class=pg.instanceClass, engine_version=pg.engineVersion, allocated_storage_gib=pg.allocatedStorageGiB,
            max_allocated_storage_gib=pg.maxAllocatedStorageGiB, backup_retention_days=pg.backupRetentionDays,
            multi_az=pg.multiAz, db_name=POSTGRES_DB, username=POSTGRES_USER), net, protect_data, parent=self)
        self.database_endpoint = db.instance.address
        return pulumi.Output.secret(pulumi.Output.all(db.instance.address, db.instance.port, db.password.result).apply(
            lambda parts: database_url(parts[0], int(parts[1]), parts[2])))

    @staticmethod
    def _owner(name: str) -> managed_data.Owner:
        return managed_data.Owner(resource_name=name, ident="openwebui", label="OpenWebUI")

    def _uploads(self, name: str, config: OpenWebUiConfig, bucket_name: str, identity: WorkloadIdentity,
                 protect_data: bool) -> pulumi.Output[str]:
        """A dedicated bucket rather than a prefix of the model repository: uploads are user data
        (retention, deletion requests) with their own lifecycle, and the model bucket is read by
        every Triton role (HeadBucket lists its root) and written by CI. Returns the IRSA role
        ARN, available once its policy is attached."""
        uploads = config.persistence.uploads
        # The AWS managed key: the role needs no KMS grant.
        private_bucket(
            f"{name}-uploads", bucket_name,
            partition=identity.partition,
            protect_data=protect_data,
            noncurrent_version_days=uploads.noncurrentVersionDays,
            expiry_rule_id="expire-deleted-uploads",
            name_config_key="ai-platform:openWebUi.persistence.uploads.bucketName",
            parent=self,
        )
        # Pods start once the role may write.
        return IrsaRole(f"{name}-uploads", IrsaRoleArgs(
            identity.oidc_provider_arn, identity.oidc_issuer, config.namespace, SERVICE_ACCOUNT,
            policy=uploads_policy(identity.partition, bucket_name, uploads.keyPrefix),
            description=f"OpenWebUI {config.namespace}/{SERVICE_ACCOUNT}: uploads under s3://{bucket_name}/{uploads.keyPrefix}/",
            max_session_duration=3600,
        ), pulumi.ResourceOptions(parent=self), moved_from=self).arn

    def _redis(self, name: str, config: OpenWebUiConfig, net: PostgresNetwork) -> pulumi.Output[str]:
        """Socket sessions, usage pools and shared config: rebuilt by the replicas, so no snapshots."""
        rc = config.persistence.redis
        store = managed_data.valkey(self._owner(name), managed_data.ValkeySpec(
            node_type=rc.nodeType, engine_version=rc.engineVersion, nodes=rc.nodes,
            description="OpenWebUI websocket sessions and shared state"), net, parent=self)
        self.redis_endpoint = store.group.primary_endpoint_address
        return pulumi.Output.secret(pulumi.Output.all(store.group.primary_endpoint_address, store.token.result).apply(
            lambda parts: redis_url(parts[0], REDIS_PORT, parts[1])))
