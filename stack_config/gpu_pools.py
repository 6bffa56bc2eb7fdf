"""Configuration of the GPU pools (`gpuNodeGroups`, `clusterAutoscaler`) and the scheduling facts
built on them: how a pool shares its GPUs, which extended resources and labels its nodes carry,
the platform's priority classes and per-namespace GPU quotas (`gpuStack.scheduling`).

Shared by the config checks of the other sections and by the GPU components.
"""

from __future__ import annotations

from typing import Annotated, Literal, Mapping, Optional

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from .base import CapacityType, ConfigModel, DnsLabel, Duration, NamespaceName, problems, scaling_problems
from .gpu_instances import AMI_ARCH, GPU_INSTANCE_TYPES, GpuInstanceType, why_not_gpu


def _gpu_type(value: str) -> str:
    reason = why_not_gpu(value)
    if reason:
        raise PydanticCustomError("gpu_type", reason)
    return value


GpuInstanceTypeName = Annotated[str, AfterValidator(_gpu_type)]
GpuAmiType = Literal[tuple(AMI_ARCH)]  # type: ignore[valid-type]


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


def sharing_problems(pool: GpuNodeGroupConfig) -> list[tuple[str, str]]:
    """Checks that need the pool's instance types; called from GpuNodeGroupConfig's validator."""
    sharing = pool.sharing
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


def _mig_profile_problems(pool: GpuNodeGroupConfig, sharing: GpuSharingConfig) -> list[tuple[str, str]]:
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


def sharing_node_labels(pool: GpuNodeGroupConfig) -> dict[str, str]:
    """Node labels a GPU pool needs for its sharing mode (merged into the node group's labels).

    The device plugin picks its per-node config by `nvidia.com/device-plugin.config`; the MIG
    manager partitions the GPUs to `nvidia.com/mig.config`. No labels for pools without sharing,
    so the default config applies and nothing changes for them.
    """
    if pool.amiType.startswith("BOTTLEROCKET"):
        # Bottlerocket's NVIDIA variants run their own device plugin; a second one from the
        # operator would advertise every GPU twice.
        return {"nvidia.com/gpu.deploy.device-plugin": "false"}
    sharing = pool.sharing
    if sharing is None or sharing.mode == "none":
        return {}
    labels = {"nvidia.com/device-plugin.config": device_plugin_config_key(sharing)}
    if sharing.mode == "mig":
        labels["nvidia.com/mig.config"] = sharing.migProfile
    return labels


def advertised_resources(pool: GpuNodeGroupConfig) -> dict[str, int]:
    """Extended resources one node of the pool advertises once its device plugin runs: what the
    cluster-autoscaler node template must say so a pending pod asking for them scales the pool up
    from zero (instance types of a pool advertise the same, a config check holds it)."""
    return node_resources(pool.instanceTypes[0], pool.sharing)


def advertised_gpus(pool: GpuNodeGroupConfig) -> int:
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


def validation_resource(pool: GpuNodeGroupConfig) -> Optional[str]:
    return pick_validation_resource(advertised_resources(pool))


def accelerator_labels(pool: GpuNodeGroupConfig) -> dict[str, str]:
    """`k8s.amazonaws.com/accelerator: nvidia-<gpu models>` (cluster-autoscaler's AWS README, "Special
    note on GPU instances"), set by kubelet when the node registers. Only on pools that advertise
    nvidia.com/gpu: the autoscaler (1.33) treats a labelled node with nvidia.com/gpu 0 as not ready,
    which a mixed-MIG node (MIG devices only) would stay forever."""
    if advertised_gpus(pool) == 0:
        return {}
    models = sorted({GPU_INSTANCE_TYPES[t].gpu_model.lower() for t in pool.instanceTypes})
    return {ACCELERATOR_LABEL: "nvidia-" + "-".join(models)}


def gpu_node_labels(pool: GpuNodeGroupConfig) -> dict[str, str]:
    """Labels the platform puts on a GPU pool's nodes beside the pool label (user labels excluded)."""
    return {**accelerator_labels(pool), **sharing_node_labels(pool)}


# --- the pools ----------------------------------------------------------------------------------

class GpuNodeGroupConfig(ConfigModel):
    name: DnsLabel
    instanceTypes: Annotated[list[GpuInstanceTypeName], Field(min_length=1)]
    capacityType: CapacityType = "ON_DEMAND"
    minSize: Annotated[int, Field(ge=0)] = 0
    desiredSize: Annotated[int, Field(ge=0)] = 0
    maxSize: Annotated[int, Field(ge=0)] = 2
    amiType: GpuAmiType = "AL2023_x86_64_NVIDIA"
    diskSizeGiB: Annotated[int, Field(ge=50, le=16384)] = 100
    labels: dict[str, str] = {}
    maxUnavailable: Annotated[int, Field(ge=1)] = 1
    sharing: Optional[GpuSharingConfig] = None

    @model_validator(mode="after")
    def _check(self):
        found = scaling_problems(self.minSize, self.desiredSize, self.maxSize)
        if self.maxSize == 0 and self.minSize == 0:
            found.append(("maxSize", "must be >= 1 (a pool with maxSize 0 can never run a node)"))
        types = [GPU_INSTANCE_TYPES[t] for t in self.instanceTypes]
        wrong_arch = [t.name for t in types if t.arch != AMI_ARCH[self.amiType]]
        if wrong_arch:
            found.append(("instanceTypes", f"{', '.join(wrong_arch)} cannot run amiType {self.amiType} ({AMI_ARCH[self.amiType]})"))
        if len({t.gpus for t in types}) > 1:
            counts = ", ".join(f"{t.name}={t.gpus}" for t in types)
            found.append(("instanceTypes", f"must all have the same GPU count so the pool can scale from zero (got {counts})"))
        if len(set(self.instanceTypes)) != len(self.instanceTypes):
            found.append(("instanceTypes", "lists an instance type twice"))
        reserved = [k for k in self.labels if k.startswith(("ai-platform/", "nvidia.com/")) or k == ACCELERATOR_LABEL]
        if reserved:
            found.append(("labels", f"{', '.join(reserved)}: the ai-platform/ and nvidia.com/ prefixes and "
                                    f"{ACCELERATOR_LABEL} are set by the platform"))
        found.extend(sharing_problems(self))
        problems(found)
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


# --- cluster autoscaler ----------------------------------------------------------------------

class ClusterAutoscalerConfig(ConfigModel):
    enabled: bool = True
    expander: Literal["least-waste", "priority", "random", "most-pods", "price"] = "least-waste"
    scaleDownUnneededTime: Duration = "10m"
    scaleDownDelayAfterAdd: Duration = "10m"
    scaleDownUtilizationThreshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Pending pods with a lower priority never cause a scale-up (--expendable-pods-priority-cutoff).
    # The platform's GPU pods (validation 0, Triton 100000) must stay at or above it.
    expendablePodsPriorityCutoff: Annotated[int, Field(ge=-2147483648, le=1000000000)] = DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF


# --- who provisions GPU nodes ------------------------------------------------------------------

GpuProvisioner = Literal["nodeGroups", "karpenter"]


def provisioner_problems(provisioner: str, pools: list[GpuNodeGroupConfig], autoscaler: ClusterAutoscalerConfig,
                         autoscaler_set: bool, keep_node_groups: bool = False) -> list[tuple[str, str]]:
    """What `gpuProvisioner: karpenter` cannot do (docs/karpenter.md): warm nodes (a NodePool has no
    minimum; allowed while `keepGpuNodeGroups` keeps the node groups, which hold them), the mixed MIG
    strategy (pods ask nvidia.com/mig-<profile>, a resource no instance type offers in Karpenter's
    eyes, so it never launches a node for them), and cluster-autoscaler settings (no autoscaler
    runs; set clusterAutoscaler.enabled: false or drop the key)."""
    if provisioner != "karpenter":
        if keep_node_groups:
            return [("keepGpuNodeGroups", "only applies with gpuProvisioner karpenter (node groups are kept anyway)")]
        return []
    found = []
    for index, pool in enumerate(pools):
        for key in ("minSize", "desiredSize"):
            if getattr(pool, key) > 0 and not keep_node_groups:
                found.append((f"gpuNodeGroups[{index}].{key}", f"{getattr(pool, key)}: gpuProvisioner karpenter keeps "
                               "no warm GPU nodes (a NodePool has no minimum); set 0 or use gpuProvisioner nodeGroups"))
        if pool.sharing is not None and pool.sharing.mode == "mig" and pool.sharing.effective_mig_strategy == "mixed":
            found.append((f"gpuNodeGroups[{index}].sharing.migStrategy", "mixed: pods ask nvidia.com/mig-<profile>, "
                          "which Karpenter cannot provision a node for; use migStrategy single or gpuProvisioner nodeGroups"))
    if autoscaler_set and autoscaler.enabled:
        found.append(("clusterAutoscaler", "does not apply with gpuProvisioner karpenter (no cluster-autoscaler runs): "
                      "remove the key or set clusterAutoscaler.enabled: false"))
    return found
