"""Triton deployments as the stacks define them: what runs (args, env, probes, ports per mode),
where it runs (GPU pool, taint, priority), how it is reached (Service, NLB, exported URLs),
scraped (ServiceMonitor selected by this stack's Prometheus) and scaled (HPA on the metric the
prometheus-adapter rule publishes), plus the config errors a user gets for impossible setups."""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

import pytest

import stack_config
from components.gpu_node_group import GPU_RESOURCE, POOL_LABEL, gpu_toleration
from components.gpu_scheduling import INFERENCE_PRIORITY_CLASS
from components.network import subnet_cidrs
from components.monitoring import effective_selector, selector_matches
from components.triton import OPENAI_FRONTEND
from components.triton_autoscaling import CHART_REPOSITORY, CHART_VERSION
from platformctl import security_scan as scan
from tests.harness import STACKS, config_for, inputs, plan, plan_with, stack_values

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
HELM = "kubernetes:helm.sh/v3:Release"

CASES = [(stack, d.name) for stack in STACKS for d in config_for(stack).tritonDeployments]


def deployment_config(stack, name):
    [found] = [d for d in config_for(stack).tritonDeployments if d.name == name]
    return found


def deployment(stack, name) -> dict:
    return inputs(plan(stack).named(f"triton-{name}-deployment"))


def container(stack, name) -> dict:
    [found] = deployment(stack, name)["spec"]["template"]["spec"]["containers"]
    return found


def port_number(c: dict, port) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return number


def bucket(stack) -> str:
    return config_for(stack).modelRepository.bucket_name(stack, config_for(stack).region)


# --- what runs -----------------------------------------------------------------------------------

def test_both_stacks_define_a_standard_and_an_llm_deployment():
    for stack in STACKS:
        assert sorted(d.mode for d in config_for(stack).tritonDeployments) == ["llm", "standard"]


@pytest.mark.parametrize("stack", STACKS)
def test_standard_runs_tritonserver_on_its_s3_prefix_with_the_configured_model_control(stack):
    config = deployment_config(stack, "standard")
    c = container(stack, "standard")
    assert c["image"] == f"nvcr.io/nvidia/tritonserver:{config.imageTag}"
    assert c["command"] == ["tritonserver"]
    args = c["args"]
    assert f"--model-repository=s3://{bucket(stack)}/{config.modelPrefix}" in args
    assert f"--model-control-mode={config.modelControl.mode}" in args
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"} <= set(args)
    polls = [a for a in args if a.startswith("--repository-poll-secs=")]
    loads = [a for a in args if a.startswith("--load-model=")]
    if config.modelControl.mode == "poll":
        assert polls == [f"--repository-poll-secs={config.modelControl.poll_seconds}"] and not loads
    else:
        assert not polls and loads == [f"--load-model={m}" for m in config.modelControl.loadModels]
    # dev polls, prod loads explicitly: both modes are exercised by the real stacks
    assert {"dev": "poll", "prod": "explicit"}[stack] == config.modelControl.mode


@pytest.mark.parametrize("stack", STACKS)
def test_llm_runs_the_openai_frontend_with_kserve_frontends_and_the_tokenizer(stack):
    config = deployment_config(stack, "llm")
    c = container(stack, "llm")
    assert c["image"].endswith("-vllm-python-py3")
    assert c["command"] == ["python3", OPENAI_FRONTEND]
    assert c["args"] == [
        f"--model-repository=s3://{bucket(stack)}/{config.modelPrefix}",
        "--openai-port=9000",
        "--enable-kserve-frontends",
        "--kserve-http-port=8000",
        "--kserve-grpc-port=8001",
        f"--tokenizer={config.tokenizer}",
    ]


@pytest.mark.parametrize("stack, name", CASES)
def test_region_is_set_for_triton_s3_client(stack, name):
    env = {e["name"]: e["value"] for e in container(stack, name)["env"]}
    assert env["AWS_DEFAULT_REGION"] == config_for(stack).region


@pytest.mark.parametrize("stack, name, expected", [
    (stack, "standard", {"http": 8000, "grpc": 8001, "metrics": 8002}) for stack in STACKS
] + [
    (stack, "llm", {"openai": 9000, "http": 8000, "grpc": 8001}) for stack in STACKS
])
def test_ports_per_mode(stack, name, expected):
    assert {p["name"]: p["containerPort"] for p in container(stack, name)["ports"]} == expected


@pytest.mark.parametrize("stack, name", CASES)
def test_probes_hit_the_modes_health_endpoints_and_allow_the_startup_budget(stack, name):
    config = deployment_config(stack, name)
    c = container(stack, name)
    startup, ready = c["startupProbe"], c["readinessProbe"]
    if config.mode == "llm":
        assert startup["httpGet"]["path"] == ready["httpGet"]["path"] == "/health/ready"
        assert port_number(c, startup["httpGet"]["port"]) == 9000
    else:
        assert startup["httpGet"]["path"] == ready["httpGet"]["path"] == "/v2/health/ready"
        assert port_number(c, startup["httpGet"]["port"]) == 8000
        assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # models download before the server is ready: the startup probe must wait at least that long
    assert startup["failureThreshold"] * startup["periodSeconds"] >= config.startupTimeoutSeconds >= 1800
    spec = deployment(stack, name)
    assert spec["spec"]["progressDeadlineSeconds"] > config.startupTimeoutSeconds
    assert int(spec["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) > config.startupTimeoutSeconds


@pytest.mark.parametrize("stack, name", CASES)
def test_dev_shm_is_a_sized_memory_volume(stack, name):
    config = deployment_config(stack, name)
    pod = deployment(stack, name)["spec"]["template"]["spec"]
    [mount] = [m for m in container(stack, name)["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": config.shmSize}


# --- where it runs -------------------------------------------------------------------------------

@pytest.mark.parametrize("stack, name", CASES)
def test_gpu_placement_limits_toleration_pool_and_priority(stack, name):
    config = deployment_config(stack, name)
    pod = deployment(stack, name)["spec"]["template"]["spec"]
    resources = container(stack, name)["resources"]
    assert resources["limits"][GPU_RESOURCE] == resources["requests"][GPU_RESOURCE] == str(config.gpusPerReplica)
    assert gpu_toleration() in pod["tolerations"]
    assert pod["nodeSelector"] == {POOL_LABEL: config.gpuPool}
    assert pod["priorityClassName"] == INFERENCE_PRIORITY_CLASS
    classes = [inputs(r)["metadata"]["name"] for r in plan(stack).of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")]
    assert INFERENCE_PRIORITY_CLASS in classes


@pytest.mark.parametrize("stack, name", CASES)
def test_runs_as_non_root_with_nothing_to_escalate(stack, name):
    pod = deployment(stack, name)["spec"]["template"]["spec"]
    context = container(stack, name)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("stack, name", CASES)
def test_spread_when_it_can_scale_out_and_pdb_when_it_always_has_several(stack, name):
    config = deployment_config(stack, name)
    pod = deployment(stack, name)["spec"]["template"]["spec"]
    spread = pod.get("topologySpreadConstraints", [])
    if config.maxReplicas > 1:
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert all(c["labelSelector"]["matchLabels"] == deployment(stack, name)["spec"]["selector"]["matchLabels"] for c in spread)
    else:
        assert spread == []
    pdbs = [r for r in plan(stack).of_type(PDB) if r.name == f"triton-{name}-pdb"]
    if config.minReplicas > 1:
        [pdb] = pdbs
        assert inputs(pdb)["spec"]["maxUnavailable"] == 1
        assert inputs(pdb)["spec"]["selector"] == deployment(stack, name)["spec"]["selector"]
    else:
        assert pdbs == []
    # prod standard has both, the rest neither: the stacks cover both branches
    assert (stack, name, config.minReplicas > 1) in {("prod", "standard", True), ("prod", "llm", False),
                                                     ("dev", "standard", False), ("dev", "llm", False)}


def test_rollout_strategy_follows_config():
    assert deployment("dev", "standard")["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment("prod", "standard")["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


# --- how it is reached ---------------------------------------------------------------------------

def service(stack, name, suffix="service"):
    return inputs(plan(stack).named(f"triton-{name}-{suffix}"))


@pytest.mark.parametrize("stack, name", CASES)
def test_cluster_ip_service_selects_the_pods_and_exposes_every_container_port(stack, name):
    svc = service(stack, name)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == deployment(stack, name)["spec"]["selector"]["matchLabels"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {p["name"]: (p["containerPort"], p["name"]) for p in container(stack, name)["ports"]}


# The AWS Load Balancer Controller v2.14.0 (chart 1.14.0, pinned in components/exposure.py), written
# out from kubernetes-sigs/aws-load-balancer-controller at tag v2.14.0, independently of
# components/triton.py:
# - pkg/service/service_utils.go IsServiceSupported: a Service with spec.loadBalancerClass is the
#   controller's only if the class is its own (pkg/config/service_config.go default
#   `service.k8s.aws/nlb`); without one, only `aws-load-balancer-type: nlb-ip`, or `external` with
#   `aws-load-balancer-nlb-target-type` ip|instance. Anything else (`nlb`) is left to the legacy
#   in-tree controller (docs/guide/service/nlb.md "Configuration").
# - webhooks/core/service_mutator.go MutateCreate: with the Service mutator webhook on (chart value
#   enableServiceMutatorWebhook, default true in helm/aws-load-balancer-controller/values.yaml), a
#   LoadBalancer Service without a class gets the controller's class at creation.
# - docs/guide/service/annotations.md: nlb-target-type defaults to `instance`; scheme defaults to
#   internal; `nlb-ip` means external + ip.
# - pkg/service/model_build_target_group.go buildPreserveClientIPFlag: the target group attribute
#   preserve_client_ip.enabled if set, else false for ip targets and true for instance targets.
LBC = "service.beta.kubernetes.io/"
LBC_CLASS = "service.k8s.aws/nlb"


def lbc_takes(service: dict, webhook: bool) -> bool:
    spec, annotations = service["spec"], service["metadata"].get("annotations") or {}
    lb_class = spec.get("loadBalancerClass")
    if lb_class is None and webhook and spec.get("type") == "LoadBalancer":
        lb_class = LBC_CLASS
    if lb_class is not None:
        return lb_class == LBC_CLASS
    lb_type = annotations.get(f"{LBC}aws-load-balancer-type", "")
    return lb_type == "nlb-ip" or (lb_type == "external" and
                                   annotations.get(f"{LBC}aws-load-balancer-nlb-target-type") in ("ip", "instance"))


def lbc_target_type(service: dict) -> str:
    annotations = service["metadata"].get("annotations") or {}
    if annotations.get(f"{LBC}aws-load-balancer-type") == "nlb-ip":
        return "ip"
    return annotations.get(f"{LBC}aws-load-balancer-nlb-target-type", "instance")


def lbc_preserves_client_ip(service: dict) -> bool:
    raw = (service["metadata"].get("annotations") or {}).get(f"{LBC}aws-load-balancer-target-group-attributes", "")
    attributes = dict(item.split("=", 1) for item in raw.split(",") if item)
    if "preserve_client_ip.enabled" in attributes:
        return attributes["preserve_client_ip.enabled"] == "true"
    return lbc_target_type(service) == "instance"


def mutator_webhook_on(run) -> bool:
    values = inputs(run.named("aws-load-balancer-controller", HELM))["values"]
    return values.get("enableServiceMutatorWebhook", True)


def test_internal_nlb_is_the_load_balancer_controllers_with_ip_targets_and_serves_no_metrics():
    """Finding: `aws-load-balancer-type: nlb` with the mutator webhook off went to the legacy in-tree
    controller (instance targets; nlb-target-type and scheme ignored). Now the controller takes it:
    internal, ip targets, client IP preservation off."""
    assert deployment_config("prod", "standard").expose == "internalNlb"
    run = plan("prod")
    nlb = service("prod", "standard", "nlb")
    webhook = mutator_webhook_on(run)
    assert webhook is False, "the stack turns the webhook off: the Service itself must select the controller"
    assert nlb["spec"]["type"] == "LoadBalancer"
    assert lbc_takes(nlb, webhook), nlb["metadata"]["annotations"]
    assert lbc_target_type(nlb) == "ip"
    assert nlb["metadata"]["annotations"][f"{LBC}aws-load-balancer-scheme"] == "internal"
    assert not lbc_preserves_client_ip(nlb), "the NetworkPolicy admits the NLB's addresses, not the clients'"
    assert {p["name"] for p in nlb["spec"]["ports"]} == {"http", "grpc"}
    # The annotations the stack had would not be the controller's with this webhook setting.
    legacy = {"spec": {"type": "LoadBalancer"}, "metadata": {"annotations": {
        f"{LBC}aws-load-balancer-type": "nlb", f"{LBC}aws-load-balancer-nlb-target-type": "ip"}}}
    assert not lbc_takes(legacy, webhook=False) and lbc_takes(legacy, webhook=True)
    outputs = run.outputs["tritonDeployments"].value
    assert {"externalHttpUrl", "externalGrpcUrl"} <= set(outputs["standard"])
    assert not [key for key in outputs["llm"] if key.startswith("external")]
    assert not [r for r in plan("dev").resources if r.name.endswith("-nlb")]


def test_internal_nlb_needs_the_load_balancer_controller():
    found = problems_with("prod", exposure={**stack_values("prod")["exposure"], "loadBalancerController": False})
    assert found == ["ai-platform:tritonDeployments[0].expose: internalNlb needs exposure.loadBalancerController: true "
                     "(only the AWS Load Balancer Controller provisions the NLB; nothing would serve the Service)"]


def test_llm_behind_an_internal_nlb_exports_its_external_openai_url():
    run = plan_with("dev", tritonDeployments=deployments_with("dev", 1, expose="internalNlb"))
    nlb = inputs(run.named("triton-llm-nlb"))
    assert {p["name"]: p["port"] for p in nlb["spec"]["ports"]} == {"openai": 9000, "http": 8000, "grpc": 8001}
    outputs = run.outputs["tritonDeployments"].value["llm"]
    assert {"externalHttpUrl", "externalGrpcUrl", "externalOpenaiUrl"} <= set(outputs)


@pytest.mark.parametrize("stack", STACKS)
def test_exported_urls_point_at_the_services_and_the_openai_url_has_no_trailing_slash(stack):
    outputs = plan(stack).outputs["tritonDeployments"].value
    for config in config_for(stack).tritonDeployments:
        svc = service(stack, config.name)["metadata"]
        host = f"{svc['name']}.{svc['namespace']}.svc.cluster.local"
        values = outputs[config.name]
        assert values["httpUrl"] == f"http://{host}:8000"
        assert values["grpcUrl"] == f"{host}:8001"
        assert values["modelPrefix"] == config.modelPrefix
        if config.mode == "llm":
            assert values["openaiUrl"] == f"http://{host}:9000/v1"
            assert values["metricsUrl"] == f"http://{host}:9000/metrics"
        else:
            assert "openaiUrl" not in values
            assert values["metricsUrl"] == f"http://{host}:8002/metrics"


def test_models_toolchain_reads_the_exported_outputs():
    """`platformctl models push --stack` / `smoke --stack` read these outputs: feed them the plan's."""
    from platformctl.models.outputs import model_location, server_urls

    run = plan("dev")
    outputs = {name: out.value for name, out in run.outputs.items()}
    assert model_location(outputs, "llm") == (bucket("dev"), "triton/llm")
    http, openai = server_urls(outputs, "llm")
    assert http == "http://llm.inference.svc.cluster.local:8000"
    assert openai == "http://llm.inference.svc.cluster.local:9000/v1"


# --- metrics and autoscaling ---------------------------------------------------------------------

@pytest.mark.parametrize("stack, name", CASES)
def test_service_monitor_scrapes_a_port_the_service_has_and_this_prometheus_selects_it(stack, name):
    run = plan(stack)
    monitor = inputs(run.named(f"triton-{name}-servicemonitor", SERVICE_MONITOR))
    [endpoint] = monitor["spec"]["endpoints"]
    svc = service(stack, name)
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    expected_port = 9000 if deployment_config(stack, name).mode == "llm" else 8002
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]}[endpoint["port"]] == expected_port
    assert selector_matches(monitor["spec"]["selector"], svc["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
    nlb = [r for r in run.resources if r.name == f"triton-{name}-nlb"]
    for other in nlb:  # never scraped twice through the load balancer Service
        assert not selector_matches(monitor["spec"]["selector"], inputs(other)["metadata"]["labels"])
    prometheus = inputs(run.named("monitoring-release", HELM))["values"]["prometheus"]["prometheusSpec"]
    assert selector_matches(effective_selector(prometheus, "serviceMonitor"), monitor["metadata"]["labels"])
    assert prometheus.get("serviceMonitorNamespaceSelector") in (None, {})


def adapter_rule(run) -> dict:
    release = inputs(run.named("prometheus-adapter", HELM))
    assert release["chart"] == "prometheus-adapter" and release["version"] == CHART_VERSION
    assert release["repositoryOpts"]["repo"] == CHART_REPOSITORY
    assert release["values"]["rules"]["default"] is False
    [rule] = release["values"]["rules"]["custom"]
    return rule


def test_hpa_scales_on_the_metric_the_adapter_publishes():
    run = plan("prod")
    config = deployment_config("prod", "standard")
    assert config.maxReplicas > config.minReplicas
    rule = adapter_rule(run)
    hpa = inputs(run.named("triton-standard-hpa", HPA))["spec"]
    [metric] = hpa["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == rule["name"]["as"]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "500m"}  # targetQueueComputeRatio 0.5
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (config.minReplicas, config.maxReplicas)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "standard"}
    behavior = hpa["behavior"]
    assert behavior["scaleUp"]["policies"] and behavior["scaleDown"]["policies"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] > behavior["scaleUp"]["stabilizationWindowSeconds"]
    # the HPA owns the replica count: the Deployment must not reset it on every update
    assert "replicas" not in deployment("prod", "standard")["spec"]


def test_adapter_rule_is_the_queue_to_compute_ratio_per_pod():
    rule = adapter_rule(plan("prod"))
    assert rule["seriesQuery"].startswith("nv_inference_queue_duration_us{")
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    query = rule["metricsQuery"]
    numerator, denominator = query.split(" / clamp_min(")
    assert "rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}" in numerator
    assert "rate(nv_inference_compute_infer_duration_us{<<.LabelMatchers>>}" in denominator
    assert numerator.startswith("sum by (<<.GroupBy>>)") and denominator.rstrip().endswith(", 1)")


def test_fixed_size_deployments_get_no_hpa_and_dev_runs_no_adapter():
    run = plan("dev")
    assert run.of_type(HPA) == []
    assert not [r for r in run.of_type(HELM) if r.name == "prometheus-adapter"]
    for config in config_for("dev").tritonDeployments:
        assert deployment("dev", config.name)["spec"]["replicas"] == config.minReplicas
    assert [r.name for r in plan("prod").of_type(HPA)] == ["triton-standard-hpa"]


# --- config errors -------------------------------------------------------------------------------

def problems_with(stack: str, **changes) -> list[str]:
    values, secret = stack_config.read_stack_files(stack)
    for key, value in changes.items():
        values[f"ai-platform:{key}"] = json.dumps(value)
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, stack)
    return caught.value.problems


def deployments_with(stack: str, index: int, **changes) -> list[dict]:
    deployments = [dict(d) for d in stack_values(stack)["tritonDeployments"]]
    deployments[index].update(changes)
    return deployments


def test_gpu_pool_must_name_a_pool_of_the_stack():
    found = problems_with("prod", tritonDeployments=deployments_with("prod", 1, gpuPool="llms"))
    assert found == ["ai-platform:tritonDeployments[1].gpuPool: no GPU pool named 'llms' in gpuNodeGroups (pools: inference, llm)"]


def test_more_gpus_per_replica_than_a_node_has_is_refused():
    found = problems_with("prod", tritonDeployments=deployments_with("prod", 0, gpusPerReplica=2))
    assert "ai-platform:tritonDeployments[0].gpusPerReplica: 2 GPUs do not fit on one node of pool inference (g6e.xlarge has 1)" in found


def test_peak_gpus_beyond_the_namespace_quota_and_the_pool_are_named():
    found = problems_with("dev", tritonDeployments=deployments_with("dev", 0, maxReplicas=2, rolloutStrategy="surge"))
    assert ("ai-platform:gpuNodeGroups[0].maxSize: pool inference offers 3 GPUs at maxSize 3 but Triton needs up to 4 "
            "(standard: (2 max + 1 surge) x 1 GPU; llm: (1 max) x 1 GPU)") in found
    assert any(p.startswith("ai-platform:gpuStack.scheduling.gpuQuotas.inference: is 3 but Triton in namespace inference needs up to 4")
               for p in found), found


@pytest.mark.parametrize("index, changes, expected", [
    (1, {"imageTag": "25.06-py3"}, "ai-platform:tritonDeployments[1].imageTag: mode llm runs the OpenAI frontend of the -vllm-python-py3 image"),
    (1, {"modelControl": {"mode": "poll"}}, "ai-platform:tritonDeployments[1].modelControl.mode: mode llm loads every model at start"),
    (0, {"tokenizer": "Qwen/Qwen2.5-0.5B-Instruct"}, "ai-platform:tritonDeployments[0].tokenizer: only applies to mode llm"),
    (0, {"modelControl": {"mode": "none", "pollSeconds": 10}}, "ai-platform:tritonDeployments[0].modelControl.pollSeconds: only applies to mode poll"),
    (0, {"imageTag": "latest"}, "ai-platform:tritonDeployments[0].imageTag: string should match pattern"),
    (0, {"modelPrefix": "/triton/standard/"}, "ai-platform:tritonDeployments[0].modelPrefix: string should match pattern"),
    (0, {"shmSize": "16Gi"}, "ai-platform:tritonDeployments[0].shmSize: must be below resources.memory (16Gi >= 8Gi)"),
    (0, {"minReplicas": 2, "maxReplicas": 1}, "ai-platform:tritonDeployments[0].maxReplicas: must be >= minReplicas (got 1 < 2)"),
    (1, {"name": "standard"}, "ai-platform:tritonDeployments[1].name: duplicate deployment name 'standard' (also tritonDeployments[0])"),
    # server src/command_line_parser.cc (v2.59.0), --load-model: "Specifying --load-model=* in
    # conjunction with another --load-model argument will result in error."
    (0, {"modelControl": {"mode": "explicit", "loadModels": ["*", "add_sub"]}},
     "ai-platform:tritonDeployments[0].modelControl.loadModels: '*' (every model under the prefix) must be the only entry"),
    (0, {"modelControl": {"mode": "explicit", "loadModels": ["add_*"]}},
     "ai-platform:tritonDeployments[0].modelControl.loadModels[0]: string should match pattern"),
])
def test_each_bad_deployment_setting_is_reported_by_key(index, changes, expected):
    found = problems_with("dev", tritonDeployments=deployments_with("dev", index, **changes))
    assert any(p.startswith(expected) for p in found), found


def test_prod_standard_loads_what_its_prefix_holds_so_the_first_deploy_needs_no_model():
    """`--load-model=*` in explicit mode loads every model of the repository at start and none,
    without error, from an empty one (triton-inference-server/core r25.06
    src/model_repository_manager/model_repository_manager.cc, ModelRepositoryManager::Create:
    `*` polls the repository instead of loading names). A named --load-model missing from the
    bucket makes tritonserver exit (exit-on-error defaults to true, server src/command_line_parser.h
    at v2.59.0): prod named add_sub, which the stack never puts in the bucket (issue 12, #3)."""
    [args] = [container("prod", "standard")["args"]]
    assert [a for a in args if a.startswith("--load-model")] == ["--load-model=*"]
    assert "--model-control-mode=explicit" in args
    stack_objects = {inputs(o)["key"] for o in plan("prod").of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    for deployment in config_for("prod").tritonDeployments:
        for model in deployment.modelControl.startup_models:
            assert any(key.startswith(f"{deployment.modelPrefix}/{model}/") for key in stack_objects), model


def test_config_errors_stop_the_program_before_anything_is_planned():
    with pytest.raises(stack_config.ConfigError):
        plan_with("prod", tritonDeployments=deployments_with("prod", 1, gpuPool="nope"))



def test_internal_nlb_waits_for_the_load_balancer_controller():
    """Only the controller provisions the NLB (the in-tree controller leaves `external` Services
    alone): the Service, which Pulumi waits on until it has an address, comes after it."""
    run = plan("prod")
    controller = run.named("aws-load-balancer-controller", "kubernetes:helm.sh/v3:Release")
    nlb_services = [r for r in run.of_type("kubernetes:core/v1:Service")
                    if inputs(r)["spec"].get("type") == "LoadBalancer"]
    assert nlb_services, "prod's standard deployment is exposed through an internal NLB"
    for service_resource in nlb_services:
        assert controller.urn in service_resource.dependencies, service_resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_standard_mode_runs_on_a_read_only_root_with_a_writable_tmp(stack):
    spec = deployment(stack, "standard")["spec"]["template"]["spec"]
    triton = container(stack, "standard")
    assert triton["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert {m["mountPath"]: volumes[m["name"]] for m in triton["volumeMounts"]}["/tmp"] == {"name": "tmp", "emptyDir": {}}
    # llm keeps a writable root (vLLM caches), and says why to checkov.
    assert container(stack, "llm")["securityContext"]["readOnlyRootFilesystem"] is False
    annotations = deployment(stack, "llm")["metadata"]["annotations"]
    assert any(v.startswith("CKV_K8S_22=") for v in annotations.values())
    assert not any(v.startswith("CKV_K8S_22=") for v in deployment(stack, "standard")["metadata"]["annotations"].values())


# --- who reaches each exported URL ----------------------------------------------------------------
# The README's table names, for every URL output, the clients it is for; each named client must have
# a path the plan's NetworkPolicies admit (evaluated with platformctl.security_scan's model), so an
# exported URL nobody may call, or a client the README promises but the policies refuse, fails here.

URL_TABLE = re.compile(r"<!-- triton-url-clients:begin -->\n(.*?)\n<!-- triton-url-clients:end -->", re.S)
# kube-prometheus-stack's Prometheus pods, as the Prometheus operator labels its StatefulSet.
PROMETHEUS_POD = scan.Pod("monitoring", (("app.kubernetes.io/name", "prometheus"),))


def readme_url_clients() -> dict[str, list[str]]:
    match = URL_TABLE.search((stack_config.PROJECT_DIR / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md lost its table of who reaches each Triton URL"
    table = {}
    for row in match.group(1).splitlines()[2:]:
        outputs, clients = (cell.strip() for cell in row.strip().strip("|").split("|"))
        for key in re.findall(r"`(\w+)`", outputs):
            table[key] = [client.strip() for client in clients.split(";")]
    return table


def url_port(values: dict, key: str) -> int:
    """The port of a URL output; an external URL (a hostname known only after deploy) has the
    port of its in-cluster twin."""
    if key.startswith("external"):
        key = key[len("external")].lower() + key[len("external") + 1:]
    url = values[key]
    return urlsplit(url if "//" in url else f"//{url}").port


def target_port(service: dict, port: int, pod: scan.Pod) -> int | None:
    for entry in service["spec"]["ports"]:
        if entry["port"] == port:
            return pod.resolve(entry.get("targetPort", port))
    return None


class UrlPaths:
    """One deployment of one plan: can each kind of client the README names reach a port?"""

    def __init__(self, run, config, deployment_config):
        self.run, self.config, self.d = run, config, deployment_config
        objs = [inputs(r) for r in run.kubernetes_objects()]
        private = subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[1]
        self.model = scan.NetworkModel.from_objects(objs, private)
        # An address of the internal NLB: in the subnets tagged kubernetes.io/role/internal-elb (the
        # private ones; aws-load-balancer-controller docs/deploy/subnet_discovery.md).
        self.nlb_ip = str(next(ipaddress.ip_network(private[0]).hosts()) + 20)
        self.triton = scan.pod_of(inputs(run.named(f"triton-{deployment_config.name}-deployment")))
        self.service = inputs(run.named(f"triton-{deployment_config.name}-service"))
        self.webuis = [scan.pod_of(o) for o in objs if o.get("kind") == "Deployment"
                       and "open-webui" in json.dumps(o["spec"]["template"]["spec"]["containers"])]
        self.values = run.outputs["tritonDeployments"].value[deployment_config.name]
        gateway = [r for r in run.resources if r.name == "inference-gateway-deployment"]
        self.gateway = scan.pod_of(inputs(gateway[0])) if gateway else None
        self.via_gateway = bool(gateway) and config.openWebUi.viaGateway

    def check(self, client: str, port: int) -> tuple[bool, bool]:
        """(applies to this deployment, admitted) for a client as the README names it."""
        target = target_port(self.service, port, self.triton)
        if client == "`clients`":
            pods = [scan.Pod(c.namespace, tuple(c.podLabels.items())) for c in self.d.clients]
            return bool(pods), all(self.model.allowed(pod, self.triton, target) for pod in pods)
        if client == "OpenWebUI (without `viaGateway`)":
            if self.via_gateway:  # it calls the gateway: Triton must not admit it any more
                # (judged without an internal NLB's policy, which admits pod addresses by necessity)
                assert not any(without_nlb_policies(self.model).allowed(ui, self.triton, target)
                               for ui in self.webuis), "OpenWebUI still admitted"
            return bool(self.webuis) and not self.via_gateway, all(self.model.allowed(ui, self.triton, target) for ui in self.webuis)
        if client == "the inference gateway":
            # standard: its KServe-v2 pass-through calls httpUrl; llm: its OpenAI routes call openaiUrl.
            applies = self.gateway is not None and (self.d.mode == "standard" or port == 9000)
            return applies, applies and self.model.allowed(self.gateway, self.triton, target)
        if client == "Prometheus":
            return True, self.model.ingress_allowed(self.triton, PROMETHEUS_POD, target)
        if client == "`kubectl port-forward`":
            # Enters the pod's network namespace and dials localhost: no NetworkPolicy applies
            # (containerd internal/cri/server/sandbox_portforward_linux.go); it needs the Service
            # port, a container port behind it, and the exported command forwarding it.
            command = self.values["portForward"].split()
            forwards = f"svc/{self.service['metadata']['name']}" in command and f"{port}:{port}" in command \
                and command[command.index("-n") + 1] == self.service["metadata"]["namespace"]
            return True, forwards and target in {number for _, number in self.triton.ports}
        if client == "the internal NLB":
            if self.d.expose != "internalNlb":
                return False, False
            nlb = inputs(self.run.named(f"triton-{self.d.name}-nlb"))
            nlb_target = target_port(nlb, port, self.triton)
            return True, (nlb_target is not None and lbc_takes(nlb, mutator_webhook_on(self.run))
                          and lbc_target_type(nlb) == "ip" and not lbc_preserves_client_ip(nlb)
                          and self.model.ingress_allowed(self.triton, self.nlb_ip, nlb_target))
        raise AssertionError(f"README.md names a client this test cannot check: {client!r}")


def url_path_problems(run, config) -> tuple[list[str], list[str]]:
    table = readme_url_clients()
    problems, checked = [], []
    for d in config.tritonDeployments:
        paths = UrlPaths(run, config, d)
        for key in sorted(k for k in paths.values if k.endswith("Url")):
            if key not in table:
                problems.append(f"{d.name}.{key}: exported, but README.md does not say who reaches it")
                continue
            port = url_port(paths.values, key)
            results = {client: paths.check(client, port) for client in table[key]}
            applicable = [client for client, (applies, _) in results.items() if applies]
            if not applicable:
                problems.append(f"{d.name}.{key}: none of the clients README.md names ({table[key]}) applies")
            for client in applicable:
                checked.append(f"{d.name}.{key} <- {client}")
                if not results[client][1]:
                    problems.append(f"{d.name}.{key} (port {port}): README.md names {client}, but the plan does not let it in")
    return problems, checked


@pytest.mark.parametrize("stack", STACKS)
def test_every_exported_url_is_reachable_by_the_clients_the_readme_names(stack):
    problems, checked = url_path_problems(plan(stack), config_for(stack))
    print(f"{stack}: {checked}")
    assert not problems, "\n".join(problems)


def variant_with_every_kind_of_client():
    """dev with in-cluster clients on both deployments, OpenWebUI in another namespace and the llm
    behind an internal NLB: every row and client of the README table applies."""
    deployments = deployments_with("dev", 0, clients=[{"namespace": "ci-runners"}])
    deployments[1].update(expose="internalNlb", clients=[
        {"namespace": "ci-runners", "podLabels": {"actions.github.com/scale-set-name": "ai-platform"}}])
    overrides = {"tritonDeployments": deployments,
                 "openWebUi": {**stack_values("dev")["openWebUi"], "namespace": "chat", "viaGateway": False}}
    values, secret = stack_config.read_stack_files("dev")
    values.update({f"ai-platform:{key}": json.dumps(value) for key, value in overrides.items()})
    return plan_with("dev", **overrides), stack_config.parse(values, secret, "dev")


def test_every_kind_of_client_reaches_the_urls_the_readme_gives_it():
    """Would have caught findings 9 and 10: OpenWebUI outside namespace `openwebui` was refused, and
    no in-cluster client could call httpUrl/grpcUrl. With OpenWebUI calling Triton directly (no
    viaGateway), both it and the gateway are admitted."""
    run, config = variant_with_every_kind_of_client()
    problems, checked = url_path_problems(run, config)
    assert not problems, "\n".join(problems)
    for expected in ("standard.httpUrl <- `clients`", "llm.grpcUrl <- `clients`",
                     "llm.openaiUrl <- OpenWebUI (without `viaGateway`)", "llm.openaiUrl <- the inference gateway",
                     "standard.httpUrl <- the inference gateway",
                     "llm.externalOpenaiUrl <- the internal NLB", "standard.metricsUrl <- Prometheus"):
        assert expected in checked, checked


def without_nlb_policies(model: scan.NetworkModel) -> scan.NetworkModel:
    """The llm sits behind the NLB in the variant, whose policy admits pod addresses by necessity
    (docs/security.md): judge the pod selectors without it."""
    return scan.NetworkModel([p for p in model.policies if not scan.admits_pod_network(p)],
                             model.pod_cidrs, model.namespace_labels)


def test_clients_are_admitted_by_namespace_and_labels_on_the_serving_ports_only():
    run, config = variant_with_every_kind_of_client()
    paths = UrlPaths(run, config, config.tritonDeployments[0])
    runner = scan.Pod("ci-runners", (("ai-platform/triton-client", "true"),))
    assert paths.model.allowed(runner, paths.triton, 8000) and paths.model.allowed(runner, paths.triton, 8001)
    assert not paths.model.allowed(runner, paths.triton, 8002), "metrics stay Prometheus's"
    assert not paths.model.allowed(scan.Pod("ci-runners", (("app", "other"),)), paths.triton, 8000)
    assert not paths.model.allowed(scan.Pod("default", runner.labels), paths.triton, 8000)
    llm = UrlPaths(run, config, config.tritonDeployments[1])
    strict = without_nlb_policies(llm.model)
    assert not strict.allowed(runner, llm.triton, 9000), "llm admits only the runner pods its own entry labels"
    assert strict.allowed(scan.Pod("ci-runners", (("actions.github.com/scale-set-name", "ai-platform"),)), llm.triton, 9000)


def test_openai_clients_follow_the_openwebui_namespace_and_vanish_without_openwebui():
    """Finding 9: the policy named namespace `openwebui` whatever `openWebUi.namespace` said."""
    run, config = variant_with_every_kind_of_client()
    paths = UrlPaths(run, config, config.tritonDeployments[1])
    [ui] = paths.webuis
    strict = without_nlb_policies(paths.model)
    assert ui.namespace == "chat" and strict.allowed(ui, paths.triton, 9000)
    assert not strict.allowed(scan.Pod("openwebui", ui.labels), paths.triton, 9000)
    off = plan_with("dev", openWebUi={**stack_values("dev")["openWebUi"], "enabled": False},
                    gateway={**stack_values("dev")["gateway"], "enabled": False})
    assert not [r for r in off.resources if "allow-openai-client" in r.name]


@pytest.mark.parametrize("clients, expected", [
    ([{"namespace": "ci", "podLabels": {}}], "ai-platform:tritonDeployments[0].clients[0].podLabels: name at least one "
                                             "label: an empty selector would admit every pod of namespace ci"),
    ([{"namespace": "CI"}], "ai-platform:tritonDeployments[0].clients[0].namespace: string should match pattern"),
    ([{"namespace": "ci", "podLabels": {"app": "not a value"}}], "ai-platform:tritonDeployments[0].clients[0].podLabels.app: "
                                                                 "string should match pattern"),
])
def test_bad_clients_are_refused_by_key(clients, expected):
    found = problems_with("dev", tritonDeployments=deployments_with("dev", 0, clients=clients))
    assert any(p.startswith(expected) for p in found), found
