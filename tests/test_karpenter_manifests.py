"""Karpenter GPU capacity builders (components/karpenter_manifests.py), pure: NodePools and
EC2NodeClasses checked field by field against the Karpenter v1 API (tests/karpenter_v1.py, from the
CRDs of aws/karpenter-provider-aws v1.14.0), the platform's own rules on top (taint, labels, GPU cap,
pinned dated AMI alias, IMDSv2 hop 1, encrypted gp3 on the volume each AMI family uses, discovery
selectors), the controller chart's values, its IAM policies and the interruption rules."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from components import karpenter_manifests as km
from tests.karpenter_v1 import EC2NodeClass, NodePool

CLUSTER = "ai-platform-dev"
NODE_ROLE = "ai-platform-dev-node-7f3a"

G5_SPOT = km.GpuPoolSpec(
    name="gpu-inference", instance_types=("g5.xlarge", "g5.2xlarge"), capacity_type="SPOT", max_size=3,
    gpus_per_instance=1, ami_type="AL2023_x86_64_NVIDIA", disk_size_gib=100,
    labels={"team": "ml", "nvidia.com/device-plugin.config": "time-slicing-4"}, accelerator="nvidia-a10g",
)
G6_BOTTLEROCKET = km.GpuPoolSpec(
    name="gpu-batch", instance_types=("g6.12xlarge",), capacity_type="ON_DEMAND", max_size=2,
    gpus_per_instance=4, ami_type="BOTTLEROCKET_x86_64_NVIDIA", disk_size_gib=200,
    labels={"nvidia.com/gpu.deploy.device-plugin": "false"}, accelerator="nvidia-l4", max_unavailable=2,
)
G5G_ARM = km.GpuPoolSpec(
    name="gpu-arm", instance_types=("g5g.2xlarge",), capacity_type="ON_DEMAND", max_size=1,
    gpus_per_instance=1, ami_type="AL2023_ARM_64_NVIDIA", disk_size_gib=100,
)
MIG_MIXED = km.GpuPoolSpec(
    name="gpu-mig", instance_types=("p4d.24xlarge",), capacity_type="ON_DEMAND", max_size=1,
    gpus_per_instance=8, ami_type="AL2023_x86_64_NVIDIA", disk_size_gib=500,
    labels={"nvidia.com/mig.config": "all-1g.5gb"}, accelerator=None,
)
POOLS = [G5_SPOT, G6_BOTTLEROCKET, G5G_ARM, MIG_MIXED]


def classes(pools=POOLS, **kwargs) -> list[dict]:
    return km.ec2_node_classes(pools, cluster_name=CLUSTER, node_role_name=NODE_ROLE, **kwargs)


def requirement(pool_manifest: dict, key: str) -> dict:
    found = [r for r in pool_manifest["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    assert len(found) == 1, f"one requirement on {key}"
    return found[0]


# --- shapes against the v1 API ----------------------------------------------------------------

@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p.name)
def test_node_pool_is_a_valid_v1_node_pool_field_for_field(pool):
    """Validated by the model, then dumped back: equal to what was built, so no field was unknown,
    coerced or dropped (the model forbids extras and runs in strict mode)."""
    manifest = km.node_pool(pool)
    parsed = NodePool.model_validate(manifest)
    assert parsed.model_dump(exclude_unset=True) == manifest


def test_every_ec2_node_class_is_a_valid_v1_ec2_node_class_field_for_field():
    built = classes(tags={"owner": "platform-team"}, kms_key_id="alias/ai-platform-ebs")
    assert built
    for manifest in built:
        assert EC2NodeClass.model_validate(manifest).model_dump(exclude_unset=True) == manifest


def test_each_node_pool_references_an_ec2_node_class_that_is_built():
    names = {c["metadata"]["name"] for c in classes()}
    for pool in POOLS:
        ref = km.node_pool(pool)["spec"]["template"]["spec"]["nodeClassRef"]
        assert ref["group"] == "karpenter.k8s.aws" and ref["kind"] == "EC2NodeClass"
        assert ref["name"] in names


def test_one_ec2_node_class_per_ami_family_and_disk_size():
    """x86_64 and arm64 pools of one family share a class (an alias resolves both architectures,
    amifamily/al2023.go DescribeImageQuery); the class fixes the volume size, so sizes split it."""
    built = classes()
    assert [c["metadata"]["name"] for c in built] == ["gpu-al2023-100gib", "gpu-al2023-500gib", "gpu-bottlerocket-200gib"]
    assert len(classes([G5_SPOT, G5G_ARM])) == 1


# --- NodePool content -------------------------------------------------------------------------

@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p.name)
def test_node_pool_is_tainted_for_gpu_workloads_only(pool):
    spec = km.node_pool(pool)["spec"]["template"]["spec"]
    assert spec["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]


def test_node_pool_labels_name_the_pool_and_accelerator_and_keep_sharing_labels():
    labels = km.node_pool(G5_SPOT)["spec"]["template"]["metadata"]["labels"]
    assert labels == {"ai-platform/gpu-pool": "gpu-inference", "k8s.amazonaws.com/accelerator": "nvidia-a10g",
                      "team": "ml", "nvidia.com/device-plugin.config": "time-slicing-4"}
    mig = km.node_pool(MIG_MIXED)["spec"]["template"]["metadata"]["labels"]
    assert "k8s.amazonaws.com/accelerator" not in mig and mig["nvidia.com/mig.config"] == "all-1g.5gb"


def test_platform_labels_match_the_node_group_mode():
    """Same pool label, taint and accelerator label as the managed node groups, so workloads,
    policies and dashboards select a pool the same way in both modes."""
    from components.gpu_node_group import GPU_TAINT, POOL_LABEL
    from stack_config.gpu_stack import ACCELERATOR_LABEL, GPU_RESOURCE

    assert (km.POOL_LABEL, km.GPU_TAINT, km.ACCELERATOR_LABEL, km.GPU_RESOURCE) == (
        POOL_LABEL, GPU_TAINT, ACCELERATOR_LABEL, GPU_RESOURCE)


def test_node_pool_requires_the_configured_instance_types_arch_and_os():
    manifest = km.node_pool(G5_SPOT)
    assert requirement(manifest, "node.kubernetes.io/instance-type") == {
        "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.xlarge", "g5.2xlarge"]}
    assert requirement(manifest, "kubernetes.io/arch")["values"] == ["amd64"]
    assert requirement(km.node_pool(G5G_ARM), "kubernetes.io/arch")["values"] == ["arm64"]
    assert requirement(manifest, "kubernetes.io/os")["values"] == ["linux"]


def test_spot_pools_fall_back_to_on_demand_and_on_demand_pools_stay_on_demand():
    """Karpenter v1.14 docs/concepts/nodepools.md "Capacity Type": with several allowed it prefers
    reserved, then spot, then on-demand; so SPOT allows both, ON_DEMAND only on-demand."""
    assert requirement(km.node_pool(G5_SPOT), "karpenter.sh/capacity-type")["values"] == ["spot", "on-demand"]
    assert requirement(km.node_pool(G6_BOTTLEROCKET), "karpenter.sh/capacity-type")["values"] == ["on-demand"]


@pytest.mark.parametrize("pool, cap", [(G5_SPOT, 3), (G6_BOTTLEROCKET, 8), (MIG_MIXED, 8)], ids=["1x3", "4x2", "8x1"])
def test_gpu_limit_is_max_size_times_gpus_per_instance(pool, cap):
    assert km.node_pool(pool)["spec"]["limits"] == {"nvidia.com/gpu": cap}


def test_disruption_consolidates_empty_or_underutilized_nodes_one_budget_at_a_time():
    spec = km.node_pool(G6_BOTTLEROCKET)["spec"]
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "10m",
                                  "budgets": [{"nodes": "2"}]}
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    assert spec["template"]["spec"]["terminationGracePeriod"] == "1h"
    tuned = km.node_pool(G5_SPOT, km.PoolSettings(consolidate_after="30m", expire_after="168h"))
    assert tuned["spec"]["disruption"]["consolidateAfter"] == "30m"
    assert tuned["spec"]["template"]["spec"]["expireAfter"] == "168h"


# --- EC2NodeClass content ---------------------------------------------------------------------

# Releases checked to carry NVIDIA images for Kubernetes 1.33 (the stacks' kubernetesVersion):
# awslabs/amazon-eks-ami CHANGELOG.md "AMI Release v20260714" (amazon-eks-node-al2023-{x86_64,arm64}-
# nvidia-1.33-v20260714); Bottlerocket v1.54.0 (AMI bottlerocket-aws-k8s-1.33-nvidia-aarch64-v1.54.0-5043decc).
KNOWN_RELEASES = {"al2023": {"v20260714"}, "bottlerocket": {"v1.54.0"}}
DATED = {"al2023": r"^v20\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$", "bottlerocket": r"^v\d+\.\d+\.\d+$"}


def pinned_alias_problem(alias: str) -> str | None:
    """Our rule on top of the CRD (which accepts `@latest`): a dated release, never latest."""
    family, _, version = alias.partition("@")
    if version == "latest":
        return "@latest drifts every node to each new AMI"
    if family not in DATED or not re.match(DATED[family], version):
        return f"{alias} is not pinned to a dated {family} release"
    return None


def test_ami_alias_is_pinned_to_a_known_dated_release():
    for manifest in classes():
        terms = manifest["spec"]["amiSelectorTerms"]
        assert len(terms) == 1 and set(terms[0]) == {"alias"}
        family, _, version = terms[0]["alias"].partition("@")
        assert pinned_alias_problem(terms[0]["alias"]) is None
        assert version in KNOWN_RELEASES[family]


def test_latest_passes_the_crd_but_not_our_pin_rule():
    spec = classes([G5_SPOT])[0]
    spec["spec"]["amiSelectorTerms"] = [{"alias": "al2023@latest"}]
    EC2NodeClass.model_validate(spec)  # the CRD allows it ...
    assert pinned_alias_problem("al2023@latest")  # ... we do not
    assert pinned_alias_problem("al2023@v2026") and pinned_alias_problem("bottlerocket@1.54")


def test_imdsv2_required_with_one_hop():
    for manifest in classes():
        assert manifest["spec"]["metadataOptions"] == {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                                       "httpPutResponseHopLimit": 1, "httpTokens": "required"}


def _volumes(manifest) -> dict:
    return {m["deviceName"]: m["ebs"] for m in manifest["spec"]["blockDeviceMappings"]}


def test_al2023_sizes_its_root_volume_encrypted_gp3():
    """amifamily/al2023.go: the ephemeral (kubelet, images) device is the root /dev/xvda."""
    volumes = _volumes(classes([G5_SPOT])[0])
    assert volumes == {"/dev/xvda": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}}


def test_bottlerocket_sizes_its_data_volume_and_encrypts_both():
    """amifamily/bottlerocket.go: OS on /dev/xvda (default 4Gi), ephemeral data on /dev/xvdb. Sizing
    xvda with diskSizeGiB would leave images on the image's small data volume."""
    volumes = _volumes(classes([G6_BOTTLEROCKET])[0])
    assert set(volumes) == {"/dev/xvda", "/dev/xvdb"}
    assert volumes["/dev/xvdb"]["volumeSize"] == "200Gi" and volumes["/dev/xvda"]["volumeSize"] == "4Gi"
    assert all(v["encrypted"] is True and v["volumeType"] == "gp3" for v in volumes.values())


def test_customer_kms_key_is_used_on_every_volume():
    for manifest in classes(kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/abc"):
        assert {v["kmsKeyID"] for v in _volumes(manifest).values()} == {"arn:aws:kms:eu-west-1:123456789012:key/abc"}


def test_subnets_and_security_groups_found_by_discovery_tag_and_node_role_set():
    for manifest in classes():
        spec = manifest["spec"]
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
        assert spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
        assert spec["role"] == NODE_ROLE and "instanceProfile" not in spec


# --- the model rejects wrong shapes -------------------------------------------------------------

def _pool(**spec_changes) -> dict:
    manifest = km.node_pool(G5_SPOT)
    manifest["spec"]["template"]["spec"].update(spec_changes)
    return manifest


@pytest.mark.parametrize("change, message", [
    ({"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]}, "NoSchedule"),  # EKS spelling
    ({"expireAfter": "30d"}, "does not match"),
    ({"terminationGracePeriod": "Never"}, "does not match"),
    ({"nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass", "name": "x"}}, "group"),
    ({"nodeClassRef": {"group": "", "kind": "EC2NodeClass", "name": "x"}}, "group may not be empty"),
    ({"requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": ["a"]}]}, "restricted"),
    ({"requirements": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}, "restricted"),
    ({"requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": []}]}, "must have a value"),
    ({"requirements": [{"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["1", "2"]}]}, "single positive"),
    ({"requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.xlarge"], "minValues": 2}]}, "minValues"),
    ({"requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "Equals", "values": ["g5.xlarge"]}]}, "operator"),
    ({"consolidation": {"enabled": True}}, "Extra inputs"),  # v1alpha5 field
])
def test_model_rejects_wrong_node_pool_template_specs(change, message):
    with pytest.raises(ValidationError, match=message):
        NodePool.model_validate(_pool(**change))


@pytest.mark.parametrize("spec_patch, message", [
    ({"disruption": {"consolidationPolicy": "WhenUnderutilized", "consolidateAfter": "1m"}}, "consolidationPolicy"),  # v1beta1
    ({"disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized"}}, "consolidateAfter"),
    ({"disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "10%", "schedule": "@daily"}]}}, "'schedule' must be set with 'duration'"),
    ({"disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "110%"}]}}, "does not match"),
    ({"limits": {"nvidia.com/gpu": "lots"}}, "does not match"),
    ({"weight": 0}, "greater than or equal to 1"),
    ({"replicas": 2, "weight": 10}, "static"),
])
def test_model_rejects_wrong_node_pool_specs(spec_patch, message):
    manifest = km.node_pool(G5_SPOT)
    manifest["spec"].update(spec_patch)
    with pytest.raises(ValidationError, match=message):
        NodePool.model_validate(manifest)


def test_model_rejects_restricted_template_labels_and_bad_values():
    for labels, message in [({"karpenter.sh/custom": "x"}, "karpenter.sh"), ({"karpenter.k8s.aws/foo": "x"}, "karpenter.k8s.aws"),
                            ({"team": "has space"}, "does not match"), ({"team": "x" * 64}, "at most 63")]:
        manifest = km.node_pool(G5_SPOT)
        manifest["spec"]["template"]["metadata"]["labels"] = labels
        with pytest.raises(ValidationError, match=message):
            NodePool.model_validate(manifest)
    manifest = km.node_pool(G5_SPOT)
    manifest["apiVersion"] = "karpenter.sh/v1beta1"
    with pytest.raises(ValidationError, match="karpenter.sh/v1"):
        NodePool.model_validate(manifest)


def _node_class(**spec_changes) -> dict:
    manifest = classes([G6_BOTTLEROCKET])[0]
    manifest["spec"].update(spec_changes)
    return {k: v for k, v in manifest.items()}


@pytest.mark.parametrize("change, message", [
    ({"amiSelectorTerms": [{"alias": "al2023"}]}, "family@version"),
    ({"amiSelectorTerms": [{"alias": "ubuntu@v20260714"}]}, "family is not supported"),
    ({"amiSelectorTerms": [{"alias": "windows2022@v2026"}]}, "windows families"),
    ({"amiSelectorTerms": [{"alias": "al2023@v20260714", "owner": "amazon"}]}, "mutually exclusive"),
    ({"amiSelectorTerms": [{"alias": "al2023@v20260714"}, {"id": "ami-0123"}]}, "mutually exclusive"),
    ({"amiSelectorTerms": [{"alias": "bottlerocket@v1.54.0"}], "amiFamily": "AL2023"}, "amiFamily must be 'Bottlerocket'"),
    ({"amiSelectorTerms": [{"tags": {"Name": "x"}}]}, "must specify amiFamily"),
    ({"amiSelectorTerms": []}, "at least 1"),
    ({"instanceProfile": "KarpenterNodeInstanceProfile"}, "exactly one of"),
    ({"role": ""}, "role cannot be empty"),
    ({"metadataOptions": {"httpTokens": "REQUIRED"}}, "httpTokens"),
    ({"metadataOptions": {"httpPutResponseHopLimit": 0}}, "greater than or equal to 1"),
    ({"metadataOptions": {"httpPutResponseHopLimit": 65}}, "less than or equal to 64"),
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "100", "volumeType": "gp3"}}]}, "does not match"),
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "100GiB"}}]}, "does not match"),
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"volumeType": "gp3"}}]}, "snapshotID or volumeSize"),
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "1Gi", "volumeType": "gp4"}}]}, "volumeType"),
    ({"blockDeviceMappings": [{"rootVolume": True, "ebs": {"volumeSize": "1Gi"}}, {"rootVolume": True, "ebs": {"volumeSize": "1Gi"}}]}, "only one"),
    ({"subnetSelectorTerms": []}, "cannot be empty"),
    ({"subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": ""}}]}, "empty tag"),
    ({"securityGroupSelectorTerms": [{}]}, "expected at least one"),
    ({"securityGroupSelectorTerms": [{"id": "sg-0123", "name": "nodes"}]}, "mutually exclusive"),
    ({"tags": {"kubernetes.io/cluster/ai-platform-dev": "owned"}}, "restricted"),
    ({"tags": {"karpenter.sh/nodepool": "x"}}, "restricted"),
    ({"kubelet": {"imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 80}}, "greater than"),
    ({"kubelet": {"evictionHard": {"memory.free": "5%"}}}, "valid keys"),
    ({"kubelet": {"kubeReserved": {"cpu": "-1"}}}, "negative"),
    ({"kubelet": {"evictionSoft": {"memory.available": "5%"}}}, "evictionSoftGracePeriod"),
    ({"amiSelector": {"aws::name": "x"}}, "Extra inputs"),  # v1alpha5 field
    ({"instanceProfile": None, "role": None, "roleName": "x"}, "Extra inputs"),
])
def test_model_rejects_wrong_ec2_node_classes(change, message):
    manifest = _node_class(**change)
    manifest["spec"] = {k: v for k, v in manifest["spec"].items() if v is not None}
    with pytest.raises(ValidationError, match=message):
        EC2NodeClass.model_validate(manifest)


# --- the controller -------------------------------------------------------------------------------

# Leaf value paths of aws/karpenter-provider-aws v1.14.0 charts/karpenter/values.yaml the builder may
# set (maps and lists are set whole). Karpenter 0.x charts spelled settings.aws.clusterName and
# settings.aws.interruptionQueueName, which 1.x ignores: the chart then fails on `required
# settings.clusterName` (templates/deployment.yaml) and interruption handling stays off.
CHART_VALUE_PATHS = {
    "settings.clusterName", "settings.interruptionQueue", "settings.clusterEndpoint", "settings.isolatedVPC",
    "settings.featureGates.spotToSpotConsolidation", "settings.featureGates.nodeRepair",
    "serviceAccount.create", "serviceAccount.name", "serviceAccount.annotations", "replicas",
    "controller.resources", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
    "priorityClassName", "podDisruptionBudget.maxUnavailable", "logLevel", "serviceMonitor.enabled",
}


def _leaf_paths(values: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in CHART_VALUE_PATHS:
            paths |= _leaf_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def test_controller_values_use_only_chart_1_14_value_paths():
    values = km.controller_values(cluster_name=CLUSTER, interruption_queue_name=CLUSTER,
                                  node_selector={"ai-platform/node-role": "system"},
                                  role_arn="arn:aws:iam::123456789012:role/karpenter")
    assert _leaf_paths(values) <= CHART_VALUE_PATHS, _leaf_paths(values) - CHART_VALUE_PATHS
    assert values["settings"] == {"clusterName": CLUSTER, "interruptionQueue": CLUSTER}
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/karpenter"}
    assert values["nodeSelector"] == {"kubernetes.io/os": "linux", "ai-platform/node-role": "system"}
    assert values["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    assert values["replicas"] == 2 and values["controller"]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert km.CHART == "oci://public.ecr.aws/karpenter/karpenter" and km.CHART_VERSION == "1.14.0"


def test_controller_values_without_role_arn_suit_pod_identity():
    values = km.controller_values(cluster_name=CLUSTER, interruption_queue_name=CLUSTER, node_selector={})
    assert "annotations" not in values["serviceAccount"] and values["serviceAccount"]["name"] == km.SERVICE_ACCOUNT
    assert not any("nvidia.com/gpu" in json.dumps(t) for t in values["tolerations"])  # never on GPU nodes


# --- controller IAM, queue and rules ----------------------------------------------------------------

SCOPE = km.ControllerScope(cluster_name=CLUSTER, region="eu-west-1", account_id="123456789012",
                           node_role_arn=f"arn:aws:iam::123456789012:role/{NODE_ROLE}",
                           queue_arn=f"arn:aws:sqs:eu-west-1:123456789012:{CLUSTER}")

# Sid -> actions of each policy in aws/karpenter-provider-aws v1.14.0
# website/content/en/docs/getting-started/getting-started-with-karpenter/cloudformation.yaml.
UPSTREAM_STATEMENTS = {
    "node-lifecycle": {
        "AllowScopedEC2InstanceAccessActions": {"ec2:RunInstances", "ec2:CreateFleet"},
        "AllowScopedEC2LaunchTemplateAccessActions": {"ec2:RunInstances", "ec2:CreateFleet"},
        "AllowScopedEC2InstanceActionsWithTags": {"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"},
        "AllowScopedResourceCreationTagging": {"ec2:CreateTags"},
        "AllowScopedResourceTagging": {"ec2:CreateTags"},
        "AllowScopedDeletion": {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"},
    },
    "iam-integration": {
        "AllowPassingInstanceRole": {"iam:PassRole"},
        "AllowScopedInstanceProfileCreationActions": {"iam:CreateInstanceProfile"},
        "AllowScopedInstanceProfileTagActions": {"iam:TagInstanceProfile"},
        "AllowScopedInstanceProfileActions": {"iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                                              "iam:DeleteInstanceProfile"},
    },
    "eks-integration": {"AllowAPIServerEndpointDiscovery": {"eks:DescribeCluster"}},
    "interruption": {"AllowInterruptionQueueActions": {"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}},
    "zonal-shift": {"AllowZonalShiftStatusReadOnly": {"arc-zonal-shift:GetManagedResource"}},
    "resource-discovery": {
        "AllowRegionalReadActions": {
            "ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
            "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
            "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"},
        "AllowSSMReadActions": {"ssm:GetParameter"},
        "AllowPricingReadActions": {"pricing:GetProducts"},
        "AllowUnscopedInstanceProfileListAction": {"iam:ListInstanceProfiles"},
        "AllowInstanceProfileReadActions": {"iam:GetInstanceProfile"},
    },
}
# Actions upstream grants on "*" (reads; zonal shift is conditioned on the cluster ARN).
UNSCOPED_OK = UPSTREAM_STATEMENTS["resource-discovery"]["AllowRegionalReadActions"] | {
    "pricing:GetProducts", "iam:ListInstanceProfiles", "arc-zonal-shift:GetManagedResource"}


def _actions(statement) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_controller_policies_are_upstreams_statement_for_statement():
    docs = {name: json.loads(doc) for name, doc in km.controller_policies(SCOPE).items()}
    assert {name: {s["Sid"]: _actions(s) for s in doc["Statement"]} for name, doc in docs.items()} == UPSTREAM_STATEMENTS


def test_controller_policies_fit_a_managed_policy():
    for name, doc in km.controller_policies(SCOPE).items():
        assert len(re.sub(r"\s", "", doc)) <= 6144, name


def test_controller_policies_are_scoped_to_this_cluster():
    docs = {name: json.loads(doc) for name, doc in km.controller_policies(SCOPE).items()}
    for name, doc in docs.items():
        for statement in doc["Statement"]:
            if statement["Resource"] == "*":
                assert _actions(statement) <= UNSCOPED_OK, statement["Sid"]
            text = json.dumps(statement)
            if _actions(statement) & {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate", "ec2:CreateTags",
                                      "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:AddRoleToInstanceProfile"}:
                assert f"kubernetes.io/cluster/{CLUSTER}" in text, statement["Sid"]
    statements = {s["Sid"]: s for doc in docs.values() for s in doc["Statement"]}
    assert statements["AllowPassingInstanceRole"]["Resource"] == SCOPE.node_role_arn
    assert statements["AllowAPIServerEndpointDiscovery"]["Resource"] == f"arn:aws:eks:eu-west-1:123456789012:cluster/{CLUSTER}"
    assert statements["AllowInterruptionQueueActions"]["Resource"] == SCOPE.queue_arn
    assert statements["AllowRegionalReadActions"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}
    assert all(":*:" not in r for r in statements["AllowScopedEC2InstanceAccessActions"]["Resource"][:2])  # images, snapshots


def test_interruption_rules_are_upstreams_five_patterns():
    assert sorted((p["source"][0], p["detail-type"][0]) for p in km.INTERRUPTION_RULES.values()) == sorted([
        ("aws.health", "AWS Health Event"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
    ])
    assert all(set(p) == {"source", "detail-type"} for p in km.INTERRUPTION_RULES.values())


def test_interruption_queue_accepts_eventbridge_and_refuses_plain_http():
    policy = json.loads(km.interruption_queue_policy(SCOPE.queue_arn))
    allow, deny = policy["Statement"]
    assert allow["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert allow["Action"] == "sqs:SendMessage" and allow["Resource"] == SCOPE.queue_arn
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert km.INTERRUPTION_QUEUE_RETENTION_SECONDS == 300
