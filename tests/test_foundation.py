"""The foundation as a user would see it in a preview: tainted, labelled GPU pools that can scale
from zero, a tagged network, an encrypted cluster, secrets kept secret, tags on everything."""

import json

import pytest

import stack_config
from components.cluster_autoscaler import autoscaler_policy
from components.gpu_node_group import GPU_TAINT, POOL_LABEL
from components.network import subnet_cidrs
from stack_config.gpu_instances import GPU_INSTANCE_TYPES
from tests.harness import COMPUTED, STACKS, config_for, inputs, plan, plan_with, stack_values

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"


def gpu_node_groups(run):
    return [r for r in run.of_type(NODE_GROUP) if r.parent_type == "ai-platform:gpu:GpuNodeGroup"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_gpu_pool_is_tainted_labelled_and_on_an_nvidia_ami(stack):
    run, config = plan(stack), config_for(stack)
    groups = {g.name: g for g in gpu_node_groups(run)}
    assert sorted(groups) == sorted(f"gpu-{p.name}" for p in config.gpuNodeGroups)
    for pool in config.gpuNodeGroups:
        args = inputs(groups[f"gpu-{pool.name}"])
        assert args["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
        assert args["labels"][POOL_LABEL] == pool.name
        assert args["amiType"].endswith("_NVIDIA")
        assert args["instanceTypes"] == pool.instanceTypes
        assert args["scalingConfig"] == {"minSize": pool.minSize, "desiredSize": pool.desiredSize, "maxSize": pool.maxSize}
        assert "scalingConfig.desiredSize" in groups[f"gpu-{pool.name}"].ignore_changes  # the autoscaler owns it


def test_dev_pools_are_spot_from_zero_and_prod_pools_on_demand():
    for group in gpu_node_groups(plan("dev")):
        assert inputs(group)["capacityType"] == "SPOT" and inputs(group)["scalingConfig"]["minSize"] == 0
    for group in gpu_node_groups(plan("prod")):
        assert inputs(group)["capacityType"] == "ON_DEMAND" and inputs(group)["scalingConfig"]["minSize"] >= 1


@pytest.mark.parametrize("stack", STACKS)
def test_autoscaler_tags_match_taint_labels_and_gpu_count(stack):
    run, config = plan(stack), config_for(stack)
    cluster_name = f"ai-platform-{stack}"
    for pool in config.gpuNodeGroups:
        component = run.named(f"gpu-{pool.name}", "ai-platform:gpu:GpuNodeGroup")
        asg_tags = {inputs(t)["tag"]["key"]: inputs(t)["tag"]["value"] for t in run.children_of(component) if t.type == ASG_TAG}
        group = next(g for g in gpu_node_groups(run) if g.parent == component.urn)
        prefix = "k8s.io/cluster-autoscaler/node-template"
        assert asg_tags[f"{prefix}/taint/{GPU_TAINT['key']}"] == f"{GPU_TAINT['value']}:{GPU_TAINT['effect']}"
        for key, value in inputs(group)["labels"].items():
            assert asg_tags[f"{prefix}/label/{key}"] == value
        assert asg_tags[f"{prefix}/resources/nvidia.com/gpu"] == str(GPU_INSTANCE_TYPES[pool.instanceTypes[0]].gpus)
        assert asg_tags["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert asg_tags[f"k8s.io/cluster-autoscaler/{cluster_name}"] == "owned"
        assert inputs(group)["tags"] == asg_tags


def test_gpu_count_in_the_node_template_follows_the_instance_type():
    values = stack_values("dev")
    values["gpuNodeGroups"][0]["instanceTypes"] = ["g6.12xlarge"]
    run = plan_with("dev", gpuNodeGroups=values["gpuNodeGroups"])
    tags = {inputs(t)["tag"]["key"]: inputs(t)["tag"]["value"] for t in run.of_type(ASG_TAG)}
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"


@pytest.mark.parametrize("stack", STACKS)
def test_subnets_carry_load_balancer_and_cluster_tags(stack):
    run, config = plan(stack), config_for(stack)
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    public = [inputs(s) for s in subnets if "-public-" in s.name]
    private = [inputs(s) for s in subnets if "-private-" in s.name]
    zones = config.network.availabilityZones
    assert sorted(s["availabilityZone"] for s in public) == sorted(zones) == sorted(s["availabilityZone"] for s in private)
    for subnet in public:
        assert subnet["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnet["mapPublicIpOnLaunch"] is False
    for subnet in private:
        assert subnet["tags"]["kubernetes.io/role/internal-elb"] == "1"
    for subnet in public + private:
        assert subnet["tags"][f"kubernetes.io/cluster/ai-platform-{stack}"] == "shared"


def test_subnet_cidrs_do_not_overlap():
    public, private = subnet_cidrs("10.0.0.0/16", 6)
    import ipaddress
    nets = [ipaddress.ip_network(c) for c in public + private]
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert all(ipaddress.ip_network(c).prefixlen == 19 for c in private)


def test_nat_gateways_single_in_dev_and_per_zone_in_prod():
    assert len(plan("dev").of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(plan("prod").of_type("aws:ec2/natGateway:NatGateway")) == 3


def test_existing_vpc_creates_no_network_but_tags_the_subnets():
    values = stack_values("dev")
    values["network"] = {**values["network"], "existingVpc": {
        "vpcId": "vpc-0abc", "publicSubnetIds": ["subnet-01", "subnet-02"], "privateSubnetIds": ["subnet-0a", "subnet-0b"]}}
    run = plan_with("dev", network=values["network"])
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    tags = {(inputs(t)["resourceId"], inputs(t)["key"]) for t in run.of_type("aws:ec2/tag:Tag")}
    assert ("subnet-01", "kubernetes.io/role/elb") in tags and ("subnet-0b", "kubernetes.io/role/internal-elb") in tags
    assert run.outputs["vpcId"].value == "vpc-0abc"
    assert inputs(run.of_type("aws:eks/cluster:Cluster")[0])["vpcConfig"]["subnetIds"] == ["subnet-0a", "subnet-0b"]


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_secrets_are_envelope_encrypted_and_audited(stack):
    run, config = plan(stack), config_for(stack)
    cluster = inputs(run.of_type("aws:eks/cluster:Cluster")[0])
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["encryptionConfig"]["provider"]["keyArn"] == COMPUTED  # the stack's own KMS key
    key = inputs(run.of_type("aws:kms/key:Key")[0])
    assert key["enableKeyRotation"] is True
    assert "audit" in cluster["enabledClusterLogTypes"]
    assert cluster["version"] == config.cluster.kubernetesVersion
    assert cluster["accessConfig"]["authenticationMode"] == "API"


INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def api_access_rules(run):
    """The rules a plan check finds by type + name + port: `cluster-api-access-<n>`, TCP 443."""
    return sorted((r for r in run.of_type(INGRESS_RULE) if r.name.startswith("cluster-api-access-")), key=lambda r: r.name)


def test_prod_api_endpoint_admits_only_its_deployers_and_cluster_protected():
    """prod's VPC is created by the same `pulumi up` that then talks to the API, so a private-only
    endpoint was unreachable (EKS User Guide, awsdocs/amazon-eks-user-guide
    latest/ug/clusters/cluster-endpoint.adoc: private-only = "from within your VPC or a connected
    network"; the cluster security group admits only itself, latest/ug/networking/sec-group-reqs.adoc).
    The public endpoint admits exactly the configured deployer addresses, never the world; nodes
    keep using the private endpoint."""
    config = config_for("prod").cluster
    cluster = inputs(plan("prod").of_type("aws:eks/cluster:Cluster")[0])
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == config.publicAccessCidrs and "0.0.0.0/0" not in config.publicAccessCidrs
    assert cluster["deletionProtection"] is True
    assert api_access_rules(plan("prod")) == [] == api_access_rules(plan("dev"))


def test_api_access_lists_become_443_rules_on_the_cluster_security_group():
    """A private-only endpoint in a brought, connected VPC: each CIDR, then each security group, is
    admitted on TCP 443 to the cluster security group (the group EKS attaches to the private
    endpoint's network interfaces, sec-group-reqs.adoc), and the Kubernetes provider waits for the
    rules. pulumi-aws 7.51.1 `aws.vpc.SecurityGroupIngressRule` (cidrIpv4 / referencedSecurityGroupId)."""
    values = stack_values("prod")
    network = {**values["network"], "existingVpc": {"vpcId": "vpc-0abc1234", "privateSubnetIds": ["subnet-0a", "subnet-0b", "subnet-0c"]}}
    cluster = {**values["cluster"], "endpointPublicAccess": False, "publicAccessCidrs": [],
               "apiAccessCidrs": ["10.99.0.0/16", "172.20.4.0/24"], "apiAccessSecurityGroupIds": ["sg-0123456789abcdef0"]}
    run = plan_with("prod", network=network, cluster=cluster)
    eks = run.of_type("aws:eks/cluster:Cluster")[0]
    assert inputs(eks)["vpcConfig"]["endpointPublicAccess"] is False
    rules = api_access_rules(run)
    assert [r.name for r in rules] == ["cluster-api-access-0", "cluster-api-access-1", "cluster-api-access-2"]
    sources = []
    for rule in rules:
        i = inputs(rule)
        assert rule.parent_type == "ai-platform:cluster:Cluster"
        assert (i["ipProtocol"], i["fromPort"], i["toPort"]) == ("tcp", 443, 443)
        assert i["securityGroupId"] == COMPUTED and eks.urn in rule.dependencies  # the EKS-created cluster group
        sources.append(i.get("cidrIpv4") or i.get("referencedSecurityGroupId"))
    assert sources == ["10.99.0.0/16", "172.20.4.0/24", "sg-0123456789abcdef0"]
    provider = run.named("cluster-k8s", "pulumi:providers:kubernetes")
    assert {r.urn for r in rules} <= set(provider.dependencies)


def test_admin_roles_get_access_entries():
    values = stack_values("dev")
    role = "arn:aws:iam::123456789012:role/platform-admins"
    run = plan_with("dev", cluster={**values["cluster"], "adminRoleArns": [role]})
    (entry,) = run.of_type("aws:eks/accessEntry:AccessEntry")
    (association,) = run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert inputs(entry)["principalArn"] == role
    assert inputs(association)["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@pytest.mark.parametrize("stack", STACKS)
def test_core_addons_and_irsa(stack):
    run = plan(stack)
    addons = {inputs(a)["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) >= {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    assert inputs(addons["aws-ebs-csi-driver"])["serviceAccountRoleArn"] == COMPUTED
    oidc = inputs(run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0])
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_require_imdsv2_with_hop_limit_one(stack):
    templates = plan(stack).of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 1 + len(config_for(stack).gpuNodeGroups)
    for template in templates:
        metadata = inputs(template)["metadataOptions"]
        assert metadata["httpTokens"] == "required" and metadata["httpPutResponseHopLimit"] == 1
        ebs = inputs(template)["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"


def test_gpu_pool_disk_size_comes_from_config():
    run, config = plan("prod"), config_for("prod")
    for pool in config.gpuNodeGroups:
        template = run.named(f"gpu-{pool.name}-lt")
        assert inputs(template)["blockDeviceMappings"][0]["ebs"]["volumeSize"] == pool.diskSizeGiB


@pytest.mark.parametrize("stack", STACKS)
def test_default_gp3_storage_class(stack):
    classes = {inputs(c)["metadata"]["name"]: inputs(c) for c in plan(stack).of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert classes["gp3"]["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert classes["gp3"]["parameters"]["type"] == "gp3" and classes["gp3"]["provisioner"] == "ebs.csi.aws.com"
    assert classes["gp3-retain"]["reclaimPolicy"] == "Retain"


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_resource_uses_the_tagging_provider(stack):
    run, config = plan(stack), config_for(stack)
    (provider,) = run.of_type("pulumi:providers:aws")
    tags = json.loads(inputs(provider)["defaultTags"])["tags"] if isinstance(inputs(provider)["defaultTags"], str) else inputs(provider)["defaultTags"]["tags"]
    assert tags == {"Project": "ai-platform", "Stack": stack, "Owner": config.owner, "CostCenter": config.costCenter, "ManagedBy": "pulumi"}
    assert inputs(provider)["region"] == config.region
    aws_resources = [r for r in run.resources if r.type.startswith("aws:")]
    assert aws_resources
    for resource in aws_resources:
        assert resource.provider.startswith(provider.urn + "::"), f"{resource.name} ({resource.type}) is not created with the tagging provider"


@pytest.mark.parametrize("stack", STACKS)
def test_everything_on_the_cluster_uses_the_cluster_provider(stack):
    run = plan(stack)
    k8s_providers = [p for p in run.of_type("pulumi:providers:kubernetes")]
    assert len(k8s_providers) == 1
    for resource in run.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(k8s_providers[0].urn + "::"), resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_resources_are_children_of_components(stack):
    top_level = {r.type for r in plan(stack).resources if r.parent.endswith("pulumi:pulumi:Stack::ai-platform-" + stack)}
    assert all(t.startswith("ai-platform:") or t.startswith("pulumi:providers:") for t in top_level), top_level


@pytest.mark.parametrize("stack", STACKS)
def test_exports(stack):
    run, config = plan(stack), config_for(stack)
    outputs = run.outputs
    assert {"clusterName", "kubeconfig", "oidcProviderArn", "vpcId", "privateSubnetIds", "gpuNodeGroups", "region"} <= set(outputs)
    assert outputs["kubeconfig"].secret
    assert outputs["clusterName"].value == f"ai-platform-{stack}"
    assert outputs["region"].value == config.region
    assert [p["name"] for p in outputs["gpuNodeGroups"].value] == [p.name for p in config.gpuNodeGroups]
    assert outputs["gpuNodeGroups"].value[0]["capacityType"] == config.gpuNodeGroups[0].capacityType


def test_autoscaler_iam_policy_scopes_every_mutating_call():
    arns = ["arn:aws:eks:us-west-2:123456789012:nodegroup/ai-platform-dev/gpu-inference/abc"]
    policy = json.loads(autoscaler_policy("ai-platform-dev", arns))
    for statement in policy["Statement"]:
        mutating = [a for a in statement["Action"] if not a.split(":")[1].startswith(("Describe", "Get"))]
        if mutating and statement["Resource"] == "*":
            assert statement["Condition"]["StringEquals"] == {"aws:ResourceTag/k8s.io/cluster-autoscaler/ai-platform-dev": "owned"}
    (describe_nodegroup,) = [s for s in policy["Statement"] if "eks:DescribeNodegroup" in s["Action"]]
    assert describe_nodegroup["Resource"] == arns


def test_autoscaler_release_discovers_this_cluster_and_runs_on_system_nodes():
    run, config = plan("dev"), config_for("dev")
    release = inputs(run.named("cluster-autoscaler", "kubernetes:helm.sh/v3:Release"))
    values = release["values"]
    assert values["autoDiscovery"]["clusterName"] == "ai-platform-dev"
    assert values["image"]["tag"] == f"v{config.cluster.kubernetesVersion}.0"
    assert values["extraArgs"]["expander"] == config.clusterAutoscaler.expander
    assert values["extraArgs"]["scale-down-unneeded-time"] == config.clusterAutoscaler.scaleDownUnneededTime
    assert values["nodeSelector"] == {"ai-platform/node-role": "system"}
    assert "tolerations" not in values  # never lands on GPU nodes
    assert release["version"] and release["repositoryOpts"]["repo"].startswith("https://")


# --- issue 12: GPU label, node template resources, Bottlerocket volumes, autoscaler cut-off ----------

ACCELERATOR = "k8s.amazonaws.com/accelerator"
TEMPLATE = "k8s.io/cluster-autoscaler/node-template"


def asg_tags_of(run, pool: str) -> dict[str, str]:
    component = run.named(f"gpu-{pool}", "ai-platform:gpu:GpuNodeGroup")
    return {inputs(t)["tag"]["key"]: inputs(t)["tag"]["value"] for t in run.children_of(component) if t.type == ASG_TAG}


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_nodes_carry_the_accelerator_label_from_registration(stack):
    """cluster-autoscaler's AWS provider names `k8s.amazonaws.com/accelerator` its GPU label
    (kubernetes/autoscaler cluster-autoscaler-1.33.0, cloudprovider/aws/aws_cloud_provider.go
    GPULabel; README.md "Special note on GPU instances": set it through kubelet's --node-labels).
    A node with the label but nvidia.com/gpu still 0 is treated as not ready yet
    (processors/customresources/gpu_processor.go); without the label the autoscaler sees a ready
    node with no GPU while the device plugin starts, and adds another node for the pending pod.
    EKS managed node group labels are kubelet --node-labels, and the ASG tag tells the autoscaler
    a node from zero will carry it too."""
    run, config = plan(stack), config_for(stack)
    expected = {"dev": "nvidia-a10g-l4", "prod": "nvidia-l40s"}[stack]
    for pool in config.gpuNodeGroups:
        group = next(g for g in gpu_node_groups(run) if inputs(g)["labels"][POOL_LABEL] == pool.name)
        assert inputs(group)["labels"][ACCELERATOR] == expected
        assert asg_tags_of(run, pool.name)[f"{TEMPLATE}/label/{ACCELERATOR}"] == expected


def test_the_accelerator_label_is_the_platforms():
    values = stack_values("dev")
    values["gpuNodeGroups"][0]["labels"] = {ACCELERATOR: "nvidia-tesla-k80"}
    with pytest.raises(stack_config.ConfigError) as caught:
        plan_with("dev", gpuNodeGroups=values["gpuNodeGroups"])
    assert any(p.startswith("ai-platform:gpuNodeGroups[0].labels: k8s.amazonaws.com/accelerator")
               for p in caught.value.problems), caught.value.problems


def _mig_pool(strategy: str, profile: str, instance_type: str = "p4d.24xlarge") -> dict:
    values = stack_values("dev")
    return {**values["gpuNodeGroups"][0], "name": "mig", "instanceTypes": [instance_type], "capacityType": "ON_DEMAND",
            "maxSize": 1, "sharing": {"mode": "mig", "migStrategy": strategy, "migProfile": profile}}


def test_mixed_mig_pool_template_advertises_what_its_pods_request():
    """Mixed strategy: the device plugin advertises `nvidia.com/mig-<profile>` per MIG device and
    no nvidia.com/gpu for MIG-enabled GPUs (NVIDIA/k8s-device-plugin v0.20.0 README MIG_STRATEGY,
    internal/rm/rm.go AddDefaultResourcesToConfig); `all-1g.5gb` is 7 devices per A100 40GB
    (NVIDIA/mig-parted v0.15.0 deployments/systemd/config-default.yaml). The autoscaler's template
    takes nvidia.com/gpu from the instance type unless a resources tag overrides it
    (cluster-autoscaler-1.33.0 cloudprovider/aws/aws_manager.go buildNodeFromTemplate), so the tags
    say mig-1g.5gb: 56 and nvidia.com/gpu: 0. The pool's validation Job (a pod from zero) asks for
    one MIG device the template offers. No accelerator label: the autoscaler would hold a node
    without nvidia.com/gpu as not ready forever."""
    values = stack_values("dev")
    run = plan_with("dev", gpuNodeGroups=[values["gpuNodeGroups"][0], _mig_pool("mixed", "all-1g.5gb")])
    tags = asg_tags_of(run, "mig")
    assert tags[f"{TEMPLATE}/resources/nvidia.com/mig-1g.5gb"] == "56"
    assert tags[f"{TEMPLATE}/resources/nvidia.com/gpu"] == "0"
    assert f"{TEMPLATE}/label/{ACCELERATOR}" not in tags
    job = next(inputs(j) for j in run.of_type("kubernetes:batch/v1:Job") if inputs(j)["metadata"]["name"] == "gpu-validation-mig")
    [container] = job["spec"]["template"]["spec"]["containers"]
    requested = {k for k in container["resources"]["limits"] if k.startswith("nvidia.com/")}
    assert requested == {"nvidia.com/mig-1g.5gb"}
    assert all(int(tags[f"{TEMPLATE}/resources/{r}"]) >= 1 for r in requested)


def test_single_mig_pool_template_counts_mig_devices_as_gpus():
    """Single strategy: every MIG device is one nvidia.com/gpu (k8s-device-plugin v0.20.0
    internal/rm/rm.go: AddMIGResource("*", "gpu")); all-1g.10gb is 7 per A100 80GB (mig-parted
    v0.15.0 config-default.yaml), so a p4de node offers 56, not 8."""
    values = stack_values("dev")
    run = plan_with("dev", gpuNodeGroups=[values["gpuNodeGroups"][0], _mig_pool("single", "all-1g.10gb", "p4de.24xlarge")])
    tags = asg_tags_of(run, "mig")
    assert tags[f"{TEMPLATE}/resources/nvidia.com/gpu"] == "56"
    assert tags[f"{TEMPLATE}/label/{ACCELERATOR}"] == "nvidia-a100"


def test_bottlerocket_disk_size_goes_to_the_data_volume():
    """Bottlerocket keeps images and containers on its data volume `/dev/xvdb` (20 GiB unless
    mapped); `/dev/xvda` is the OS volume (bottlerocket-os/bottlerocket v1.26.0 README "Default
    Volumes"; aws/karpenter-provider-aws pkg/providers/amifamily/bottlerocket.go maps /dev/xvda
    and /dev/xvdb as Bottlerocket's block devices). diskSizeGiB must size /dev/xvdb; the OS volume
    keeps the AMI's size (no volumeSize) and stays encrypted gp3."""
    values = stack_values("dev")
    values["gpuNodeGroups"][0]["amiType"] = "BOTTLEROCKET_x86_64_NVIDIA"
    run = plan_with("dev", gpuNodeGroups=values["gpuNodeGroups"])
    mappings = {m["deviceName"]: m["ebs"] for m in inputs(run.named("gpu-inference-lt"))["blockDeviceMappings"]}
    assert set(mappings) == {"/dev/xvda", "/dev/xvdb"}
    assert mappings["/dev/xvdb"]["volumeSize"] == values["gpuNodeGroups"][0]["diskSizeGiB"]
    assert "volumeSize" not in mappings["/dev/xvda"]
    for ebs in mappings.values():
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"


@pytest.mark.parametrize("stack", STACKS)
def test_al2023_pools_size_their_only_volume(stack):
    """AL2023 has one root volume /dev/xvda holding images: diskSizeGiB sizes it (unchanged)."""
    run, config = plan(stack), config_for(stack)
    for pool in config.gpuNodeGroups:
        mappings = inputs(run.named(f"gpu-{pool.name}-lt"))["blockDeviceMappings"]
        assert [(m["deviceName"], m["ebs"]["volumeSize"]) for m in mappings] == [("/dev/xvda", pool.diskSizeGiB)]


@pytest.mark.parametrize("stack", STACKS)
def test_autoscaler_states_its_expendable_cutoff(stack):
    """The chart passes `extraArgs` as `--<key>=<value>` (kubernetes/autoscaler
    cluster-autoscaler-chart-9.46.6, charts/cluster-autoscaler/templates/deployment.yaml); the flag
    defaults to -10 (cluster-autoscaler-1.33.0 config/flags/flags.go). Stated explicitly so the
    plan (and the first-deploy check) can compare it with the GPU pods' priorities."""
    values = inputs(plan(stack).named("cluster-autoscaler", "kubernetes:helm.sh/v3:Release"))["values"]
    assert values["extraArgs"]["expendable-pods-priority-cutoff"] == str(config_for(stack).clusterAutoscaler.expendablePodsPriorityCutoff) == "-10"
