"""GPU stack on the cluster, under Pulumi mocks: GPU sharing config and node labels, GPU operator
values (driver/toolkit, device-plugin config, DCGM ServiceMonitor selected by Prometheus), release
ordering, validation Jobs, GPU scheduling, monitoring values, alert receivers and secrets."""

from __future__ import annotations

import json

import pytest
import yaml

import stack_config
from components import gpu_operator, monitoring
from components.gpu_node_group import GPU_TAINT, POOL_LABEL
from components.gpu_scheduling import BATCH_PRIORITY_CLASS, INFERENCE_PRIORITY_CLASS
from platformctl.mockrun import run_program
from stack_config.gpu_stack import sharing_node_labels
from tests import harness

RELEASE = "kubernetes:helm.sh/v3:Release"
JOB = "kubernetes:batch/v1:Job"
WEBHOOK = "https://hooks.slack.com/services/T0000/B0000/pl41nT3xtW3bh00k"


def redacted(value) -> bool:
    """A secret as plan.json shows it: wholly "[secret]", or a map whose every value is."""
    if isinstance(value, dict):
        return bool(value) and all(v == "[secret]" for v in value.values())
    return value == "[secret]"


def values_of(run, release: str) -> dict:
    return run.named(release, RELEASE).public_inputs()["values"]


def dev_pool(**changes) -> dict:
    pool = dict(harness.stack_values("dev")["gpuNodeGroups"][0])
    pool.update(changes)
    return pool


def config_problems(**overrides) -> list[str]:
    values, secret = stack_config.read_stack_files("dev")
    for key, value in overrides.items():
        values[f"ai-platform:{key}"] = stack_config.engine_value(value)
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    return caught.value.problems


def run_with_secrets(stack: str, secrets: dict[str, str], **overrides) -> "harness.ProgramRun":
    """Run the program as `pulumi up` would with secret config values set."""
    values, secret = stack_config.read_stack_files(stack)
    for key, value in {**overrides, **secrets}.items():
        values[f"ai-platform:{key}"] = stack_config.engine_value(value)
    secret |= {f"ai-platform:{key}" for key in secrets}
    stack_config.parse(values, secret, stack)
    return run_program(stack, values, secret)


# --- GPU sharing config -------------------------------------------------------------------------

def test_mig_on_a_gpu_without_mig_is_a_config_error():
    problems = config_problems(gpuNodeGroups=[dev_pool(sharing={"mode": "mig", "migProfile": "all-1g.10gb"})])
    assert problems == ["ai-platform:gpuNodeGroups[0].sharing.mode: mig needs MIG-capable GPUs; g6.xlarge, g5.xlarge "
                        "are not (MIG families: p4d, p4de, p5, p5e, p5en)"]


def test_time_slicing_needs_replicas_and_mig_settings_need_mig():
    problems = config_problems(gpuNodeGroups=[dev_pool(sharing={"mode": "timeSlicing", "migStrategy": "mixed"})])
    assert "ai-platform:gpuNodeGroups[0].sharing.replicas: required when mode is timeSlicing (pods per GPU, 2-48)" in problems
    assert "ai-platform:gpuNodeGroups[0].sharing.migStrategy: only applies to mode mig (mode is timeSlicing)" in problems


def test_mig_on_a100_is_accepted_and_labels_the_nodes():
    pool = dev_pool(instanceTypes=["p4d.24xlarge"],
                    sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.10gb"})
    config = stack_config.parse({**stack_config.read_stack_files("dev")[0],
                                 "ai-platform:gpuNodeGroups": json.dumps([pool])})
    assert sharing_node_labels(config.gpuNodeGroups[0]) == {
        "nvidia.com/device-plugin.config": "mig-mixed", "nvidia.com/mig.config": "all-1g.10gb"}


def test_time_slicing_reaches_node_labels_device_plugin_config_and_autoscaler_template():
    run = harness.plan_with("dev", gpuNodeGroups=[dev_pool(sharing={"mode": "timeSlicing", "replicas": 4})])
    group = next(r.public_inputs() for r in run.of_type("aws:eks/nodeGroup:NodeGroup") if r.public_inputs()["labels"].get(POOL_LABEL))
    assert group["labels"]["nvidia.com/device-plugin.config"] == "timeslice-4"
    [configmap] = [r.public_inputs() for r in run.of_type("kubernetes:core/v1:ConfigMap")
                   if r.public_inputs()["metadata"]["name"] == gpu_operator.DEVICE_PLUGIN_CONFIGMAP]
    sliced = yaml.safe_load(configmap["data"]["timeslice-4"])
    assert sliced["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert yaml.safe_load(configmap["data"]["default"]) == {"version": "v1", "flags": {"migStrategy": "none"}}
    plugin = values_of(run, "gpu-operator-release")["devicePlugin"]["config"]
    assert plugin == {"create": False, "name": gpu_operator.DEVICE_PLUGIN_CONFIGMAP, "default": "default"}
    # 1 GPU x 4 slices: the autoscaler must know a new node offers 4 nvidia.com/gpu, or it never scales for the 2nd pod.
    tags = [r.public_inputs() for r in run.of_type("aws:autoscaling/tag:Tag")]
    gpu_tags = [t["tag"]["value"] for t in tags if t["tag"]["key"].endswith("/resources/nvidia.com/gpu")]
    assert gpu_tags == ["4"]


def test_sharing_is_per_pool_time_slicing_and_mig_side_by_side():
    """One time-sliced pool and one MIG pool: each gets its own device-plugin profile and node
    labels, the MIG manager runs, and the MIG pool's validation Job asks for a MIG slice."""
    mig_pool = dev_pool(name="mig", instanceTypes=["p4d.24xlarge"], capacityType="ON_DEMAND", maxSize=1,
                        sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.5gb"})
    run = harness.plan_with("dev", gpuNodeGroups=[dev_pool(sharing={"mode": "timeSlicing", "replicas": 2}), mig_pool])
    labels = {group["labels"][POOL_LABEL]: group["labels"] for group in
              (r.public_inputs() for r in run.of_type("aws:eks/nodeGroup:NodeGroup")) if group["labels"].get(POOL_LABEL)}
    assert labels["inference"]["nvidia.com/device-plugin.config"] == "timeslice-2"
    assert "nvidia.com/mig.config" not in labels["inference"]
    assert (labels["mig"]["nvidia.com/device-plugin.config"], labels["mig"]["nvidia.com/mig.config"]) == ("mig-mixed", "all-1g.5gb")
    [configmap] = [r.public_inputs() for r in run.of_type("kubernetes:core/v1:ConfigMap")
                   if r.public_inputs()["metadata"]["name"] == gpu_operator.DEVICE_PLUGIN_CONFIGMAP]
    assert sorted(configmap["data"]) == ["default", "mig-mixed", "timeslice-2"]
    assert yaml.safe_load(configmap["data"]["mig-mixed"]) == {"version": "v1", "flags": {"migStrategy": "mixed"}}
    values = values_of(run, "gpu-operator-release")
    assert values["mig"] == {"strategy": "mixed"} and values["migManager"] == {"enabled": True}
    jobs = {j.public_inputs()["metadata"]["name"]: j.public_inputs() for j in run.of_type(JOB)}
    [mig_container] = jobs["gpu-validation-mig"]["spec"]["template"]["spec"]["containers"]
    assert mig_container["resources"]["limits"]["nvidia.com/mig-1g.5gb"] == "1"
    assert "nvidia.com/gpu" not in mig_container["resources"]["limits"]


def test_no_mig_pool_no_mig_manager():
    values = values_of(harness.plan("dev"), "gpu-operator-release")
    assert values["migManager"] == {"enabled": False} and values["mig"] == {"strategy": "single"}


def test_pools_without_sharing_get_no_sharing_labels():
    run = harness.plan("dev")
    group = next(r.public_inputs() for r in run.of_type("aws:eks/nodeGroup:NodeGroup") if r.public_inputs()["labels"].get(POOL_LABEL))
    assert not [k for k in group["labels"] if k.startswith("nvidia.com/")]


# --- GPU operator ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_operator_release_is_pinned_and_skips_driver_and_toolkit_on_eks_nvidia_amis(stack):
    run = harness.plan(stack)
    release = run.named("gpu-operator-release", RELEASE).public_inputs()
    assert (release["chart"], release["version"], release["repositoryOpts"]["repo"]) == (
        "gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia")
    assert release["namespace"] == "gpu-operator" and release["createNamespace"] is False
    values = release["values"]
    assert all(pool.amiType.endswith("_NVIDIA") for pool in harness.config_for(stack).gpuNodeGroups)
    assert values["driver"] == {"enabled": False} and values["toolkit"] == {"enabled": False}
    namespaces = [r.public_inputs()["metadata"] for r in run.of_type("kubernetes:core/v1:Namespace")]
    assert any(ns["name"] == "gpu-operator" for ns in namespaces)


def test_driver_and_toolkit_can_be_turned_on_for_other_amis():
    stack_cfg = harness.stack_values("dev")["gpuStack"]
    run = harness.plan_with("dev", gpuStack={**stack_cfg, "operator": {"driverEnabled": True, "toolkitEnabled": True}})
    values = values_of(run, "gpu-operator-release")
    assert values["driver"] == {"enabled": True} and values["toolkit"] == {"enabled": True}


def _service_monitor_labels(operator_values: dict) -> dict:
    # The chart labels the DCGM ServiceMonitor with app=nvidia-dcgm-exporter plus additionalLabels.
    return {"app": "nvidia-dcgm-exporter", **operator_values["dcgmExporter"]["serviceMonitor"]["additionalLabels"]}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_dcgm_service_monitor_is_selected_by_this_stacks_prometheus(stack):
    run = harness.plan(stack)
    operator = values_of(run, "gpu-operator-release")
    service_monitor = operator["dcgmExporter"]["serviceMonitor"]
    assert service_monitor["enabled"] is True
    assert service_monitor["honorLabels"] is True  # namespace/pod/container of the GPU's pod stay usable
    spec = values_of(run, "monitoring-release")["prometheus"]["prometheusSpec"]
    selector = monitoring.effective_selector(spec, "serviceMonitor")
    assert monitoring.selector_matches(selector, _service_monitor_labels(operator))
    assert monitoring.selector_matches(spec["serviceMonitorNamespaceSelector"], {"kubernetes.io/metadata.name": "gpu-operator"})
    for kind in ("podMonitor", "rule"):
        assert monitoring.effective_selector(spec, kind) == {}


def test_the_selector_check_catches_the_classic_mismatch():
    """Chart defaults (select release=<name>) and a ServiceMonitor without that label: no match."""
    spec = {"serviceMonitorSelectorNilUsesHelmValues": True, "serviceMonitorSelector": {}}
    assert not monitoring.selector_matches(monitoring.effective_selector(spec, "serviceMonitor"), {"app": "nvidia-dcgm-exporter"})
    assert monitoring.selector_matches(monitoring.effective_selector(spec, "serviceMonitor"),
                                       {"app": "nvidia-dcgm-exporter", "release": monitoring.RELEASE_NAME})


def test_dcgm_series_get_a_node_label_and_lose_the_exporter_pods_labels():
    relabelings = values_of(harness.plan("dev"), "gpu-operator-release")["dcgmExporter"]["serviceMonitor"]["relabelings"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"} in relabelings
    assert {"regex": "pod|namespace|container", "action": "labeldrop"} in relabelings


@pytest.mark.parametrize("stack", harness.STACKS)
def test_operator_is_installed_after_the_monitoring_stack(stack):
    run = harness.plan(stack)
    operator = run.named("gpu-operator-release", RELEASE)
    monitoring_release = run.named("monitoring-release", RELEASE)
    assert monitoring_release.urn in operator.dependencies
    assert operator.urn not in monitoring_release.dependencies


# --- validation Jobs -----------------------------------------------------------------------------

def test_dev_validates_every_gpu_pool_after_the_operator():
    run = harness.plan("dev")
    jobs = run.of_type(JOB)
    pools = [p.name for p in harness.config_for("dev").gpuNodeGroups]
    assert sorted(j.public_inputs()["metadata"]["name"] for j in jobs) == sorted(f"gpu-validation-{p}" for p in pools)
    operator = run.named("gpu-operator-release", RELEASE)
    classes = {r.public_inputs()["metadata"]["name"]: r.urn for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    for job in jobs:
        assert operator.urn in job.dependencies
        spec = job.public_inputs()["spec"]
        pod = spec["template"]["spec"]
        assert classes[pod["priorityClassName"]] in job.dependencies
        [container] = pod["containers"]
        assert "nvidia-smi" in " ".join(container["command"])
        assert container["image"] == harness.config_for("dev").gpuStack.validation.image
        assert ":" in container["image"] and not container["image"].endswith(":latest")
        assert spec["activeDeadlineSeconds"] > 0 and spec["backoffLimit"] >= 0
        # No skipAwait: the provider waits for completion, so a broken GPU stack fails `pulumi up`.
        assert "pulumi.com/skipAwait" not in json.dumps(job.public_inputs())


def test_validation_that_could_never_schedule_is_a_config_error():
    stack_cfg = harness.stack_values("dev")
    assert [pool["desiredSize"] for pool in stack_cfg["gpuNodeGroups"]] == [0]
    problems = config_problems(clusterAutoscaler={**stack_cfg["clusterAutoscaler"], "enabled": False})
    assert problems == ["ai-platform:gpuStack.validation.enabled: GPU pool(s) inference start with no nodes (desiredSize 0) "
                        "and clusterAutoscaler is off, so the validation Job could never run; raise desiredSize, "
                        "enable clusterAutoscaler or turn validation off"]


def test_prod_turns_validation_off():
    assert harness.config_for("prod").gpuStack.validation.enabled is False
    assert harness.plan("prod").of_type(JOB) == []


def test_mixed_mig_validation_requests_the_mig_slice():
    from stack_config.gpu_stack import GpuSharingConfig
    sharing = GpuSharingConfig(mode="mig", migStrategy="mixed", migProfile="all-1g.10gb")
    assert gpu_operator.validation_resource(sharing) == "nvidia.com/mig-1g.10gb"
    assert gpu_operator.validation_resource(GpuSharingConfig(mode="mig", migStrategy="single", migProfile="all-balanced")) == "nvidia.com/gpu"
    assert gpu_operator.validation_resource(GpuSharingConfig(mode="mig", migStrategy="mixed", migProfile="all-balanced")) is None


# --- GPU scheduling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_priority_classes_and_gpu_quotas(stack):
    run = harness.plan(stack)
    classes = {r.public_inputs()["metadata"]["name"]: r.public_inputs() for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert classes[INFERENCE_PRIORITY_CLASS]["value"] > 0 > classes[BATCH_PRIORITY_CLASS]["value"]
    assert classes[BATCH_PRIORITY_CLASS]["preemptionPolicy"] == "Never"
    assert not any(c.get("globalDefault") for c in classes.values())
    quotas = {r.public_inputs()["metadata"]["namespace"]: r.public_inputs()["spec"]["hard"]
              for r in run.of_type("kubernetes:core/v1:ResourceQuota")}
    expected = harness.config_for(stack).gpuStack.scheduling.gpuQuotas
    assert quotas == {ns: {"requests.nvidia.com/gpu": str(n)} for ns, n in expected.items()}


def _pod_specs(run):
    for resource in run.kubernetes_objects():
        inputs = resource.public_inputs()
        spec = inputs.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template", {}).get("spec")
        if pod is None and inputs.get("kind") == "Pod":
            pod = spec
        if pod:
            yield resource, pod


@pytest.mark.parametrize("stack", harness.STACKS)
def test_only_gpu_pods_tolerate_the_gpu_taint_and_they_carry_limits_pool_and_priority(stack):
    run = harness.plan(stack)
    pools = {p.name for p in harness.config_for(stack).gpuNodeGroups}
    classes = {r.public_inputs()["metadata"]["name"] for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    gpu_pods = []
    for resource, pod in _pod_specs(run):
        tolerates = any(t.get("key") == GPU_TAINT["key"] for t in pod.get("tolerations", []))
        gpu_limits = [c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") for c in pod["containers"]]
        if not tolerates:
            assert not any(gpu_limits), f"{resource.name} requests GPUs without tolerating the GPU taint"
            continue
        assert any(gpu_limits), f"{resource.name} tolerates the GPU taint but requests no GPU"
        assert pod.get("nodeSelector", {}).get(POOL_LABEL) in pools, resource.name
        assert pod.get("priorityClassName") in classes, resource.name
        gpu_pods.append(resource.name)
    # Triton deployments (and dev's validation Jobs) must have been found, or the loop checked nothing.
    expected = len(harness.config_for(stack).tritonDeployments) + len(run.of_type(JOB))
    assert len(gpu_pods) == expected, gpu_pods


# --- monitoring -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_prometheus_retention_and_volume_per_stack(stack):
    run = harness.plan(stack)
    release = run.named("monitoring-release", RELEASE).public_inputs()
    assert (release["chart"], release["version"], release["repositoryOpts"]["repo"]) == (
        "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts")
    assert release["createNamespace"] is False
    cfg = harness.config_for(stack).gpuStack.monitoring
    spec = release["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == cfg.retention
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == f"{cfg.volumeSizeGiB}Gi"
    # prod keeps its metrics volume when the claim goes (tests/test_security.py: nothing lost in prod).
    expected_class = "gp3-retain" if stack == "prod" else "gp3"
    assert claim["storageClassName"] == expected_class
    classes = [r.public_inputs()["metadata"]["name"] for r in run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")]
    assert expected_class in classes
    assert harness.config_for("dev").gpuStack.monitoring.volumeSizeGiB < harness.config_for("prod").gpuStack.monitoring.volumeSizeGiB


def test_grafana_admin_password_is_generated_referenced_and_never_plaintext():
    run = harness.plan("dev")
    grafana = values_of(run, "monitoring-release")["grafana"]
    assert grafana["admin"]["existingSecret"] == monitoring.GRAFANA_ADMIN_SECRET
    assert "adminPassword" not in json.dumps(grafana)
    secret = next(r for r in run.of_type("kubernetes:core/v1:Secret")
                  if r.public_inputs()["metadata"]["name"] == monitoring.GRAFANA_ADMIN_SECRET)
    assert redacted(secret.public_inputs()["stringData"])
    password = run.named("monitoring-grafana-admin-password", "random:index/randomPassword:RandomPassword")
    assert password.urn in secret.dependencies
    assert run.outputs["grafanaAdminPassword"].public() == "[secret]"
    assert run.outputs["grafanaAdminUser"].public() == "admin"
    assert "port-forward svc/kube-prometheus-stack-grafana" in run.outputs["grafanaUrl"].public()
    assert "kube-prometheus-stack-alertmanager" in run.outputs["alertmanagerUrl"].public()


def test_no_plaintext_grafana_password_anywhere_in_the_plan(tmp_path, monkeypatch):
    """At preview the generated password is unknown, so searching plan.json for it would check
    nothing: make the mock resolve it to a known value and look for that everywhere."""
    from platformctl import mockrun
    from platformctl.plan import write_outputs

    canary = "GrafanaCanaryPassw0rd"
    mock_new_resource = mockrun.PreviewMocks.new_resource

    def new_resource(self, args):
        resource_id, state = mock_new_resource(self, args)
        if args.typ == "random:index/randomPassword:RandomPassword" and args.name == "monitoring-grafana-admin-password":
            state = {**state, "result": canary}
        return resource_id, state

    monkeypatch.setattr(mockrun.PreviewMocks, "new_resource", new_resource)
    run = mockrun.run_stack("dev")
    output = run.outputs["grafanaAdminPassword"]
    assert (output.value, output.known, output.secret) == (canary, True, True)  # the canary did flow
    write_outputs(run, tmp_path)
    leaks = [str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file() and canary in path.read_text()]
    assert leaks == []
    assert canary not in json.dumps(run.to_json())


def test_slack_webhook_is_a_secret_end_to_end():
    stack_cfg = harness.stack_values("dev")["gpuStack"]
    run = run_with_secrets("dev", {"alertSlackWebhookUrl": WEBHOOK},
                           gpuStack={**stack_cfg, "alerting": {"receiver": "slack", "slackChannel": "#gpu"}})
    plan_text = json.dumps(run.to_json())
    assert "pl41nT3xtW3bh00k" not in plan_text
    receivers = next(r for r in run.of_type("kubernetes:core/v1:Secret")
                     if r.public_inputs()["metadata"]["name"] == monitoring.RECEIVER_SECRET)
    assert redacted(receivers.public_inputs()["stringData"])
    values = values_of(run, "monitoring-release")
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == [monitoring.RECEIVER_SECRET]
    [slack] = [r for r in values["alertmanager"]["config"]["receivers"] if r["name"] == "slack"]
    assert slack["slack_configs"][0]["api_url_file"] == f"/etc/alertmanager/secrets/{monitoring.RECEIVER_SECRET}/slack-webhook-url"
    assert slack["slack_configs"][0]["channel"] == "#gpu"
    assert values["alertmanager"]["config"]["route"]["receiver"] == "slack"
    assert receivers.urn in run.named("monitoring-release", RELEASE).dependencies


def test_slack_webhook_must_be_set_as_a_secret():
    alerting = {**harness.stack_values("dev")["gpuStack"], "alerting": {"receiver": "slack"}}
    assert config_problems(gpuStack=alerting) == [
        "ai-platform:alertSlackWebhookUrl: required when gpuStack.alerting.receiver is slack "
        "(pulumi config set --secret alertSlackWebhookUrl https://hooks.slack.com/services/...)"]
    problems = config_problems(gpuStack=alerting, alertSlackWebhookUrl=WEBHOOK)
    assert "ai-platform:alertSlackWebhookUrl: must be a secret (pulumi config set --secret alertSlackWebhookUrl ...)" in problems


def test_a_wrong_webhook_url_is_rejected_without_echoing_it():
    values, secret = stack_config.read_stack_files("dev")
    values["ai-platform:alertSlackWebhookUrl"] = "http://example.com/hook-s3cr3t"
    secret.add("ai-platform:alertSlackWebhookUrl")
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    assert caught.value.problems == ["ai-platform:alertSlackWebhookUrl: not a Slack incoming-webhook URL (https://hooks.slack.com/...)"]
    assert "s3cr3t" not in str(caught.value)


def test_email_receiver_reads_the_smtp_password_from_a_file():
    email = {"to": ["oncall@example.com"], "sender": "alerts@example.com", "smarthost": "email-smtp.us-west-2.amazonaws.com:587",
             "authUsername": "AKIAEXAMPLE"}
    stack_cfg = {**harness.stack_values("dev")["gpuStack"], "alerting": {"receiver": "email", "email": email}}
    assert config_problems(gpuStack=stack_cfg)[0].startswith("ai-platform:alertSmtpPassword: required when")
    run = run_with_secrets("dev", {"alertSmtpPassword": "smtp-pa55word"}, gpuStack=stack_cfg)
    assert "smtp-pa55word" not in json.dumps(run.to_json())
    config = values_of(run, "monitoring-release")["alertmanager"]["config"]
    [receiver] = [r for r in config["receivers"] if r["name"] == "email"]
    assert receiver["email_configs"][0]["auth_password_file"].endswith("/smtp-password")
    assert "auth_password" not in receiver["email_configs"][0]
    assert receiver["email_configs"][0]["to"] == "oncall@example.com"


def test_alertmanager_groups_and_inhibits_sensibly():
    config = values_of(harness.plan("dev"), "monitoring-release")["alertmanager"]["config"]
    assert config["route"]["receiver"] == "null"  # dev: alerts visible in Alertmanager, sent nowhere
    assert {"alertname", "node"} <= set(config["route"]["group_by"])
    critical_over_warning = [rule for rule in config["inhibit_rules"]
                             if rule["source_matchers"] == ['severity = "critical"']]
    assert critical_over_warning and "alertname" in critical_over_warning[0]["equal"]
    names = {r["name"] for r in config["receivers"]}
    assert {route["receiver"] for route in config["route"]["routes"]} <= names


def test_gpu_stack_objects_are_written_as_manifests(tmp_path):
    from platformctl.plan import write_outputs
    write_outputs(harness.plan("dev"), tmp_path)
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in (tmp_path / "manifests").glob("*.yaml")}
    assert {"PrometheusRule", "Job", "PriorityClass", "ResourceQuota", "ConfigMap", "Namespace"} <= kinds


def test_bottlerocket_pools_keep_their_own_device_plugin():
    values = harness.stack_values("dev")
    values["gpuNodeGroups"][0]["amiType"] = "BOTTLEROCKET_x86_64_NVIDIA"
    run = harness.plan_with("dev", gpuNodeGroups=values["gpuNodeGroups"])
    group = run.named("gpu-inference", "aws:eks/nodeGroup:NodeGroup")
    assert group.public_inputs()["labels"]["nvidia.com/gpu.deploy.device-plugin"] == "false"
    values["gpuNodeGroups"][0]["sharing"] = {"mode": "timeSlicing", "replicas": 2}
    with pytest.raises(stack_config.ConfigError) as caught:
        harness.plan_with("dev", gpuNodeGroups=values["gpuNodeGroups"])
    assert any(p.startswith("ai-platform:gpuNodeGroups[0].sharing.mode: timeSlicing is set through the GPU Operator")
               for p in caught.value.problems), caught.value.problems


# --- what the monitoring NetworkPolicies rely on in the chart values --------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_chart_values_keep_the_ports_and_names_the_network_policies_select(stack):
    """The policies open fixed ports to fixed label sets; values that moved a port or renamed the
    chart's objects would leave the new port closed (a webhook timing out on every PrometheusRule)."""
    run = harness.plan(stack)
    values = values_of(run, "monitoring-release")
    operator = values.get("prometheusOperator", {})
    assert operator.get("tls", {}).get("internalPort", monitoring.OPERATOR_WEBHOOK_PORT) == monitoring.OPERATOR_WEBHOOK_PORT
    assert not operator.get("admissionWebhooks", {}).get("deployment", {}).get("enabled"), \
        "a separate webhook Deployment has other labels: add its policy"
    assert "nameOverride" not in values and "fullnameOverride" not in values
    assert values["grafana"].get("service", {}).get("targetPort", monitoring.GRAFANA_PORT) == monitoring.GRAFANA_PORT
    release = run.named("monitoring-release", RELEASE).public_inputs()
    assert release["name"] == monitoring.RELEASE_NAME and release["namespace"] == monitoring.NAMESPACE
    # The adapter queries Prometheus on the port its policy opens, from the namespace it names.
    adapters = [r.public_inputs() for r in run.of_type(RELEASE) if r.public_inputs()["name"] == "prometheus-adapter"]
    autoscaled = any(d.autoscaled for d in harness.config_for(stack).tritonDeployments)
    assert len(adapters) == (1 if autoscaled else 0)
    policies = {r.public_inputs()["metadata"]["name"] for r in run.kubernetes_objects()
                if r.public_inputs().get("kind") == "NetworkPolicy" and r.public_inputs()["metadata"]["namespace"] == monitoring.NAMESPACE}
    assert ("allow-prometheus-adapter-api" in policies) == autoscaled
    for adapter in adapters:
        assert adapter["namespace"] == monitoring.PROMETHEUS_ADAPTER_NAMESPACE
        assert adapter["values"]["prometheus"]["port"] == monitoring.PROMETHEUS_PORT
        assert adapter["values"].get("listenPort", monitoring.PROMETHEUS_ADAPTER_PORT) == monitoring.PROMETHEUS_ADAPTER_PORT


def test_monitoring_refuses_to_run_without_the_vpc_cidr():
    """Without it the operator's webhook would stay closed to the API server."""
    config = harness.config_for("dev").gpuStack
    args = monitoring.MonitoringArgs(k8s_provider=None, monitoring=config.monitoring, alerting=config.alerting,
                                     thresholds=config.alertThresholds)
    with pytest.raises(ValueError, match="vpc_cidr"):
        monitoring.network_policies(args, None)


@pytest.mark.parametrize("stack", harness.STACKS)
def test_monitoring_policies_exist_before_the_chart_installs(stack):
    """The chart's install creates PrometheusRules through the operator's webhook: the webhook's
    allow (with the default deny) must be in place first, not racing the release."""
    run = harness.plan(stack)
    release = run.named("monitoring-release", RELEASE)
    names = {r.public_inputs()["metadata"]["name"]: r for r in run.kubernetes_objects()
             if r.public_inputs().get("kind") == "NetworkPolicy" and r.public_inputs()["metadata"]["namespace"] == monitoring.NAMESPACE}
    assert {"default-deny", "allow-operator-webhook", "allow-prometheus"} <= set(names)
    for policy in names.values():
        assert policy.urn in release.dependencies, policy.name
