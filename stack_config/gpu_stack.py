"""Configuration of the GPU stack that runs on the cluster: GPU sharing per pool, the NVIDIA GPU
Operator, GPU validation Jobs, scheduling (priority classes, GPU quotas), monitoring and alerting.

Imported by `model.py` in the middle of the file (after `ConfigModel` and `problems` exist), so
this module must only import those names from `.model` and nothing that imports `model` back.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from .gpu_instances import GPU_INSTANCE_TYPES
from .model import ConfigModel, NamespaceName, problems

# Placeholder `read_stack_files()` puts in place of an encrypted stack value it cannot decrypt.
OFFLINE_SECRET_PLACEHOLDER = "[secret]"

# Top-level config keys that must be Pulumi secrets (registered in model.SECRET_KEYS).
SLACK_WEBHOOK_KEY = "alertSlackWebhookUrl"
SMTP_PASSWORD_KEY = "alertSmtpPassword"

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


def advertised_gpus(pool) -> int:
    """`nvidia.com/gpu` a node of the pool advertises (time-slicing multiplies it); what the
    cluster-autoscaler node template should say so pending pods trigger a scale-up."""
    sharing = getattr(pool, "sharing", None)
    gpus = GPU_INSTANCE_TYPES[pool.instanceTypes[0]].gpus
    if sharing is not None and sharing.mode == "timeSlicing":
        return gpus * sharing.replicas
    return gpus


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

RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


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
    if config.gpuStack.validation.enabled and not config.clusterAutoscaler.enabled:
        # The Job waits for a GPU node: with no node and nothing to add one, `pulumi up` would hang
        # for timeoutSeconds and then fail.
        empty = [pool.name for pool in config.gpuNodeGroups if pool.desiredSize == 0]
        if empty:
            found.append(("gpuStack.validation.enabled", f"GPU pool(s) {', '.join(empty)} start with no nodes "
                                                         f"(desiredSize 0) and clusterAutoscaler is off, so the "
                                                         f"validation Job could never run; raise desiredSize, "
                                                         f"enable clusterAutoscaler or turn validation off"))
    email = alerting.email
    if alerting.receiver == "email" and email is not None and email.authUsername and smtp_password is None:
        found.append((SMTP_PASSWORD_KEY, f"required when gpuStack.alerting.email.authUsername is set "
                                         f"(pulumi config set --secret {SMTP_PASSWORD_KEY} ...)"))
    return found
