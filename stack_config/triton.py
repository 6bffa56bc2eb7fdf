"""Configuration of the model repository (one S3 bucket per stack) and of the Triton deployments
that serve from it (`modelRepository`, `tritonDeployments`).

Builds on `gpu_pools` (the pools a deployment runs on) and `openwebui` (exposure); imported by
`gpu_stack` and `model`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional, Sequence

from pydantic import Field, model_validator

from .base import (
    ARN_PREFIX, REGION, BucketName, ConfigModel, DnsLabel, NamespaceName, PodClientsConfig, PodLabels,
    Quantity, problems, quantity_value,
)
from .gpu_pools import GpuNodeGroupConfig, GpuSchedulingConfig, advertised_gpus, advertised_resources
from .openwebui import ExposureConfig

# A key prefix inside the bucket, without leading or trailing slash: `triton/standard`.
MODEL_PREFIX = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$"
# Principals that may assume the publisher role: IAM roles/users or an account root.
PRINCIPAL_ARN = rf"^{ARN_PREFIX}:iam::\d{{12}}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$"
KMS_KEY_ARN = rf"^{ARN_PREFIX}:kms:{REGION}:\d{{12}}:key/[0-9a-f-]{{36}}$"
# Triton image tags are <yy.mm>-<flavour>: 25.06-py3, 25.06-vllm-python-py3, 25.06-trtllm-python-py3.
IMAGE_TAG = r"^\d{2}\.\d{2}-[a-z0-9-]+$"
MODEL_NAME = r"^[A-Za-z0-9_.-]+$"
# `--load-model=*`: Triton's explicit mode loads every model of the repository at start (and
# nothing, without error, when there is none); it must be the only --load-model.
LOAD_ALL = "*"


# --- model repository --------------------------------------------------------------------------

class PublisherConfig(ConfigModel):
    """Who may publish models (CI or people running `platformctl models push`)."""

    # Principals trusted to assume the publisher role. Empty: only the managed policy is created
    # (attach it to your CI role yourself); GitHub OIDC trust for CI is set up separately.
    trustedPrincipalArns: list[Annotated[str, Field(pattern=PRINCIPAL_ARN)]] = []
    # `models push --prune` needs delete; off unless asked, so a publisher cannot wipe the repository.
    allowDelete: bool = False


class ModelRepositoryConfig(ConfigModel):
    # Globally unique bucket name. Unset: ai-platform-<stack>-models-<region>.
    bucketName: Optional[BucketName] = None
    # Old versions of overwritten or deleted models are kept this many days (rollback window)...
    noncurrentVersionDays: Annotated[int, Field(ge=1, le=3650)] = 30
    # ...except the newest ones, kept regardless of age.
    noncurrentVersionsKept: Annotated[int, Field(ge=0, le=100)] = 3
    # Customer managed KMS key for default encryption; unset: SSE-KMS with the AWS managed key.
    kmsKeyArn: Optional[Annotated[str, Field(pattern=KMS_KEY_ARN)]] = None
    publisher: PublisherConfig = PublisherConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.bucketName and (self.bucketName.startswith("xn--") or self.bucketName.endswith("-s3alias")):
            problems([("bucketName", "the prefix xn-- and suffix -s3alias are reserved by S3")])
        return self

    def bucket_name(self, stack: str, region: str) -> str:
        return self.bucketName or f"ai-platform-{stack}-models-{region}"


# --- Triton deployments ------------------------------------------------------------------------

class ModelControlConfig(ConfigModel):
    """How Triton picks up models from the repository."""

    # poll: load/unload as the repository changes; explicit: load `loadModels` at start (["*"]:
    # every model under the prefix), then only through the repository API or a restart
    # (`platformctl models push` restarts the deployment); none: load all at start.
    mode: Literal["poll", "explicit", "none"] = "poll"
    pollSeconds: Optional[Annotated[int, Field(ge=5, le=3600)]] = None
    loadModels: list[Annotated[str, Field(pattern=rf"^(\*|{MODEL_NAME[1:-1]})$")]] = []

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.pollSeconds is not None and self.mode != "poll":
            found.append(("pollSeconds", f"only applies to mode poll (mode is {self.mode})"))
        if self.loadModels and self.mode != "explicit":
            found.append(("loadModels", f"only applies to mode explicit (mode is {self.mode})"))
        if len(set(self.loadModels)) != len(self.loadModels):
            found.append(("loadModels", "lists a model twice"))
        if LOAD_ALL in self.loadModels and len(self.loadModels) > 1:
            found.append(("loadModels", "'*' (every model under the prefix) must be the only entry; Triton "
                                        "refuses --load-model=* beside other names"))
        problems(found)
        return self

    @property
    def startup_models(self) -> list[str]:
        """Models that must be under the prefix before Triton starts: tritonserver exits when an
        explicit --load-model is missing (exit-on-error defaults to true). `*` needs none."""
        return [m for m in self.loadModels if m != LOAD_ALL] if self.mode == "explicit" else []

    @property
    def poll_seconds(self) -> int:
        return self.pollSeconds or 30


class ResourcesConfig(ConfigModel):
    # Requests and limits are equal (CPU and memory): with the GPU that makes the pod Guaranteed,
    # the last to be evicted under node pressure. Size `cpu` for peak load: CPU above it is throttled.
    cpu: Quantity = "2"
    # Includes /dev/shm (a memory-backed volume is charged to the container).
    memory: Quantity = "8Gi"


# The label a client pod carries unless its entry names others.
CLIENT_LABEL = {"ai-platform/triton-client": "true"}


class TritonClientConfig(PodClientsConfig):
    """In-cluster pods that may call a deployment's serving ports (KServe HTTP/gRPC, and the OpenAI
    API in `llm` mode): the `podLabels` pods of `namespace`, e.g. the smoke test's in-cluster runner."""

    podLabels: PodLabels = dict(CLIENT_LABEL)


class TritonDeploymentConfig(ConfigModel):
    name: DnsLabel
    mode: Literal["standard", "llm"] = "standard"
    namespace: NamespaceName = "inference"
    # nvcr.io/nvidia/tritonserver:<imageTag>; `llm` needs a -vllm-python-py3 image (OpenAI frontend).
    imageTag: Annotated[str, Field(pattern=IMAGE_TAG)]
    gpuPool: DnsLabel
    gpusPerReplica: Annotated[int, Field(ge=1, le=8)] = 1
    minReplicas: Annotated[int, Field(ge=1, le=100)] = 1
    maxReplicas: Annotated[int, Field(ge=1, le=100)] = 1
    # Where this deployment's models live in the bucket; its role may read nothing else.
    modelPrefix: Annotated[str, Field(pattern=MODEL_PREFIX)]
    modelControl: ModelControlConfig = ModelControlConfig()
    resources: ResourcesConfig = ResourcesConfig()
    # /dev/shm (memory-backed): Python backends and vLLM pass tensors through it; the container
    # default of 64Mi fails them.
    shmSize: Quantity = "2Gi"
    # llm: HuggingFace ID or path of the tokenizer for chat templates (chat fails without it).
    tokenizer: Optional[Annotated[str, Field(pattern=r"^[\w./-]+$")]] = None
    # Time a replica may take to download and load its models before it is restarted.
    startupTimeoutSeconds: Annotated[int, Field(ge=60, le=7200)] = 1800
    # surge: a new replica starts before an old one stops (needs GPUs for one extra replica);
    # recreate: old replicas stop first (a short outage, no extra GPUs).
    rolloutStrategy: Literal["surge", "recreate"] = "surge"
    # HPA target: average queue-time / compute-time ratio per replica (1.0 = requests wait as
    # long as they compute). Used only when maxReplicas > minReplicas.
    targetQueueComputeRatio: Annotated[float, Field(gt=0, le=100)] = 1.0
    # clusterIP: in-cluster only; internalNlb: also an internal Network Load Balancer (VPC only).
    expose: Literal["clusterIP", "internalNlb"] = "clusterIP"
    # In-cluster pods admitted to the serving ports besides OpenWebUI (llm) and Prometheus (metrics).
    clients: list[TritonClientConfig] = []

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.maxReplicas < self.minReplicas:
            found.append(("maxReplicas", f"must be >= minReplicas (got {self.maxReplicas} < {self.minReplicas})"))
        if self.mode == "llm":
            if "vllm" not in self.imageTag:
                found.append(("imageTag", f"mode llm runs the OpenAI frontend of the -vllm-python-py3 image (got {self.imageTag!r})"))
            if self.modelControl.mode != "none":
                found.append(("modelControl.mode", "mode llm loads every model at start (the OpenAI frontend has no "
                                                   "model control); use mode none"))
        else:
            if self.tokenizer is not None:
                found.append(("tokenizer", "only applies to mode llm"))
        if quantity_value(self.shmSize) >= quantity_value(self.resources.memory):
            # A memory-backed /dev/shm is charged to the container's memory limit.
            found.append(("shmSize", f"must be below resources.memory ({self.shmSize} >= {self.resources.memory}): "
                                     f"/dev/shm counts against the container's memory limit"))
        if self.rolloutStrategy == "recreate" and self.minReplicas > 1:
            found.append(("rolloutStrategy", f"recreate stops all {self.minReplicas} replicas at once; use surge "
                                             f"when minReplicas > 1"))
        problems(found)
        return self

    @property
    def autoscaled(self) -> bool:
        return self.maxReplicas > self.minReplicas

    @property
    def peak_gpus(self) -> int:
        """GPUs the deployment may hold at once: every replica at max, plus one surge replica."""
        surge = 1 if self.rolloutStrategy == "surge" else 0
        return (self.maxReplicas + surge) * self.gpusPerReplica

    @property
    def startup_failure_threshold(self) -> int:
        return math.ceil(self.startupTimeoutSeconds / STARTUP_PERIOD_SECONDS)


STARTUP_PERIOD_SECONDS = 10


def triton_problems(deployments: Sequence[TritonDeploymentConfig], *, pools: Sequence[GpuNodeGroupConfig],
                    scheduling: GpuSchedulingConfig, exposure: ExposureConfig) -> list[tuple[str, str]]:
    """Checks across `tritonDeployments`, `gpuNodeGroups`, `gpuStack.scheduling` and `exposure`;
    called from StackConfig's validator so each problem is reported under the key to change."""
    found: list[tuple[str, str]] = []
    pools = {pool.name: (index, pool) for index, pool in enumerate(pools)}
    seen: dict[str, int] = {}
    for index, deployment in enumerate(deployments):
        key = f"tritonDeployments[{index}]"
        if deployment.name in seen:
            found.append((f"{key}.name", f"duplicate deployment name {deployment.name!r} (also tritonDeployments[{seen[deployment.name]}])"))
        seen.setdefault(deployment.name, index)
        if deployment.expose == "internalNlb" and not exposure.loadBalancerController:
            found.append((f"{key}.expose", "internalNlb needs exposure.loadBalancerController: true (only the AWS Load "
                                           "Balancer Controller provisions the NLB; nothing would serve the Service)"))
        if deployment.gpuPool not in pools:
            found.append((f"{key}.gpuPool", f"no GPU pool named {deployment.gpuPool!r} in gpuNodeGroups "
                                            f"(pools: {', '.join(pools) or 'none'})"))
            continue
        _, pool = pools[deployment.gpuPool]
        per_node = advertised_gpus(pool)
        if per_node == 0:
            found.append((f"{key}.gpuPool", f"pool {pool.name} advertises no nvidia.com/gpu, which Triton requests "
                                            f"(its mixed MIG strategy offers {', '.join(r for r, n in advertised_resources(pool).items() if n)}); "
                                            f"use a pool without MIG or with migStrategy single"))
        elif deployment.gpusPerReplica > per_node:
            found.append((f"{key}.gpusPerReplica", f"{deployment.gpusPerReplica} GPUs do not fit on one node of pool "
                                                   f"{pool.name} ({pool.instanceTypes[0]} has {per_node})"))

    # Capacity: what the deployments may hold at peak must fit the pools and namespace quotas,
    # otherwise a scale-up or rollout stalls with Pending pods instead of failing here.
    by_pool: dict[str, list[TritonDeploymentConfig]] = {}
    by_namespace: dict[str, list[TritonDeploymentConfig]] = {}
    for deployment in deployments:
        if deployment.gpuPool in pools:
            by_pool.setdefault(deployment.gpuPool, []).append(deployment)
        by_namespace.setdefault(deployment.namespace, []).append(deployment)
    for pool_name, deployments in by_pool.items():
        index, pool = pools[pool_name]
        capacity = pool.maxSize * advertised_gpus(pool)
        need = sum(d.peak_gpus for d in deployments)
        if need > capacity and capacity > 0:  # no nvidia.com/gpu at all is reported per deployment above
            found.append((f"gpuNodeGroups[{index}].maxSize", f"pool {pool_name} offers {capacity} GPUs at maxSize "
                                                             f"{pool.maxSize} but Triton needs up to {need} ({_breakdown(deployments)})"))
    quotas = scheduling.gpuQuotas
    for namespace, deployments in by_namespace.items():
        if namespace in quotas:
            need = sum(d.peak_gpus for d in deployments)
            if need > quotas[namespace]:
                found.append((f"gpuStack.scheduling.gpuQuotas.{namespace}", f"is {quotas[namespace]} but Triton in namespace "
                                                                            f"{namespace} needs up to {need} ({_breakdown(deployments)})"))

    return found


def _breakdown(deployments: Sequence[TritonDeploymentConfig]) -> str:
    parts = []
    for d in deployments:
        surge = " + 1 surge" if d.rolloutStrategy == "surge" else ""
        parts.append(f"{d.name}: ({d.maxReplicas} max{surge}) x {d.gpusPerReplica} GPU")
    return "; ".join(parts)


__all__ = [
    "ModelRepositoryConfig", "PublisherConfig", "TritonDeploymentConfig", "TritonClientConfig", "CLIENT_LABEL", "ModelControlConfig",
    "ResourcesConfig", "triton_problems", "STARTUP_PERIOD_SECONDS",
]
