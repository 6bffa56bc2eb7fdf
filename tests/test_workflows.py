"""The GitHub Actions workflows: lint clean with actionlint (offline binary from PyPI), least privilege
per job, pinned actions, deploys that never overlap, prod behind an approval, previews that skip
cleanly when the repository is not connected to AWS, and a PR comment that is produced by a command
in this repository (run here, exactly as the workflow runs it)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import stack_config
from platformctl.cli import build_parser
from tests.harness import STACKS
from tests.test_smoke import mlserver  # noqa: F401 - the KServe-v2 server fixture

ROOT = stack_config.PROJECT_DIR
WORKFLOWS = ROOT / ".github" / "workflows"
PR, DEPLOY = WORKFLOWS / "pull-request.yml", WORKFLOWS / "deploy.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
GITHUB_COMMENT_LIMIT = 65536  # characters; a longer body makes the comment step fail


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def step_named(job: dict, name: str) -> dict:
    found = [s for s in job["steps"] if s.get("name") == name]
    assert len(found) == 1, f"no single step named {name!r}"
    return found[0]


# --- a small evaluator for the GitHub expressions used in `if:` --------------------------------

_TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|!|\(|\))|'((?:[^']|'')*)'|([A-Za-z_][\w.-]*(?:\(\))?))")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """GitHub's expression semantics for what the workflows use: property paths (missing -> ''),
    'strings', ==, !=, !, &&, || (returning an operand), parentheses and `!cancelled()`."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        assert match, f"cannot read expression at {text[pos:]!r}"
        op, string, name = match.groups()
        tokens.append(("op", op) if op else ("str", string.replace("''", "'")) if string is not None else ("name", name))
        pos = match.end()

    def lookup(path: str) -> Any:
        if path == "cancelled()":
            return False
        value: Any = context
        for part in path.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def parse_or(i):
        left, i = parse_and(i)
        while i < len(tokens) and tokens[i] == ("op", "||"):
            right, i = parse_and(i + 1)
            left = left or right
        return left, i

    def parse_and(i):
        left, i = parse_cmp(i)
        while i < len(tokens) and tokens[i] == ("op", "&&"):
            right, i = parse_cmp(i + 1)
            left = left and right
        return left, i

    def parse_cmp(i):
        left, i = parse_unary(i)
        if i < len(tokens) and tokens[i] in (("op", "=="), ("op", "!=")):
            op = tokens[i][1]
            right, i = parse_unary(i + 1)
            return (left == right) if op == "==" else (left != right), i
        return left, i

    def parse_unary(i):
        kind, value = tokens[i]
        if (kind, value) == ("op", "!"):
            inner, i = parse_unary(i + 1)
            return not inner, i
        if (kind, value) == ("op", "("):
            inner, i = parse_or(i + 1)
            assert tokens[i] == ("op", ")")
            return inner, i + 1
        if kind == "str":
            return value, i + 1
        return lookup(value), i + 1

    result, end = parse_or(0)
    assert end == len(tokens), f"unparsed rest of {expression!r}"
    return result


def event(*, fork: bool = False) -> dict:
    head = "someone/ai-platform" if fork else "acme/ai-platform"
    return {"repository": "acme/ai-platform", "event": {"pull_request": {"head": {"repo": {"full_name": head}}}}}


CONNECTED = {"PULUMI_BACKEND_URL": "s3://acme-pulumi-state", "AWS_PREVIEW_ROLE_ARN_DEV": "arn:aws:iam::123456789012:role/ai-platform-dev-ci-preview",
             "AWS_PREVIEW_ROLE_ARN_PROD": "arn:aws:iam::123456789012:role/ai-platform-prod-ci-preview",
             "AWS_ROLE_ARN_DEV": "arn:aws:iam::123456789012:role/ai-platform-dev-ci-deploy",
             "AWS_ROLE_ARN_PROD": "arn:aws:iam::123456789012:role/ai-platform-prod-ci-deploy"}


def test_evaluator_follows_github_semantics():
    assert evaluate("${{ vars.A != '' && (vars.B == 'x' || !cancelled()) }}", {"vars": {"A": "1"}}) is True
    assert evaluate("vars.A != ''", {}) is False
    assert evaluate("vars.A || 'fallback'", {"vars": {}}) == "fallback"


# --- actionlint ---------------------------------------------------------------------------------

def test_actionlint_is_the_offline_binary_and_finds_real_mistakes(tmp_path):
    version = subprocess.run([str(ACTIONLINT), "-version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip(), version.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "matrix" in result.stdout


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"pull-request.yml", "deploy.yml"}
    result = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, files)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- triggers, permissions, pins ----------------------------------------------------------------

def test_triggers():
    assert triggers(load(PR)) == {"pull_request": {"branches": ["main"]}}
    assert triggers(load(DEPLOY)) == {"push": {"branches": ["main"]}}


# Exactly what each job may do with the GITHUB_TOKEN; anything more fails the test.
EXPECTED_PERMISSIONS = {
    (PR.name, "test"): {"contents": "read"},
    (PR.name, "offline-plan"): {"contents": "read", "pull-requests": "write"},
    (PR.name, "preview"): {"contents": "read", "id-token": "write", "pull-requests": "write"},
    (DEPLOY.name, "dev"): {"contents": "read", "id-token": "write"},
    (DEPLOY.name, "prod"): {"contents": "read", "id-token": "write"},
}


@pytest.mark.parametrize("path", [PR, DEPLOY], ids=lambda p: p.name)
def test_least_privilege_per_job(path):
    workflow = load(path)
    assert workflow["permissions"] == {}, "the workflow default must grant nothing"
    for name, job in workflow["jobs"].items():
        assert job.get("permissions") == EXPECTED_PERMISSIONS[(path.name, name)], name
        # Only jobs that assume an AWS role get an OIDC token.
        assert (job["permissions"].get("id-token") == "write") == bool(steps_using(job, "aws-actions/configure-aws-credentials")), name
        for checkout in steps_using(job, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False, name


@pytest.mark.parametrize("path", [PR, DEPLOY], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_release_noted(path):
    """Tags can be moved; a full commit SHA cannot. The comment says which release it is."""
    pins: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        match = re.search(r"uses:\s*(\S+)(.*)$", line)
        if not match:
            continue
        ref, rest = match.groups()
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", ref), f"not pinned to a commit: {line.strip()}"
        assert re.fullmatch(r"\s*#\s*v\d+\.\d+\.\d+", rest), f"no '# vX.Y.Z' note: {line.strip()}"
        pins.setdefault(ref.split("@")[0], set()).add(ref.split("@")[1] + rest.strip())
    assert pins and all(len(v) == 1 for v in pins.values()), f"one action pinned to different commits: {pins}"


def test_same_action_same_commit_across_workflows():
    def pins(path):
        return {m.group(1): m.group(2) for m in re.finditer(r"uses:\s*([\w./-]+)@([0-9a-f]{40})", path.read_text())}
    pr, deploy = pins(PR), pins(DEPLOY)
    assert {a: pr[a] for a in pr.keys() & deploy.keys()} == {a: deploy[a] for a in pr.keys() & deploy.keys()}


def test_pulumi_cli_version_matches_the_sdk_pin():
    pin = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    for path in (PR, DEPLOY):
        assert load(path)["env"]["PULUMI_VERSION"] == pin


# --- pull-request.yml ---------------------------------------------------------------------------

def test_test_job_runs_make_test_with_pip_cache():
    job = load(PR)["jobs"]["test"]
    assert [s["run"] for s in job["steps"] if "run" in s][-1] == "make test"
    setup, = steps_using(job, "actions/setup-python")
    assert setup["with"]["cache"] == "pip"


def test_offline_plan_covers_every_stack_and_needs_no_cloud():
    job = load(PR)["jobs"]["offline-plan"]
    assert job["strategy"]["matrix"]["stack"] == sorted(stack_config.list_stacks()) == sorted(STACKS)
    text = yaml.safe_dump(job)
    # No secrets, no variables, no credentials: it runs the same for pull requests from forks.
    assert "secrets." not in text and "vars." not in text and not steps_using(job, "aws-actions/configure-aws-credentials")
    assert step_named(job, "Plan")["run"] == 'make plan STACK="$STACK" OUT="$PLAN_DIR"'
    upload, = steps_using(job, "actions/upload-artifact")
    assert upload["with"]["path"] == "${{ env.PLAN_DIR }}" and job["env"]["PLAN_DIR"] == "build/plan/${{ matrix.stack }}"


def test_plan_comment_is_one_sticky_comment_per_stack_and_skipped_for_forks():
    job = load(PR)["jobs"]["offline-plan"]
    comment, = steps_using(job, "marocchino/sticky-pull-request-comment")
    assert comment["with"] == {"header": "offline-plan-${{ matrix.stack }}", "path": "${{ env.PLAN_DIR }}/plan.md"}
    assert "recreate" not in comment["with"] and "append" not in comment["with"]  # edit in place
    context = lambda fork: {**event(fork=fork), "env": {"PLAN_DIR": "build/plan/dev"}}
    condition = comment["if"].replace("hashFiles(format('{0}/plan.md', env.PLAN_DIR)) != ''", "'exists' != ''")
    assert evaluate(condition, {"github": context(False)}) is True
    assert evaluate(condition, {"github": context(True)}) is False
    # The summary is not held back for forks: it is all their reviewers get.
    assert "head.repo" not in step_named(job, "Job summary")["if"]


def _run_steps(job: dict, names: list[str], env: dict[str, str]) -> None:
    for name in names:
        script = step_named(job, name)["run"]
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"step {name!r} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_workflow_commands_produce_the_summary_and_comment(stack, tmp_path):
    """Runs the offline-plan job's own `run:` scripts (plan, policy check, summary) as the runner
    would, and checks what a reviewer reads: the resource table, the tree and the policy result."""
    job = load(PR)["jobs"]["offline-plan"]
    plan_dir, summary = tmp_path / "plan", tmp_path / "summary.md"
    env = {**os.environ, "STACK": stack, "PLAN_DIR": str(plan_dir), "GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}
    env.pop("MAKEFLAGS", None)
    _run_steps(job, ["Plan", "Policy check", "Job summary"], env)

    body = summary.read_text()
    comment_file = Path(step_named(job, "Pull request comment")["with"]["path"].replace("${{ env.PLAN_DIR }}", str(plan_dir)))
    assert comment_file.read_text() == body  # the comment and the summary say the same
    assert body.startswith(f"### Offline plan: `{stack}`")
    assert "| type | count |" in body and "<summary>Resource tree</summary>" in body
    assert f"ai-platform-{stack} (pulumi:pulumi:Stack)" in body
    assert "#### Policy check" in body and "0 mandatory violation(s)" in body
    assert len(body) < GITHUB_COMMENT_LIMIT
    assert (plan_dir / "plan.json").exists() and list((plan_dir / "manifests").glob("*.yaml"))


def test_preview_is_skipped_not_failed_until_the_repository_is_connected():
    job = load(PR)["jobs"]["preview"]
    assert evaluate(job["if"], {"vars": {}, "github": event()}) is False
    assert evaluate(job["if"], {"vars": {"AWS_PREVIEW_ROLE_ARN_DEV": CONNECTED["AWS_PREVIEW_ROLE_ARN_DEV"]}, "github": event()}) is False
    assert evaluate(job["if"], {"vars": CONNECTED, "github": event()}) is True
    assert evaluate(job["if"], {"vars": CONNECTED, "github": event(fork=True)}) is False
    # A stack without its role variable (or prod without PROD_RUNNER) skips its steps with a notice
    # instead of failing.
    notice = step_named(job, "Not configured for this stack")
    assert notice["if"] == "matrix.role == '' || matrix.runner == ''"
    # (make trt-sources adds `&& matrix.stack == 'dev'`: test_every_stack_uploading_a_build_source_...)
    assert all(s.get("if", "").startswith("matrix.role != '' && matrix.runner != ''") for s in job["steps"] if s is not notice)


def _leg(job: dict, stack: str, variables: dict) -> dict:
    """A matrix leg of the preview job with its `${{ vars.X }}` values filled in."""
    leg, = [dict(leg) for leg in job["strategy"]["matrix"]["include"] if leg["stack"] == stack]
    return {k: (evaluate(v, {"vars": variables}) if isinstance(v, str) and v.startswith("${{") else v) for k, v in leg.items()}


def test_prod_preview_runs_only_on_a_runner_its_api_admits():
    """prod's API admits only ai-platform:cluster publicAccessCidrs (and apiAccessCidrs /
    apiAccessSecurityGroupIds on the private endpoint; EKS User Guide cluster-endpoint.adoc), and a
    Kubernetes preview dry-runs on that API: on a GitHub-hosted runner it could only fail. Without
    PROD_RUNNER prod's preview is a notice, never a hosted-runner run; dev's stays hosted."""
    job = load(PR)["jobs"]["preview"]
    notice = step_named(job, "Not configured for this stack")
    # make trt-sources runs only for dev (test_every_stack_uploading_a_build_source_...)
    work = [s for s in job["steps"] if s is not notice and s.get("run") != "make trt-sources"]
    for variables, runs in ((CONNECTED, False), ({**CONNECTED, "PROD_RUNNER": "prod-deployer"}, True)):
        leg = _leg(job, "prod", variables)
        assert evaluate(notice["if"], {"matrix": leg}) is (not runs)
        assert all(evaluate(s["if"], {"matrix": leg}) is runs for s in work)
        assert evaluate(job["runs-on"], {"matrix": leg}) == ("prod-deployer" if runs else "ubuntu-24.04")
    dev = _leg(job, "dev", CONNECTED)
    assert dev["runner"] == "ubuntu-24.04" and all(evaluate(s["if"], {"matrix": dev}) for s in work)
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", notice["run"]], capture_output=True, text=True,
                            env={**os.environ, "STACK": "prod", "ROLE": CONNECTED["AWS_PREVIEW_ROLE_ARN_PROD"]}, timeout=60)
    assert result.returncode == 0 and "set the repository variable PROD_RUNNER" in result.stdout


def test_preview_runs_pulumi_preview_with_the_policy_pack_per_stack():
    job = load(PR)["jobs"]["preview"]
    legs = {leg["stack"]: leg for leg in job["strategy"]["matrix"]["include"]}
    assert sorted(legs) == sorted(STACKS)
    for stack, leg in legs.items():
        assert leg["region"] == config_region(stack)
        assert leg["role"] == f"${{{{ vars.AWS_PREVIEW_ROLE_ARN_{stack.upper()} }}}}"
    creds, = steps_using(job, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ matrix.role }}" and creds["with"]["aws-region"] == "${{ matrix.region }}"
    pulumi, = steps_using(job, "pulumi/actions")
    assert pulumi["with"] == {
        "command": "preview", "stack-name": "${{ matrix.stack }}", "cloud-url": "${{ vars.PULUMI_BACKEND_URL }}",
        "pulumi-version": "${{ env.PULUMI_VERSION }}", "comment-on-pr": True, "policyPacks": "policy",
        "policyPackConfigs": "policy/config.${{ matrix.stack }}.json",
    }
    assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    for stack in STACKS:
        assert (ROOT / "policy" / f"config.{stack}.json").exists()
    assert job["needs"] == "offline-plan"


def config_region(stack: str) -> str:
    return stack_config.load_from_files(stack).region


# --- deploy.yml ---------------------------------------------------------------------------------

def test_deploys_never_overlap_and_are_never_cancelled_halfway():
    jobs = load(DEPLOY)["jobs"]
    assert jobs["dev"]["concurrency"] == {"group": "pulumi-up-dev", "cancel-in-progress": False}
    assert jobs["prod"]["concurrency"] == {"group": "pulumi-up-prod", "cancel-in-progress": False}
    assert "concurrency" not in load(DEPLOY)  # a workflow-level group would let a new push cancel a deploy


def test_dev_then_prod_behind_the_production_environment_then_smoke():
    jobs = load(DEPLOY)["jobs"]
    dev, prod = jobs["dev"], jobs["prod"]
    assert "environment" not in dev and prod["environment"] == "production" and prod["needs"] == "dev"
    for name, job in (("dev", dev), ("prod", prod)):
        pulumi, = steps_using(job, "pulumi/actions")
        assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"] == name
        assert pulumi["with"]["policyPacks"] == "policy" and pulumi["with"]["policyPackConfigs"] == f"policy/config.{name}.json"
        creds, = steps_using(job, "aws-actions/configure-aws-credentials")
        assert creds["with"]["role-to-assume"] == f"${{{{ vars.AWS_ROLE_ARN_{name.upper()} }}}}"
        assert creds["with"]["aws-region"] == config_region(name)
        assert creds["with"]["role-duration-seconds"] <= stack_config.load_from_files(name).ciRole.maxSessionHours * 3600
    assert prod["steps"][-1] is step_named(prod, "Smoke test")
    assert prod["steps"].index(steps_using(prod, "pulumi/actions")[0]) < len(prod["steps"]) - 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_smoke_step(tmp_path: Path, outputs: dict) -> subprocess.CompletedProcess:
    """The prod job's smoke step as the runner runs it, with a stand-in `pulumi` that prints
    `outputs` for `pulumi stack output --json --stack prod`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "pulumi"
    (tmp_path / "outputs.src.json").write_text(json.dumps(outputs))
    fake.write_text(f'#!/bin/bash\n[ "$*" = "stack output --json --stack prod" ] || exit 9\ncat {tmp_path / "outputs.src.json"}\n')
    fake.chmod(0o755)
    script = step_named(load(DEPLOY)["jobs"]["prod"], "Smoke test")["run"]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_smoke_step_checks_every_deployment_of_the_prod_outputs_and_fails_if_any_fails(tmp_path, mlserver):
    """prod has several Triton deployments: the step's one `smoke --stack prod` checks each of them,
    the ones after a failing one too, and fails the job when any one fails."""
    from tests.harness import plan

    exported = plan("prod").outputs["tritonDeployments"].value
    assert len(exported) > 1, "prod ships several deployments"
    serving, *broken = sorted(exported)
    # One deployment answers (a real KServe-v2 server), nothing listens for the others; each
    # table's title shows which deployment was checked at which URL.
    urls = {name: mlserver if name == serving else f"http://127.0.0.1:{_free_port()}" for name in exported}
    outputs = {"tritonDeployments": {name: {**values, "httpUrl": urls[name], "externalHttpUrl": None,
                                            "openaiUrl": None}
                                     for name, values in exported.items()}}
    result = _run_smoke_step(tmp_path, outputs)
    assert result.returncode == 1, result.stdout + result.stderr  # a failed check, not a usage error (2)
    for name, url in urls.items():
        assert f"smoke: {url} (deployment {name})" in result.stdout, f"deployment {name} was not checked"
    assert f"{len(broken)} of {len(exported)} deployment(s) failed: {', '.join(broken)}" in result.stdout
    assert "Traceback" not in result.stderr

    # The same step passes once every deployment serves.
    result = _run_smoke_step(tmp_path / "again", {"tritonDeployments": {
        name: {**values, "httpUrl": mlserver, "externalHttpUrl": None, "openaiUrl": None} for name, values in exported.items()}})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"all {len(exported)} deployments passed" in result.stdout


def test_smoke_step_is_one_command_for_the_whole_stack():
    script = step_named(load(DEPLOY)["jobs"]["prod"], "Smoke test")["run"]
    assert script.strip() == ".venv/bin/python -m platformctl smoke --stack prod"


def test_smoke_step_fails_when_the_stack_exports_no_deployment(tmp_path):
    result = _run_smoke_step(tmp_path, {"tritonDeployments": {}})
    assert result.returncode == 2 and "stack prod: no tritonDeployments output" in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_deploy_fails_first_thing_without_a_runner_its_api_admits():
    """A connected repository without PROD_RUNNER would run prod's `pulumi up` on a GitHub-hosted
    runner, whose address is in no access list: EKS and the node groups get created (an hour, on
    the bill), then every Kubernetes object fails. The job stops at its first step instead, naming
    the variable; with PROD_RUNNER it runs there."""
    prod = load(DEPLOY)["jobs"]["prod"]
    guard = prod["steps"][0]
    assert guard is step_named(prod, "Runner that reaches the API")
    assert evaluate(guard["if"], {"vars": CONNECTED}) is True
    assert evaluate(guard["if"], {"vars": {**CONNECTED, "PROD_RUNNER": "prod-deployer"}}) is False
    assert evaluate(prod["runs-on"], {"vars": {**CONNECTED, "PROD_RUNNER": "prod-deployer"}}) == "prod-deployer"
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", guard["run"]], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "::error title=PROD_RUNNER is not set::" in result.stdout and "publicAccessCidrs" in result.stdout
    assert "PROD_RUNNER" not in yaml.safe_dump(load(DEPLOY)["jobs"]["dev"])  # dev's API admits the hosted runner


def test_deploys_are_skipped_until_the_repository_is_connected():
    jobs = load(DEPLOY)["jobs"]
    for name in ("dev", "prod"):
        assert evaluate(jobs[name]["if"], {"vars": {}}) is False
        assert evaluate(jobs[name]["if"], {"vars": CONNECTED}) is True
    assert evaluate(jobs["prod"]["if"], {"vars": {k: v for k, v in CONNECTED.items() if k != "AWS_ROLE_ARN_PROD"}}) is False


# --- commands and docs --------------------------------------------------------------------------

def _platformctl_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in (PR, DEPLOY):
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                for line in step.get("run", "").splitlines():
                    if "platformctl" in line:
                        words = shlex.split(line.replace("$PLAN_DIR", "build/plan/dev").replace("$STACK", "dev"))
                        words = words[words.index("platformctl") + 1:]
                        # The command ends where the shell's control operators begin.
                        ends = [i for i, word in enumerate(words) if word in ("||", "&&", "|", ";")]
                        found.append((line, words[:ends[0]] if ends else words))
    return found


def test_platformctl_commands_in_the_workflows_parse():
    """A renamed command or flag breaks CI; catch it here instead."""
    commands = _platformctl_commands()
    assert {words[0] for _, words in commands} == {"policy", "smoke"}
    for line, words in commands:
        args = build_parser().parse_args(words)
        assert callable(args.func), line


def test_docs_list_every_variable_and_secret_the_workflows_read():
    docs = (ROOT / "docs" / "ci.md").read_text()
    used = set()
    for path in (PR, DEPLOY):
        used |= set(re.findall(r"\b(?:vars|secrets)\.([A-Z0-9_]+)", path.read_text()))
    assert used >= {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "AWS_ROLE_ARN_DEV", "AWS_PREVIEW_ROLE_ARN_DEV"}
    missing = sorted(name for name in used if f"`{name}`" not in docs)
    assert not missing, f"docs/ci.md does not explain {missing}"


def test_every_stack_uploading_a_build_source_makes_it_before_pulumi_preview_and_up():
    """A stack whose TensorRT build has a `sourceFile` under build/examples/ uploads it itself, so a
    real `pulumi preview`/`up` refuses to start without it (stack_config.refuse_missing_source_files):
    the preview and deploy jobs of that stack run `make trt-sources` (the source only, from a venv
    without torch) before the Pulumi step, and only for that stack (prod's legs skip it)."""
    from stack_config.model_builds import EXAMPLES_DIR

    needs = {s for s in STACKS if any((b.source_file or "").startswith(EXAMPLES_DIR)
                                      for b in stack_config.load_from_files(s).modelBuilds)}
    assert needs == {"dev"}
    preview = load(PR)["jobs"]["preview"]
    deploy = load(DEPLOY)["jobs"]
    for stack in STACKS:
        leg = {"matrix": {"stack": stack, "role": "arn", "runner": "ubuntu-24.04"}}
        steps = [st for st in preview["steps"] if "if" not in st or evaluate(st["if"], {**event(), **leg})]
        runs = [st.get("run", "") for st in steps]
        pulumi_at = steps.index(steps_using({"steps": steps}, "pulumi/actions")[0])
        assert ("make trt-sources" in runs[:pulumi_at]) == (stack in needs), stack
        job_steps = deploy[stack]["steps"]
        pulumi_at = job_steps.index(steps_using(deploy[stack], "pulumi/actions")[0])
        assert ("make trt-sources" in [st.get("run", "") for st in job_steps[:pulumi_at]]) == (stack in needs), stack
