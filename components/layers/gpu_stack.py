"""GPU stack layer, on the cluster: GPU scheduling (priority classes, quota namespaces), monitoring
(CRDs first; Grafana behind the ALB when given a hostname), then the NVIDIA GPU operator and its
per-pool validation Jobs. Exports its readiness for the workloads on top."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import monitoring as monitoring_component
from components.exposure import ui_ingress
from components.gpu_operator import GpuOperator, GpuOperatorArgs, GpuPool
from components.gpu_scheduling import GpuScheduling, GpuSchedulingArgs
from components.layers.context import ClusterContext, moved
from components.monitoring import Monitoring, MonitoringArgs
from components.readiness import GpuCapacity
from components.triton import NODE_PROVISIONING_SECONDS
from stack_config.gpu_stack import GpuStackConfig, advertised_resources
from stack_config.model import GpuNodeGroupConfig
from stack_config.triton import TritonDeploymentConfig


@dataclass(frozen=True)
class GpuStackArgs:
    gpu_stack: GpuStackConfig
    gpu_node_groups: tuple[GpuNodeGroupConfig, ...]
    # The Triton deployments the monitoring serves: the adapter (autoscaled ones), their start budget.
    triton_deployments: tuple[TritonDeploymentConfig, ...]
    grafana_hostname: Optional[str] = None
    slack_webhook_url: Optional[str] = None  # secret config value
    smtp_password: Optional[str] = None  # secret config value


@dataclass(frozen=True)
class GpuStackReadiness:
    """What GPU workloads wait for."""

    monitoring: pulumi.Resource  # the kube-prometheus-stack release: ServiceMonitor CRDs
    prometheus_release: str
    priority_classes: tuple[pulumi.Resource, ...]
    validation_jobs: dict[str, pulumi.Resource]  # per GPU pool
    namespaces: dict[str, k8s.core.v1.Namespace]  # quota namespaces, created here


def startup_budget_seconds(deployments: tuple[TritonDeploymentConfig, ...]) -> int:
    """Triton's Deployments wait progressDeadlineSeconds for a start; so does TritonServerNotReady."""
    return max((d.startupTimeoutSeconds + NODE_PROVISIONING_SECONDS for d in deployments),
               default=monitoring_component.DEFAULT_STARTUP_BUDGET_SECONDS)


class GpuStack(pulumi.ComponentResource):
    """Pass the Kubernetes provider in `opts.providers`; the children inherit it."""

    readiness: GpuStackReadiness
    monitoring: Monitoring
    grafana_url: str

    def __init__(self, name: str, args: GpuStackArgs, cluster: ClusterContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:layers:GpuStack", name, None, opts)
        stack, on_cluster = args.gpu_stack, cluster.cluster
        grafana_exposed = bool(cluster.exposure and args.grafana_hostname)
        scheduling = GpuScheduling("gpu-scheduling", GpuSchedulingArgs(
            gpu_quotas=stack.scheduling.gpuQuotas), moved(self, on_cluster))
        self.monitoring = monitoring = Monitoring("monitoring", MonitoringArgs(
            monitoring=stack.monitoring, alerting=stack.alerting,
            thresholds=stack.alertThresholds, slack_webhook_url=args.slack_webhook_url, smtp_password=args.smtp_password,
            vpc_cidr=cluster.vpc_cidr, grafana_alb=cluster.alb_source if grafana_exposed else None,
            prometheus_adapter=any(d.autoscaled for d in args.triton_deployments),
            triton_startup_budget_seconds=startup_budget_seconds(args.triton_deployments),
        ), moved(self, on_cluster))
        operator = GpuOperator("gpu-operator", GpuOperatorArgs(
            config=stack.operator, validation=stack.validation,
            pools=[GpuPool(pool.name, pool.sharing, advertised_resources(pool)) for pool in args.gpu_node_groups],
            prometheus_release=monitoring.release_name,
            monitoring=monitoring.release,
            capacity=GpuCapacity(tuple(scheduling.priority_classes.values()), cluster.gpu_node_groups, cluster.autoscaler),
        ), moved(self, on_cluster))
        self.grafana_url = monitoring.grafana_url
        if grafana_exposed:
            self.grafana_url = self._grafana_ingress(args.grafana_hostname, cluster)
        self.readiness = GpuStackReadiness(
            monitoring=monitoring.release, prometheus_release=monitoring.release_name,
            priority_classes=tuple(scheduling.priority_classes.values()),
            validation_jobs=dict(operator.validation_jobs), namespaces=dict(scheduling.namespaces),
        )
        self.register_outputs({"grafanaUrl": self.grafana_url})

    def _grafana_ingress(self, hostname: str, cluster: ClusterContext) -> str:
        """Grafana on the shared ALB; its NetworkPolicy (Monitoring) admits the same ALB source."""
        ui_ingress("grafana", monitoring_component.NAMESPACE, hostname, f"{monitoring_component.RELEASE_NAME}-grafana", 80,
                   "/api/health", cluster.exposure, pulumi.ResourceOptions(
                       parent=self.monitoring, depends_on=[self.monitoring.release]))
        return f"https://{hostname}"
