"""kube-prometheus-stack (Prometheus, Alertmanager, Grafana) with the platform's dashboards and the
GPU/Triton alert rules.

Secrets never enter the chart values: the Grafana admin password (pulumi-random) and the alert
receiver credentials live in Kubernetes Secrets the chart only references by name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import security
from components.exposure import AlbSource, allow_alb_ingress
from components.dashboards import build_dashboards, render
from components.gpu_node_group import POOL_LABEL
from components.gpu_scheduling import MANAGED_BY
from stack_config.gpu_stack import AlertingConfig, AlertThresholds, MonitoringConfig

CHART = "kube-prometheus-stack"
CHART_VERSION = "88.5.3"
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
NAMESPACE = "monitoring"
# Fixed release name: it names the Services (kube-prometheus-stack-grafana, ...) and is the
# `release` label the chart's default selectors use.
RELEASE_NAME = "kube-prometheus-stack"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
RECEIVER_SECRET = "alertmanager-receivers"
RECEIVER_SECRET_DIR = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"  # alertmanagerSpec.secrets mount
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DCGM_DASHBOARD = {"gnetId": 12239, "revision": 2}  # NVIDIA DCGM Exporter Dashboard, pinned

# --- pods of the chart, as its NetworkPolicies select them ------------------------------------
# Label sets the chart (and the operator, for Prometheus/Alertmanager) put on each pod; selector
# labels where the chart has them, since a Deployment's selector cannot change in place.
# Prometheus and Alertmanager pods: the operator labels its StatefulSet pods
# app.kubernetes.io/name=prometheus|alertmanager.
PROMETHEUS_LABELS = dict(security.PROMETHEUS_POD_LABELS)
ALERTMANAGER_LABELS = {"app.kubernetes.io/name": "alertmanager"}
# Subcharts: the grafana and kube-state-metrics charts' selectorLabels (name + instance=release).
GRAFANA_LABELS = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": RELEASE_NAME}
KUBE_STATE_METRICS_LABELS = {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": RELEASE_NAME}
# The operator Deployment's selector (templates/prometheus-operator/deployment.yaml).
OPERATOR_LABELS = {"app": f"{RELEASE_NAME}-operator", "release": RELEASE_NAME}
# prometheus-adapter (components/triton_autoscaling.py installs it into this namespace as release
# "prometheus-adapter"; not imported from there: that module imports this one).
PROMETHEUS_ADAPTER_NAMESPACE = NAMESPACE
PROMETHEUS_ADAPTER_LABELS = {"app.kubernetes.io/name": "prometheus-adapter", "app.kubernetes.io/instance": "prometheus-adapter"}

GRAFANA_PORT = 3000  # grafana chart service.targetPort: UI, API and /metrics on one port
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CLUSTER_PORT = 9094  # gossip between replicas, TCP and UDP
CONFIG_RELOADER_PORT = 8080  # the operator's config-reloader sidecar (reloader-web), scraped by Prometheus
KUBE_STATE_METRICS_PORT = 8080
# prometheusOperator.tls.internalPort: the operator serves its admission webhook (PrometheusRule
# validation/mutation) and its own metrics over TLS here; admissionWebhooks.deployment is off.
OPERATOR_WEBHOOK_PORT = 10250
PROMETHEUS_ADAPTER_PORT = 6443  # the adapter chart's listenPort, the custom metrics APIService's target

# The label every Triton Deployment carries (components/triton.py selector_labels); not imported
# from there to keep this module free of the Triton component.
TRITON_NAME_LABEL = "app.kubernetes.io/name"

RULES_FILE = Path(__file__).resolve().parent / "rules" / "gpu-triton.rules.yaml"
RULE_NAME = "gpu-triton"

# (alert, severity) -> the AlertThresholds field that replaces the rule's trailing threshold.
THRESHOLDS: dict[tuple[str, str], str] = {
    ("GpuTemperatureHigh", "warning"): "gpuTempWarningC",
    ("GpuTemperatureHigh", "critical"): "gpuTempCriticalC",
    ("GpuMemoryNearlyFull", "warning"): "gpuMemoryUsedPercent",
    ("GpuIdle", "warning"): "gpuIdleUtilPercent",
    ("GpuSaturated", "warning"): "gpuSaturatedUtilPercent",
    ("TritonInferenceFailures", "warning"): "tritonFailureRatio",
    ("TritonQueueTimeHigh", "warning"): "tritonQueueComputeRatio",
}
_TRAILING_THRESHOLD = re.compile(r"(?P<op>[<>]=?|==)\s*(?P<value>\d+(?:\.\d+)?)\s*$")


class RuleFileError(Exception):
    pass


def load_rules(path: Path = RULES_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def _number(value: float) -> str:
    return format(value, "g")


def apply_thresholds(rules: dict, thresholds: AlertThresholds) -> dict:
    """A copy of the rule groups with each configurable alert's trailing threshold set from config.

    Raises RuleFileError when a listed alert is missing or does not end in `<op> <number>`, so a
    rule edit cannot silently detach a setting from its rule.
    """
    result = copy.deepcopy(rules)
    seen = set()
    for group in result["groups"]:
        for rule in group["rules"]:
            key = (rule.get("alert"), rule.get("labels", {}).get("severity"))
            field = THRESHOLDS.get(key)
            if field is None:
                continue
            match = _TRAILING_THRESHOLD.search(rule["expr"])
            if match is None:
                raise RuleFileError(f"{key[0]} ({key[1]}): expr does not end in a threshold comparison")
            value = getattr(thresholds, field)
            rule["expr"] = rule["expr"][:match.start("value")] + _number(value) + rule["expr"][match.end("value"):]
            seen.add(key)
    missing = set(THRESHOLDS) - seen
    if missing:
        raise RuleFileError(f"rules missing from {RULES_FILE.name}: {sorted(missing)}")
    return result


def file_thresholds(rules: dict) -> dict[str, float]:
    """The threshold literals the rule file holds, by AlertThresholds field."""
    found = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            field = THRESHOLDS.get((rule.get("alert"), rule.get("labels", {}).get("severity")))
            if field:
                found[field] = float(_TRAILING_THRESHOLD.search(rule["expr"]).group("value"))
    return found


NOT_READY_ALERT = "TritonServerNotReady"
DEFAULT_STARTUP_BUDGET_SECONDS = 2700  # the rule file's `for`: startupTimeoutSeconds 1800 + 900


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def apply_startup_budget(rules: dict, seconds: int) -> dict:
    """A copy of the rule groups whose TritonServerNotReady waits `seconds` (the largest
    progressDeadlineSeconds of the stack's Triton deployments) before firing: a container is not
    ready for as long as it may legitimately load its models."""
    result = copy.deepcopy(rules)
    found = [rule for group in result["groups"] for rule in group["rules"] if rule.get("alert") == NOT_READY_ALERT]
    if not found:
        raise RuleFileError(f"rules missing from {RULES_FILE.name}: {NOT_READY_ALERT}")
    for rule in found:
        rule["for"] = _duration(seconds)
    return result


def alertmanager_config(alerting: AlertingConfig, has_smtp_password: bool) -> dict:
    """Alertmanager configuration. Credentials are read from files of the receiver Secret."""
    receiver = "null" if alerting.receiver == "none" else alerting.receiver
    receivers: list[dict[str, Any]] = [{"name": "null"}]
    if alerting.receiver == "slack":
        receivers.append({"name": "slack", "slack_configs": [{
            "api_url_file": f"{RECEIVER_SECRET_DIR}/slack-webhook-url",
            "channel": alerting.slackChannel,
            "send_resolved": True,
            "title": '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
                     "{{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})",
            "text": "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
                    "Runbook: {{ .Annotations.runbook }}\n{{ end }}",
        }]})
    elif alerting.receiver == "email":
        email = alerting.email
        config: dict[str, Any] = {
            "to": ", ".join(email.to), "from": email.sender, "smarthost": email.smarthost,
            "require_tls": email.requireTls, "send_resolved": True,
        }
        if email.authUsername:
            config["auth_username"] = email.authUsername
            if has_smtp_password:
                config["auth_password_file"] = f"{RECEIVER_SECRET_DIR}/smtp-password"
        receivers.append({"name": "email", "email_configs": [config]})
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": receiver,
            # One notification per alert and place: a GPU alert storm on one node is one message.
            "group_by": ["alertname", "namespace", "node"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
                {"receiver": receiver, "matchers": ['severity = "critical"'], "group_wait": "10s", "repeat_interval": "1h"},
            ],
        },
        "inhibit_rules": [
            # A critical alert silences the warning of the same alert on the same GPU/pod.
            {"source_matchers": ['severity = "critical"'], "target_matchers": ['severity =~ "warning|info"'],
             "equal": ["alertname", "namespace", "node", "gpu", "pod"]},
            # A Triton server that is down explains its failures and queueing.
            {"source_matchers": ['alertname = "TritonServerDown"'],
             "target_matchers": ['alertname =~ "TritonServerNotReady|TritonInferenceFailures|TritonQueueTimeHigh"'],
             "equal": ["namespace"]},
            {"source_matchers": ['alertname = "InfoInhibitor"'], "target_matchers": ['severity = "info"'],
             "equal": ["namespace"]},
        ],
        "receivers": receivers,
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def _volume(storage_class: str, size_gib: int) -> dict:
    return {"volumeClaimTemplate": {"spec": {
        "storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{size_gib}Gi"}},
    }}}


def stack_values(monitoring: MonitoringConfig, alerting: AlertingConfig, has_smtp_password: bool,
                 receiver_secret: bool) -> dict:
    """Helm values of the kube-prometheus-stack release (no secret in them)."""
    selectors = {}
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe"):
        # Select every ServiceMonitor/PodMonitor/rule/probe in every namespace: the cluster
        # belongs to the platform, and a label that does not match is the classic reason
        # GPU metrics never arrive.
        selectors[f"{kind}SelectorNilUsesHelmValues"] = False
        selectors[f"{kind}Selector"] = {}
        selectors[f"{kind}NamespaceSelector"] = {}
    grafana: dict[str, Any] = {
        "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
        "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0], "labelValue": DASHBOARD_LABEL[1],
                                   "searchNamespace": "ALL"}},
    }
    if monitoring.importDcgmDashboard:
        grafana["dashboardProviders"] = {"dashboardproviders.yaml": {"apiVersion": 1, "providers": [{
            "name": "nvidia", "orgId": 1, "folder": "NVIDIA", "type": "file", "disableDeletion": True,
            "editable": False, "options": {"path": "/var/lib/grafana/dashboards/nvidia"},
        }]}}
        grafana["dashboards"] = {"nvidia": {"dcgm-exporter": {
            **DCGM_DASHBOARD, "datasource": [{"name": "DS_PROMETHEUS", "value": "Prometheus"}],
        }}}
    alertmanager_spec: dict[str, Any] = {"storage": _volume(monitoring.storageClass, 5)}
    if receiver_secret:
        alertmanager_spec["secrets"] = [RECEIVER_SECRET]
    return {
        "prometheus": {"prometheusSpec": {
            "retention": monitoring.retention,
            # Leave headroom on the volume: Prometheus deletes old blocks before the disk fills.
            "retentionSize": f"{int(monitoring.volumeSizeGiB * 0.85)}GiB",
            "storageSpec": _volume(monitoring.storageClass, monitoring.volumeSizeGiB),
            **selectors,
        }},
        "alertmanager": {
            "enabled": True,
            "config": alertmanager_config(alerting, has_smtp_password),
            "alertmanagerSpec": alertmanager_spec,
        },
        "grafana": grafana,
        # Node label ai-platform/gpu-pool becomes kube_node_labels{label_ai_platform_gpu_pool}: the
        # dashboards join DCGM series to their pool through it. Deployment label
        # app.kubernetes.io/name becomes kube_deployment_labels{label_app_kubernetes_io_name}: the
        # Triton alerts pick Triton's Deployments through it.
        "kube-state-metrics": {"metricLabelsAllowlist": [f"nodes=[{POOL_LABEL}]",
                                                         f"deployments=[{TRITON_NAME_LABEL}]"]},
        **eks_control_plane_values(),
    }


# Components of the chart that EKS does not let Prometheus scrape. Each key's `enabled: false`
# drops the component's Service, ServiceMonitor, recording and alerting rules and dashboard
# (chart 88.5.3: templates/exporters/<component>/, templates/prometheus/rules-1.14/, and
# templates/grafana/dashboards-1.14/ are all gated on `.Values.<key>.enabled`).
EKS_UNSCRAPABLE = {
    # Managed control plane: no scheduler, controller-manager or etcd pods in kube-system for the
    # chart's Services to select, so KubeSchedulerDown / KubeControllerManagerDown
    # (absent(up{job=...})) fire forever.
    "kubeScheduler": "managed control plane: no kube-scheduler pod to scrape",
    "kubeControllerManager": "managed control plane: no kube-controller-manager pod to scrape",
    "kubeEtcd": "managed control plane: no etcd pod to scrape",
    # The EKS kube-proxy add-on binds its metrics to 127.0.0.1:10249 (the KubeProxyConfiguration
    # default): every target is down, so KubeProxyInstanceUnreachable and TargetDown fire forever.
    "kubeProxy": "kube-proxy add-on serves metrics on 127.0.0.1:10249 only",
}


def eks_control_plane_values() -> dict:
    """Chart values that turn off scraping (and the default alerts) of what EKS hides."""
    return {key: {"enabled": False} for key in EKS_UNSCRAPABLE}


def effective_selector(prometheus_spec: dict, kind: str) -> Optional[dict]:
    """The label selector the chart renders into the Prometheus object for `kind`
    ("serviceMonitor", "podMonitor", "rule"), following the chart's NilUsesHelmValues logic."""
    selector = prometheus_spec.get(f"{kind}Selector") or {}
    if selector:
        return selector
    if prometheus_spec.get(f"{kind}SelectorNilUsesHelmValues", True):
        return {"matchLabels": {"release": RELEASE_NAME}}
    return {}


def selector_matches(selector: Optional[dict], labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions); {} matches all,
    and so does no selector at all (None)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def network_policies(args: "MonitoringArgs", opts: pulumi.ResourceOptions) -> list[k8s.networking.v1.NetworkPolicy]:
    """Default-deny ingress for the namespace and the paths the stack needs. Ingress only:
    Prometheus must reach scrape targets in every namespace and Alertmanager its receivers.

    Not covered, and why: node-exporter runs on the host network, where NetworkPolicies do not
    apply (its node port 9100 is open to what the cluster security group admits). Kubelet probes
    and `kubectl port-forward` keep working: the VPC CNI network policy agent always admits the
    node's own IP, and port-forward connects to the pod's localhost from inside its network
    namespace (API server -> kubelet -> container runtime), a path pod policies never see."""
    if not args.vpc_cidr:
        raise ValueError("monitoring: vpc_cidr is required (the API server reaches the operator's webhook from the VPC)")
    ns = NAMESPACE

    def peers(*label_sets: dict) -> list[dict]:
        return [security.pod_peer(ns, labels) for labels in label_sets]

    prometheus = peers(PROMETHEUS_LABELS)
    policies = [
        # The chart's namespace is `privileged` (node-exporter), so security.namespace() leaves it
        # open; deny here and open each path below.
        security.default_deny(ns, opts),
        security.allow_ingress(ns, "allow-prometheus", PROMETHEUS_LABELS, [
            # Grafana's datasource and the prometheus-adapter (HPA metrics) query the API.
            security.ingress_rule(peers(GRAFANA_LABELS) + [security.pod_peer(PROMETHEUS_ADAPTER_NAMESPACE, PROMETHEUS_ADAPTER_LABELS)],
                                  [PROMETHEUS_PORT]),
            # Prometheus scrapes itself and its config reloader.
            security.ingress_rule(prometheus, [PROMETHEUS_PORT, CONFIG_RELOADER_PORT]),
        ], opts),
        security.allow_ingress(ns, "allow-alertmanager", ALERTMANAGER_LABELS, [
            # Prometheus sends alerts; Grafana's Alertmanager datasource reads and silences.
            security.ingress_rule(prometheus + peers(GRAFANA_LABELS), [ALERTMANAGER_PORT]),
            security.ingress_rule(prometheus, [CONFIG_RELOADER_PORT]),
            # Replicas gossip silences and notification state (memberlist uses TCP and UDP).
            security.ingress_rule(peers(ALERTMANAGER_LABELS), [ALERTMANAGER_CLUSTER_PORT], "TCP"),
            security.ingress_rule(peers(ALERTMANAGER_LABELS), [ALERTMANAGER_CLUSTER_PORT], "UDP"),
        ], opts),
        # Grafana serves /metrics on its UI port; the chart's ServiceMonitor scrapes it there.
        security.allow_ingress(ns, "allow-grafana-scrape", GRAFANA_LABELS,
                               [security.ingress_rule(prometheus, [GRAFANA_PORT])], opts),
        security.allow_ingress(ns, "allow-kube-state-metrics", KUBE_STATE_METRICS_LABELS,
                               [security.ingress_rule(prometheus, [KUBE_STATE_METRICS_PORT])], opts),
        security.allow_ingress(ns, "allow-operator-scrape", OPERATOR_LABELS,
                               [security.ingress_rule(prometheus, [OPERATOR_WEBHOOK_PORT])], opts),
        # Without it every PrometheusRule create/update (ours, the chart's) times out at admission.
        security.allow_from_api_server(ns, "allow-operator-webhook", OPERATOR_LABELS, [OPERATOR_WEBHOOK_PORT],
                                       args.vpc_cidr, opts),
    ]
    if args.prometheus_adapter:
        # The custom metrics APIService: without it every HPA reading Triton's ratio fails.
        policies.append(security.allow_from_api_server(ns, "allow-prometheus-adapter-api", PROMETHEUS_ADAPTER_LABELS,
                                                       [PROMETHEUS_ADAPTER_PORT], args.vpc_cidr, opts))
    if args.grafana_alb is not None:  # Grafana behind the ALB: the UIs' one rule (components.exposure)
        policies.append(allow_alb_ingress(ns, GRAFANA_LABELS, GRAFANA_PORT, args.grafana_alb, opts))
    return policies


@dataclass(frozen=True)
class MonitoringArgs:
    monitoring: MonitoringConfig
    alerting: AlertingConfig
    thresholds: AlertThresholds
    slack_webhook_url: Optional[pulumi.Input[str]] = None  # secret config value
    smtp_password: Optional[pulumi.Input[str]] = None  # secret config value
    # The API server's source range for the operator's webhook (and the adapter's APIService).
    vpc_cidr: str = ""
    # Grafana behind the ALB: where the ALB connects from (None: not exposed).
    grafana_alb: Optional[AlbSource] = None
    # prometheus-adapter is installed (some Triton deployment autoscales).
    prometheus_adapter: bool = False
    # The largest progressDeadlineSeconds of the Triton deployments: TritonServerNotReady's `for`.
    triton_startup_budget_seconds: int = DEFAULT_STARTUP_BUDGET_SECONDS


class Monitoring(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    release_name: str  # the `release` label the chart's default selectors use
    dashboards: list[k8s.core.v1.ConfigMap]
    rules: k8s.apiextensions.CustomResource
    network_policies: list[k8s.networking.v1.NetworkPolicy]
    grafana_admin_user: str
    grafana_admin_password: pulumi.Output[str]
    grafana_url: str
    alertmanager_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:monitoring:Monitoring", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)

        def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=list(resources)))

        namespace = security.namespace(
            NAMESPACE, "privileged", "node-exporter (part of the chart) uses hostNetwork, hostPID and host paths",
            parent=self, labels=MANAGED_BY,
        )

        password = random.RandomPassword(
            f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self))
        secrets, receiver_keys = self._secrets(name, args, password, after(namespace))
        dependencies: list[pulumi.Resource] = [namespace, *secrets]

        # Before the chart: its install creates PrometheusRules, which the operator's webhook
        # admits, so the webhook's allow must be in place with the default deny.
        self.network_policies = network_policies(args, after(namespace))
        dependencies.extend(self.network_policies)

        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            create_namespace=False,
            values=stack_values(args.monitoring, args.alerting, "smtp-password" in receiver_keys, bool(receiver_keys)),
            opts=after(*dependencies),
        )

        self.dashboards = self._dashboards(name, after(namespace))
        self.rules = k8s.apiextensions.CustomResource(
            f"{name}-rules-{RULE_NAME}",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": RULE_NAME, "namespace": NAMESPACE,
                      "labels": {**MANAGED_BY, "release": RELEASE_NAME}},
            spec=apply_startup_budget(apply_thresholds(load_rules(), args.thresholds),
                                      args.triton_startup_budget_seconds),
            # The PrometheusRule CRD comes with the chart.
            opts=after(self.release),
        )

        self.release_name = RELEASE_NAME
        self.grafana_admin_user = GRAFANA_ADMIN_USER
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        # Not exposed outside the cluster: reach them through the API server.
        self.grafana_url = f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE_NAME}-grafana 3000:80  # then http://localhost:3000"
        self.alertmanager_url = f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE_NAME}-alertmanager 9093  # then http://localhost:9093"
        self.register_outputs({
            "grafanaUrl": self.grafana_url,
            "alertmanagerUrl": self.alertmanager_url,
            "grafanaAdminUser": self.grafana_admin_user,
            "grafanaAdminPassword": self.grafana_admin_password,
        })

    def _secrets(self, name: str, args: MonitoringArgs, password: random.RandomPassword,
                 opts: pulumi.ResourceOptions) -> tuple[list[k8s.core.v1.Secret], list[str]]:
        """Grafana's admin login and the Alertmanager receiver's credential (its keys, if any)."""
        secrets = [k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": NAMESPACE, "labels": MANAGED_BY},
            string_data={"admin-user": GRAFANA_ADMIN_USER, "admin-password": password.result},
            opts=opts,
        )]
        receiver_data: dict[str, Any] = {}
        if args.alerting.receiver == "slack" and args.slack_webhook_url is not None:
            receiver_data["slack-webhook-url"] = pulumi.Output.secret(args.slack_webhook_url)
        if args.alerting.receiver == "email" and args.smtp_password is not None:
            receiver_data["smtp-password"] = pulumi.Output.secret(args.smtp_password)
        if receiver_data:
            secrets.append(k8s.core.v1.Secret(
                f"{name}-alertmanager-receivers",
                metadata={"name": RECEIVER_SECRET, "namespace": NAMESPACE, "labels": MANAGED_BY},
                string_data=receiver_data,
                opts=opts,
            ))
        return secrets, list(receiver_data)

    def _dashboards(self, name: str, opts: pulumi.ResourceOptions) -> list[k8s.core.v1.ConfigMap]:
        """The dashboards as ConfigMaps Grafana's sidecar picks up by label."""
        return [
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{file_name.removesuffix('.json')}",
                metadata={"name": f"dashboard-{file_name.removesuffix('.json')}", "namespace": NAMESPACE,
                          "labels": {**MANAGED_BY, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]}},
                data={file_name: render(board)},
                opts=opts,
            )
            for file_name, board in build_dashboards().items()
        ]
