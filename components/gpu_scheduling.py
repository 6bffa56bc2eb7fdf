"""GPU scheduling rules of the platform: priority classes, workload namespaces with a GPU quota,
and the pod-spec fragment every GPU workload of this project uses.

Every pod the project schedules on GPUs carries: GPU limits, the GPU taint toleration, a
nodeSelector for its pool and a priority class (`gpu_pod_placement`). Nothing else tolerates the
taint; only the GPU operator's own DaemonSets do (the chart's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import security
from components.gpu_node_group import GPU_RESOURCE, POOL_LABEL, gpu_toleration
from stack_config.gpu_stack import (  # names and values shared with the config checks
    BATCH_PRIORITY_CLASS,
    INFERENCE_PRIORITY_CLASS,
    PRIORITY_VALUES,
    VALIDATION_PRIORITY_CLASS,
)

# name -> (value, preemption policy, description). cluster-autoscaler treats pods below its
# --expendable-pods-priority-cutoff (clusterAutoscaler.expendablePodsPriorityCutoff, -10) as
# expendable: they never scale a pool up.
PRIORITY_CLASSES = {
    # Latency-critical online inference: preempts lower-priority pods when GPUs run out.
    INFERENCE_PRIORITY_CLASS: (PRIORITY_VALUES[INFERENCE_PRIORITY_CLASS], "PreemptLowerPriority",
                               "Latency-critical GPU inference (Triton). Preempts batch pods when GPUs are short."),
    # Batch jobs and experiments: below the default (0) so anything else wins, and never preempts;
    # expendable for the autoscaler (no node is added for them).
    BATCH_PRIORITY_CLASS: (PRIORITY_VALUES[BATCH_PRIORITY_CLASS], "Never",
                           "Preemptible GPU batch jobs and experiments. Never preempts; below cluster-autoscaler's "
                           "expendable cut-off, so it runs on spare GPUs only and never scales a pool up."),
    # The GPU validation Jobs: at or above the autoscaler's cut-off, so a pool at zero nodes scales
    # up for them; never preempts (it must not evict serving pods to run nvidia-smi).
    VALIDATION_PRIORITY_CLASS: (PRIORITY_VALUES[VALIDATION_PRIORITY_CLASS], "Never",
                                "GPU validation Jobs (nvidia-smi per pool). Scales a pool up from zero; never preempts."),
}
MANAGED_BY = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "ai-platform"}


def gpu_pod_placement(pool: str, priority_class: str) -> dict:
    """Pod-spec fields (Kubernetes spelling) that put a pod on GPU pool `pool`."""
    return {
        "nodeSelector": {POOL_LABEL: pool},
        "tolerations": [gpu_toleration()],
        "priorityClassName": priority_class,
    }


def gpu_limits(count: int = 1, resource: str = GPU_RESOURCE) -> dict:
    """Container resources for `count` GPUs: extended resources are requested through limits."""
    return {"limits": {resource: str(count)}, "requests": {resource: str(count)}}


@dataclass(frozen=True)
class GpuSchedulingArgs:
    # Workload namespace -> GPUs (requests.nvidia.com/gpu) its pods may hold together; this
    # component creates those namespaces (the Triton deployments in them reuse them).
    gpu_quotas: Mapping[str, int]


class GpuScheduling(pulumi.ComponentResource):
    priority_classes: dict[str, k8s.scheduling.v1.PriorityClass]
    namespaces: dict[str, k8s.core.v1.Namespace]
    quotas: dict[str, k8s.core.v1.ResourceQuota]

    def __init__(self, name: str, args: GpuSchedulingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:gpu:GpuScheduling", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)

        self.priority_classes = {
            class_name: k8s.scheduling.v1.PriorityClass(
                f"{name}-{class_name}",
                metadata={"name": class_name, "labels": MANAGED_BY},
                value=value,
                preemption_policy=preemption,
                global_default=False,
                description=description,
                opts=k8s_opts,
            )
            for class_name, (value, preemption, description) in PRIORITY_CLASSES.items()
        }

        self.namespaces = {}
        self.quotas = {}
        for namespace, gpus in sorted(args.gpu_quotas.items()):
            existing = security.namespace(
                namespace, "restricted", "GPU workloads run as non-root with dropped capabilities",
                parent=self, labels={**MANAGED_BY, "ai-platform/workloads": "gpu"},
            )
            self.namespaces[namespace] = existing
            self.quotas[namespace] = k8s.core.v1.ResourceQuota(
                f"{name}-gpu-quota-{namespace}",
                metadata={"name": "gpu-quota", "namespace": namespace, "labels": MANAGED_BY},
                # Extended resources can only be limited through `requests.`; GPU requests always
                # equal limits, so this caps the GPUs the namespace holds.
                spec={"hard": {f"requests.{GPU_RESOURCE}": str(gpus)}},
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[existing])),
            )

        self.register_outputs({
            "priorityClasses": list(self.priority_classes),
            "gpuQuotas": dict(args.gpu_quotas),
        })
