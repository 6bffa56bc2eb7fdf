"""`ai-platform:gpuProvisioner: karpenter`: the config it refuses, what the stack plans in each mode,
and what reads GPU capacity (policy pack, cost, first-deploy check). Karpenter facts cited at
aws/karpenter-provider-aws tag v1.14.0 (see components/karpenter_manifests.py)."""

from __future__ import annotations

import pytest

import stack_config

NETWORK = {"availabilityZones": ["us-west-2a", "us-west-2b"]}


def _problems(**keys) -> list[str]:
    values = {"aws:region": "us-west-2"}
    values.update({f"ai-platform:{k}": stack_config.engine_value(v) for k, v in keys.items()})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, stack="test")
    return caught.value.problems


def _pool(**changes):
    return {"name": "inference", "instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "maxSize": 2, **changes}


def test_default_is_node_groups():
    assert stack_config.load_from_files("dev").gpuProvisioner == "nodeGroups"
    assert stack_config.load_from_files("prod").gpuProvisioner == "nodeGroups"


def test_karpenter_refuses_warm_nodes_mixed_mig_and_autoscaler_settings_all_at_once():
    """A NodePool has no minimum (karpenter.sh_nodepools.yaml has `limits`, no min), and Karpenter
    sizes nodes from EC2's GPU count, so nvidia.com/mig-<profile> requests never launch one
    (docs/karpenter.md, "GPU sharing with Karpenter")."""
    found = _problems(
        network=NETWORK, gpuProvisioner="karpenter", clusterAutoscaler={"expander": "least-waste"},
        gpuNodeGroups=[_pool(minSize=1, desiredSize=1),
                       _pool(name="mig", instanceTypes=["p4d.24xlarge"], capacityType="ON_DEMAND",
                             sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.5gb"})],
    )
    text = "\n".join(found)
    for key in ("gpuNodeGroups[0].minSize", "gpuNodeGroups[0].desiredSize", "gpuNodeGroups[1].sharing.migStrategy",
                "clusterAutoscaler"):
        assert key in text, text


def test_karpenter_accepts_a_disabled_autoscaler_and_node_groups_keep_their_rules():
    values = {"aws:region": "us-west-2", "ai-platform:network": stack_config.engine_value(NETWORK)}
    ok = stack_config.parse({**values, "ai-platform:gpuProvisioner": "karpenter",
                             "ai-platform:clusterAutoscaler": stack_config.engine_value({"enabled": False}),
                             "ai-platform:gpuNodeGroups": stack_config.engine_value([_pool()])}, stack="test")
    assert ok.gpuProvisioner == "karpenter"
    warm = stack_config.parse({**values, "ai-platform:gpuNodeGroups": stack_config.engine_value([_pool(minSize=1, desiredSize=1)]),
                               "ai-platform:clusterAutoscaler": stack_config.engine_value({"expander": "least-waste"})},
                              stack="test")
    assert warm.gpuProvisioner == "nodeGroups"


def test_unknown_provisioner_is_refused():
    assert any("gpuProvisioner" in p for p in _problems(network=NETWORK, gpuProvisioner="fargate", gpuNodeGroups=[_pool()]))


# --- the dev stack with gpuProvisioner: karpenter, on the mock harness ---------------------------

import copy  # noqa: E402
import json  # noqa: E402

from components import karpenter_manifests as km  # noqa: E402
from platformctl import first_deploy, policy_check  # noqa: E402
from policy import rules  # noqa: E402
from tests.harness import COMPUTED, plan, plan_with, stack_values  # noqa: E402
from tests.karpenter_v1 import EC2NodeClass, NodePool  # noqa: E402

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def karpenter_dev():
    return plan_with("dev", gpuProvisioner="karpenter", clusterAutoscaler={"enabled": False})


def _charts(run) -> dict[str, dict]:
    return {r.public_inputs()["chart"]: r.public_inputs() for r in run.of_type(RELEASE)}


def test_karpenter_dev_plans_node_pools_a_node_class_the_controller_queue_and_rules_and_no_gpu_node_groups(karpenter_dev):
    """Interruption handling per the upstream getting-started CloudFormation (aws/karpenter-provider-aws
    v1.14.0 website/.../cloudformation.yaml): a queue and four rules (+ capacity reservations)."""
    assert [r.public_inputs()["metadata"]["name"] for r in karpenter_dev.of_type(NODE_POOL)] == ["inference"]
    assert [r.public_inputs()["metadata"]["name"] for r in karpenter_dev.of_type(NODE_CLASS)] == ["gpu-al2023-100gib"]
    assert [r.name for r in karpenter_dev.of_type(NODE_GROUP)] == ["cluster-system"]
    charts = _charts(karpenter_dev)
    assert "cluster-autoscaler" not in charts
    assert charts[km.CRD_CHART]["version"] == charts[km.CHART]["version"] == "1.14.0"
    assert charts[km.CHART]["skipCrds"] is True  # the karpenter-crd release owns the CRDs
    assert charts[km.CHART]["values"]["nodeSelector"]["ai-platform/node-role"] == "system"
    assert len(karpenter_dev.of_type("aws:sqs/queue:Queue")) == 1
    patterns = [json.loads(r.public_inputs()["eventPattern"]) for r in karpenter_dev.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert sorted(p["detail-type"][0] for p in patterns) == sorted(p["detail-type"][0] for p in km.INTERRUPTION_RULES.values())
    assert len(karpenter_dev.of_type("aws:cloudwatch/eventTarget:EventTarget")) == len(km.INTERRUPTION_RULES)


def test_node_pools_wait_for_the_controller_and_gpu_pods_wait_for_the_node_pools(karpenter_dev):
    controller = karpenter_dev.named("karpenter", RELEASE)
    crds = karpenter_dev.named("karpenter-crd", RELEASE)
    assert crds.urn in controller.dependencies
    pool = karpenter_dev.of_type(NODE_POOL)[0]
    node_class = karpenter_dev.of_type(NODE_CLASS)[0]
    assert controller.urn in pool.dependencies and node_class.urn in pool.dependencies
    validation = [r for r in karpenter_dev.of_type("kubernetes:batch/v1:Job") if "validate" in r.name]
    assert validation and all({pool.urn, controller.urn} <= set(job.dependencies) for job in validation)


def test_discovery_tags_on_private_subnets_and_cluster_security_group(karpenter_dev):
    """The EC2NodeClass selects subnets and security groups by `karpenter.sh/discovery: <cluster>`."""
    private = [r for r in karpenter_dev.of_type("aws:ec2/subnet:Subnet") if "private" in r.name]
    assert private and all(r.public_inputs()["tags"][km.DISCOVERY_TAG] == "ai-platform-dev" for r in private)
    tags = karpenter_dev.of_type("aws:ec2/tag:Tag")
    assert [(t.public_inputs()["key"], t.public_inputs()["value"]) for t in tags] == [(km.DISCOVERY_TAG, "ai-platform-dev")]
    node_class = karpenter_dev.of_type(NODE_CLASS)[0].public_inputs()["spec"]
    assert node_class["subnetSelectorTerms"] == node_class["securityGroupSelectorTerms"] == [{"tags": {km.DISCOVERY_TAG: "ai-platform-dev"}}]


def test_node_pool_and_node_class_from_the_plan_are_valid_v1_objects(karpenter_dev):
    """Field by field against tests/karpenter_v1.py (from the v1.14.0 CRDs). The node role's name is
    unknown at preview; a stand-in takes its place."""
    for resource, model in ((karpenter_dev.of_type(NODE_POOL)[0], NodePool), (karpenter_dev.of_type(NODE_CLASS)[0], EC2NodeClass)):
        inputs = copy.deepcopy(resource.public_inputs())
        manifest = {k: inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        if manifest["kind"] == "EC2NodeClass":
            assert manifest["spec"]["role"] == COMPUTED
            manifest["spec"]["role"] = "ai-platform-dev-cluster-node-1234567"
        assert model.model_validate(manifest).model_dump(exclude_unset=True) == manifest


def test_node_pool_carries_the_pool_label_taint_and_gpu_limit(karpenter_dev):
    spec = karpenter_dev.of_type(NODE_POOL)[0].public_inputs()["spec"]
    assert spec["template"]["metadata"]["labels"][km.POOL_LABEL] == "inference"
    assert spec["template"]["spec"]["taints"] == [km.GPU_TAINT]
    max_size = stack_values("dev")["gpuNodeGroups"][0]["maxSize"]
    assert spec["limits"] == {"nvidia.com/gpu": max_size}  # maxSize x 1 GPU (g6.xlarge, g5.xlarge)


def test_controller_role_policy_fits_one_inline_policy():
    """IAM counts an inline policy's characters without whitespace, 10,240 per role at most (IAM
    User Guide, reference_iam-quotas): the controller policy with long names must fit."""
    scope = km.ControllerScope("ai-platform-" + "x" * 40, "ap-southeast-2", "123456789012",
                               "arn:aws:iam::123456789012:role/" + "r" * 64, "arn:aws:sqs:ap-southeast-2:123456789012:" + "q" * 80)
    document = km.controller_policy(scope)
    assert len("".join(document.split())) < 10240
    sids = [s["Sid"] for s in json.loads(document)["Statement"]]
    assert len(sids) == len(set(sids)) == sum(len(json.loads(d)["Statement"]) for d in km.controller_policies(scope).values())


def test_karpenter_dev_passes_first_deploy_and_policy_checks(karpenter_dev):
    doc = karpenter_dev.to_json()
    report = first_deploy.check(doc)
    assert report.exit_code == 0, [f.message for s in report.steps for f in s.findings if f.status == "FAIL"]
    scale_up = [f.message for s in report.steps for f in s.findings if f.rule == "scale-up"]
    assert scale_up and all("Karpenter launches one" in m for m in scale_up)
    result = policy_check.check_plan(doc)
    assert result.mandatory == [] and result.exit_code == 0


def test_an_untainted_node_pool_fails_the_policy_check(karpenter_dev):
    doc = copy.deepcopy(karpenter_dev.to_json())
    pool = next(r for r in doc["resources"] if r["type"] == NODE_POOL)
    pool["inputs"]["spec"]["template"]["spec"]["taints"] = []
    result = policy_check.check_plan(doc, rules.PackConfig(source=None))  # built-in levels: mandatory
    assert [(f.policy, f.resource_type) for f in result.mandatory] == [("gpu-node-group-tainted", NODE_POOL)]
    assert result.exit_code == 1


def test_node_pool_limits_feed_the_gpu_budget_and_node_group_limits():
    props = {"metadata": {"name": "big"}, "spec": {"limits": {"nvidia.com/gpu": 48}, "template": {
        "metadata": {"labels": {km.POOL_LABEL: "big"}}, "spec": {"taints": [km.GPU_TAINT], "requirements": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6.12xlarge"]},
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}]}}}}
    resource = rules.StackResource(NODE_POOL, "big", "urn:big", props)
    budget = rules.check_gpu_budget([resource], rules.GpuBudgetSettings(maxGpus=32))
    assert budget and "48" in budget[0].message
    limits = rules.check_gpu_node_group_limits(NODE_POOL, props, rules.GpuNodeGroupLimitsSettings(
        maxSize=6, allowedCapacityTypes=["SPOT"]))
    text = " ".join(v.message for v in limits)
    assert "maxSize=12" in text and "capacityType=ON_DEMAND" in text  # 48 / 4 GPUs; the on-demand fallback


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_node_groups_mode_plans_no_karpenter(stack):
    run = plan(stack)
    assert not run.of_type(NODE_POOL) and not run.of_type(NODE_CLASS) and not run.of_type("aws:sqs/queue:Queue")
    assert all(km.DISCOVERY_TAG not in (r.public_inputs().get("tags") or {}) for r in run.of_type("aws:ec2/subnet:Subnet"))


# --- moving between the modes: keepGpuNodeGroups -----------------------------------------------

def test_keep_gpu_node_groups_only_with_karpenter_and_then_allows_warm_node_groups():
    assert any("keepGpuNodeGroups" in p for p in _problems(network=NETWORK, keepGpuNodeGroups=True, gpuNodeGroups=[_pool()]))
    values = {"aws:region": "us-west-2", "ai-platform:network": stack_config.engine_value(NETWORK),
              "ai-platform:gpuProvisioner": "karpenter", "ai-platform:keepGpuNodeGroups": "true",
              "ai-platform:gpuNodeGroups": stack_config.engine_value([_pool(minSize=1, desiredSize=1)])}
    assert stack_config.parse(values, stack="test").keepGpuNodeGroups


def test_keeping_node_groups_keeps_their_urns_beside_the_node_pools_without_autoscaler():
    """The move keeps the node groups' nodes (same URNs: nothing replaced) while Karpenter is added;
    GPU pods wait for both; only Karpenter adds capacity (no cluster-autoscaler)."""
    before = plan("dev")
    during = plan_with("dev", gpuProvisioner="karpenter", keepGpuNodeGroups=True, clusterAutoscaler={"enabled": False})
    groups = lambda run: {r.urn: r.public_inputs() for r in run.of_type(NODE_GROUP)}  # noqa: E731
    assert groups(during) == groups(before)
    assert "cluster-autoscaler" not in _charts(during) and during.of_type(NODE_POOL)
    job = next(r for r in during.of_type("kubernetes:batch/v1:Job") if "validate" in r.name)
    gpu_group = next(r.urn for r in during.of_type(NODE_GROUP) if r.name != "cluster-system")
    assert {gpu_group, during.of_type(NODE_POOL)[0].urn} <= set(job.dependencies)
    assert first_deploy.check(during.to_json()).exit_code == 0


# --- cost and preflight in karpenter mode ---------------------------------------------------------

from platformctl import cost, preflight  # noqa: E402


def _karpenter_config():
    return stack_config.load_from_files("dev").model_copy(update={"gpuProvisioner": "karpenter"})


def test_cost_prices_a_node_pool_at_zero_idle_and_on_demand_at_peak():
    """SPOT pools' NodePools allow on-demand (karpenter_manifests.CAPACITY_TYPES): the budget's peak
    must not assume spot prices."""
    nodegroups, karpenter = cost.estimate(stack_config.load_from_files("dev")), cost.estimate(_karpenter_config())
    pool = karpenter.item("GPU NodePool inference")
    assert pool.idle_hourly == 0
    assert pool.peak_hourly > nodegroups.item("GPU pool inference").peak_hourly  # dev's pool is SPOT


def test_preflight_counts_the_on_demand_fallback_quota_and_the_pinned_ami():
    groups = preflight.node_groups(_karpenter_config())
    fallback = [g for g in groups if g.label == "inference (on-demand fallback)"]
    assert fallback and fallback[0].capacity == "ON_DEMAND" and fallback[0].max == stack_values("dev")["gpuNodeGroups"][0]["maxSize"]
    assert not any("fallback" in g.label for g in preflight.node_groups(stack_config.load_from_files("dev")))
    # aws/karpenter-provider-aws v1.14.0 pkg/providers/amifamily/al2023.go `resolvePath`
    assert preflight.pinned_ami_parameter("1.33", "AL2023_x86_64_NVIDIA") == (
        "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/"
        "amazon-eks-node-al2023-x86_64-nvidia-1.33-v20260714/image_id")
    assert preflight.pinned_ami_parameter("1.33", "BOTTLEROCKET_x86_64_NVIDIA") is None
