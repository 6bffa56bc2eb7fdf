"""Autoscaling of Triton on its queue-time-to-compute-time ratio: prometheus-adapter publishes the
ratio per pod on the custom metrics API, and one autoscaling/v2 HPA per deployment scales on it.

The ratio (time requests wait in Triton's queue per unit of GPU compute time) grows as soon as a
replica cannot keep up, whatever the model's absolute latency, so one target fits every model;
GPU utilisation does not (a small model saturates a GPU's queue long before its SMs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import SYSTEM_NODE_LABEL
from components.monitoring import NAMESPACE as MONITORING_NAMESPACE

CHART = "prometheus-adapter"
CHART_VERSION = "5.3.0"
CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
RELEASE_NAME = "prometheus-adapter"

# The metric the HPAs read and the adapter publishes: one name, used by both.
QUEUE_COMPUTE_RATIO_METRIC = "triton_queue_compute_ratio"
QUEUE_SERIES = "nv_inference_queue_duration_us"
COMPUTE_SERIES = "nv_inference_compute_infer_duration_us"
RATE_WINDOW = "1m"

# Scale up fast (a GPU replica takes minutes to start, so react early) and down slowly (a
# replica removed too soon must be re-created at the same cost minutes later).
SCALE_UP_STABILIZATION_SECONDS = 60
SCALE_DOWN_STABILIZATION_SECONDS = 600


def adapter_rules() -> list[dict]:
    """`rules.custom` of the adapter: the ratio per pod, from the two cumulative Triton counters.

    Both counters are summed over models per pod before dividing, so a pod serving several
    models reports one figure; the divisor is clamped to 1 us/s so an idle pod reads 0, not NaN.
    """
    per_pod = "sum by (<<.GroupBy>>) (rate({series}{{<<.LabelMatchers>>}}[{window}]))"
    return [{
        "seriesQuery": f'{QUEUE_SERIES}{{namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{QUEUE_SERIES}$", "as": QUEUE_COMPUTE_RATIO_METRIC},
        "metricsQuery": (
            per_pod.format(series=QUEUE_SERIES, window=RATE_WINDOW)
            + " / clamp_min("
            + per_pod.format(series=COMPUTE_SERIES, window=RATE_WINDOW)
            + ", 1)"
        ),
    }]


def adapter_values(prometheus_url: str, prometheus_port: int) -> dict:
    return {
        "prometheus": {"url": prometheus_url, "port": prometheus_port},
        # Only the platform's rule: the chart's defaults publish every series Prometheus has,
        # which makes the custom metrics API slow to list for nothing.
        "rules": {"default": False, "custom": adapter_rules()},
        # One replica: if it is down, HPAs keep their current replica count (they do not scale
        # to min), which is the safe failure for inference.
        "replicas": 1,
        "nodeSelector": dict(SYSTEM_NODE_LABEL),
        "priorityClassName": "system-cluster-critical",
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }


def quantity(value: float) -> str:
    """A ratio as a Kubernetes quantity: 0.5 -> "500m", 2.0 -> "2"."""
    milli = round(value * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def hpa_spec(deployment_name: str, min_replicas: int, max_replicas: int, target_ratio: float) -> dict:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [{
            "type": "Pods",
            "pods": {
                "metric": {"name": QUEUE_COMPUTE_RATIO_METRIC},
                "target": {"type": "AverageValue", "averageValue": quantity(target_ratio)},
            },
        }],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": SCALE_UP_STABILIZATION_SECONDS,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": 2, "periodSeconds": 60},
                    {"type": "Percent", "value": 100, "periodSeconds": 60},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_SECONDS,
                "selectPolicy": "Min",
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
            },
        },
    }


def triton_hpa(name: str, namespace: str, deployment_name: str, labels: dict, min_replicas: int, max_replicas: int,
               target_ratio: float, opts: pulumi.ResourceOptions) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name,
        metadata={"name": deployment_name, "namespace": namespace, "labels": labels},
        spec=hpa_spec(deployment_name, min_replicas, max_replicas, target_ratio),
        opts=opts,
    )


@dataclass(frozen=True)
class PrometheusAdapterArgs:
    namespace: str = MONITORING_NAMESPACE
    # `prometheus-operated` is the governing Service the Prometheus operator creates for every
    # Prometheus it runs, whatever the Helm release is called.
    prometheus_url: str = f"http://prometheus-operated.{MONITORING_NAMESPACE}.svc"
    prometheus_port: int = 9090
    # The Prometheus it reads (the kube-prometheus-stack release).
    monitoring: Optional[pulumi.Resource] = None


class PrometheusAdapter(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    metric_name: str

    def __init__(self, name: str, args: PrometheusAdapterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:triton:PrometheusAdapter", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name,
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=args.namespace,
            values=adapter_values(args.prometheus_url, args.prometheus_port),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring] if args.monitoring else []),
        )
        self.metric_name = QUEUE_COMPUTE_RATIO_METRIC
        self.register_outputs({"release": self.release.name, "metric": self.metric_name})
