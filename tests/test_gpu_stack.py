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
from components.gpu_scheduling import BATCH_PRIORITY_CLASS, INFERENCE_PRIORITY_CLASS, VALIDATION_PRIORITY_CLASS
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
    pool = dev_pool(name="mig", instanceTypes=["p4d.24xlarge"],
                    sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.10gb"})
    config = stack_config.parse({**stack_config.read_stack_files("dev")[0],
                                 "ai-platform:gpuNodeGroups": json.dumps([dev_pool(), pool])})
    assert sharing_node_labels(config.gpuNodeGroups[1]) == {
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

def validation_jobs(run):
    """The GPU validation Jobs (gpu-operator namespace), not the TensorRT build Jobs (modelBuilds)."""
    return [j for j in run.of_type(JOB) if j.public_inputs()["metadata"]["namespace"] == "gpu-operator"]


def test_dev_validates_every_gpu_pool_after_the_operator():
    run = harness.plan("dev")
    jobs = validation_jobs(run)
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
    assert validation_jobs(harness.plan("prod")) == []


def _pool(instance_type: str, strategy: str, profile: str):
    from stack_config.model import GpuNodeGroupConfig
    return GpuNodeGroupConfig(name="mig", instanceTypes=[instance_type],
                              sharing={"mode": "mig", "migStrategy": strategy, "migProfile": profile})


def test_mig_pools_advertise_and_validate_what_the_device_plugin_offers():
    """Per GPU, `all-<profile>` makes the most instances of that profile and `all-balanced` 2x 1g,
    1x 2g, 1x 3g (NVIDIA/mig-parted v0.15.0 deployments/systemd/config-default.yaml,
    pkg/mig/builder/{builder,balanced}.go). Mixed strategy advertises `nvidia.com/mig-<profile>`,
    single counts each MIG device as one nvidia.com/gpu (NVIDIA/k8s-device-plugin v0.20.0
    internal/rm/rm.go). The validation Job asks for one of what the nodes offer."""
    from stack_config.gpu_stack import advertised_resources, validation_resource
    mixed = _pool("p4d.24xlarge", "mixed", "all-1g.10gb")  # A100 40GB: 1g.10gb x4
    assert advertised_resources(mixed) == {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 32}
    assert validation_resource(mixed) == "nvidia.com/mig-1g.10gb"
    balanced = _pool("p4de.24xlarge", "mixed", "all-balanced")  # A100 80GB
    assert advertised_resources(balanced) == {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 16,
                                              "nvidia.com/mig-2g.20gb": 8, "nvidia.com/mig-3g.40gb": 8}
    assert validation_resource(balanced) == "nvidia.com/mig-1g.10gb"
    single = _pool("p5e.48xlarge", "single", "all-3g.71gb")  # H200: 3g.71gb x2
    assert advertised_resources(single) == {"nvidia.com/gpu": 16} and validation_resource(single) == "nvidia.com/gpu"
    assert advertised_resources(_pool("p5.48xlarge", "mixed", "all-disabled")) == {"nvidia.com/gpu": 8}


@pytest.mark.parametrize(("instance_type", "strategy", "profile", "message"), [
    ("p4de.24xlarge", "mixed", "all-1g.5gb", "sharing.migProfile: all-1g.5gb is not a MIG config of p4de.24xlarge (A100 80 GB)"),
    ("p4d.24xlarge", "single", "all-balanced", "sharing.migStrategy: single needs one MIG device type on every GPU"),
    ("p5.48xlarge", "mixed", "all-enabled", "sharing.migProfile: all-enabled turns MIG on without creating MIG devices"),
])
def test_mig_configs_that_offer_pods_nothing_usable_are_config_errors(instance_type, strategy, profile, message):
    """A profile the GPU lacks makes the MIG manager fail; single + all-balanced is refused by the
    device plugin (internal/rm/device_map.go requires uniform MIG devices for single); all-enabled
    creates no devices. Each would leave the pool's pods (and its validation Job) Pending."""
    pool = dev_pool(name="mig", instanceTypes=[instance_type], sharing={"mode": "mig", "migStrategy": strategy, "migProfile": profile})
    problems = config_problems(gpuNodeGroups=[dev_pool(), pool])
    assert any(p.startswith(f"ai-platform:gpuNodeGroups[1].{message}") for p in problems), problems


def test_triton_on_a_mixed_mig_pool_is_a_config_error():
    """Triton requests nvidia.com/gpu, which a mixed-MIG node does not advertise: it would never schedule."""
    pool = dev_pool(instanceTypes=["p4d.24xlarge"], sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.5gb"})
    problems = config_problems(gpuNodeGroups=[pool])
    assert "ai-platform:tritonDeployments[0].gpuPool: pool inference advertises no nvidia.com/gpu, which Triton requests " \
           "(its mixed MIG strategy offers nvidia.com/mig-1g.5gb); use a pool without MIG or with migStrategy single" in problems


# --- first deploy: the validation Job must be able to run (issue 12, finding 1) ----------------------

def _priority_values(run) -> dict[str, int]:
    return {r.public_inputs()["metadata"]["name"]: r.public_inputs()["value"]
            for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}


def _cutoff(run) -> int:
    args = values_of(run, "cluster-autoscaler")["extraArgs"]
    return int(args.get("expendable-pods-priority-cutoff", -10))


def test_validation_job_is_not_expendable_for_the_autoscaler():
    """cluster-autoscaler never scales up for a pending pod whose priority is below
    --expendable-pods-priority-cutoff, default -10 (kubernetes/autoscaler cluster-autoscaler-1.33.0:
    FAQ.md "How does Cluster Autoscaler work with Pod Priority and Preemption?",
    config/flags/flags.go, core/utils/expendable.go `priority < cutoff`). dev's pool starts at zero
    nodes, so the Job's pod is what scales it up: its class must be at or above the cut-off the
    chart renders (the old -100 batch class never ran)."""
    run = harness.plan("dev")
    priorities, cutoff = _priority_values(run), _cutoff(run)
    jobs = run.of_type(JOB)
    assert jobs
    for job in jobs:
        pod = job.public_inputs()["spec"]["template"]["spec"]
        assert priorities[pod["priorityClassName"]] >= cutoff, pod["priorityClassName"]
        assert pod["priorityClassName"] != BATCH_PRIORITY_CLASS
    assert priorities[BATCH_PRIORITY_CLASS] < cutoff  # still expendable: batch runs on spare GPUs only


def test_dev_first_deploy_converges():
    """Walk dev's first deploy from the plan: the pool starts at zero; its validation Job (priority
    >= cut-off, requesting a resource the ASG node template advertises, created after the
    cluster-autoscaler release) scales it up and runs alone,
    because every Triton Deployment on the pool depends on it; then Triton's first replicas must fit
    the pool's maxSize and the namespace quota. Before, Triton and the Job raced for 2 GPUs with 3
    wanted and the Job (lower priority) lost."""
    run, config = harness.plan("dev"), harness.config_for("dev")
    priorities, cutoff = _priority_values(run), _cutoff(run)
    jobs = {j.public_inputs()["spec"]["template"]["spec"]["nodeSelector"][POOL_LABEL]: j for j in validation_jobs(run)}
    deployments = [d for d in run.of_type("kubernetes:apps/v1:Deployment")
                   if d.public_inputs()["spec"]["template"]["spec"].get("nodeSelector", {}).get(POOL_LABEL)]
    assert deployments
    quotas = {q.public_inputs()["metadata"]["namespace"]: int(q.public_inputs()["spec"]["hard"]["requests.nvidia.com/gpu"])
              for q in run.of_type("kubernetes:core/v1:ResourceQuota")}
    for pool in config.gpuNodeGroups:
        component = run.named(f"gpu-{pool.name}", "ai-platform:gpu:GpuNodeGroup")
        tags = {t.public_inputs()["tag"]["key"]: t.public_inputs()["tag"]["value"]
                for t in run.children_of(component) if t.type == "aws:autoscaling/tag:Tag"}
        template = {k.rsplit("/resources/", 1)[1]: int(v) for k, v in tags.items() if "/resources/" in k}
        job = jobs[pool.name]
        pod = job.public_inputs()["spec"]["template"]["spec"]
        assert priorities[pod["priorityClassName"]] >= cutoff
        assert run.named("cluster-autoscaler", RELEASE).urn in job.dependencies  # something adds the node
        [resource] = [r for r in pod["containers"][0]["resources"]["limits"] if r.startswith("nvidia.com/")]
        assert template[resource] >= 1 and pool.maxSize >= 1
        on_pool = [d for d in deployments if d.public_inputs()["spec"]["template"]["spec"]["nodeSelector"][POOL_LABEL] == pool.name]
        by_namespace: dict[str, int] = {}
        for deployment in on_pool:
            assert job.urn in deployment.dependencies, f"{deployment.name} does not wait for {job.name}"
            spec = deployment.public_inputs()["spec"]
            gpus = spec.get("replicas", 1) * int(spec["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
            namespace = deployment.public_inputs()["metadata"]["namespace"]
            by_namespace[namespace] = by_namespace.get(namespace, 0) + gpus
        assert sum(by_namespace.values()) <= pool.maxSize * template["nvidia.com/gpu"]
        assert all(used <= quotas.get(ns, used) for ns, used in by_namespace.items())


def test_a_cutoff_above_the_gpu_pods_priority_is_a_config_error():
    autoscaler = {**harness.stack_values("dev")["clusterAutoscaler"], "expendablePodsPriorityCutoff": 10}
    assert config_problems(clusterAutoscaler=autoscaler) == [
        "ai-platform:clusterAutoscaler.expendablePodsPriorityCutoff: is 10, above the priority of the GPU validation Job "
        "of pool(s) inference (desiredSize 0) (ai-platform-gpu-validation: 0): cluster-autoscaler never adds a node for a "
        "pod below its cut-off, so they would stay Pending and `pulumi up` would time out; set it to 0 or lower (default -10)"]


def test_without_triton_waiting_for_validation_dev_would_deadlock():
    """The counting behind the ordering: a pool of 2 GPUs (dev's before its third, for TensorRT
    builds) and Triton's first replicas take both; a validation Job running beside them would need
    a third and stay Pending."""
    from stack_config.gpu_stack import first_deploy_capacity_problems
    config = harness.config_for("dev")
    pools = [config.gpuNodeGroups[0].model_copy(update={"maxSize": 2}), *config.gpuNodeGroups[1:]]
    args = (config.gpuStack.validation, pools, config.tritonDeployments)
    assert first_deploy_capacity_problems(*args) == []
    assert first_deploy_capacity_problems(*args, triton_waits_for_validation=False) == [(
        "gpuNodeGroups[0].maxSize",
        "pool inference offers 2 nvidia.com/gpu at maxSize 2, but the first deploy needs 3 at once: the validation Job's 1 "
        "beside Triton's first replicas (standard: 1 x 1; llm: 1 x 1); the Job would stay Pending and `pulumi up` fail "
        "after gpuStack.validation.timeoutSeconds. Raise maxSize or turn validation off")]


def test_no_gpu_quota_in_the_gpu_operator_namespace():
    """The validation Jobs run in gpu-operator; a quota there could starve them (and the namespace is the operator's)."""
    scheduling = {"gpuQuotas": {"inference": 2, "gpu-operator": 0}}
    gpu_stack = {**harness.stack_values("dev")["gpuStack"], "scheduling": scheduling}
    assert config_problems(gpuStack=gpu_stack) == [
        "ai-platform:gpuStack.scheduling.gpuQuotas: gpu-operator: system namespaces are not workload namespaces"]


# --- GPU scheduling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_priority_classes_and_gpu_quotas(stack):
    run = harness.plan(stack)
    classes = {r.public_inputs()["metadata"]["name"]: r.public_inputs() for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert classes[INFERENCE_PRIORITY_CLASS]["value"] > 0 > classes[BATCH_PRIORITY_CLASS]["value"]
    assert classes[BATCH_PRIORITY_CLASS]["preemptionPolicy"] == "Never"
    assert classes[VALIDATION_PRIORITY_CLASS]["value"] == 0 and classes[VALIDATION_PRIORITY_CLASS]["preemptionPolicy"] == "Never"
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
        # init containers too: a TensorRT build Job's GPU is its `build` init container's
        gpu_limits = [c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
                      for c in pod["containers"] + pod.get("initContainers", [])]
        if not tolerates:
            assert not any(gpu_limits), f"{resource.name} requests GPUs without tolerating the GPU taint"
            continue
        assert any(gpu_limits), f"{resource.name} tolerates the GPU taint but requests no GPU"
        assert pod.get("nodeSelector", {}).get(POOL_LABEL) in pools, resource.name
        assert pod.get("priorityClassName") in classes, resource.name
        gpu_pods.append(resource.name)
    # Triton deployments (and dev's validation and TensorRT build Jobs) must have been found, or the loop
    # checked nothing; the gateway's Jobs (prod: key sync, migrations) are no GPU pods.
    gateway_ns = harness.config_for(stack).gateway.namespace
    gpu_jobs = [j for j in run.of_type(JOB) if j.public_inputs()["metadata"]["namespace"] != gateway_ns]
    expected = len(harness.config_for(stack).tritonDeployments) + len(gpu_jobs)
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
    args = monitoring.MonitoringArgs(monitoring=config.monitoring, alerting=config.alerting,
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
