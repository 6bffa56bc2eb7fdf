"""NVIDIA GPU Operator (Helm release) with per-pool GPU sharing, its DCGM exporter wired into the
platform's Prometheus, and optional validation Jobs that run nvidia-smi on every GPU pool.

Ordering matters: the operator creates the DCGM exporter ServiceMonitor only if the CRD already
exists (it silently skips it otherwise), so the release depends on the monitoring release. The
validation Jobs depend on the operator and `pulumi up` waits for them to complete; Triton on a pool
waits for that pool's Job (wired in __main__), so on the first deploy the Job has the pool's GPUs to
itself. Its priority class stays at or above cluster-autoscaler's expendable cut-off, so a pool at
zero nodes scales up for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import security
from components.readiness import GpuCapacity
from components.gpu_node_group import GPU_RESOURCE
from components.gpu_scheduling import MANAGED_BY, VALIDATION_PRIORITY_CLASS, gpu_limits, gpu_pod_placement
from stack_config.gpu_stack import (
    DEFAULT_DEVICE_PLUGIN_CONFIG,
    GPU_OPERATOR_NAMESPACE,
    GpuOperatorConfig,
    GpuSharingConfig,
    GpuValidationConfig,
    device_plugin_config_key,
    pick_validation_resource,
)

CHART = "gpu-operator"
CHART_VERSION = "v26.7.0"
CHART_REPO = "https://helm.ngc.nvidia.com/nvidia"
NAMESPACE = GPU_OPERATOR_NAMESPACE
RELEASE_NAME = "gpu-operator"
DEVICE_PLUGIN_CONFIGMAP = "device-plugin-config"
DCGM_JOB = "nvidia-dcgm-exporter"  # the exporter's Service name: the `job` label the alerts use


@dataclass(frozen=True)
class GpuPool:
    """What the operator needs to know about one GPU pool."""

    name: str
    sharing: Optional[GpuSharingConfig] = None
    # Extended resources one node advertises (stack_config.gpu_stack.advertised_resources).
    resources: Mapping[str, int] = field(default_factory=lambda: {GPU_RESOURCE: 1})


def device_plugin_configs(pools: Sequence[GpuPool]) -> dict[str, str]:
    """ConfigMap data for the device plugin: one config per sharing profile the pools use.

    Nodes choose a key with the label `nvidia.com/device-plugin.config` (set by the node group from
    `sharing_node_labels`); nodes without it get DEFAULT_DEVICE_PLUGIN_CONFIG.
    """
    configs: dict[str, dict] = {DEFAULT_DEVICE_PLUGIN_CONFIG: {"version": "v1", "flags": {"migStrategy": "none"}}}
    for pool in pools:
        sharing = pool.sharing
        if sharing is None or sharing.mode == "none":
            continue
        key = device_plugin_config_key(sharing)
        if sharing.mode == "timeSlicing":
            configs[key] = {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {"timeSlicing": {
                    # Asking for 2 slices of one GPU gives no more compute, only less isolation:
                    # make such requests fail instead of silently sharing.
                    "failRequestsGreaterThanOne": True,
                    "resources": [{"name": GPU_RESOURCE, "replicas": sharing.replicas}],
                }},
            }
        else:
            configs[key] = {"version": "v1", "flags": {"migStrategy": sharing.effective_mig_strategy}}
    return {key: yaml.safe_dump(value, sort_keys=False) for key, value in sorted(configs.items())}


def dcgm_service_monitor(prometheus_release: str) -> dict:
    """The chart's `dcgmExporter.serviceMonitor` values."""
    return {
        "enabled": True,
        "interval": "15s",
        # DCGM labels the series of a GPU held by a pod with that pod's namespace/pod/container.
        # honorLabels keeps those (instead of renaming them exported_*), and the labeldrop removes
        # the exporter pod's own target labels so an unattributed GPU has no `pod` at all.
        "honorLabels": True,
        # kube-prometheus-stack's default selector is `release: <its release name>`; the platform
        # Prometheus selects everything, but the label keeps this working if that is narrowed.
        "additionalLabels": {"release": prometheus_release},
        "relabelings": [
            {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"},
            {"regex": "pod|namespace|container", "action": "labeldrop"},
        ],
    }


def operator_values(config: GpuOperatorConfig, pools: Sequence[GpuPool], prometheus_release: str) -> dict:
    """Helm values of the GPU operator release."""
    mig_pools = [p for p in pools if p.sharing is not None and p.sharing.mode == "mig"]
    strategies = {p.sharing.effective_mig_strategy for p in mig_pools}
    return {
        # EKS NVIDIA AMIs have the driver and the container toolkit; installing them again breaks nodes.
        "driver": {"enabled": config.driverEnabled},
        "toolkit": {"enabled": config.toolkitEnabled},
        "devicePlugin": {
            "enabled": True,
            # The ConfigMap is created by this component (create: false), with one key per profile.
            "config": {"create": False, "name": DEVICE_PLUGIN_CONFIGMAP, "default": DEFAULT_DEVICE_PLUGIN_CONFIG},
        },
        # Cluster-wide default; each MIG pool's device-plugin config sets its own strategy.
        "mig": {"strategy": "mixed" if "mixed" in strategies else "single"},
        "migManager": {"enabled": bool(mig_pools)},
        "dcgmExporter": {"enabled": True, "serviceMonitor": dcgm_service_monitor(prometheus_release)},
    }


def validation_resource(pool: GpuPool) -> Optional[str]:
    """Extended resource a validation pod asks one of on a pool; None when its nodes advertise none."""
    return pick_validation_resource(pool.resources)


def _with_cpu_memory(resources: dict) -> dict:
    requests = {"cpu": "100m", "memory": "128Mi", **resources.get("requests", {})}
    limits = {"cpu": "500m", "memory": "256Mi", **resources.get("limits", {})}
    return {**resources, "requests": requests, "limits": limits}


def validation_job_manifest(pool: GpuPool, config: GpuValidationConfig, resource: str) -> dict:
    """A Job that runs nvidia-smi on one GPU of `pool` (Kubernetes spelling, for tests and the component)."""
    return {
        "metadata": {"name": f"gpu-validation-{pool.name}", "namespace": NAMESPACE,
                     "labels": {**MANAGED_BY, "ai-platform/gpu-validation": pool.name},
                     "annotations": security.checkov_skips(
                         {"CKV_K8S_43": "the CUDA base image tag is pinned in stack config (gpuStack.validation.image)"})},
        "spec": {
            # No ttlSecondsAfterFinished: a Job deleted behind Pulumi's back would be recreated
            # (and re-run) by the next `pulumi up`.
            "backoffLimit": 2,
            "activeDeadlineSeconds": config.timeoutSeconds,
            "template": {
                "metadata": {"labels": {"ai-platform/gpu-validation": pool.name}},
                "spec": {
                    # At or above cluster-autoscaler's expendable cut-off: a pool at zero scales up for it.
                    **gpu_pod_placement(pool.name, VALIDATION_PRIORITY_CLASS),
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    # nvidia-smi needs no root: the device nodes the toolkit injects are world-usable.
                    "securityContext": security.restricted_pod_security_context(),
                    "containers": [{
                        "name": "nvidia-smi",
                        "image": config.image,
                        # Fails (non-zero) when no GPU is visible or the driver cannot talk to it.
                        "command": ["sh", "-c", "nvidia-smi && nvidia-smi -L"],
                        "imagePullPolicy": "Always",
                        # nvidia-smi is tiny; requests/limits keep the Job inside the GPU quota's
                        # namespace budget and off the serving pods' CPU and memory.
                        "resources": _with_cpu_memory(gpu_limits(1, resource)),
                        "securityContext": security.restricted_security_context(),
                    }],
                },
            },
        },
    }


@dataclass(frozen=True)
class GpuOperatorArgs:
    config: GpuOperatorConfig
    validation: GpuValidationConfig
    pools: Sequence[GpuPool]
    prometheus_release: str
    # The kube-prometheus-stack release: the ServiceMonitor CRD must exist before the operator.
    monitoring: Optional[pulumi.Resource] = None
    # What the validation Jobs' pods need to be placed on their pool.
    capacity: GpuCapacity = GpuCapacity()


class GpuOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    validation_jobs: dict[str, k8s.batch.v1.Job]

    def __init__(self, name: str, args: GpuOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:gpu:GpuOperator", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)

        namespace = security.namespace(
            NAMESPACE, "privileged",
            "GPU operator DaemonSets (device plugin, DCGM exporter, MIG manager, validator) use host devices and paths",
            parent=self, labels=MANAGED_BY,
        )
        device_plugin_config = k8s.core.v1.ConfigMap(
            f"{name}-device-plugin-config",
            metadata={"name": DEVICE_PLUGIN_CONFIGMAP, "namespace": NAMESPACE, "labels": MANAGED_BY},
            data=device_plugin_configs(args.pools),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            create_namespace=False,
            values=operator_values(args.config, args.pools, args.prometheus_release),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[namespace, device_plugin_config, *([args.monitoring] if args.monitoring else [])])),
        )

        self.validation_jobs = {}
        if args.validation.enabled:
            for pool in args.pools:
                resource = validation_resource(pool)
                if resource is None:
                    pulumi.log.warn(f"GPU pool {pool.name}: no validation Job, its nodes advertise no GPU resource", self)
                    continue
                manifest = validation_job_manifest(pool, args.validation, resource)
                self.validation_jobs[pool.name] = k8s.batch.v1.Job(
                    f"{name}-validate-{pool.name}",
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    # The provider waits for the Job to complete; a broken GPU stack fails here.
                    opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                        depends_on=[self.release, *args.capacity.resources()],
                        custom_timeouts=pulumi.CustomTimeouts(create=f"{args.validation.timeoutSeconds + 300}s"),
                    )),
                )

        self.register_outputs({
            "namespace": NAMESPACE,
            "chartVersion": CHART_VERSION,
            "validationJobs": sorted(self.validation_jobs),
        })
