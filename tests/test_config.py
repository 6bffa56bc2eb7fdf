"""The stack config model: real stack files load, defaults agree with Pulumi.yaml, and every kind
of bad input is reported by its key path in one message."""

import json
import subprocess
import sys

import pytest
import yaml

import stack_config
from platformctl.mockrun import run_program
from stack_config.model import SECRET_KEYS, StackConfig
from tests.harness import STACKS, stack_values

PROJECT = stack_config.PROJECT_DIR


def parse(**keys):
    values = {"aws:region": keys.pop("region", "us-west-2")}
    values.update({f"ai-platform:{k}": stack_config.engine_value(v) for k, v in keys.items()})
    return stack_config.parse(values, stack="test")


def problems(**keys) -> list[str]:
    with pytest.raises(stack_config.ConfigError) as caught:
        parse(**keys)
    return caught.value.problems


def good_pool(**changes):
    pool = {"name": "inference", "instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "minSize": 0, "desiredSize": 0, "maxSize": 2}
    pool.update(changes)
    return pool


NETWORK = {"availabilityZones": ["us-west-2a", "us-west-2b"]}


@pytest.mark.parametrize("stack", STACKS)
def test_real_stack_files_load(stack):
    config = stack_config.load_from_files(stack)
    assert config.gpuNodeGroups and all(p.amiType.endswith("NVIDIA") for p in config.gpuNodeGroups)


def test_dev_is_small_and_prod_is_highly_available():
    dev, prod = stack_config.load_from_files("dev"), stack_config.load_from_files("prod")
    assert len(dev.network.availabilityZones) == 2 and dev.network.natGateways == "single"
    assert all(p.capacityType == "SPOT" and p.minSize == 0 for p in dev.gpuNodeGroups)
    assert len(prod.network.availabilityZones) == 3 and prod.network.natGateways == "perAz"
    assert all(p.capacityType == "ON_DEMAND" and p.minSize >= 1 for p in prod.gpuNodeGroups)
    assert prod.cluster.deletionProtection is True
    # prod's API: public endpoint only from the deployers' addresses (never the world), nodes private.
    assert prod.cluster.endpointPublicAccess and prod.cluster.endpointPrivateAccess
    assert prod.cluster.publicAccessCidrs and "0.0.0.0/0" not in prod.cluster.publicAccessCidrs
    assert prod.protectData is True and dev.protectData is False


def _model_default(model, name):
    field = model.model_fields[name]
    value = field.get_default(call_default_factory=True)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def test_pulumi_yaml_declares_every_key_with_the_model_default():
    declared = yaml.safe_load((PROJECT / "Pulumi.yaml").read_text())["config"]
    text = (PROJECT / "Pulumi.yaml").read_text()
    for name, field in StackConfig.model_fields.items():
        if name == "region":
            continue
        # A declaration without a default makes a key required for every stack, so optional
        # secrets (set with `pulumi config set --secret`) are documented in comments instead.
        if name in SECRET_KEYS:
            assert f"# {name} (" in text and name not in declared, f"secret key {name} must be documented, not declared"
            continue
        assert name in declared, f"{name} missing from Pulumi.yaml config"
        decl = declared[name]
        assert decl.get("description"), f"{name} has no description"
        assert "value" not in decl, f"{name}: a project-level value cannot be overridden per stack like a default"
        if field.is_required():
            assert "default" not in decl, f"{name} is required by the model but has a default in Pulumi.yaml"
        else:
            assert decl.get("default") == _model_default(StackConfig, name), name
        # The shape the Pulumi CLI's project schema accepts for a config declaration.
        assert set(decl) <= {"type", "items", "description", "secret", "default"}, name
        if "type" in decl:
            assert decl["type"] in ("string", "integer", "boolean", "array"), name
            assert decl["type"] != "array" or "items" in decl, f"{name}: an array declaration needs items"


def test_stack_files_differ_only_in_values():
    for stack in STACKS:
        doc = yaml.safe_load((PROJECT / f"Pulumi.{stack}.yaml").read_text())
        assert set(doc) == {"config"}


def test_min_greater_than_max_names_the_key():
    found = problems(network=NETWORK, gpuNodeGroups=[good_pool(minSize=1, desiredSize=1, maxSize=0)])
    assert found == ["ai-platform:gpuNodeGroups[0].maxSize: must be >= minSize (got 0 < 1)",
                     "ai-platform:gpuNodeGroups[0].desiredSize: must be <= maxSize (got 1 > 0)"]
    found = problems(network=NETWORK, gpuNodeGroups=[good_pool(minSize=0, desiredSize=0, maxSize=0)])
    assert found == ["ai-platform:gpuNodeGroups[0].maxSize: must be >= 1 (a pool with maxSize 0 can never run a node)"]
    found = problems(network=NETWORK, gpuNodeGroups=[good_pool(minSize=3, desiredSize=3, maxSize=2)])
    assert found == ["ai-platform:gpuNodeGroups[0].maxSize: must be >= minSize (got 2 < 3)",
                     "ai-platform:gpuNodeGroups[0].desiredSize: must be <= maxSize (got 3 > 2)"]


@pytest.mark.parametrize("keys, expected", [
    ({"gpuNodeGroups": [good_pool(gpuCount=1)]}, "ai-platform:gpuNodeGroups[0].gpuCount: unknown key"),
    ({"gpuNodeGroups": [good_pool(minSize="two")]}, "ai-platform:gpuNodeGroups[0].minSize: input should be a valid integer"),
    ({"gpuNodeGroups": [good_pool(amiType="AL2_x86_64_GPU")]}, "ai-platform:gpuNodeGroups[0].amiType: input should be 'AL2023_x86_64_NVIDIA'"),
    ({"gpuNodeGroups": [good_pool(instanceTypes=[])]}, "ai-platform:gpuNodeGroups[0].instanceTypes: list should have at least 1 item"),
    ({"gpuNodeGroups": [good_pool(instanceTypes=["m5.large"])]}, "ai-platform:gpuNodeGroups[0].instanceTypes[0]: m5.large is not an NVIDIA GPU instance type"),
    ({"gpuNodeGroups": [good_pool(instanceTypes=["inf2.xlarge"])]}, "ai-platform:gpuNodeGroups[0].instanceTypes[0]: inf2.xlarge has no NVIDIA GPU (AWS Inferentia2)"),
    ({"gpuNodeGroups": [good_pool(instanceTypes=["g5g.xlarge"])]}, "ai-platform:gpuNodeGroups[0].instanceTypes: g5g.xlarge cannot run amiType AL2023_x86_64_NVIDIA (x86_64)"),
    ({"gpuNodeGroups": [good_pool(instanceTypes=["g5.xlarge", "g5.12xlarge"])]}, "ai-platform:gpuNodeGroups[0].instanceTypes: must all have the same GPU count"),
    ({"gpuNodeGroups": [good_pool(), good_pool()]}, "ai-platform:gpuNodeGroups[1].name: duplicate pool name 'inference' (also gpuNodeGroups[0])"),
    ({"network": {"vpcCidr": "10.0.0.0/33", **NETWORK}}, "ai-platform:network.vpcCidr: not a valid IPv4 CIDR"),
    ({"network": {"vpcCidr": "10.0.0.1/16", **NETWORK}}, "ai-platform:network.vpcCidr: not a valid IPv4 CIDR (10.0.0.1/16 has host bits set)"),
    ({"network": {"availabilityZones": ["us-east-1a", "us-east-1b"]}}, "ai-platform:network.availabilityZones: us-east-1a, us-east-1b not in region us-west-2"),
    ({"network": {"natGateway": "single", **NETWORK}}, "ai-platform:network.natGateway: unknown key (did you mean 'natGateways'?)"),
    ({"clusterAutoscaler": {"expander": "cheapest"}}, "ai-platform:clusterAutoscaler.expander: input should be 'least-waste'"),
    ({"cluster": {"kubernetesVersion": "1.20"}}, "ai-platform:cluster.kubernetesVersion: input should be '1.31'"),
    ({"cluster": {"adminRoleArns": ["admin"]}}, "ai-platform:cluster.adminRoleArns[0]: not an IAM role ARN"),
    ({"gpuNodeGruops": []}, "ai-platform:gpuNodeGruops: unknown key (did you mean 'gpuNodeGroups'?)"),
])
def test_each_bad_input_is_reported_by_key(keys, expected):
    keys.setdefault("network", NETWORK)
    keys.setdefault("gpuNodeGroups", [good_pool()])
    found = problems(**keys)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems(
        network={"vpcCidr": "nope", "availabilityZones": ["us-west-2a", "us-west-2b"], "extra": 1},
        gpuNodeGroups=[good_pool(minSize=2, desiredSize=2, maxSize=1), good_pool(name="b", instanceTypes=["t3.large"])],
        unknownKey=True,
    )
    assert len(found) == 6, found  # vpcCidr, extra, maxSize, desiredSize, instanceTypes[0], unknownKey
    message = str(stack_config.ConfigError(found, "dev"))
    assert message.startswith("invalid configuration of stack 'dev' (6 problems):")


def test_region_belongs_to_the_aws_namespace():
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse({"aws:region": "us-west-2", "ai-platform:region": "us-east-1"})
    assert "ai-platform:region: unknown key (the region is set with aws:region)" in caught.value.problems
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse({"ai-platform:network": json.dumps(NETWORK), "ai-platform:gpuNodeGroups": json.dumps([good_pool()])})
    assert caught.value.problems == ["aws:region: required key is missing"]


def test_bad_config_stops_the_program_before_any_resource():
    values = {"aws:region": "us-west-2", "ai-platform:gpuNodeGroups": json.dumps([good_pool(maxSize=0)])}
    import pulumi
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", values)
    assert "ai-platform:gpuNodeGroups[0].maxSize" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_plan_cli_reports_bad_config_without_traceback(tmp_path):
    values = stack_values("dev")
    values["gpuNodeGroups"][0].update(minSize=1, maxSize=0)
    values["network"]["vpcCidr"] = "10.0.0.0/40"
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {"aws:region": "us-west-2", **{f"ai-platform:{k}": v for k, v in values.items()}}}))
    result = subprocess.run(
        [sys.executable, "-m", "platformctl", "plan", "--stack", "dev", "--stack-file", str(stack_file), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=PROJECT,
    )
    assert result.returncode == 2
    assert "ai-platform:gpuNodeGroups[0].maxSize" in result.stderr
    assert "ai-platform:network.vpcCidr" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists(), "a bad config must write nothing"


def test_readme_configuration_reference_is_generated_from_the_model():
    from stack_config import reference

    readme = (PROJECT / "README.md").read_text()
    start, end = readme.index(reference.BEGIN), readme.index(reference.END) + len(reference.END)
    assert readme[start:end] == reference.table(), "README is stale: python -m stack_config.reference"


# --- API endpoint access (issue 12, finding 2) --------------------------------------------------

EXISTING_VPC = {**NETWORK, "existingVpc": {"vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-0a", "subnet-0b"]}}
PRIVATE_ONLY = {"endpointPublicAccess": False, "endpointPrivateAccess": True, "publicAccessCidrs": []}


def test_the_old_prod_endpoint_private_only_in_its_own_vpc_is_refused_saying_what_to_set():
    """EKS's cluster security group admits only itself (EKS User Guide, awsdocs/amazon-eks-user-guide
    latest/ug/networking/sec-group-reqs.adoc, "Default cluster security group"); a private-only API
    is reachable only "from within your VPC or a connected network" with 443 admitted by that group
    (latest/ug/clusters/cluster-endpoint.adoc, "Accessing a private only API server"). A VPC the
    stack creates in the same `pulumi up` is connected to nothing, so the old prod config (and any
    access list on it) can never converge: one problem naming every key that fixes it."""
    for extra in ({}, {"apiAccessCidrs": ["10.99.0.0/16"]}):
        found = problems(network=NETWORK, gpuNodeGroups=[good_pool()], cluster={**PRIVATE_ONLY, **extra})
        assert len(found) == 1 and found[0].startswith("ai-platform:cluster.endpointPublicAccess: false in a VPC this stack creates")
        for key in ("cluster.endpointPublicAccess: true", "cluster.publicAccessCidrs", "network.existingVpc",
                    "cluster.apiAccessCidrs", "cluster.apiAccessSecurityGroupIds"):
            assert key in found[0], key


def test_private_only_in_a_brought_vpc_needs_an_access_list():
    found = problems(network=EXISTING_VPC, gpuNodeGroups=[good_pool()], cluster=PRIVATE_ONLY)
    assert len(found) == 1 and "false with no other way in: the cluster security group admits only itself" in found[0]
    assert "cluster.apiAccessCidrs" in found[0] and "cluster.apiAccessSecurityGroupIds" in found[0] and "cluster.publicAccessCidrs" in found[0]
    for access in ({"apiAccessCidrs": ["10.99.0.0/16"]}, {"apiAccessSecurityGroupIds": ["sg-0123456789abcdef0"]}):
        config = parse(network=EXISTING_VPC, gpuNodeGroups=[good_pool()], cluster={**PRIVATE_ONLY, **access})
        assert config.cluster.endpointPublicAccess is False


def test_access_lists_are_checked_with_every_problem_at_once():
    found = problems(network=NETWORK, gpuNodeGroups=[good_pool()], cluster={
        "endpointPrivateAccess": False, "publicAccessCidrs": ["10.0.0.0/8", "198.51.100.7/32", "0.0.0.0/0"],
        "apiAccessCidrs": ["0.0.0.0/0"], "apiAccessSecurityGroupIds": ["sg-0123456789abcdef0"],
    })
    text = "\n".join(found)
    # RFC 1918 can never be the source of a request to the public endpoint; EKS refuses reserved ranges.
    assert "ai-platform:cluster.publicAccessCidrs: 10.0.0.0/8: not internet address(es)" in text
    assert "198.51.100.7/32" not in text  # a documentation placeholder passes the model (refused at deploy)
    assert "ai-platform:cluster.apiAccessCidrs: 0.0.0.0/0 would open 443" in text
    assert "ai-platform:cluster.endpointPrivateAccess: must be true when apiAccessCidrs / apiAccessSecurityGroupIds are set" in text


def test_restricted_public_endpoint_without_private_access_would_strand_the_nodes():
    """EKS User Guide (latest/ug/clusters/config-cluster-endpoint.adoc): without the private endpoint,
    publicAccessCidrs must include the nodes' egress (the NAT gateway addresses), which a stack that
    creates its VPC cannot know beforehand."""
    cluster = {"endpointPrivateAccess": False, "publicAccessCidrs": ["8.8.8.8/32"]}
    found = problems(network=NETWORK, gpuNodeGroups=[good_pool()], cluster=cluster)
    assert found == [found[0]] and found[0].startswith("ai-platform:cluster.endpointPrivateAccess: false with publicAccessCidrs restricted")
    parse(network=EXISTING_VPC, gpuNodeGroups=[good_pool()], cluster=cluster)  # a brought VPC's NAT addresses can be listed
    parse(network=NETWORK, gpuNodeGroups=[good_pool()], cluster={"endpointPrivateAccess": False})  # 0.0.0.0/0 admits the NAT


def test_access_security_groups_are_group_ids():
    found = problems(network=EXISTING_VPC, gpuNodeGroups=[good_pool()], cluster={**PRIVATE_ONLY, "apiAccessSecurityGroupIds": ["runners"]})
    assert found[0].startswith("ai-platform:cluster.apiAccessSecurityGroupIds[0]: string should match pattern '^sg-[0-9a-f]{8,17}$'")


def test_a_placeholder_address_plans_but_is_refused_for_pulumi_up():
    """The committed prod config ships an RFC 5737 placeholder: an offline plan works, `pulumi up`
    stops before registering anything, naming the key and how to set it."""
    prod = stack_config.load_from_files("prod")
    assert stack_config.model.placeholder_cidrs(prod) == [("cluster.publicAccessCidrs[0]", prod.cluster.publicAccessCidrs[0])]
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.refuse_placeholders(prod, "prod")
    (problem,) = caught.value.problems
    assert problem.startswith("ai-platform:cluster.publicAccessCidrs[0]: 203.0.113.10/32 is a documentation placeholder")
    assert "pulumi config set --path 'ai-platform:cluster.publicAccessCidrs[0]' <address>/32" in problem
    stack_config.refuse_placeholders(stack_config.load_from_files("dev"))  # 0.0.0.0/0: no placeholder


def test_pulumi_up_of_the_committed_prod_config_stops_before_any_resource(monkeypatch):
    """The same program, run as `pulumi up` runs it (not a dry run): the placeholder is refused
    before anything is registered."""
    import pulumi

    values, secret = stack_config.read_stack_files("prod")
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    with pytest.raises(pulumi.RunError, match=r"cluster\.publicAccessCidrs\[0\]: 203\.0\.113\.10/32 is a documentation placeholder") as caught:
        run_program("prod", values, secret)
    assert "Traceback" not in str(caught.value)
