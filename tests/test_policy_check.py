"""`python -m platformctl policy check PLAN_JSON`: the policies over an offline plan.

A deliberately bad plan must fail with exit 1 and exactly one violation per planted problem; the
real dev and prod plans must pass every policy at their stack's configuration. The command runs
through the CLI's `main` in this process (`python -m platformctl` as a process: tests/test_plan.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from platformctl import policy_check
from platformctl.cli import main
from policy.rules import ALL_POLICIES

ROOT = Path(__file__).resolve().parent.parent
STACK_URN = "urn:pulumi:prod::ai-platform::pulumi:pulumi:Stack::ai-platform-prod"
COMPUTED = "<computed>"


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m platformctl ARGS` run from the project directory: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's exit; any other exception fails the test as a traceback would
            code = exit_.code
    return subprocess.CompletedProcess(["platformctl", *args], code, out.getvalue(), err.getvalue())


def resource(type_: str, name: str, inputs: dict, deps=()) -> dict:
    return {
        "urn": f"urn:pulumi:prod::ai-platform::{type_}::{name}", "type": type_, "name": name, "parent": STACK_URN,
        "custom": True, "provider": "", "protect": False, "retainOnDelete": False,
        "dependencies": list(deps), "inputs": inputs,
    }


def node_group(name: str, pool: str, instance_type: str, max_size: float, tainted: bool = True) -> dict:
    inputs = {
        "clusterName": "ai-platform-prod", "nodeGroupNamePrefix": f"ai-platform-prod-{pool}-",
        "amiType": "AL2023_x86_64_NVIDIA", "instanceTypes": [instance_type], "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 1.0, "desiredSize": 1.0, "maxSize": max_size},
        "labels": {"ai-platform/gpu-pool": pool}, "nodeRoleArn": COMPUTED, "subnetIds": COMPUTED,
    }
    if tainted:
        inputs["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    return resource("aws:eks/nodeGroup:NodeGroup", name, inputs)


def deployment(name: str, namespace: str, containers: list, tolerations=None, node_selector=None, kind="Deployment") -> dict:
    spec: dict = {"containers": containers}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    body = {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    return resource(f"kubernetes:apps/v1:{kind}", name, {
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": body})


def container(name: str, image: str, gpus: str | None = None, gpu_limit: bool = True) -> dict:
    resources: dict = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    if gpus:
        resources["requests"]["nvidia.com/gpu"] = gpus
        if gpu_limit:
            resources["limits"]["nvidia.com/gpu"] = gpus
    return {"name": name, "image": image, "resources": resources}


GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TRITON = "nvcr.io/nvidia/tritonserver:25.01-py3"


def good_plan() -> dict:
    bucket = resource("aws:s3/bucket:Bucket", "models", {"bucket": "ai-platform-prod-models", "forceDestroy": False})
    return {"stack": "prod", "outputs": {}, "resources": [
        resource("pulumi:pulumi:Stack", "ai-platform-prod", {}),
        resource("aws:eks/nodeGroup:NodeGroup", "cluster-system", {
            "amiType": "AL2023_x86_64_STANDARD", "instanceTypes": ["m6i.xlarge"], "capacityType": "ON_DEMAND",
            "scalingConfig": {"minSize": 3.0, "desiredSize": 3.0, "maxSize": 6.0}, "labels": {"ai-platform/node-role": "system"}}),
        node_group("gpu-inference", "inference", "g6e.xlarge", 4.0),
        node_group("gpu-batch", "batch", "g6e.xlarge", 2.0),
        node_group("gpu-extra", "extra", "g6e.xlarge", 6.0),
        deployment("triton", "inference", [container("triton", TRITON, gpus="1")], [GPU_TOLERATION],
                   {"ai-platform/gpu-pool": "inference"}),
        deployment("openwebui", "openwebui", [container("openwebui", "ghcr.io/open-webui/open-webui:v0.6.5")]),
        deployment("tokenizer-cache", "inference", [container("cache", "redis:7.4.2")]),
        deployment("dcgm-exporter", "gpu-operator", [container("exporter", "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04")],
                   [{"operator": "Exists"}], kind="DaemonSet"),
        bucket,
        resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "models-pab", {
            "bucket": COMPUTED, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
            "restrictPublicBuckets": True}, deps=[bucket["urn"]]),
        resource("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "models-sse", {
            "bucket": COMPUTED, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
            deps=[bucket["urn"]]),
    ]}


# The planted problems: (policy, resource) each must be reported exactly once, and nothing else.
PLANTED = {
    ("gpu-limits-required", "triton"),            # GPU Deployment without limits ...
    ("gpu-workload-tolerates-taint", "triton"),   # ... and without the GPU toleration
    ("gpu-node-group-tainted", "gpu-batch"),      # untainted GPU node group
    ("image-tag-pinned", "openwebui"),            # a :latest image
    ("gpu-taint-reserved", "tokenizer-cache"),    # CPU pod tolerating the GPU taint
    ("gpu-node-group-limits", "gpu-extra"),       # a pool over the maxSize cap (8 > 6)
}


def bad_plan() -> dict:
    plan = good_plan()
    by_name = {r["name"]: r for r in plan["resources"]}
    triton = by_name["triton"]["inputs"]["spec"]["template"]["spec"]
    triton["containers"] = [container("triton", TRITON, gpus="1", gpu_limit=False)]
    del triton["tolerations"]
    del by_name["gpu-batch"]["inputs"]["taints"]
    by_name["gpu-extra"]["inputs"]["scalingConfig"]["maxSize"] = 8.0  # 4 + 2 + 8 = 14 GPUs: inside the budget
    by_name["openwebui"]["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/open-webui/open-webui:latest"
    by_name["tokenizer-cache"]["inputs"]["spec"]["template"]["spec"]["tolerations"] = [GPU_TOLERATION]
    return plan


@pytest.fixture
def write(tmp_path):
    def _write(plan: dict, name: str = "plan.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(plan, indent=2))
        return str(path)
    return _write


def test_good_plan_passes_every_policy(write):
    result = policy_check.check_plan(good_plan())
    assert result.findings == [] and result.passed and result.config_source == "policy/config.prod.json"
    run = cli("policy", "check", write(good_plan()))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(ALL_POLICIES)}/{len(ALL_POLICIES)} policies clean" in run.stdout


def test_bad_plan_reports_one_mandatory_violation_per_problem():
    result = policy_check.check_plan(bad_plan())
    found = [(f.policy, f.resource_name) for f in result.violations]
    assert sorted(found) == sorted(PLANTED)  # each problem once, nothing more
    assert {f.level for f in result.violations} == {"mandatory"} and not result.passed


def test_policy_check_cli_fails_the_bad_plan_grouped_by_policy(write):
    run = cli("policy", "check", write(bad_plan()))
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "Traceback" not in out + run.stderr
    for policy, name in PLANTED:
        assert f"✗ {policy} [mandatory]" in out
    assert "Deployment triton: container 'triton' requests nvidia.com/gpu='1' but sets no limit" in out
    assert "NodeGroup gpu-batch: GPU node group (AL2023_x86_64_NVIDIA) has no nvidia.com/gpu NoSchedule taint" in out
    assert "Deployment openwebui: container 'openwebui' image 'ghcr.io/open-webui/open-webui:latest' uses the moving tag 'latest'" in out
    assert "Deployment tokenizer-cache: pod requests no GPU but tolerates the GPU taint" in out
    assert "NodeGroup gpu-extra: scalingConfig.maxSize=8 exceeds the cap of 6" in out
    assert "FAILED: 6 mandatory violation(s), 0 advisory" in out
    # Violations are grouped: the policy header comes once, in pack order.
    headers = [line.split()[1] for line in out.splitlines() if line.startswith("✗ ")]
    assert headers == [p.name for p in ALL_POLICIES if p.name in {p for p, _ in PLANTED}]


def test_advisory_config_reports_but_does_not_fail(write):
    run = cli("policy", "check", write(bad_plan()), "--config", "policy/config.dev.json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "! gpu-limits-required [advisory]" in run.stdout and "0 mandatory violation(s)" in run.stdout
    # dev allows SPOT only: the on-demand pools are named as well.
    assert "capacityType=ON_DEMAND is not allowed" in run.stdout


def test_unknown_values_are_listed_as_not_evaluated_without_failing(write):
    plan = good_plan()
    by_name = {r["name"]: r for r in plan["resources"]}
    by_name["openwebui"]["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = COMPUTED
    run = cli("policy", "check", write(plan))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Not evaluated" in run.stdout
    assert "image-tag-pinned - Deployment openwebui: not evaluated: container 'openwebui' image is not known" in run.stdout
    assert "1 not evaluated" in run.stdout


def test_plan_without_stack_uses_policy_defaults():
    plan = bad_plan()
    del plan["stack"]
    result = policy_check.check_plan(plan)
    assert result.config_source is None
    # Defaults: every policy mandatory, generous caps (maxSize 10): the pool-cap problem is not one.
    assert {(f.policy, f.resource_name) for f in result.violations} == PLANTED - {("gpu-node-group-limits", "gpu-extra")}


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read"),
    ("{not json", "not valid JSON"),
    ('{"resources": {}}', "not a plan"),
    ('{"resources": [{"type": "x"}]}', "resources[0]: expected an object with string 'type' and 'urn'"),
])
def test_unreadable_plans_exit_2_with_a_clear_message(tmp_path, content, expected):
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    run = cli("policy", "check", str(path))
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr


def test_bad_policy_config_exits_2_naming_the_key(write, tmp_path):
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"gpu-budget": {"maxGPUs": 8}}))
    run = cli("policy", "check", write(good_plan()), "--config", str(config))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "gpu-budget.maxGPUs: unknown setting (did you mean 'maxGpus'?)" in run.stderr


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack_plans_pass_every_policy(stack, written_plans):
    # `platformctl plan --stack <stack>`, run once per session (tests/conftest.py).
    out, run = written_plans[stack].directory, written_plans[stack]
    assert run.exit_code == 0, run.stdout[-3000:]
    # plan runs the policy check itself and shows it under the tree and in plan.md.
    assert "Policy check (" in run.stdout and "Policy check" in (out / "plan.md").read_text()
    result = policy_check.check_plan(json.loads((out / "plan.json").read_text()))
    assert result.config_source == f"policy/config.{stack}.json"
    assert [(f.policy, f.resource_name, f.message) for f in result.findings] == []
    # Not a vacuous pass: at caps the stack cannot meet, the same plan fails on every GPU pool and
    # on every GPU workload, so the policies did see them.
    from policy.rules import parse_config

    plan = json.loads((out / "plan.json").read_text())
    pools = [r["name"] for r in plan["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup" and r["name"].startswith("gpu-")]
    gpu_workloads = [r["name"] for r in plan["resources"] if '"nvidia.com/gpu"' in json.dumps(
        r["inputs"].get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))]
    assert pools and gpu_workloads
    strict = parse_config({"all": "mandatory", "gpu-budget": {"maxGpus": 0},
                           "gpu-node-group-limits": {"allowedInstanceTypes": ["p5.48xlarge"]}})
    failed = policy_check.check_plan(plan, strict)
    assert sorted(f.resource_name for f in failed.violations if f.policy == "gpu-node-group-limits") == sorted(pools)
    assert [f.policy for f in failed.violations if f.policy == "gpu-budget"] == ["gpu-budget"]
    assert failed.exit_code == 1
    for r in plan["resources"]:
        if r["name"] in gpu_workloads:
            r["inputs"]["spec"]["template"]["spec"].pop("tolerations")
    untolerated = policy_check.check_plan(plan, strict)
    assert sorted(f.resource_name for f in untolerated.violations
                  if f.policy == "gpu-workload-tolerates-taint") == sorted(gpu_workloads)
