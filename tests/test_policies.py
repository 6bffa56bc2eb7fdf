"""The CrossGuard policies, called directly on realistic engine-level (camelCase) inputs.

Each policy: compliant and violating cases, plus unknown ("<computed>") values, which must give a
"not evaluated" note instead of a pass, a violation or a crash. The live-engine path (pulumi_policy's
analyzer servicer, fed the protobuf requests the CLI sends) is exercised without starting a server.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format, struct_pb2

from policy import rules
from policy.rules import (
    ALL_POLICIES,
    UNKNOWN,
    GpuBudgetSettings,
    GpuLimitMaxSettings,
    GpuNodeGroupLimitsSettings,
    GpuTaintReservedSettings,
    ImageTagPinnedSettings,
    PackConfig,
    PolicyConfigError,
    StackResource,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.01-py3"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
POOL_SELECTOR = {"ai-platform/gpu-pool": "inference"}


# --- realistic inputs ------------------------------------------------------------------------

def triton_container(gpus="1", image=TRITON_IMAGE, requests=True, limits=True, name="triton"):
    resources = {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}
    if requests and gpus is not None:
        resources["requests"]["nvidia.com/gpu"] = gpus
    if limits and gpus is not None:
        resources["limits"]["nvidia.com/gpu"] = gpus
    return {
        "name": name,
        "image": image,
        "args": ["tritonserver", "--model-repository=s3://ai-platform-dev-models/repo", "--model-control-mode=poll"],
        "ports": [{"containerPort": 8000, "name": "http"}, {"containerPort": 8001, "name": "grpc"},
                  {"containerPort": 8002, "name": "metrics"}],
        "resources": resources,
    }


def cpu_container(name="openwebui", image="ghcr.io/open-webui/open-webui:v0.6.5"):
    return {"name": name, "image": image, "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}


def pod_spec(containers, tolerations=None, node_selector=None, affinity=None, init_containers=None):
    spec = {"containers": containers, "serviceAccountName": "triton"}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = affinity
    if init_containers is not None:
        spec["initContainers"] = init_containers
    return spec


def workload(spec, kind="Deployment", name="triton", namespace="inference"):
    meta = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}}
    template = {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec}
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
           "Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1"}[kind]
    if kind == "Pod":
        body = spec
    elif kind == "CronJob":
        body = {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        body = {"selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": template}
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            body["replicas"] = 1
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": body}


def gpu_deployment(**overrides):
    spec = pod_spec([triton_container()], tolerations=[GPU_TOLERATION], node_selector=dict(POOL_SELECTOR))
    spec.update(overrides)
    return workload(spec)


def node_group(pool="inference", instance_types=("g6.xlarge",), ami="AL2023_x86_64_NVIDIA", capacity="SPOT",
               max_size=2.0, taints=True, labels=None):
    props = {
        "clusterName": "ai-platform-dev",
        "nodeGroupNamePrefix": f"ai-platform-dev-{pool}-",
        "amiType": ami,
        "instanceTypes": list(instance_types),
        "capacityType": capacity,
        "scalingConfig": {"minSize": 0.0, "desiredSize": 0.0, "maxSize": max_size},
        "labels": labels if labels is not None else {"ai-platform/gpu-pool": pool},
        "nodeRoleArn": UNKNOWN,
        "subnetIds": UNKNOWN,
    }
    if taints is True:
        props["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    elif taints:
        props["taints"] = taints
    return props


def system_node_group():
    return {"clusterName": "ai-platform-dev", "amiType": "AL2023_x86_64_STANDARD", "instanceTypes": ["m6i.large"],
            "capacityType": "ON_DEMAND", "scalingConfig": {"minSize": 2.0, "desiredSize": 2.0, "maxSize": 3.0},
            "labels": {"ai-platform/node-role": "system"}}


def res(type_, name, props, deps=(), prop_deps=None):
    return StackResource(type_, name, f"urn:pulumi:dev::ai-platform::{type_}::{name}", props, tuple(deps), prop_deps or {})


def messages(found):
    return [v.message for v in found if v.evaluated]


def notes(found):
    return [v.message for v in found if not v.evaluated]


DEV_LIMITS = GpuNodeGroupLimitsSettings(allowedInstanceTypes=["g5.xlarge", "g6.xlarge"], maxSize=4,
                                        allowedCapacityTypes=["SPOT"])


# --- 1. gpu-limits-required ------------------------------------------------------------------

def test_gpu_limits_required_passes_when_limit_equals_request_or_only_limit_is_set():
    assert rules.check_gpu_limits_required(DEPLOYMENT, gpu_deployment()) == []
    only_limit = gpu_deployment(containers=[triton_container(gpus=1, requests=False)])
    assert rules.check_gpu_limits_required(DEPLOYMENT, only_limit) == []


def test_gpu_limits_required_names_container_value_and_fix_when_limit_missing():
    props = gpu_deployment(containers=[cpu_container("sidecar"), triton_container(gpus="2", limits=False)])
    [message] = messages(rules.check_gpu_limits_required(DEPLOYMENT, props))
    assert "container 'triton'" in message and "'2'" in message and "no limit" in message
    assert "fix: set resources.limits['nvidia.com/gpu'] to '2'" in message


@pytest.mark.parametrize("limit", ["0.5", "500m", 0, "0"])
def test_gpu_limits_required_refuses_fractional_or_zero_limits(limit):
    props = gpu_deployment(containers=[triton_container(gpus=limit, requests=False)])
    [message] = messages(rules.check_gpu_limits_required(DEPLOYMENT, props))
    assert "not a positive whole number" in message and repr(limit) in message


def test_gpu_limits_required_flags_request_different_from_limit_in_init_container_of_cronjob():
    init = triton_container(name="warmup")
    init["resources"]["requests"]["nvidia.com/gpu"] = "2"
    props = workload(pod_spec([triton_container()], [GPU_TOLERATION], POOL_SELECTOR, init_containers=[init]),
                     kind="CronJob", name="nightly-eval")
    [message] = messages(rules.check_gpu_limits_required("kubernetes:batch/v1:CronJob", props))
    assert message.startswith("init container 'warmup' requests nvidia.com/gpu='2' but limits '1'")


def test_gpu_limits_required_reports_unknown_quantity_as_not_evaluated():
    props = gpu_deployment(containers=[triton_container(gpus=UNKNOWN)])
    found = rules.check_gpu_limits_required(DEPLOYMENT, props)
    assert messages(found) == [] and len(notes(found)) == 1 and "container 'triton'" in notes(found)[0]


def test_unknown_pod_template_is_not_evaluated_for_every_workload_policy():
    props = workload(UNKNOWN)
    props["spec"]["template"] = UNKNOWN
    for policy in ALL_POLICIES:
        if policy.kind == "resource" and DEPLOYMENT in policy.resource_types:
            found = policy.check(DEPLOYMENT, props, policy.parse_settings({}))
            assert found and all(not v.evaluated for v in found), policy.name
            assert "spec.template" in found[0].message


# --- 2. gpu-limit-max ------------------------------------------------------------------------

def test_gpu_limit_max_counts_all_containers_of_the_pod():
    settings = GpuLimitMaxSettings(maxGpusPerPod=2)
    at_cap = gpu_deployment(containers=[triton_container(gpus="2")])
    assert rules.check_gpu_limit_max(DEPLOYMENT, at_cap, settings) == []
    over = gpu_deployment(containers=[triton_container(gpus="2"), triton_container(gpus=1, name="vllm")])
    [message] = messages(rules.check_gpu_limit_max(DEPLOYMENT, over, settings))
    assert "pod reserves 3 GPUs" in message and "triton=2" in message and "vllm=1" in message
    assert "maxGpusPerPod=2" in message


def test_gpu_limit_max_uses_largest_init_container_when_it_exceeds_the_containers():
    init = triton_container(gpus="4", name="convert")
    props = gpu_deployment(initContainers=[init])
    found = rules.check_gpu_limit_max(DEPLOYMENT, props, GpuLimitMaxSettings(maxGpusPerPod=2))
    assert "pod reserves 4 GPUs" in messages(found)[0]
    assert rules.check_gpu_limit_max(DEPLOYMENT, props, GpuLimitMaxSettings(maxGpusPerPod=4)) == []


def test_gpu_limit_max_unknown_quantity_is_not_evaluated():
    props = gpu_deployment(containers=[triton_container(gpus=UNKNOWN)])
    found = rules.check_gpu_limit_max(DEPLOYMENT, props, GpuLimitMaxSettings(maxGpusPerPod=1))
    assert messages(found) == [] and notes(found)


# --- 3. gpu-workload-tolerates-taint ---------------------------------------------------------

def test_gpu_workload_with_toleration_and_pool_selector_passes():
    assert rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, gpu_deployment()) == []
    equal_true = gpu_deployment(tolerations=[{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                              "effect": "NoSchedule"}])
    assert rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, equal_true) == []


def test_gpu_workload_may_select_its_pool_with_required_node_affinity():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "ai-platform/gpu-pool", "operator": "In", "values": ["inference", "llm"]}]}]}}}
    props = gpu_deployment(affinity=affinity)
    del props["spec"]["template"]["spec"]["nodeSelector"]
    assert rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, props) == []
    # Preferred affinity does not pin the pod to a GPU pool.
    props["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
            {"key": "ai-platform/gpu-pool", "operator": "In", "values": ["inference"]}]}}]}}
    assert "selects no GPU pool" in messages(rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, props))[0]


@pytest.mark.parametrize("tolerations", [
    [],
    [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "false", "effect": "NoSchedule"}],
    [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}],
])
def test_gpu_workload_without_matching_toleration_is_flagged(tolerations):
    props = gpu_deployment(tolerations=tolerations)
    [message] = messages(rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, props))
    assert "container 'triton'" in message and "does not tolerate the GPU taint nvidia.com/gpu=true:NoSchedule" in message
    assert "fix: add toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}" in message


def test_gpu_workload_without_pool_selection_is_flagged_and_cpu_workload_is_not():
    props = gpu_deployment()
    del props["spec"]["template"]["spec"]["nodeSelector"]
    [message] = messages(rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, props))
    assert "selects no GPU pool" in message and "nodeSelector {ai-platform/gpu-pool: <pool name>}" in message
    cpu = workload(pod_spec([cpu_container()]), name="openwebui")
    assert rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, cpu) == []


def test_gpu_workload_with_unknown_toleration_is_not_evaluated():
    props = gpu_deployment(tolerations=[{"key": UNKNOWN, "operator": "Exists", "effect": "NoSchedule"}])
    found = rules.check_gpu_workload_tolerates_taint(DEPLOYMENT, props)
    assert messages(found) == [] and "tolerations[0].key" in notes(found)[0]


# --- 4. gpu-taint-reserved -------------------------------------------------------------------

@pytest.mark.parametrize("toleration", [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "nvidia.com/gpu", "operator": "Exists"},
    {"operator": "Exists"},
])
def test_cpu_workload_tolerating_the_gpu_taint_is_flagged(toleration):
    props = workload(pod_spec([cpu_container()], tolerations=[toleration]), name="openwebui", namespace="openwebui")
    [message] = messages(rules.check_gpu_taint_reserved(DEPLOYMENT, props, GpuTaintReservedSettings()))
    assert "requests no GPU but tolerates the GPU taint" in message and "fix: remove that toleration" in message


def test_allow_listed_daemonsets_may_tolerate_everything_but_other_namespaces_and_kinds_may_not():
    settings = GpuTaintReservedSettings()
    exporter = pod_spec([cpu_container("dcgm-exporter", "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04")],
                        tolerations=[{"operator": "Exists"}])
    assert rules.check_gpu_taint_reserved(DAEMONSET, workload(exporter, "DaemonSet", "dcgm", "gpu-operator"), settings) == []
    assert rules.check_gpu_taint_reserved(DAEMONSET, workload(exporter, "DaemonSet", "node-exporter", "monitoring"), settings) == []
    assert messages(rules.check_gpu_taint_reserved(DAEMONSET, workload(exporter, "DaemonSet", "agent", "default"), settings))
    assert messages(rules.check_gpu_taint_reserved(DEPLOYMENT, workload(exporter, "Deployment", "x", "monitoring"), settings))
    custom = GpuTaintReservedSettings(allowedDaemonSetNamespaces=["kube-system"])
    assert rules.check_gpu_taint_reserved(DAEMONSET, workload(exporter, "DaemonSet", "agent", "kube-system"), custom) == []


def test_gpu_workload_and_plain_cpu_workload_pass_gpu_taint_reserved():
    settings = GpuTaintReservedSettings()
    assert rules.check_gpu_taint_reserved(DEPLOYMENT, gpu_deployment(), settings) == []
    assert rules.check_gpu_taint_reserved(DEPLOYMENT, workload(pod_spec([cpu_container()])), settings) == []


def test_daemonset_with_unknown_namespace_is_not_evaluated():
    props = workload(pod_spec([cpu_container()], tolerations=[{"operator": "Exists"}]), "DaemonSet", "agent", UNKNOWN)
    found = rules.check_gpu_taint_reserved(DAEMONSET, props, GpuTaintReservedSettings())
    assert messages(found) == [] and "metadata.namespace" in notes(found)[0]


# --- 5. gpu-node-group-tainted ---------------------------------------------------------------

def test_tainted_gpu_node_group_and_system_node_group_pass():
    assert rules.check_gpu_node_group_tainted(NODE_GROUP, node_group()) == []
    assert rules.check_gpu_node_group_tainted(NODE_GROUP, system_node_group()) == []


@pytest.mark.parametrize("props", [
    node_group(taints=None),
    node_group(ami="AL2023_x86_64_STANDARD", instance_types=["g5.xlarge"], taints=None),
    node_group(taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "PREFER_NO_SCHEDULE"}]),
])
def test_untainted_gpu_node_group_is_flagged(props):
    [message] = messages(rules.check_gpu_node_group_tainted(NODE_GROUP, props))
    assert "has no nvidia.com/gpu NoSchedule taint" in message
    assert "fix: add taint {key: nvidia.com/gpu, value: true, effect: NO_SCHEDULE}" in message


def test_node_group_with_unknown_instance_types_and_standard_ami_is_not_evaluated():
    props = node_group(ami="AL2023_x86_64_STANDARD", taints=None)
    props["instanceTypes"] = UNKNOWN
    found = rules.check_gpu_node_group_tainted(NODE_GROUP, props)
    assert messages(found) == [] and "instanceTypes" in notes(found)[0]


# --- 6. gpu-node-group-limits ----------------------------------------------------------------

def test_gpu_node_group_within_limits_passes_and_system_group_is_not_judged():
    assert rules.check_gpu_node_group_limits(NODE_GROUP, node_group(), DEV_LIMITS) == []
    # The system pool is ON_DEMAND m6i: the GPU caps (SPOT only, GPU types) do not apply to it.
    assert rules.check_gpu_node_group_limits(NODE_GROUP, system_node_group(), DEV_LIMITS) == []


def test_gpu_node_group_over_limits_reports_each_offending_value():
    props = node_group(instance_types=["p5.48xlarge"], capacity="ON_DEMAND", max_size=5.0)
    found = messages(rules.check_gpu_node_group_limits(NODE_GROUP, props, DEV_LIMITS))
    assert len(found) == 3
    assert "p5.48xlarge not allowed" in found[0] and "g5.xlarge, g6.xlarge" in found[0]
    assert "scalingConfig.maxSize=5 exceeds the cap of 4" in found[1]
    assert "capacityType=ON_DEMAND is not allowed" in found[2] and "SPOT" in found[2]


def test_gpu_node_group_unknown_max_size_is_not_evaluated():
    props = node_group()
    props["scalingConfig"]["maxSize"] = UNKNOWN
    found = rules.check_gpu_node_group_limits(NODE_GROUP, props, DEV_LIMITS)
    assert messages(found) == [] and "scalingConfig.maxSize" in notes(found)[0]


# --- 7. image-tag-pinned ---------------------------------------------------------------------

@pytest.mark.parametrize("image", [
    TRITON_IMAGE,
    "ghcr.io/open-webui/open-webui:v0.6.5",
    "registry.internal:5000/ml/tokenizer:1.2.0",
    "ghcr.io/open-webui/open-webui@sha256:" + "a" * 64,
])
def test_pinned_images_pass(image):
    props = workload(pod_spec([cpu_container(image=image)]))
    assert rules.check_image_tag_pinned(DEPLOYMENT, props, ImageTagPinnedSettings()) == []


@pytest.mark.parametrize("image, problem", [
    ("ghcr.io/open-webui/open-webui:main", "uses the moving tag 'main'"),
    ("nvcr.io/nvidia/tritonserver:latest", "uses the moving tag 'latest'"),
    ("registry.internal:5000/ml/tokenizer", "has no tag"),
    ("busybox", "has no tag"),
])
def test_unpinned_images_are_flagged_with_container_and_image(image, problem):
    props = workload(pod_spec([cpu_container()], init_containers=[cpu_container("fetch", image)]))
    [message] = messages(rules.check_image_tag_pinned(DEPLOYMENT, props, ImageTagPinnedSettings()))
    assert message.startswith(f"init container 'fetch' image {image!r} {problem}")
    assert "fix: pin a release tag or a digest" in message


def test_forbidden_tags_are_configurable_and_unknown_image_is_not_evaluated():
    props = workload(pod_spec([cpu_container(image="ghcr.io/x/y:nightly")]))
    assert rules.check_image_tag_pinned(DEPLOYMENT, props, ImageTagPinnedSettings()) == []
    assert messages(rules.check_image_tag_pinned(DEPLOYMENT, props, ImageTagPinnedSettings(forbiddenTags=["nightly"])))
    unknown = workload(pod_spec([cpu_container(image=UNKNOWN)]))
    found = rules.check_image_tag_pinned(DEPLOYMENT, unknown, ImageTagPinnedSettings())
    assert messages(found) == [] and "container 'openwebui' image" in notes(found)[0]


# --- 8. s3-bucket-private-encrypted ----------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
ALL_BLOCKED = {f: True for f in rules.PUBLIC_ACCESS_FLAGS}


def model_bucket_resources(block=ALL_BLOCKED, sse="aws:kms", link="dependencies"):
    bucket = res(BUCKET, "models", {"bucket": "ai-platform-dev-models", "forceDestroy": True})
    by_dep = (bucket.urn,) if link == "dependencies" else ()
    prop_deps = {"bucket": (bucket.urn,)} if link == "property" else {}
    ref = "ai-platform-dev-models" if link == "name" else UNKNOWN
    found = [bucket]
    if block is not None:
        found.append(res(PAB, "models-public-access", {"bucket": ref, **block}, by_dep, prop_deps))
    if sse is not None:
        found.append(res(SSE, "models-sse", {"bucket": ref, "rules": [{"applyServerSideEncryptionByDefault": {
            "sseAlgorithm": sse, "kmsMasterKeyId": UNKNOWN}, "bucketKeyEnabled": True}]}, by_dep, prop_deps))
    return found


@pytest.mark.parametrize("link", ["dependencies", "property", "name"])
def test_private_encrypted_bucket_passes_however_its_settings_are_linked(link):
    assert rules.check_s3_bucket_private_encrypted(model_bucket_resources(link=link)) == []


def test_bucket_without_public_access_block_or_encryption_is_flagged():
    found = rules.check_s3_bucket_private_encrypted(model_bucket_resources(block=None, sse=None))
    assert [v.urn.endswith("::models") for v in found] == [True, True]
    assert "bucket models has no BucketPublicAccessBlock" in found[0].message
    assert "bucket models declares no default encryption" in found[1].message


def test_public_access_block_with_a_flag_off_names_the_flag():
    block = {**ALL_BLOCKED, "restrictPublicBuckets": False}
    [v] = rules.check_s3_bucket_private_encrypted(model_bucket_resources(block=block))
    assert "leaves restrictPublicBuckets off" in v.message and v.urn.endswith("::models-public-access")


def test_block_of_another_bucket_does_not_count_and_inline_encryption_does():
    other = res(BUCKET, "logs", {"bucket": "ai-platform-dev-logs"})
    resources = model_bucket_resources(link="property")
    findings = rules.check_s3_bucket_private_encrypted([*resources, other])
    assert [v.urn for v in findings] == [other.urn, other.urn]
    inline = res(BUCKET, "logs", {"bucket": "ai-platform-dev-logs", "serverSideEncryptionConfiguration": {"rule": {
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}})
    block = res(PAB, "logs-pab", {"bucket": "ai-platform-dev-logs", **ALL_BLOCKED})
    assert rules.check_s3_bucket_private_encrypted([inline, block]) == []


def test_unknown_public_access_flag_is_not_evaluated():
    found = rules.check_s3_bucket_private_encrypted(model_bucket_resources(block={**ALL_BLOCKED, "blockPublicAcls": UNKNOWN}))
    assert messages(found) == [] and "blockPublicAcls" in notes(found)[0]


# --- 9. gpu-budget ---------------------------------------------------------------------------

def prod_pools():
    return [
        res(NODE_GROUP, "cluster-system", system_node_group()),
        res(NODE_GROUP, "gpu-inference", node_group("inference", ["g6e.xlarge"], capacity="ON_DEMAND", max_size=6.0)),
        res(NODE_GROUP, "gpu-llm", node_group("llm", ["g6e.12xlarge"], capacity="ON_DEMAND", max_size=2.0)),
    ]


def test_gpu_budget_sums_max_size_times_gpus_per_instance():
    assert rules.check_gpu_budget(prod_pools(), GpuBudgetSettings(maxGpus=14)) == []
    [v] = rules.check_gpu_budget(prod_pools(), GpuBudgetSettings(maxGpus=12))
    assert "can scale to 14 GPUs" in v.message and "inference: 6 nodes x 1 GPU" in v.message
    assert "llm: 2 nodes x 4 GPU" in v.message and "maxGpus=12" in v.message


def test_gpu_budget_counts_the_largest_type_of_a_mixed_pool_and_unknowns_block_the_verdict():
    mixed = [res(NODE_GROUP, "gpu-mixed", node_group("mixed", ["g5.xlarge", "g5.12xlarge"], max_size=2.0))]
    assert "can scale to 8 GPUs" in rules.check_gpu_budget(mixed, GpuBudgetSettings(maxGpus=7))[0].message
    pools = prod_pools()
    pools[2].props["scalingConfig"]["maxSize"] = UNKNOWN
    found = rules.check_gpu_budget(pools, GpuBudgetSettings(maxGpus=1))
    assert messages(found) == [] and "gpu-llm" in notes(found)[0]


# --- 10. gpu-workload-has-pool ---------------------------------------------------------------

def deployment_res(props, name="triton"):
    return res(DEPLOYMENT, name, props)


def test_gpu_workload_selecting_an_existing_tainted_pool_passes():
    assert rules.check_gpu_workload_has_pool([*prod_pools(), deployment_res(gpu_deployment())]) == []
    by_nodegroup = gpu_deployment(nodeSelector={"eks.amazonaws.com/nodegroup": "gpu-llm"})
    assert rules.check_gpu_workload_has_pool([*prod_pools(), deployment_res(by_nodegroup)]) == []


def test_gpu_workload_selecting_a_missing_pool_names_the_pools_that_exist():
    props = gpu_deployment(nodeSelector={"ai-platform/gpu-pool": "training"})
    [v] = rules.check_gpu_workload_has_pool([*prod_pools(), deployment_res(props)])
    assert "selects nodes with ai-platform/gpu-pool=training" in v.message
    assert "gpu-inference (ai-platform/gpu-pool=inference)" in v.message and "gpu-llm" in v.message
    assert v.urn.endswith("::triton")
    [v] = rules.check_gpu_workload_has_pool([deployment_res(gpu_deployment())])
    assert "GPU node groups: none" in v.message


def test_gpu_workload_must_tolerate_the_extra_taints_of_the_pool_it_selects():
    pools = prod_pools()
    pools[2].props["taints"].append({"key": "ai-platform/dedicated", "value": "llm", "effect": "NO_SCHEDULE"})
    props = gpu_deployment(nodeSelector={"ai-platform/gpu-pool": "llm"})
    [v] = rules.check_gpu_workload_has_pool([*pools, deployment_res(props)])
    assert "selects pool llm but does not tolerate its taint(s) ai-platform/dedicated=llm:NoSchedule" in v.message
    props["spec"]["template"]["spec"]["tolerations"].append(
        {"key": "ai-platform/dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"})
    assert rules.check_gpu_workload_has_pool([*pools, deployment_res(props)]) == []


def test_gpu_workload_without_selector_is_left_to_gpu_workload_tolerates_taint():
    props = gpu_deployment()
    del props["spec"]["template"]["spec"]["nodeSelector"]
    assert rules.check_gpu_workload_has_pool([*prod_pools(), deployment_res(props)]) == []


def test_gpu_workload_has_pool_with_unknown_pool_labels_is_not_evaluated():
    pools = prod_pools()
    pools[1].props["labels"] = UNKNOWN
    found = rules.check_gpu_workload_has_pool([pools[1], deployment_res(gpu_deployment())])
    assert any("gpu-inference" in n for n in notes(found))


# --- configuration ---------------------------------------------------------------------------

def test_stack_config_files_load_with_the_documented_levels_and_caps():
    dev, prod = load_config(POLICY_DIR / "config.dev.json"), load_config(POLICY_DIR / "config.prod.json")
    assert {dev.level(p.name) for p in ALL_POLICIES} == {"advisory"}
    assert {prod.level(p.name) for p in ALL_POLICIES} == {"mandatory"}
    assert dev.settings_for("gpu-node-group-limits").allowedCapacityTypes == ["SPOT"]
    assert prod.settings_for("gpu-node-group-limits").allowedCapacityTypes == ["ON_DEMAND"]
    assert prod.settings_for("gpu-budget").maxGpus <= dev.settings_for("gpu-budget").maxGpus * 2
    # Every allow-listed instance type is a real NVIDIA type (a typo would silently allow nothing).
    for config in (dev, prod):
        for t in config.settings_for("gpu-node-group-limits").allowedInstanceTypes:
            assert t in rules.GPU_INSTANCE_TYPES, t


def test_config_errors_name_each_bad_key_with_a_suggestion():
    with pytest.raises(PolicyConfigError) as caught:
        parse_config({"all": "strict", "gpu-budgte": {"maxGpus": 4}, "gpu-limit-max": {"maxGpuPerPod": 2},
                      "gpu-budget": {"maxGpus": "lots"}, "image-tag-pinned": 3}, "cfg.json")
    problems = caught.value.problems
    assert len(problems) == 5
    assert any("all: enforcement level must be one of" in p for p in problems)
    assert any("gpu-budgte: unknown policy (did you mean 'gpu-budget'?)" in p for p in problems)
    assert any("gpu-limit-max.maxGpuPerPod: unknown setting (did you mean 'maxGpusPerPod'?)" in p for p in problems)
    assert any(p.startswith("cfg.json: gpu-budget.maxGpus:") for p in problems)
    assert any("image-tag-pinned: must be an enforcement level or an object" in p for p in problems)


def test_unreadable_config_is_a_config_error(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"all": "mandatory",}')
    with pytest.raises(PolicyConfigError, match=r"c.json:1:\d+: not valid JSON"):
        load_config(bad)
    with pytest.raises(PolicyConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_per_policy_level_overrides_all_and_disabled_or_remediate_are_honoured():
    config = parse_config({"all": "mandatory", "image-tag-pinned": "disabled",
                           "gpu-node-group-tainted": {"enforcementLevel": "remediate"},
                           "gpu-budget": {"enforcementLevel": "advisory", "maxGpus": 1}})
    resources = [res(NODE_GROUP, "gpu-inference", node_group(taints=None, max_size=4.0)),
                 deployment_res(gpu_deployment(containers=[triton_container(image="nvcr.io/nvidia/tritonserver:latest")]))]
    by_policy = {f.policy: f.level for f in rules.evaluate(resources, config)}
    assert "image-tag-pinned" not in by_policy
    assert by_policy["gpu-node-group-tainted"] == "mandatory"
    assert by_policy["gpu-budget"] == "advisory"


# --- the pack: structure and the live engine path --------------------------------------------

def test_pack_entry_point_assembles_every_policy_without_being_imported():
    tree = ast.parse((POLICY_DIR / "__main__.py").read_text())
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("policy.rules", "pulumi_policies") in imports and ("pulumi_policy", "PolicyPack") in imports
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"]
    assert len(calls) == 1
    kwargs = {k.arg: k.value for k in calls[0].keywords}
    assert isinstance(kwargs["policies"], ast.Call) and kwargs["policies"].func.id == "pulumi_policies"
    # Nothing but imports, the sys.path line, docstring and the one PolicyPack call at top level.
    top = [type(n).__name__ for n in tree.body]
    assert top.count("Expr") == 3 and set(top) <= {"Expr", "Import", "ImportFrom"}


def test_pulumi_policy_yaml_runs_in_the_project_virtualenv_with_matching_pins():
    meta = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["description"]
    assert (POLICY_DIR / meta["runtime"]["options"]["virtualenv"]).resolve() == ROOT / ".venv"
    root_pins = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()}
    pack_pins = [line.strip() for line in (POLICY_DIR / "requirements.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    assert "pulumi-policy==1.21.0" in pack_pins
    assert [p for p in pack_pins if p not in root_pins] == []


def test_pulumi_policies_mirror_all_policies_with_schemas_and_levels():
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    built = rules.pulumi_policies()
    assert [p.name for p in built] == [p.name for p in ALL_POLICIES]
    assert len({p.name for p in ALL_POLICIES}) == len(ALL_POLICIES) == 10
    for defn, policy in zip(ALL_POLICIES, built):
        assert isinstance(policy, ResourceValidationPolicy if defn.kind == "resource" else StackValidationPolicy)
        assert policy.enforcement_level == EnforcementLevel.MANDATORY and policy.remediation_steps
        if defn.settings is not rules.NoSettings:
            assert set(policy.config_schema.properties) == set(defn.settings.model_fields)
            for schema in policy.config_schema.properties.values():
                assert "default" in schema and json.dumps(schema)  # the CLI needs JSON-serialisable schemas


def _servicer(config: dict):
    """pulumi_policy's analyzer, configured as the CLI would, without starting its gRPC server."""
    from pulumi.runtime import proto
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer("ai-platform-policies", "0.0.1", rules.pulumi_policies(), EnforcementLevel.MANDATORY)
    request = proto.ConfigureAnalyzerRequest()
    for name, props in config.items():
        request.policyConfig[name].enforcementLevel = proto.MANDATORY
        request.policyConfig[name].properties.update(props)
    servicer.Configure(request, None)
    return servicer, proto


def test_live_engine_reports_violations_and_unknowns_as_advisory_not_evaluated():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    servicer, proto = _servicer({"gpu-limit-max": {"maxGpusPerPod": 1}})
    props = gpu_deployment(containers=[triton_container(gpus="2", limits=False)])
    props["spec"]["template"]["spec"]["containers"].append(cpu_container("proxy", UNKNOWN_STRING_VALUE))
    struct = struct_pb2.Struct()
    json_format.ParseDict(props, struct)
    response = servicer.Analyze(proto.AnalyzeRequest(type=DEPLOYMENT, properties=struct, urn="urn:x::triton", name="triton"), None)
    by_policy = {}
    for d in response.diagnostics:
        by_policy.setdefault(d.policyName, []).append(d)
    [limits] = by_policy["gpu-limits-required"]
    assert limits.enforcementLevel == proto.MANDATORY and "container 'triton' requests nvidia.com/gpu='2'" in limits.message
    [count] = by_policy["gpu-limit-max"]  # configured cap of 1 reached the policy
    assert "pod reserves 2 GPUs" in count.message
    [image] = by_policy["image-tag-pinned"]
    assert image.enforcementLevel == proto.ADVISORY and "container 'proxy' image is not known" in image.message


def test_live_engine_stack_policy_links_bucket_settings_by_property_dependencies():
    servicer, proto = _servicer({"gpu-budget": {"maxGpus": 4}})

    def resource(type_, name, props, prop_deps=None):
        struct = struct_pb2.Struct()
        json_format.ParseDict(props, struct)
        r = proto.AnalyzerResource(type=type_, urn=f"urn:pulumi:dev::ai-platform::{type_}::{name}", name=name, properties=struct)
        for key, urns in (prop_deps or {}).items():
            r.propertyDependencies[key].urns.extend(urns)
        return r

    bucket = resource(BUCKET, "models", {"bucket": "ai-platform-dev-models"})
    block = resource(PAB, "models-pab", {"bucket": "b-123", **ALL_BLOCKED}, {"bucket": [bucket.urn]})
    pool = resource(NODE_GROUP, "gpu-llm", node_group("llm", ["g6e.12xlarge"], max_size=2.0))
    response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[bucket, block, pool]), None)
    found = {(d.policyName, d.urn) for d in response.diagnostics}
    assert ("s3-bucket-private-encrypted", bucket.urn) in found  # encryption missing
    assert not any(p == "s3-bucket-private-encrypted" and "BucketPublicAccessBlock" in d.message
                   for d in response.diagnostics for p in [d.policyName])
    [budget] = [d for d in response.diagnostics if d.policyName == "gpu-budget"]
    assert "can scale to 8 GPUs" in budget.message and "maxGpus=4" in budget.message


def test_every_policy_survives_missing_and_unknown_inputs():
    """No policy crashes on an empty resource, or on a workload/node group whose every leaf is unknown."""
    def unknown_leaves(value):
        if isinstance(value, dict):
            return {k: unknown_leaves(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unknown_leaves(v) for v in value]
        return UNKNOWN

    samples = {DEPLOYMENT: gpu_deployment(), NODE_GROUP: node_group(),
               "kubernetes:batch/v1:CronJob": workload(pod_spec([triton_container()], [GPU_TOLERATION], POOL_SELECTOR), kind="CronJob"),
               "kubernetes:core/v1:Pod": workload(pod_spec([triton_container()], [GPU_TOLERATION], POOL_SELECTOR), kind="Pod")}
    for policy in ALL_POLICIES:
        settings = policy.parse_settings({})
        for type_, props in samples.items():
            for variant in ({}, unknown_leaves(copy.deepcopy(props))):
                if policy.kind == "resource":
                    found = policy.check(type_, variant, settings)
                else:
                    found = policy.check([res(type_, "x", variant), res(BUCKET, "b", unknown_leaves({"bucket": "n"}))], settings)
                assert all(isinstance(v, rules.Violation) for v in found)
                if variant and policy.kind == "resource" and type_ in policy.resource_types:
                    assert found == [] or all(not v.evaluated for v in found), (policy.name, type_, found)


def test_default_pack_config_uses_policy_defaults():
    config = PackConfig()
    assert config.level("gpu-budget") == "mandatory"
    assert config.settings_for("gpu-node-group-limits").allowedInstanceTypes == sorted(rules.GPU_INSTANCE_TYPES)


def test_a_mig_slice_is_a_gpu_request():
    """Mixed-strategy MIG pools advertise nvidia.com/mig-<profile>: a pod asking for one is a GPU
    workload (it must tolerate the taint and select a pool), not a CPU pod tolerating the taint."""
    mig = {"name": "validate", "image": "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
           "resources": {"requests": {"nvidia.com/mig-1g.10gb": "1"}, "limits": {"nvidia.com/mig-1g.10gb": "1"}}}
    tolerating = workload(pod_spec([mig], tolerations=[GPU_TOLERATION], node_selector=dict(POOL_SELECTOR)), "Job", "validate")
    assert rules.check_gpu_taint_reserved("kubernetes:batch/v1:Job", tolerating, GpuTaintReservedSettings()) == []
    untolerated = workload(pod_spec([mig]), "Job", "validate")
    assert messages(rules.check_gpu_workload_tolerates_taint("kubernetes:batch/v1:Job", untolerated))
