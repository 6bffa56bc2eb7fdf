"""`platformctl plan` as a newcomer runs it: files written, secrets hidden, manifests valid.

The first test runs the command as a process, as a user does; the others call the CLI's `main` in
this process, on the harness's cached run of a committed stack where the run is not what they test."""

import json
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

import stack_config
from platformctl import first_deploy
from platformctl import plan as plan_command
from platformctl.cli import main
from platformctl.plan import write_outputs
from tests.harness import STACKS, config_for, plan

PROJECT = stack_config.PROJECT_DIR
# Kinds served by CRDs: kubernetes-validate has no schema for them, so they are reported, not passed.
CRD_GROUPS = ("monitoring.coreos.com/", "nvidia.com/", "elbv2.k8s.aws/", "keda.sh/")


# The committed stacks plan cleanly: no mandatory policy violated, no first-deploy deadlock.
PLAN_OK = (0,)


@pytest.fixture(scope="module")
def plans(written_plans):
    return {stack: written.directory for stack, written in written_plans.items()}


@pytest.fixture
def cached_runs(monkeypatch):
    """The plan command plans a committed stack from the harness's cached run (a stack file variant
    is still run)."""
    run_stack = plan_command.run_stack

    def cached(stack, stack_file=None):
        return run_stack(stack, stack_file=stack_file) if stack_file else plan(stack)

    monkeypatch.setattr(plan_command, "run_stack", cached)


def test_plan_command_writes_the_plan_and_prints_the_tree(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "platformctl", "plan", "--stack", "dev", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=PROJECT, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode in PLAN_OK, result.stderr
    assert "ai-platform:gpu:GpuNodeGroup" in result.stdout and "Stack outputs" in result.stdout
    assert "pulumi up -s dev" in result.stdout and "make preflight STACK=dev" in result.stdout
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["stack"] == "dev"
    assert {"urn", "type", "name", "parent", "inputs"} <= set(doc["resources"][0])
    assert doc["outputs"]["clusterName"] == "ai-platform-dev"
    assert doc["outputs"]["kubeconfig"] == "[secret]"
    assert (tmp_path / "plan.md").read_text().startswith("### Offline plan: `dev`")
    # The first-deploy walk: in the terminal, in plan.md (the PR comment) and in plan.json.
    assert "First deploy: " in result.stdout and "#### First deploy" in (tmp_path / "plan.md").read_text()
    assert doc["firstDeploy"]["steps"][0]["title"] == "Kubernetes API endpoint"
    assert {"Job", "Deployment", "Release"} <= {s["title"].split()[0] for s in doc["firstDeploy"]["steps"]}


def test_markdown_format_is_printed_for_pull_requests(tmp_path, capsys, cached_runs):
    code = main(["plan", "--stack", "prod", "--out", str(tmp_path), "--format", "markdown"])
    result = capsys.readouterr()
    assert code in PLAN_OK, result.err
    assert result.out.startswith("### Offline plan: `prod`")
    assert "| `aws:eks/nodeGroup:NodeGroup` | 3 |" in result.out
    assert "<details><summary>Resource tree</summary>" in result.out


def test_unknown_stack_is_a_clear_error(tmp_path, capsys):
    code = main(["plan", "--stack", "staging", "--out", str(tmp_path / "x")])  # an uncaught exception fails the test
    result = capsys.readouterr()
    assert code == 2
    assert "Pulumi.staging.yaml: no such stack file (stacks: dev, prod)" in result.err.replace("\n", " ").replace(str(PROJECT) + "/", "")
    assert "Traceback" not in result.err


@pytest.mark.parametrize("stack", STACKS)
def test_values_known_only_after_deploy_stay_unknown(stack):
    doc = plan(stack).to_json()
    cluster = next(r for r in doc["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy")
    assert cluster["inputs"]["role"] == "<computed>"  # a role ID the mocks must not invent
    assert doc["outputs"]["vpcId"] == "<computed>"


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_validate_against_the_cluster_version_schema(stack, plans):
    version = config_for(stack).cluster.kubernetesVersion + ".0"
    manifests = sorted((plans[stack] / "manifests").glob("*.yaml"))
    assert manifests
    checked, crds = [], []
    for path in manifests:
        doc = yaml.safe_load(path.read_text())
        assert doc["metadata"].get("name") not in (None, "<computed>"), f"{path.name}: Kubernetes objects are named explicitly"
        if doc["apiVersion"].startswith(CRD_GROUPS):
            crds.append(path.name)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name}: {error.message} at {'/'.join(map(str, error.path))}")
        checked.append(path.name)
    print(f"{stack}: {len(checked)} manifests schema-checked against {version}; not schema-checked (CRDs): {crds or 'none'}")
    assert checked


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_plain_text_in_the_plan(stack, plans):
    text = (plans[stack] / "plan.json").read_text()
    assert "certificate-authority-data" not in text  # the kubeconfig never appears
    assert "[secret]" in text


def test_plan_output_is_identical_between_runs(tmp_path):
    """Registration order follows the program's asynchronous resolution; the plan must not, so a
    PR's plan diff shows only real changes."""
    from platformctl.mockrun import run_stack

    write_outputs(plan("prod"), tmp_path / "first")  # the harness's (cached) run: an earlier run
    write_outputs(run_stack("prod"), tmp_path / "second")
    first, second = tmp_path / "first", tmp_path / "second"
    assert (first / "plan.json").read_text() == (second / "plan.json").read_text()
    assert sorted(p.name for p in (first / "manifests").iterdir()) == sorted(p.name for p in (second / "manifests").iterdir())


def test_json_format_prints_only_the_plan(tmp_path, capsys, cached_runs):
    code = main(["plan", "--stack", "dev", "--out", str(tmp_path), "--format", "json"])
    result = capsys.readouterr()
    assert code in PLAN_OK, result.err
    assert json.loads(result.out)["stack"] == "dev"


def test_a_variant_plan_goes_to_its_own_directory(tmp_path, capsys, monkeypatch):
    variant = tmp_path / "my-variant.yaml"
    variant.write_text((PROJECT / "Pulumi.dev.yaml").read_text())
    monkeypatch.chdir(tmp_path)  # the default output directory is relative to where the command runs

    code = main(["plan", "--stack", "dev", "--stack-file", str(variant)])
    result = capsys.readouterr()
    assert code in PLAN_OK, result.err
    assert (tmp_path / "build/plan/my-variant/plan.json").exists() and not (tmp_path / "build/plan/dev").exists()
    assert "pulumi up -s" not in result.out  # no deploy hint: deploying would apply the stack file, not the variant


def test_a_first_deploy_deadlock_fails_the_plan_with_exit_3(tmp_path, monkeypatch, cached_runs):
    """The check's verdict reaches the exit code, the terminal, plan.md and plan.json: here the real
    dev plan with a private-only API endpoint and no access rule (issue 12 finding 2)."""
    import copy
    import io

    from rich.console import Console

    check = first_deploy.check

    def private_only(doc):
        doc = copy.deepcopy(doc)
        for resource in doc["resources"]:
            if resource["type"] == first_deploy.CLUSTER:
                resource["inputs"]["vpcConfig"] = {"endpointPublicAccess": False, "endpointPrivateAccess": True}
        doc["resources"] = [r for r in doc["resources"] if not r["name"].startswith(first_deploy.API_ACCESS_RULE_PREFIX)]
        return check(doc)

    monkeypatch.setattr(first_deploy, "check", private_only)
    out = io.StringIO()
    code = plan_command.plan("dev", tmp_path, console=Console(file=out, width=250))
    assert code == first_deploy.EXIT_DEADLOCK == 3
    text = out.getvalue()
    assert "FAIL  api-endpoint: private-only endpoint and no access path" in text
    assert 'The first deploy would not finish (see "First deploy" above): exit 3.' in text
    assert "private-only endpoint and no access path" in (tmp_path / "plan.md").read_text()
    summary = json.loads((tmp_path / "plan.json").read_text())["firstDeploy"]
    assert summary["exitCode"] == 3 and summary["steps"][0]["status"] == "FAIL"
