"""GPU/Triton alert rules: promtool check + unit tests, annotations and runbooks, metric names, and
the PrometheusRule the program builds from the rule file with stack thresholds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components import gpu_operator, monitoring
from components.dashboards import KNOWN_METRICS, metric_names
from components.gpu_node_group import GPU_TAINT
from stack_config.gpu_stack import AlertThresholds
from tests import harness

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yaml"))
RUNBOOKS = ROOT / "docs" / "alerts.md"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    message = ("promtool is not installed; install it with `sudo apt-get install --no-install-recommends prometheus` "
               "(or run `make test`, which installs it when it can)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must not skip the alert rule tests")
    pytest.skip(message)


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


def _triton_targets(run) -> tuple[list[dict], list[dict]]:
    """(`up` target labels of every Triton scrape endpoint, container labels of every other
    Deployment's containers), as prometheus-operator and kube-state-metrics would label them."""
    objects = [harness.inputs(r) for r in run.kubernetes_objects()]
    of_kind = lambda kind: [o for o in objects if o.get("kind") == kind]  # noqa: E731
    deployments = of_kind("Deployment")
    targets, triton_deployments = [], set()
    for monitor in of_kind("ServiceMonitor"):
        if monitor["metadata"]["labels"].get("app.kubernetes.io/name") != "triton":
            continue
        namespace = monitor["metadata"]["namespace"]
        [service] = [s for s in of_kind("Service") if s["metadata"]["namespace"] == namespace
                     and monitoring.selector_matches(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
        [deployment] = [d for d in deployments if d["metadata"]["namespace"] == namespace and monitoring.selector_matches(
            {"matchLabels": service["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])]
        triton_deployments.add(id(deployment))
        for endpoint in monitor["spec"]["endpoints"]:
            [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
            [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                           if any(cp.get("name") == port["targetPort"] for cp in c.get("ports", []))]
            # No jobLabel on the ServiceMonitor: prometheus-operator names the job after the Service.
            targets.append({"job": service["metadata"]["name"], "namespace": namespace, "container": container["name"]})
    others = [{"namespace": d["metadata"]["namespace"], "container": c["name"]}
              for d in deployments if id(d) not in triton_deployments for c in d["spec"]["template"]["spec"]["containers"]]
    return targets, others


@pytest.mark.parametrize("stack", harness.STACKS)
def test_triton_alerts_select_the_triton_targets_and_containers_of_the_plan(stack):
    targets, others = _triton_targets(harness.plan(stack))
    assert len(targets) == len(harness.config_for(stack).tritonDeployments), targets
    down = _matchers(_expr("TritonServerDown"), "up")
    not_ready = _matchers(_expr("TritonServerNotReady"), "kube_pod_container_status_ready")
    for target in targets:
        assert _selects(down, target), f"TritonServerDown never sees {target}"
        assert _selects(not_ready, target), f"TritonServerNotReady never sees {target}"
    assert others, "no non-Triton Deployment to check the selectors against"
    for labels in others:
        assert not _selects(down, labels) and not _selects(not_ready, labels), f"Triton alerts would fire for {labels}"


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
    spec = _prometheus_rule(harness.plan("prod"))["spec"]
    assert spec == monitoring.apply_thresholds(monitoring.load_rules(), config)
    assert monitoring.file_thresholds(spec) == pytest.approx(config.model_dump())
    rule_file = tmp_path / "prod.rules.yaml"
    rule_file.write_text(yaml.safe_dump(spec, allow_unicode=True))
    result = run_promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_waits_for_the_chart_that_brings_its_crd():
    run = harness.plan("dev")
    [rule] = run.of_type(PROMETHEUS_RULE)
    release = run.named("monitoring-release")
    assert release.urn in rule.dependencies
