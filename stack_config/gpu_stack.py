"""Configuration of the GPU stack that runs on the cluster (`gpuStack`): the NVIDIA GPU Operator,
GPU validation Jobs, monitoring and alerting, and the checks of the first deploy across the GPU
pools, the cluster autoscaler and Triton. GPU sharing per pool, what a node advertises and the
scheduling facts (priority classes, GPU quotas) live in `gpu_pools` and are re-exported here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Sequence

from pydantic import Field, SecretStr, model_validator

from .base import OFFLINE_SECRET_PLACEHOLDER, ConfigModel, Email, problems
from .gpu_pools import (
    ACCELERATOR_LABEL, BATCH_PRIORITY_CLASS, DEFAULT_DEVICE_PLUGIN_CONFIG, DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF,
    GPU_OPERATOR_NAMESPACE, GPU_RESOURCE, INFERENCE_PRIORITY_CLASS, MIG_PROFILE_PATTERN, MIG_PROFILES, PRIORITY_VALUES,
    RESERVED_NAMESPACES, VALIDATION_PRIORITY_CLASS, ClusterAutoscalerConfig, GpuNodeGroupConfig, GpuSchedulingConfig,
    GpuSharingConfig, accelerator_labels, advertised_gpus, advertised_resources, device_plugin_config_key,
    gpu_node_labels, mig_devices_per_gpu, mig_resource, node_resources, pick_validation_resource, sharing_node_labels,
    sharing_problems, validation_resource,
)
from .triton import TritonDeploymentConfig

# The pool and scheduling names the components import from here (they were defined in this module).
__all__ = [
    "ACCELERATOR_LABEL", "BATCH_PRIORITY_CLASS", "DEFAULT_DEVICE_PLUGIN_CONFIG", "DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF",
    "GPU_OPERATOR_NAMESPACE", "GPU_RESOURCE", "INFERENCE_PRIORITY_CLASS", "MIG_PROFILE_PATTERN", "MIG_PROFILES",
    "OFFLINE_SECRET_PLACEHOLDER", "PRIORITY_VALUES", "RESERVED_NAMESPACES", "SLACK_WEBHOOK_KEY", "SMTP_PASSWORD_KEY",
    "TRITON_WAITS_FOR_VALIDATION", "VALIDATION_PRIORITY_CLASS", "AlertThresholds", "AlertingConfig", "ClusterAutoscalerConfig",
    "EmailReceiverConfig", "GpuNodeGroupConfig", "GpuOperatorConfig", "GpuSchedulingConfig", "GpuSharingConfig",
    "GpuStackConfig", "GpuValidationConfig", "MonitoringConfig", "accelerator_labels", "advertised_gpus",
    "advertised_resources", "device_plugin_config_key", "first_deploy_capacity_problems", "gpu_node_labels",
    "mig_devices_per_gpu", "mig_resource", "node_resources", "pick_validation_resource", "scale_up_problems",
    "sharing_node_labels", "sharing_problems", "stack_problems", "validation_resource",
]

# Top-level config keys that must be Pulumi secrets (registered in model.SECRET_KEYS).
SLACK_WEBHOOK_KEY = "alertSlackWebhookUrl"
SMTP_PASSWORD_KEY = "alertSmtpPassword"

# Triton on a pool waits for that pool's validation Job (a Pulumi dependency): the Job runs alone
# on the pool during the first deploy, so it never needs a GPU beside Triton's.
TRITON_WAITS_FOR_VALIDATION = True


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


# --- monitoring and alerting -------------------------------------------------------------------

class MonitoringConfig(ConfigModel):
    retention: Annotated[str, Field(pattern=r"^\d+(h|d|w|y)$")] = "15d"
    volumeSizeGiB: Annotated[int, Field(ge=10, le=16384)] = 50
    storageClass: Annotated[str, Field(min_length=1)] = "gp3"
    # Import NVIDIA's DCGM dashboard from grafana.com (Grafana needs egress to grafana.com).
    importDcgmDashboard: bool = True


SMARTHOST = r"^[A-Za-z0-9.-]+:\d{1,5}$"


class EmailReceiverConfig(ConfigModel):
    to: Annotated[list[Email], Field(min_length=1)]
    sender: Email
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


def stack_problems(gpu_stack: GpuStackConfig, *, pools: Sequence[GpuNodeGroupConfig], autoscaler: ClusterAutoscalerConfig,
                   triton: Sequence[TritonDeploymentConfig], slack_webhook: Optional[SecretStr],
                   smtp_password: Optional[SecretStr], provisioner: str = "nodeGroups") -> list[tuple[str, str]]:
    """Checks across `gpuStack`, the GPU pools, the autoscaler, Triton and the top-level secret keys
    (`slack_webhook` is alertSlackWebhookUrl, `smtp_password` alertSmtpPassword); called from
    StackConfig's validator."""
    found = []
    alerting = gpu_stack.alerting
    if alerting.receiver == "slack" and slack_webhook is None:
        found.append((SLACK_WEBHOOK_KEY, f"required when gpuStack.alerting.receiver is slack "
                                         f"(pulumi config set --secret {SLACK_WEBHOOK_KEY} https://hooks.slack.com/services/...)"))
    if slack_webhook is not None:
        url = slack_webhook.get_secret_value()
        if url != OFFLINE_SECRET_PLACEHOLDER and not re.fullmatch(r"https://hooks\.slack\.com/\S+", url):
            # Never echo the value: it is a credential.
            found.append((SLACK_WEBHOOK_KEY, "not a Slack incoming-webhook URL (https://hooks.slack.com/...)"))
    if provisioner != "karpenter":
        # Karpenter launches a node for any pod kube-scheduler marked Unschedulable, whatever its
        # priority (kubernetes-sigs/karpenter v1.14.0 pkg/utils/pod/scheduling.go `IsProvisionable`).
        found.extend(scale_up_problems(gpu_stack.validation, pools, autoscaler, triton))
    found.extend(first_deploy_capacity_problems(gpu_stack.validation, pools, triton))
    email = alerting.email
    if alerting.receiver == "email" and email is not None and email.authUsername and smtp_password is None:
        found.append((SMTP_PASSWORD_KEY, f"required when gpuStack.alerting.email.authUsername is set "
                                         f"(pulumi config set --secret {SMTP_PASSWORD_KEY} ...)"))
    return found


def scale_up_problems(validation: GpuValidationConfig, pools: Sequence[GpuNodeGroupConfig],
                      autoscaler: ClusterAutoscalerConfig, triton: Sequence[TritonDeploymentConfig]) -> list[tuple[str, str]]:
    """GPU pods the first deploy waits for must be able to bring up a node of a pool at zero.

    The validation Job of a pool starting with no nodes needs the autoscaler to add one, and the
    autoscaler ignores pods below --expendable-pods-priority-cutoff (kubernetes/autoscaler
    cluster-autoscaler-1.33.0, FAQ "How does Cluster Autoscaler work with Pod Priority and
    Preemption?"; core/utils/expendable.go: `priority < cutoff` is expendable). Triton's pods
    scale pools up too, so its class must also stay at or above the cut-off."""
    at_zero = [pool.name for pool in pools if pool.desiredSize == 0 and validation_resource(pool)]
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
    if triton:
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


def first_deploy_capacity_problems(validation: GpuValidationConfig, pools: Sequence[GpuNodeGroupConfig],
                                   triton: Sequence[TritonDeploymentConfig],
                                   triton_waits_for_validation: Optional[bool] = None) -> list[tuple[str, str]]:
    """The GPUs a pool must offer at once during the first deploy, counting its validation Job.

    The Job asks for one unit of the pool's validation resource in the gpu-operator namespace (no
    quota there: it is reserved). Triton on the pool waits for the Job (TRITON_WAITS_FOR_VALIDATION),
    so the Job runs alone. Without that ordering it would need a GPU beside Triton's first replicas,
    and Triton's higher priority wins the pool's last GPUs: the Job stays Pending until it times out.
    """
    waits = TRITON_WAITS_FOR_VALIDATION if triton_waits_for_validation is None else triton_waits_for_validation
    if not validation.enabled:
        return []
    found = []
    for index, pool in enumerate(pools):
        resource = validation_resource(pool)
        if resource is None:
            continue
        capacity = pool.maxSize * advertised_resources(pool)[resource]
        triton = [d for d in triton if d.gpuPool == pool.name and resource == GPU_RESOURCE]
        triton_gpus = 0 if waits else sum(d.minReplicas * d.gpusPerReplica for d in triton)
        if 1 + triton_gpus > capacity:
            beside = "; ".join(f"{d.name}: {d.minReplicas} x {d.gpusPerReplica}" for d in triton)
            found.append((f"gpuNodeGroups[{index}].maxSize",
                          f"pool {pool.name} offers {capacity} {resource} at maxSize {pool.maxSize}, but the first deploy "
                          f"needs {1 + triton_gpus} at once: the validation Job's 1 beside Triton's first replicas "
                          f"({beside}); the Job would stay Pending and `pulumi up` fail after "
                          f"gpuStack.validation.timeoutSeconds. Raise maxSize or turn validation off"))
    return found
