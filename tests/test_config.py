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
    assert prod.cluster.endpointPublicAccess is False and prod.cluster.deletionProtection is True
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
