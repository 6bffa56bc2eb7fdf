"""Configuration of the GPU stack that runs on the cluster: GPU sharing per pool, the NVIDIA GPU
Operator, GPU validation Jobs, scheduling (priority classes, GPU quotas), monitoring and alerting.

Imported by `model.py` in the middle of the file (after `ConfigModel` and `problems` exist), so
this module must only import those names from `.model` and nothing that imports `model` back.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Mapping, Optional

from pydantic import Field, model_validator

from .gpu_instances import GPU_INSTANCE_TYPES, GpuInstanceType
from .model import ConfigModel, NamespaceName, problems

# Placeholder `read_stack_files()` puts in place of an encrypted stack value it cannot decrypt.
OFFLINE_SECRET_PLACEHOLDER = "[secret]"

# Top-level config keys that must be Pulumi secrets (registered in model.SECRET_KEYS).
SLACK_WEBHOOK_KEY = "alertSlackWebhookUrl"
SMTP_PASSWORD_KEY = "alertSmtpPassword"

# --- scheduling facts shared by the config checks and the components -------------------------

GPU_RESOURCE = "nvidia.com/gpu"
# The namespace of the GPU operator release; the validation Jobs run there.
GPU_OPERATOR_NAMESPACE = "gpu-operator"
# Label cluster-autoscaler's AWS provider treats as "this node has a GPU" (aws_cloud_provider.go
# GPULabel): a node carrying it whose nvidia.com/gpu is still 0 counts as not ready yet, instead
# of as a ready node without GPUs that needs another node added beside it.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"

# PriorityClasses the platform creates (name -> value). cluster-autoscaler ignores pending pods
# whose priority is below its --expendable-pods-priority-cutoff (default -10): they never cause a
# scale-up. Every class whose pods must be able to bring up a GPU node stays at or above it.
INFERENCE_PRIORITY_CLASS = "ai-platform-inference-critical"
BATCH_PRIORITY_CLASS = "ai-platform-batch-preemptible"
VALIDATION_PRIORITY_CLASS = "ai-platform-gpu-validation"
PRIORITY_VALUES = {INFERENCE_PRIORITY_CLASS: 100000, BATCH_PRIORITY_CLASS: -100, VALIDATION_PRIORITY_CLASS: 0}
DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF = -10

# Triton on a pool waits for that pool's validation Job (a Pulumi dependency): the Job runs alone
# on the pool during the first deploy, so it never needs a GPU beside Triton's.
TRITON_WAITS_FOR_VALIDATION = True

# --- GPU sharing (per pool) --------------------------------------------------------------------

# Profiles the MIG manager knows out of the box (its config is generated from the hardware):
# all-disabled, all-enabled, all-balanced, or one profile on every GPU such as all-1g.10gb.
MIG_PROFILE_PATTERN = r"^all-(disabled|enabled|balanced|\d+g\.\d+gb(\.me)?(\+me)?)$"


class GpuSharingConfig(ConfigModel):
    """How one pool shares its GPUs between pods."""

    mode: Literal["none", "timeSlicing", "mig"] = "none"
    # timeSlicing: how many pods may share one physical GPU (no memory or fault isolation).
    replicas: Optional[Annotated[int, Field(ge=2, le=48)]] = None
    # mig: `single` exposes one MIG slice type as nvidia.com/gpu, `mixed` as nvidia.com/mig-<profile>.
    migStrategy: Optional[Literal["single", "mixed"]] = None
    migProfile: Optional[Annotated[str, Field(pattern=MIG_PROFILE_PATTERN)]] = None

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.mode == "timeSlicing" and self.replicas is None:
            found.append(("replicas", "required when mode is timeSlicing (pods per GPU, 2-48)"))
        if self.mode != "timeSlicing" and self.replicas is not None:
            found.append(("replicas", f"only applies to mode timeSlicing (mode is {self.mode})"))
        if self.mode == "mig" and self.migProfile is None:
            found.append(("migProfile", "required when mode is mig (e.g. all-1g.10gb, all-balanced)"))
        if self.mode != "mig":
            for name in ("migStrategy", "migProfile"):
                if getattr(self, name) is not None:
                    found.append((name, f"only applies to mode mig (mode is {self.mode})"))
        problems(found)
        return self

    @property
    def effective_mig_strategy(self) -> str:
        return self.migStrategy or "single"


# MIG devices one GPU holds under each `all-<profile>` config of the MIG manager, by (GPU model,
# memory GiB): the most instances of that profile the GPU supports (NVIDIA/mig-parted v0.15.0,
# deployments/systemd/config-default.yaml; the MIG manager of gpu-operator v26.7.0 generates the
# same `all-<profile>` configs from the hardware, pkg/mig/builder/builder.go). Config names spell
# a `+me` profile `.me`. `all-balanced` is 2x the smallest 1g, 1x 2g and 1x 3g profile per GPU
# (pkg/mig/builder/balanced.go).
_MIG_A100_40 = {"1g.5gb": 7, "1g.5gb.me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1}
_MIG_80 = {"1g.10gb": 7, "1g.10gb.me": 1, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}
_MIG_H200 = {"1g.18gb": 7, "1g.18gb.me": 1, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1}
MIG_PROFILES: dict[tuple[str, int], dict[str, int]] = {
    ("A100", 40): _MIG_A100_40, ("A100", 80): _MIG_80, ("H100", 80): _MIG_80, ("H200", 141): _MIG_H200,
}


def _balanced(profiles: dict[str, int]) -> dict[str, int]:
    base = {name: count for name, count in profiles.items() if not name.endswith(".me")}
    one_g = max((n for n in base if n.startswith("1g.")), key=lambda n: base[n])
    two_g = next(n for n in base if n.startswith("2g."))
    three_g = next(n for n in base if n.startswith("3g."))
    return {one_g: 2, two_g: 1, three_g: 1}


def mig_devices_per_gpu(gpu: GpuInstanceType, mig_profile: str) -> Optional[dict[str, int]]:
    """{profile: instances} on one GPU under `mig_profile` ({} for all-enabled); None when the MIG
    manager has no such config for this GPU."""
    profiles = MIG_PROFILES.get((gpu.gpu_model, gpu.gpu_memory_gib))
    if profiles is None:
        return None
    if mig_profile == "all-enabled":
        return {}
    if mig_profile == "all-balanced":
        return _balanced(profiles)
    name = mig_profile.removeprefix("all-")
    return {name: profiles[name]} if name in profiles else None


def mig_resource(profile: str) -> str:
    """The mixed strategy's resource for a MIG profile (k8s-device-plugin v0.20.0 internal/rm/rm.go:
    `mig-<profile>` with `+` spelled `.`)."""
    return f"nvidia.com/mig-{profile.replace('+', '.')}"


def node_resources(instance_type: str, sharing: Optional[GpuSharingConfig]) -> dict[str, int]:
    """Extended resources the device plugin advertises on one node of this type: nvidia.com/gpu
    (time-slicing multiplies it; the single MIG strategy counts every MIG device as one), or with the
    mixed MIG strategy one nvidia.com/mig-<profile> per profile and no nvidia.com/gpu."""
    gpu = GPU_INSTANCE_TYPES[instance_type]
    if sharing is None or sharing.mode == "none" or (sharing.mode == "mig" and sharing.migProfile == "all-disabled"):
        return {GPU_RESOURCE: gpu.gpus}
    if sharing.mode == "timeSlicing":
        return {GPU_RESOURCE: gpu.gpus * sharing.replicas}
    devices = mig_devices_per_gpu(gpu, sharing.migProfile) or {}
    if sharing.effective_mig_strategy == "single":
        return {GPU_RESOURCE: gpu.gpus * sum(devices.values())}
    return {GPU_RESOURCE: 0, **{mig_resource(name): gpu.gpus * count for name, count in sorted(devices.items())}}


def sharing_problems(pool) -> list[tuple[str, str]]:
    """Checks that need the pool's instance types; called from GpuNodeGroupConfig's validator."""
    sharing = getattr(pool, "sharing", None)
    if sharing is not None and sharing.mode != "none" and pool.amiType.startswith("BOTTLEROCKET"):
        return [("sharing.mode", f"{sharing.mode} is set through the GPU Operator's device plugin, which "
                                 "Bottlerocket pools do not run (their AMI ships its own); use an AL2023 NVIDIA amiType")]
    if sharing is None or sharing.mode != "mig":
        return []
    not_mig = [t for t in pool.instanceTypes if not GPU_INSTANCE_TYPES[t].mig_capable]
    if not_mig:
        capable = sorted({t.family for t in GPU_INSTANCE_TYPES.values() if t.mig_capable})
        return [("sharing.mode", f"mig needs MIG-capable GPUs; {', '.join(not_mig)} "
                                 f"{'is' if len(not_mig) == 1 else 'are'} not (MIG families: {', '.join(capable)})")]
    return _mig_profile_problems(pool, sharing)


def _mig_profile_problems(pool, sharing: GpuSharingConfig) -> list[tuple[str, str]]:
    profile = sharing.migProfile
    if profile == "all-disabled":
        return []
    if profile == "all-enabled":
        return [("sharing.migProfile", "all-enabled turns MIG on without creating MIG devices: pods could use no GPU "
                                       "on this pool; choose all-balanced or all-<profile> (e.g. all-1g.10gb)")]
    for name in pool.instanceTypes:
        gpu = GPU_INSTANCE_TYPES[name]
        if mig_devices_per_gpu(gpu, profile) is None:
            known = ", ".join(f"all-{p}" for p in MIG_PROFILES[(gpu.gpu_model, gpu.gpu_memory_gib)])
            return [("sharing.migProfile", f"{profile} is not a MIG config of {name} ({gpu.gpu_model} {gpu.gpu_memory_gib} GB); "
                                           f"it has all-balanced, {known}")]
    if sharing.effective_mig_strategy == "single" and profile == "all-balanced":
        return [("sharing.migStrategy", "single needs one MIG device type on every GPU, and all-balanced mixes 1g, 2g "
                                        "and 3g devices (the device plugin refuses it); use mixed or an all-<profile>")]
    advertised = {name: node_resources(name, sharing) for name in pool.instanceTypes}
    if len({tuple(sorted(r.items())) for r in advertised.values()}) > 1:
        return [("instanceTypes", f"advertise different MIG devices under {profile} "
                                  f"({'; '.join(f'{n}: {r}' for n, r in advertised.items())}); the autoscaler's node "
                                  f"template can describe only one")]
    return []


# Keys of the device-plugin ConfigMap the GPU operator component creates. Nodes without the
# `nvidia.com/device-plugin.config` label use DEFAULT_DEVICE_PLUGIN_CONFIG.
DEFAULT_DEVICE_PLUGIN_CONFIG = "default"


def device_plugin_config_key(sharing: Optional[GpuSharingConfig]) -> str:
    if sharing is None or sharing.mode == "none":
        return DEFAULT_DEVICE_PLUGIN_CONFIG
    if sharing.mode == "timeSlicing":
        return f"timeslice-{sharing.replicas}"
    return f"mig-{sharing.effective_mig_strategy}"


def sharing_node_labels(pool) -> dict[str, str]:
    """Node labels a GPU pool needs for its sharing mode (merged into the node group's labels).

    The device plugin picks its per-node config by `nvidia.com/device-plugin.config`; the MIG
    manager partitions the GPUs to `nvidia.com/mig.config`. No labels for pools without sharing,
    so the default config applies and nothing changes for them.
    """
    if pool.amiType.startswith("BOTTLEROCKET"):
        # Bottlerocket's NVIDIA variants run their own device plugin; a second one from the
        # operator would advertise every GPU twice.
        return {"nvidia.com/gpu.deploy.device-plugin": "false"}
    sharing = getattr(pool, "sharing", None)
    if sharing is None or sharing.mode == "none":
        return {}
    labels = {"nvidia.com/device-plugin.config": device_plugin_config_key(sharing)}
    if sharing.mode == "mig":
        labels["nvidia.com/mig.config"] = sharing.migProfile
    return labels


def advertised_resources(pool) -> dict[str, int]:
    """Extended resources one node of the pool advertises once its device plugin runs: what the
    cluster-autoscaler node template must say so a pending pod asking for them scales the pool up
    from zero (instance types of a pool advertise the same, a config check holds it)."""
    return node_resources(pool.instanceTypes[0], getattr(pool, "sharing", None))


def advertised_gpus(pool) -> int:
    """`nvidia.com/gpu` one node of the pool advertises (0 with the mixed MIG strategy)."""
    return advertised_resources(pool).get(GPU_RESOURCE, 0)


def pick_validation_resource(resources: Mapping[str, int]) -> Optional[str]:
    """The resource a validation Job asks one of on nodes advertising `resources`: nvidia.com/gpu
    where offered, else the most plentiful MIG device (mixed strategy); None when nothing is."""
    offered = {name: count for name, count in resources.items() if count > 0}
    if not offered:
        return None
    if GPU_RESOURCE in offered:
        return GPU_RESOURCE
    return max(sorted(offered), key=lambda name: offered[name])


def validation_resource(pool) -> Optional[str]:
    return pick_validation_resource(advertised_resources(pool))


def accelerator_labels(pool) -> dict[str, str]:
    """`k8s.amazonaws.com/accelerator: nvidia-<gpu models>` (cluster-autoscaler's AWS README, "Special
    note on GPU instances"), set by kubelet when the node registers. Only on pools that advertise
    nvidia.com/gpu: the autoscaler (1.33) treats a labelled node with nvidia.com/gpu 0 as not ready,
    which a mixed-MIG node (MIG devices only) would stay forever."""
    if advertised_gpus(pool) == 0:
        return {}
    models = sorted({GPU_INSTANCE_TYPES[t].gpu_model.lower() for t in pool.instanceTypes})
    return {ACCELERATOR_LABEL: "nvidia-" + "-".join(models)}


def gpu_node_labels(pool) -> dict[str, str]:
    """Labels the platform puts on a GPU pool's nodes beside the pool label (user labels excluded)."""
    return {**accelerator_labels(pool), **sharing_node_labels(pool)}


# --- GPU operator and validation ---------------------------------------------------------------

class GpuOperatorConfig(ConfigModel):
    # EKS NVIDIA AMIs (AL2023/Bottlerocket *_NVIDIA) ship the driver and container toolkit; the
    # operator's driver containers do not support Amazon Linux. Turn on only for other AMIs.
    driverEnabled: bool = False
    toolkitEnabled: bool = False


class GpuValidationConfig(ConfigModel):
    """A Job per GPU pool that runs nvidia-smi on one GPU; `pulumi up` waits for it."""

    enabled: bool = True
    # Pinned CUDA base image: nvidia-smi comes from the host driver, the image only needs to be
    # older than the driver's CUDA version (12.4 runs on every driver the EKS AMIs ship).
    image: Annotated[str, Field(pattern=r"^[^:@\s]+(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$")] = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
    # Scale-from-zero on SPOT can take several minutes before the pod even starts.
    timeoutSeconds: Annotated[int, Field(ge=60, le=7200)] = 1800

    @model_validator(mode="after")
    def _check(self):
        if self.image.endswith(":latest"):
            problems([("image", "pin a version tag or digest, not :latest")])
        return self


# --- scheduling --------------------------------------------------------------------------------

# The GPU operator's namespace is created by its component; a quota there could starve the validation Jobs.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", GPU_OPERATOR_NAMESPACE)


class GpuSchedulingConfig(ConfigModel):
    # Workload namespace -> most GPUs its pods may request together (ResourceQuota on
    # requests.nvidia.com/gpu). The namespaces are created by the platform if nobody else does.
    gpuQuotas: dict[NamespaceName, Annotated[int, Field(ge=0, le=4096)]] = {"inference": 4}

    @model_validator(mode="after")
    def _check(self):
        reserved = [n for n in self.gpuQuotas if n in RESERVED_NAMESPACES]
        if reserved:
            problems([("gpuQuotas", f"{', '.join(reserved)}: system namespaces are not workload namespaces")])
        return self


# --- monitoring and alerting -------------------------------------------------------------------

class MonitoringConfig(ConfigModel):
    retention: Annotated[str, Field(pattern=r"^\d+(h|d|w|y)$")] = "15d"
    volumeSizeGiB: Annotated[int, Field(ge=10, le=16384)] = 50
    storageClass: Annotated[str, Field(min_length=1)] = "gp3"
    # Import NVIDIA's DCGM dashboard from grafana.com (Grafana needs egress to grafana.com).
    importDcgmDashboard: bool = True


SMARTHOST = r"^[A-Za-z0-9.-]+:\d{1,5}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class EmailReceiverConfig(ConfigModel):
    to: Annotated[list[Annotated[str, Field(pattern=EMAIL)]], Field(min_length=1)]
    sender: Annotated[str, Field(pattern=EMAIL)]
    smarthost: Annotated[str, Field(pattern=SMARTHOST)]
    # With a username, the password comes from the secret config key alertSmtpPassword.
    authUsername: Optional[str] = None
    requireTls: bool = True


class AlertingConfig(ConfigModel):
    receiver: Literal["none", "slack", "email"] = "none"
    # The webhook URL itself is the secret key alertSlackWebhookUrl.
    slackChannel: Annotated[str, Field(pattern=r"^[#@]?[\w.-]+$")] = "#gpu-alerts"
    email: Optional[EmailReceiverConfig] = None

    @model_validator(mode="after")
    def _check(self):
        if self.receiver == "email" and self.email is None:
            problems([("email", "required when receiver is email (to, sender, smarthost)")])
        return self


class AlertThresholds(ConfigModel):
    """Thresholds that vary by stack. The defaults are the literals in
    components/rules/gpu-triton.rules.yaml (a test keeps them equal)."""

    gpuTempWarningC: Annotated[int, Field(ge=40, le=120)] = 83
    gpuTempCriticalC: Annotated[int, Field(ge=40, le=120)] = 90
    gpuMemoryUsedPercent: Annotated[int, Field(ge=50, le=100)] = 95
    gpuIdleUtilPercent: Annotated[int, Field(ge=1, le=50)] = 10
    gpuSaturatedUtilPercent: Annotated[int, Field(ge=50, le=100)] = 95
    tritonFailureRatio: Annotated[float, Field(gt=0, lt=1)] = 0.05
    tritonQueueComputeRatio: Annotated[float, Field(gt=0, le=1000)] = 2.0

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.gpuTempCriticalC <= self.gpuTempWarningC:
            found.append(("gpuTempCriticalC", f"must be above gpuTempWarningC ({self.gpuTempCriticalC} <= {self.gpuTempWarningC})"))
        if self.gpuSaturatedUtilPercent <= self.gpuIdleUtilPercent:
            found.append(("gpuSaturatedUtilPercent", f"must be above gpuIdleUtilPercent ({self.gpuSaturatedUtilPercent} <= {self.gpuIdleUtilPercent})"))
        problems(found)
        return self


class GpuStackConfig(ConfigModel):
    operator: GpuOperatorConfig = GpuOperatorConfig()
    validation: GpuValidationConfig = GpuValidationConfig()
    scheduling: GpuSchedulingConfig = GpuSchedulingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    alerting: AlertingConfig = AlertingConfig()
    alertThresholds: AlertThresholds = AlertThresholds()


def stack_problems(config) -> list[tuple[str, str]]:
    """Checks across `gpuStack` and the top-level secret keys; called from StackConfig's validator."""
    found = []
    alerting = config.gpuStack.alerting
    webhook = getattr(config, SLACK_WEBHOOK_KEY)
    smtp_password = getattr(config, SMTP_PASSWORD_KEY)
    if alerting.receiver == "slack" and webhook is None:
        found.append((SLACK_WEBHOOK_KEY, f"required when gpuStack.alerting.receiver is slack "
                                         f"(pulumi config set --secret {SLACK_WEBHOOK_KEY} https://hooks.slack.com/services/...)"))
    if webhook is not None:
        url = webhook.get_secret_value()
        if url != OFFLINE_SECRET_PLACEHOLDER and not re.fullmatch(r"https://hooks\.slack\.com/\S+", url):
            # Never echo the value: it is a credential.
            found.append((SLACK_WEBHOOK_KEY, "not a Slack incoming-webhook URL (https://hooks.slack.com/...)"))
    found.extend(scale_up_problems(config))
    found.extend(first_deploy_capacity_problems(config))
    email = alerting.email
    if alerting.receiver == "email" and email is not None and email.authUsername and smtp_password is None:
        found.append((SMTP_PASSWORD_KEY, f"required when gpuStack.alerting.email.authUsername is set "
                                         f"(pulumi config set --secret {SMTP_PASSWORD_KEY} ...)"))
    return found


def scale_up_problems(config) -> list[tuple[str, str]]:
    """GPU pods the first deploy waits for must be able to bring up a node of a pool at zero.

    The validation Job of a pool starting with no nodes needs the autoscaler to add one, and the
    autoscaler ignores pods below --expendable-pods-priority-cutoff (kubernetes/autoscaler
    cluster-autoscaler-1.33.0, FAQ "How does Cluster Autoscaler work with Pod Priority and
    Preemption?"; core/utils/expendable.go: `priority < cutoff` is expendable). Triton's pods
    scale pools up too, so its class must also stay at or above the cut-off."""
    validation = config.gpuStack.validation
    at_zero = [pool.name for pool in config.gpuNodeGroups if pool.desiredSize == 0 and validation_resource(pool)]
    autoscaler = config.clusterAutoscaler
    if not autoscaler.enabled:
        if validation.enabled and at_zero:
            # With no node and nothing to add one, `pulumi up` would wait timeoutSeconds and fail.
            return [("gpuStack.validation.enabled", f"GPU pool(s) {', '.join(at_zero)} start with no nodes "
                                                    f"(desiredSize 0) and clusterAutoscaler is off, so the "
                                                    f"validation Job could never run; raise desiredSize, "
                                                    f"enable clusterAutoscaler or turn validation off")]
        return []
    cutoff = autoscaler.expendablePodsPriorityCutoff
    needs = []
    if validation.enabled and at_zero:
        needs.append((VALIDATION_PRIORITY_CLASS, f"the GPU validation Job of pool(s) {', '.join(at_zero)} (desiredSize 0)"))
    if config.tritonDeployments:
        needs.append((INFERENCE_PRIORITY_CLASS, "Triton's pods"))
    below = [(name, who) for name, who in needs if PRIORITY_VALUES[name] < cutoff]
    if not below:
        return []
    lowest = min(PRIORITY_VALUES[name] for name, _ in below)
    what = "; ".join(f"{who} ({name}: {PRIORITY_VALUES[name]})" for name, who in below)
    return [("clusterAutoscaler.expendablePodsPriorityCutoff",
             f"is {cutoff}, above the priority of {what}: cluster-autoscaler never adds a node for a pod below its "
             f"cut-off, so they would stay Pending and `pulumi up` would time out; set it to {lowest} or lower "
             f"(default {DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF})")]


def first_deploy_capacity_problems(config, triton_waits_for_validation: Optional[bool] = None) -> list[tuple[str, str]]:
    """The GPUs a pool must offer at once during the first deploy, counting its validation Job.

    The Job asks for one unit of the pool's validation resource in the gpu-operator namespace (no
    quota there: it is reserved). Triton on the pool waits for the Job (TRITON_WAITS_FOR_VALIDATION),
    so the Job runs alone. Without that ordering it would need a GPU beside Triton's first replicas,
    and Triton's higher priority wins the pool's last GPUs: the Job stays Pending until it times out.
    """
    waits = TRITON_WAITS_FOR_VALIDATION if triton_waits_for_validation is None else triton_waits_for_validation
    if not config.gpuStack.validation.enabled:
        return []
    found = []
    for index, pool in enumerate(config.gpuNodeGroups):
        resource = validation_resource(pool)
        if resource is None:
            continue
        capacity = pool.maxSize * advertised_resources(pool)[resource]
        triton = [d for d in config.tritonDeployments if d.gpuPool == pool.name and resource == GPU_RESOURCE]
        triton_gpus = 0 if waits else sum(d.minReplicas * d.gpusPerReplica for d in triton)
        if 1 + triton_gpus > capacity:
            beside = "; ".join(f"{d.name}: {d.minReplicas} x {d.gpusPerReplica}" for d in triton)
            found.append((f"gpuNodeGroups[{index}].maxSize",
                          f"pool {pool.name} offers {capacity} {resource} at maxSize {pool.maxSize}, but the first deploy "
                          f"needs {1 + triton_gpus} at once: the validation Job's 1 beside Triton's first replicas "
                          f"({beside}); the Job would stay Pending and `pulumi up` fail after "
                          f"gpuStack.validation.timeoutSeconds. Raise maxSize or turn validation off"))
    return found
