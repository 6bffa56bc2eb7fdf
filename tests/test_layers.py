"""Each layer on the mock harness, built from its config slice as __main__.py builds it: what it
registers, what it hands on (the cluster context, the GPU stack's readiness), and that every
component it moved answers to its old URN."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.layers import Apps, AppsArgs, Foundation, FoundationArgs, GpuStack, GpuStackArgs, Inference, InferenceArgs
from components.network import subnet_cidrs
from components.triton import in_cluster_host
from tests.harness import config_for, inputs, run

LAYER_TYPES = {"ai-platform:layers:Foundation", "ai-platform:layers:GpuStack", "ai-platform:layers:Inference", "ai-platform:layers:Apps"}


def foundation(config, stack: str = "dev") -> Foundation:
    aws_provider = aws.Provider("aws", region=config.region)
    return Foundation("foundation", FoundationArgs(
        stack=stack, region=config.region, partition=config.partition, network=config.network, cluster=config.cluster,
        gpu_node_groups=tuple(config.gpuNodeGroups), cluster_autoscaler=config.clusterAutoscaler, ci_role=config.ciRole,
        exposure=config.exposure,
    ), pulumi.ResourceOptions(providers={"aws": aws_provider}))


def layers(config, upto: str, found: dict):
    """Build the layers up to `upto` ("foundation", "gpu", "inference", "apps"), as __main__.py does."""
    base = foundation(config)
    found["foundation"] = base
    cluster = base.context
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.k8s_provider})
    if upto == "foundation":
        return
    gpu = found["gpu"] = GpuStack("gpu-stack", GpuStackArgs(
        gpu_stack=config.gpuStack, gpu_node_groups=tuple(config.gpuNodeGroups),
        triton_deployments=tuple(config.tritonDeployments), grafana_hostname=config.exposure.grafanaHostname,
    ), cluster, on_cluster)
    if upto == "gpu":
        return
    inference = found["inference"] = Inference("inference", InferenceArgs(
        deployments=tuple(config.tritonDeployments), repository=config.modelRepository, protect_data=config.protectData,
        openwebui=config.openWebUi,
    ), cluster, gpu.readiness, on_cluster)
    if upto == "inference":
        return
    found["apps"] = Apps("apps", AppsArgs(openwebui=config.openWebUi, protect_data=config.protectData),
                         cluster, inference.openai_base_urls, on_cluster)


def build(upto: str, stack: str = "dev"):
    found: dict = {}
    config = config_for(stack)
    return run(lambda: layers(config, upto, found), stack=stack), found


def test_foundation_registers_no_workload_and_hands_on_a_cluster_context():
    result, found = build("foundation")
    kinds = {inputs(r).get("kind") for r in result.kubernetes_objects()}
    assert kinds == {"StorageClass"}  # the cluster's; add-ons come as Helm releases
    assert {r.name for r in result.of_type("kubernetes:helm.sh/v3:Release")} == {"cluster-autoscaler", "aws-load-balancer-controller"}
    context = found["foundation"].context
    assert context.cluster_name == "ai-platform-dev" and context.region == "us-west-2"
    assert context.autoscaler is not None and context.load_balancer_controller is not None
    assert len(context.gpu_node_groups) == len(config_for("dev").gpuNodeGroups)
    assert context.exposure is None and context.alb_source is None  # dev exposes no UI


def test_the_context_decides_the_alb_source_once():
    config = config_for("dev")
    exposure = config.exposure.model_copy(update={
        "certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666",
        "scheme": "internet-facing", "grafanaHostname": "grafana.example.com"})
    found: dict = {}
    run(lambda: found.setdefault("f", foundation(config.model_copy(update={"exposure": exposure}))))
    source = found["f"].context.alb_source
    assert source.cidrs == tuple(subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[0])
    assert source.internal is False


def test_gpu_stack_exports_its_readiness():
    result, found = build("gpu")
    readiness = found["gpu"].readiness
    config = config_for("dev")
    assert readiness.prometheus_release == "kube-prometheus-stack"
    assert set(readiness.validation_jobs) == {pool.name for pool in config.gpuNodeGroups if config.gpuStack.validation.enabled}
    assert set(readiness.namespaces) == set(config.gpuStack.scheduling.gpuQuotas)
    assert len(readiness.priority_classes) >= 2
    assert not [r for r in result.resources if r.type == "ai-platform:triton:TritonServer"]


def test_inference_waits_for_the_gpu_stack():
    """Each Triton Deployment waits for the monitoring release (ServiceMonitor CRD), the priority
    classes and its pool's validation Job, all handed over as readiness."""
    result, _ = build("inference")
    release = result.named("monitoring-release").urn
    classes = {r.urn for r in result.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    for deployment in config_for("dev").tritonDeployments:
        deps = set(result.named(f"triton-{deployment.name}-deployment").dependencies)
        assert release in deps and classes <= deps
        assert result.named(f"gpu-operator-validate-{deployment.gpuPool}").urn in deps


def test_apps_get_the_openai_endpoints_of_the_llm_deployments():
    result, found = build("apps")
    env = {e["name"]: e for e in inputs(result.named("openwebui-deployment"))["spec"]["template"]["spec"]["containers"][0]["env"]}
    llm = [d for d in config_for("dev").tritonDeployments if d.mode == "llm"]
    assert env["OPENAI_API_BASE_URLS"]["value"] == ";".join(
        f"http://{in_cluster_host(d.name, d.namespace)}:9000/v1" for d in llm)
    assert llm, "dev has no llm deployment: the test would check nothing"


def test_every_component_a_layer_moved_answers_to_its_old_top_level_urn():
    result, _ = build("apps")
    layer_urns = {r.urn for r in result.resources if r.type in LAYER_TYPES}
    moved = [r for r in result.resources if r.parent in layer_urns and not r.custom]
    assert len(moved) >= 10
    for component in moved:
        assert component.aliases == [f"urn:pulumi:dev::ai-platform::{component.type}::{component.name}"], component.urn


def test_the_stack_is_the_aws_provider_and_the_four_layers():
    from tests.harness import plan
    for stack in ("dev", "prod"):
        top = {(r.type, r.name) for r in plan(stack).resources if r.parent.endswith(f"pulumi:pulumi:Stack::ai-platform-{stack}")}
        assert top == {("pulumi:providers:aws", "aws"), ("ai-platform:layers:Foundation", "foundation"),
                       ("ai-platform:layers:GpuStack", "gpu-stack"), ("ai-platform:layers:Inference", "inference"),
                       ("ai-platform:layers:Apps", "apps")}
