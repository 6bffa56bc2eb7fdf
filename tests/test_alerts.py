"""GPU/Triton/inference gateway alert rules: promtool check + unit tests, annotations and runbooks,
metric names (LiteLLM's checked in the pinned release), selectors against the plan, and the
PrometheusRule the program builds from the rule file with stack thresholds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components import gpu_operator, monitoring
from components.dashboards import KNOWN_METRICS, LITELLM_METRICS, metric_names
from components.gpu_node_group import GPU_TAINT
from stack_config.gpu_stack import AlertThresholds
from tests import harness, system_tools

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yaml"))
RUNBOOKS = ROOT / "docs" / "alerts.md"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def promtool() -> str:
    return system_tools.require("promtool", "prometheus", "the alert rule tests")


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)


def alert_rules(rules: dict | None = None) -> list[dict]:
    rules = rules or monitoring.load_rules()
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


ALERT_NAMES = sorted({rule["alert"] for rule in alert_rules()})


# --- promtool ----------------------------------------------------------------------------------

def test_rule_file_passes_promtool_check():
    result = run_promtool("check", "rules", str(monitoring.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file):
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def _moved_thresholds() -> AlertThresholds:
    """Every configurable threshold moved far enough that each firing test case stops firing."""
    return AlertThresholds(gpuTempWarningC=110, gpuTempCriticalC=119, gpuMemoryUsedPercent=99, gpuIdleUtilPercent=1,
                           gpuSaturatedUtilPercent=99, tritonFailureRatio=0.5, tritonQueueComputeRatio=10)


def test_promtool_tests_notice_changed_thresholds(tmp_path):
    """The unit tests are sensitive to the thresholds: with every configurable threshold moved, the
    cases that expect an alert fail (so a passing run means the file's thresholds were exercised)."""
    moved = monitoring.apply_thresholds(monitoring.load_rules(), _moved_thresholds())
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump(moved, sort_keys=False, allow_unicode=True))
    assert run_promtool("check", "rules", str(rule_file)).returncode == 0
    configurable = {alert for alert, _ in monitoring.THRESHOLDS}
    failed_alerts = set()
    for test_file in PROMTOOL_TESTS:
        doc = yaml.safe_load(test_file.read_text())
        tested = {case["alertname"] for test in doc["tests"] for case in test.get("alert_rule_test", [])}
        if not tested & configurable:  # e.g. the gateway's alerts: no configurable threshold
            continue
        doc["rule_files"] = [str(rule_file)]
        copy = tmp_path / test_file.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        result = run_promtool("test", "rules", str(copy))
        assert result.returncode != 0
        failed_alerts |= set(re.findall(r"alertname: ?(\w+)", result.stdout + result.stderr))
    assert configurable <= failed_alerts, f"not caught: {configurable - failed_alerts}"


# --- coverage of the unit tests ------------------------------------------------------------------

def _alert_tests() -> list[dict]:
    cases = []
    for test_file in PROMTOOL_TESTS:
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_has_a_firing_and_a_quiet_unit_test(alert):
    cases = [case for case in _alert_tests() if case["alertname"] == alert]
    firing = [case for case in cases if case.get("exp_alerts")]
    quiet = [case for case in cases if not case.get("exp_alerts")]
    assert firing, f"{alert}: no promtool case where it fires"
    assert quiet, f"{alert}: no promtool case where it must stay quiet"
    for case in firing:
        for expected in case["exp_alerts"]:
            assert {"summary", "description", "runbook"} <= set(expected.get("exp_annotations", {})), \
                f"{alert}: a firing case does not check the rendered annotations"
    severities = {rule["labels"]["severity"] for rule in alert_rules() if rule["alert"] == alert}
    tested = {e["exp_labels"]["severity"] for case in firing for e in case["exp_alerts"]}
    assert severities <= tested, f"{alert}: severities never seen firing: {severities - tested}"


# --- rule content ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_has_severity_annotations_and_runbook(rule):
    assert rule["labels"]["severity"] in ("warning", "critical")
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook"] == f"docs/alerts.md#{rule['alert'].lower()}"


def _runbook_sections() -> dict[str, str]:
    text = RUNBOOKS.read_text()
    parts = re.split(r"^## (\w+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_has_a_runbook_with_three_first_checks(alert):
    section = _runbook_sections().get(alert)
    assert section, f"docs/alerts.md has no '## {alert}' section"
    meaning, _, checks = section.partition("First three things to check:")
    assert meaning.strip(), f"{alert}: the runbook does not say what the alert means"
    assert re.findall(r"^(\d)\. ", checks, flags=re.M)[:3] == ["1", "2", "3"]


def test_runbooks_document_only_existing_alerts():
    assert sorted(_runbook_sections()) == ALERT_NAMES


def test_rules_only_use_known_metric_names():
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        assert used <= KNOWN_METRICS, f"{rule['alert']}: unknown metrics {used - KNOWN_METRICS}"


# --- LiteLLM's metrics in the pinned release -----------------------------------------------------
# The gateway's /metrics (LiteLLM 1.108.7, build/venvs/litellm; BerriAI/litellm v1.108.7): types in
# litellm/integrations/prometheus.py (self._counter_factory / _gauge_factory / _histogram_factory),
# default labels in litellm/types/integrations/prometheus.py PrometheusMetricLabels. prometheus_client
# exposes a Counter as <name>_total, a Histogram as <name>_bucket (+ `le`)/_sum/_count. Prometheus adds
# the ServiceMonitor's target labels (prometheus-operator pkg/prometheus/promcfg.go: namespace, pod,
# container, service, endpoint, job; instance from the address).
TARGET_LABELS = {"namespace", "pod", "container", "service", "endpoint", "job", "instance"}
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def _load_module(path: Path, name: str):
    """A module of the pinned release loaded from its file (it imports only the standard library at the
    top; importing `litellm` itself would take seconds)."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def litellm_source() -> Path:
    from tests.test_inference_gateway import litellm_package
    return litellm_package()


@pytest.fixture(scope="module")
def litellm_series(litellm_source) -> dict[str, set[str]]:
    """{exposed series name: its labels} for every metric the pinned release defines."""
    source = (litellm_source / "integrations" / "prometheus.py").read_text()
    kinds = re.findall(r'self\._(counter|gauge|histogram)_factory\(\s*(?:name=)?"(litellm_\w+)"', source)
    assert len(kinds) > 50, "the metric definitions were not found in litellm/integrations/prometheus.py"
    labels = _load_module(litellm_source / "types" / "integrations" / "prometheus.py",
                          "pinned_litellm_prometheus_types").PrometheusMetricLabels
    series = {}
    for kind, name in kinds:
        base = name[:-len("_total")] if kind == "counter" and name.endswith("_total") else name
        for suffix in _SUFFIXES[kind]:
            series[base + suffix] = set(getattr(labels, name, ())) | ({"le"} if suffix == "_bucket" else set())
    return series


def test_known_litellm_metrics_exist_in_the_pinned_release_with_their_exposed_names(litellm_series):
    """A gauge written with `_total` or a counter without it would match nothing in Prometheus."""
    assert LITELLM_METRICS - set(litellm_series) == set()


def test_gateway_alerts_use_only_labels_the_pinned_release_writes(litellm_series):
    """Every label a gateway rule matches on or groups by exists on each LiteLLM metric of the rule (or
    is a target label): a wrong label name (e.g. `status` for the failed counter's `exception_status`,
    or grouping by a label only one side of a ratio has) makes the alert silent."""
    [group] = [g for g in monitoring.load_rules()["groups"] if g["name"] == "gateway.rules"]
    for rule in group["rules"]:
        expr = rule["expr"]
        grouped = {label.strip() for labels in re.findall(r"\b(?:by|on|ignoring)\s*\(([^)]*)\)", expr)
                   for label in labels.split(",") if label.strip()}
        for metric in metric_names(expr) & LITELLM_METRICS:
            available = litellm_series[metric] | TARGET_LABELS
            assert grouped <= available, f"{rule['alert']}: {metric} has no {grouped - available}"
            for selector in re.findall(re.escape(metric) + r"\{([^}]*)\}", expr):
                matched = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
                assert matched <= available, f"{rule['alert']}: {metric} has no {matched - available}"


def test_the_failure_ratio_counts_what_the_pinned_release_counts(litellm_source):
    """InferenceGatewayUpstreamErrors' ratio and status values, read in the release: the proxy's failure
    hook (litellm/integrations/prometheus.py async_post_call_failure_hook) counts a failed request in
    both counters and writes exception_status as str() of the status code ("None" without one, as for a
    pass-through upstream refusing the connection); LiteLLM's Timeout is 408 (litellm/exceptions.py); a
    key over its budget is refused with litellm.budget_exceeded_status_code, 422 (litellm/__init__.py)."""
    source = (litellm_source / "integrations" / "prometheus.py").read_text()
    hook = source.split("async def async_post_call_failure_hook(", 1)[1].split("\n    async def ", 1)[0]
    assert "self.litellm_proxy_failed_requests_metric," in hook and "self.litellm_proxy_total_requests_metric," in hook
    assert "exception_status=str(status_code)," in hook
    timeout = (litellm_source / "exceptions.py").read_text().split("class Timeout(", 1)[1].split("\nclass ", 1)[0]
    assert "self.status_code = exception_status_code or 408" in timeout
    assert re.search(r"^budget_exceeded_status_code: int = 422\b", (litellm_source / "__init__.py").read_text(), re.M)
    statuses = _matchers(_expr("InferenceGatewayUpstreamErrors"), "litellm_proxy_failed_requests_metric_total")
    op, pattern = statuses["exception_status"]
    assert op == "=~"
    for counted in ("500", "502", "503", "504", "408", "None"):
        assert re.fullmatch(pattern, counted), counted
    for refused in ("400", "401", "403", "404", "422", "429"):  # the client's requests refused, not failures
        assert not re.fullmatch(pattern, refused), refused


def test_xid_alert_names_the_xid_value():
    for rule in alert_rules():
        if rule["alert"] == "GpuXidError":
            assert "DCGM_FI_DEV_XID_ERRORS" in rule["expr"]
            assert "Xid {{ $value }}" in rule["annotations"]["summary"]


# --- alert selectors match what the platform deploys -------------------------------------------
# promtool tests feed series with hand-written labels, so they cannot notice a selector that never
# matches a real target (e.g. a `job` the platform does not produce). These tests derive the labels
# from the planned objects instead.

def _matchers(expr: str, metric: str) -> dict[str, tuple[str, str]]:
    """Label matchers of the first `metric{...}` selector in `expr`: {label: (op, value)}."""
    match = re.search(re.escape(metric) + r"\{([^}]*)\}", expr)
    assert match, f"no {metric}{{...}} selector in {expr!r}"
    return {label: (op, value) for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', match.group(1))}


def _selects(matchers: dict[str, tuple[str, str]], labels: dict[str, str]) -> bool:
    for label, (op, value) in matchers.items():
        actual = labels.get(label, "")
        if (op == "=" and actual != value) or (op == "!=" and actual == value) \
                or (op == "=~" and not re.fullmatch(value, actual)) or (op == "!~" and re.fullmatch(value, actual)):
            return False
    return True


def _expr(alert: str) -> str:
    [expr] = {rule["expr"] for rule in alert_rules() if rule["alert"] == alert}
    return expr


def _ksm_labels(labels: dict[str, str]) -> dict[str, str]:
    """Object labels as kube-state-metrics exports them on kube_<kind>_labels: `label_` plus the
    name with every character outside [a-zA-Z0-9_] replaced by `_`, lower-cased (kube-state-metrics
    v2.20.0 internal/store/utils.go, labelName: SanitizeLabelName then toSnakeCase)."""
    return {"label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key).lower(): value for key, value in labels.items()}


def _allowlisted(values: dict, kind: str, labels: dict[str, str]) -> dict[str, str]:
    """The labels kube-state-metrics keeps for `kind` under the release's metricLabelsAllowlist
    (entries `<kind>=[label,...]`)."""
    allowed: set[str] = set()
    for entry in values["kube-state-metrics"].get("metricLabelsAllowlist", []):
        resource, _, names = entry.partition("=")
        if resource == kind:
            allowed |= {name.strip() for name in names.strip("[]").split(",")}
    return {key: value for key, value in labels.items() if key in allowed or "*" in allowed}


def _deployment_series(run) -> list[tuple[dict, dict]]:
    """(Deployment, its kube_deployment_labels series as kube-state-metrics would export it with the
    release's allowlist) for every Deployment of the plan."""
    values = run.named("monitoring-release").public_inputs()["values"]
    found = []
    for resource in run.kubernetes_objects():
        obj = harness.inputs(resource)
        if obj.get("kind") == "Deployment":
            found.append((obj, {"namespace": obj["metadata"]["namespace"], "deployment": obj["metadata"]["name"],
                                **_ksm_labels(_allowlisted(values, "deployments", obj["metadata"].get("labels", {})))}))
    return found


def _deployments(run) -> tuple[list[dict], list[dict]]:
    """(kube_deployment_labels series of every Triton Deployment, of every other Deployment) as
    kube-state-metrics would export them with the release's allowlist; plus each container."""
    triton, others = [], []
    for obj, series in _deployment_series(run):
        containers = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
        is_triton = obj["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "triton"
        (triton if is_triton else others).append({**series, "containers": containers})
    return triton, others


@pytest.mark.parametrize("stack", harness.STACKS)
def test_triton_alerts_select_the_triton_deployments_and_containers_of_the_plan(stack):
    """TritonServerDown selects Deployments through kube_deployment_labels, which exists only for
    labels in kube-state-metrics' --metric-labels-allowlist (kube-state-metrics v2.20.0
    docs/metrics/workload/deployment-metrics.md): the plan's Triton Deployments must match, with
    the release's allowlist applied, and no other Deployment may."""
    triton, others = _deployments(harness.plan(stack))
    assert len(triton) == len(harness.config_for(stack).tritonDeployments), triton
    down = _matchers(_expr("TritonServerDown"), "kube_deployment_labels")
    not_ready = _matchers(_expr("TritonServerNotReady"), "kube_pod_container_status_ready")
    for series in triton:
        assert _selects(down, series), f"TritonServerDown never sees {series}"
        assert any(_selects(not_ready, {"namespace": series["namespace"], "container": c}) for c in series["containers"])
    assert others, "no non-Triton Deployment to check the selectors against"
    for series in others:
        assert not _selects(down, series), f"TritonServerDown would fire for {series}"
        for container in series["containers"]:
            assert not _selects(not_ready, {"namespace": series["namespace"], "container": container})


# The gateway runs the LiteLLM release image (ghcr.io/berriai/litellm, tests/test_inference_gateway.py
# test_the_image_is_the_tested_release): that, not our labels, identifies its Deployment here.
LITELLM_IMAGE = "ghcr.io/berriai/litellm:"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_gateway_down_selects_the_gateway_deployment_of_the_plan_and_no_other(stack):
    """InferenceGatewayDown selects through kube_deployment_labels like TritonServerDown (kube-state-metrics
    v2.20.0 docs/metrics/workload/deployment-metrics.md: only allowlisted labels, here the release's
    deployments=[app.kubernetes.io/name]): the plan's gateway Deployment (the one running the LiteLLM
    image, in gateway.namespace) must match and no other Deployment, Triton's and OpenWebUI's included."""
    config = harness.config_for(stack).gateway
    assert config.enabled
    deployments = _deployment_series(harness.plan(stack))
    gateway = [series for obj, series in deployments
               if any(str(c.get("image", "")).startswith(LITELLM_IMAGE) for c in obj["spec"]["template"]["spec"]["containers"])]
    others = [series for obj, series in deployments if series not in gateway]
    assert [s["namespace"] for s in gateway] == [config.namespace], gateway
    down = _matchers(_expr("InferenceGatewayDown"), "kube_deployment_labels")
    assert _selects(down, gateway[0]), f"InferenceGatewayDown never sees {gateway[0]}"
    assert others, "no other Deployment to check the selector against"
    for series in others:
        assert not _selects(down, series), f"InferenceGatewayDown would fire for {series}"


def test_dcgm_exporter_alert_uses_the_exporter_job_and_the_gpu_taint():
    expr = _expr("DcgmExporterMissing")
    assert _matchers(expr, "up") == {"job": ("=", gpu_operator.DCGM_JOB)}
    assert _matchers(expr, "kube_node_spec_taint") == {"key": ("=", GPU_TAINT["key"])}


# --- thresholds and the PrometheusRule ----------------------------------------------------------

def test_rule_file_thresholds_are_the_config_defaults():
    assert monitoring.file_thresholds(monitoring.load_rules()) == AlertThresholds().model_dump()


def test_default_thresholds_leave_the_rules_unchanged():
    rules = monitoring.load_rules()
    assert monitoring.apply_thresholds(rules, AlertThresholds()) == rules


def test_apply_thresholds_changes_exactly_the_configured_rule():
    rules = monitoring.load_rules()
    changed = monitoring.apply_thresholds(rules, AlertThresholds(gpuTempCriticalC=95))
    diffs = [(a["alert"], a["labels"]["severity"], a["expr"], b["expr"])
             for a, b in zip(alert_rules(rules), alert_rules(changed)) if a != b]
    assert diffs == [("GpuTemperatureHigh", "critical", "DCGM_FI_DEV_GPU_TEMP > 90", "DCGM_FI_DEV_GPU_TEMP > 95")]


def test_apply_thresholds_refuses_a_rule_without_a_trailing_threshold():
    rules = monitoring.load_rules()
    for rule in alert_rules(rules):
        if rule["alert"] == "GpuSaturated":
            rule["expr"] = "avg by (node) (DCGM_FI_DEV_GPU_UTIL) > bool 95 == 1 unless up"
    with pytest.raises(monitoring.RuleFileError, match="GpuSaturated"):
        monitoring.apply_thresholds(rules, AlertThresholds())


def _prometheus_rule(run) -> dict:
    [rule] = run.of_type(PROMETHEUS_RULE)
    return rule.public_inputs()


def test_prometheus_rule_equals_the_rule_file_when_config_is_default():
    assert harness.config_for("dev").gpuStack.alertThresholds == AlertThresholds()
    rule = _prometheus_rule(harness.plan("dev"))
    assert rule["spec"] == monitoring.load_rules()
    assert rule["metadata"]["namespace"] == monitoring.NAMESPACE


def test_prometheus_rule_carries_the_stack_thresholds_and_stays_valid(tmp_path):
    config = harness.config_for("prod").gpuStack.alertThresholds
    assert config != AlertThresholds(), "prod is expected to override some thresholds"
    run = harness.plan("prod")
    spec = _prometheus_rule(run)["spec"]
    assert spec == monitoring.apply_startup_budget(monitoring.apply_thresholds(monitoring.load_rules(), config),
                                                   _largest_progress_deadline(run))
    assert monitoring.file_thresholds(spec) == pytest.approx(config.model_dump())
    rule_file = tmp_path / "prod.rules.yaml"
    rule_file.write_text(yaml.safe_dump(spec, allow_unicode=True))
    result = run_promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


def _largest_progress_deadline(run) -> int:
    return max(harness.inputs(r)["spec"]["progressDeadlineSeconds"] for r in run.kubernetes_objects()
               if harness.inputs(r).get("kind") == "Deployment"
               and harness.inputs(r)["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "triton")


@pytest.mark.parametrize("stack", harness.STACKS)
def test_triton_not_ready_waits_out_the_longest_startup_budget(stack):
    """A Triton container is not ready while it loads its models, for up to its Deployment's
    progressDeadlineSeconds (startup budget + node provisioning and image pull). The alert's `for`
    is the longest of them, so no legitimate start fires it (prod's llm budget is 3600 s + 900)."""
    run = harness.plan(stack)
    [rule] = [r for group in _prometheus_rule(run)["spec"]["groups"] for r in group["rules"]
              if r.get("alert") == "TritonServerNotReady"]
    budget = _largest_progress_deadline(run)
    assert rule["for"] == (f"{budget // 60}m" if budget % 60 == 0 else f"{budget}s")
    assert max(d.startupTimeoutSeconds for d in harness.config_for(stack).tritonDeployments) < budget


def test_rule_file_not_ready_for_is_the_default_startup_budget():
    [rule] = [r for r in alert_rules() if r["alert"] == "TritonServerNotReady"]
    assert rule["for"] == f"{monitoring.DEFAULT_STARTUP_BUDGET_SECONDS // 60}m"
    assert monitoring.apply_startup_budget(monitoring.load_rules(), monitoring.DEFAULT_STARTUP_BUDGET_SECONDS) \
        == monitoring.load_rules()


def test_prometheus_rule_waits_for_the_chart_that_brings_its_crd():
    run = harness.plan("dev")
    [rule] = run.of_type(PROMETHEUS_RULE)
    release = run.named("monitoring-release")
    assert release.urn in rule.dependencies


# --- kube-prometheus-stack's default alerts on EKS ------------------------------------------------
# kube-prometheus-stack 88.5.3 (prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3):
# each templates/prometheus/rules-1.14/<group>.yaml renders only
#   if and .Values.defaultRules.create .Values.<component>.enabled .Values.defaultRules.rules.<group>
#          (not .Values.defaultRules.disabled.<Alert>)
# and templates/exporters/<component>/{service,servicemonitor}.yaml only if .Values.<component>.enabled.
# Every key defaults to true (values.yaml). On EKS:
# - kube-scheduler, kube-controller-manager and etcd run in the managed control plane: the chart's
#   Services (selector component: kube-scheduler|kube-controller-manager|etcd in kube-system)
#   select nothing, so `absent(up{job="kube-scheduler"})` (KubeSchedulerDown) and
#   KubeControllerManagerDown fire forever;
# - the kube-proxy add-on listens for metrics on 127.0.0.1:10249 (KubeProxyConfiguration
#   metricsBindAddress default; prometheus-community/helm-charts#977 "connection refused" on EKS):
#   every kube-proxy target is down, so KubeProxyInstanceUnreachable (`up{job="kube-proxy"} == 0`)
#   and TargetDown fire forever.
EKS_DEAD_DEFAULT_ALERTS = {
    # alert: (component key, defaultRules.rules group)
    "KubeSchedulerDown": ("kubeScheduler", "kubeSchedulerAlerting"),
    "KubeSchedulerInstanceUnreachable": ("kubeScheduler", "kubeSchedulerAlerting"),
    "KubeControllerManagerDown": ("kubeControllerManager", "kubeControllerManager"),
    "KubeControllerManagerInstanceUnreachable": ("kubeControllerManager", "kubeControllerManager"),
    "KubeProxyDown": ("kubeProxy", "kubeProxy"),
    "KubeProxyInstanceUnreachable": ("kubeProxy", "kubeProxy"),
    "etcdMembersDown": ("kubeEtcd", "etcd"),
    "etcdInsufficientMembers": ("kubeEtcd", "etcd"),
    "etcdNoLeader": ("kubeEtcd", "etcd"),
}


def _chart_renders(values: dict, alert: str) -> bool:
    component, group = EKS_DEAD_DEFAULT_ALERTS[alert]
    rules = values.get("defaultRules", {})
    return (rules.get("create", True) and values.get(component, {}).get("enabled", True)
            and rules.get("rules", {}).get(group, True) and not rules.get("disabled", {}).get(alert, False))


@pytest.mark.parametrize("stack", harness.STACKS)
def test_no_default_alert_or_scrape_job_that_eks_can_never_satisfy(stack):
    values = harness.plan(stack).named("monitoring-release").public_inputs()["values"]
    rendered = [alert for alert in EKS_DEAD_DEFAULT_ALERTS if _chart_renders(values, alert)]
    assert rendered == [], f"the chart would install alerts that fire forever on EKS: {rendered}"
    scraped = [key for key, _ in EKS_DEAD_DEFAULT_ALERTS.values() if values.get(key, {}).get("enabled", True)]
    assert scraped == [], f"the chart would create Services/ServiceMonitors with no reachable target: {scraped}"
    assert set(monitoring.EKS_UNSCRAPABLE) == {key for key, _ in EKS_DEAD_DEFAULT_ALERTS.values()}


def test_the_eks_check_fails_the_chart_defaults():
    """The check above holds something: with the chart's defaults every one of them renders."""
    assert all(_chart_renders({}, alert) for alert in EKS_DEAD_DEFAULT_ALERTS)
