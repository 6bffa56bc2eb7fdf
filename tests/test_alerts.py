"""GPU/Triton alert rules: promtool check + unit tests, annotations and runbooks, metric names, and
the PrometheusRule the program builds from the rule file with stack thresholds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components import gpu_operator, monitoring
from components.dashboards import KNOWN_METRICS, metric_names
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
    failed_alerts = set()
    for test_file in PROMTOOL_TESTS:
        doc = yaml.safe_load(test_file.read_text())
        doc["rule_files"] = [str(rule_file)]
        copy = tmp_path / test_file.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        result = run_promtool("test", "rules", str(copy))
        assert result.returncode != 0
        failed_alerts |= set(re.findall(r"alertname: ?(\w+)", result.stdout + result.stderr))
    configurable = {alert for alert, _ in monitoring.THRESHOLDS}
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


def _deployments(run) -> tuple[list[dict], list[dict]]:
    """(kube_deployment_labels series of every Triton Deployment, of every other Deployment) as
    kube-state-metrics would export them with the release's allowlist; plus each container."""
    values = run.named("monitoring-release").public_inputs()["values"]
    triton, others = [], []
    for resource in run.kubernetes_objects():
        obj = harness.inputs(resource)
        if obj.get("kind") != "Deployment":
            continue
        series = {"namespace": obj["metadata"]["namespace"], "deployment": obj["metadata"]["name"],
                  **_ksm_labels(_allowlisted(values, "deployments", obj["metadata"].get("labels", {})))}
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
