"""The GitHub Actions roles as an operator would see them: absent unless configured, trust limited to
one repository and to exactly the branches/environments/pull requests listed, the right policies,
and config mistakes reported by key."""

import json

import pytest
import yaml

import stack_config
from components.ci_role import deploy_subjects, github_trust_policy, preview_subjects
from tests.harness import COMPUTED, STACKS, config_for, inputs, json_policy, plan, plan_with, stack_values

ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ACCESS = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
COMPONENT = "ai-platform:ci:CiRole"
REPO = "acme/ai-platform"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def ci_plan(stack: str, **changes):
    """The stack as shipped, with its ciRole section turned on (plus changes)."""
    ci_role = {**stack_values(stack).get("ciRole", {}), "enabled": True, "repository": REPO, **changes}
    return plan_with(stack, ciRole=ci_role)


def ci_resources(run, type_):
    return [r for r in run.of_type(type_) if r.parent_type == COMPONENT]


def trust(run, kind):
    role = run.named(f"ci-{kind}", ROLE)
    statement, = json_policy(role, "assumeRolePolicy")["Statement"]
    return statement


def problems(**ci_role):
    values, secret = stack_config.read_stack_files("dev")
    values["ai-platform:ciRole"] = json.dumps(ci_role)
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    return caught.value.problems


@pytest.mark.parametrize("stack", STACKS)
def test_off_by_default_nothing_created_and_no_output(stack):
    run = plan(stack)
    assert not config_for(stack).ciRole.enabled
    assert not run.of_type(COMPONENT) and not ci_resources(run, OIDC)
    assert "ciRoleArn" not in run.outputs


def test_dev_deploy_role_trusts_only_main_of_this_repository_and_previews_only_its_pull_requests():
    run = ci_plan("dev", oidcProviderArn=PROVIDER_ARN)
    deploy, preview = trust(run, "deploy"), trust(run, "preview")
    for statement in (deploy, preview):
        assert statement["Principal"] == {"Federated": PROVIDER_ARN}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert set(statement["Condition"]) == {"StringEquals"}  # exact matches, no StringLike wildcards
        assert statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert deploy["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [f"repo:{REPO}:ref:refs/heads/main"]
    assert preview["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [f"repo:{REPO}:pull_request"]
    # The account's existing provider is reused: a second one for the same URL would fail to create.
    assert not ci_resources(run, OIDC)


def test_prod_deploy_role_trusts_the_production_environment_not_a_branch():
    run = ci_plan("prod", oidcProviderArn=PROVIDER_ARN)
    subjects = trust(run, "deploy")["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subjects == [f"repo:{REPO}:environment:production"]


def test_policies_names_and_cluster_access():
    run = ci_plan("dev")
    roles = {r.name: inputs(r) for r in ci_resources(run, ROLE)}
    assert roles["ci-deploy"]["name"] == "ai-platform-dev-ci-deploy"
    assert roles["ci-preview"]["name"] == "ai-platform-dev-ci-preview"
    assert roles["ci-deploy"]["maxSessionDuration"] == 7200  # matches role-duration-seconds in deploy.yml
    attached = {(inputs(a)["role"], inputs(a)["policyArn"]) for a in ci_resources(run, ATTACHMENT)}
    assert attached == {("ai-platform-dev-ci-deploy", "arn:aws:iam::aws:policy/AdministratorAccess"),
                        ("ai-platform-dev-ci-preview", "arn:aws:iam::aws:policy/ReadOnlyAccess")}
    access = {r.name: inputs(r)["policyArn"].rsplit("/", 1)[1] for r in ci_resources(run, ACCESS)}
    assert access == {"ci-deploy": "AmazonEKSClusterAdminPolicy", "ci-preview": "AmazonEKSViewPolicy"}
    provider, = ci_resources(run, OIDC)
    assert inputs(provider) == {"url": "https://token.actions.githubusercontent.com", "clientIdLists": ["sts.amazonaws.com"]}
    assert {"ciRoleArn", "ciPreviewRoleArn"} <= set(run.outputs)
    # AWS resources go through the tagging provider, like everything else.
    assert all(r.provider.rsplit("::", 1)[0].endswith("pulumi:providers:aws::aws")
               for r in ci_resources(run, ROLE) + ci_resources(run, ATTACHMENT) + ci_resources(run, OIDC))


def test_without_preview_role_pull_requests_cannot_assume_anything():
    run = ci_plan("dev", previewRole=False, clusterAccess=False, oidcProviderArn=PROVIDER_ARN)
    assert [r.name for r in ci_resources(run, ROLE)] == ["ci-deploy"]
    assert "ciPreviewRoleArn" not in run.outputs
    assert not ci_resources(run, ACCESS)
    subjects = trust(run, "deploy")["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert not any(s.endswith(":pull_request") for s in subjects)


def test_custom_policies_boundary_and_partition():
    boundary = "arn:aws:iam::123456789012:policy/ci-boundary"
    run = ci_plan("dev", policyArns=["PowerUserAccess", "arn:aws:iam::123456789012:policy/iam-for-pulumi"],
                  permissionsBoundaryArn=boundary)
    attached = sorted(inputs(a)["policyArn"] for a in ci_resources(run, ATTACHMENT) if inputs(a)["role"].endswith("deploy"))
    assert attached == ["arn:aws:iam::123456789012:policy/iam-for-pulumi", "arn:aws:iam::aws:policy/PowerUserAccess"]
    assert {inputs(r)["permissionsBoundary"] for r in ci_resources(run, ROLE)} == {boundary}


def test_created_provider_makes_the_trust_known_only_after_deploy():
    """The provider's ARN holds the account ID, so with a created provider the trust document is
    computed at preview; the document itself is checked through its builder."""
    run = ci_plan("dev")
    assert inputs(run.named("ci-deploy", ROLE))["assumeRolePolicy"] == COMPUTED
    document = json.loads(github_trust_policy(PROVIDER_ARN, deploy_subjects(REPO, ["main", "release/1.x"], ["production"])))
    assert document["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        f"repo:{REPO}:ref:refs/heads/main", f"repo:{REPO}:ref:refs/heads/release/1.x", f"repo:{REPO}:environment:production"]
    assert preview_subjects(REPO) == [f"repo:{REPO}:pull_request"]
    with pytest.raises(ValueError):
        github_trust_policy(PROVIDER_ARN, [])


@pytest.mark.parametrize("ci_role, expected", [
    ({"enabled": True}, "ai-platform:ciRole.repository: required when enabled (the GitHub repository as owner/name)"),
    ({"enabled": True, "repository": "https://github.com/acme/x"}, "ai-platform:ciRole.repository: must be owner/name"),
    ({"enabled": True, "repository": REPO, "branches": [], "environments": []}, "ai-platform:ciRole.branches: list at least one branch or environment"),
    ({"enabled": True, "repository": REPO, "policyArns": []}, "ai-platform:ciRole.policyArns: list at least one policy"),
    ({"branches": ["release/*"]}, "ai-platform:ciRole.branches[0]: string should match pattern"),
    ({"branches": ["refs/heads/main"]}, "ai-platform:ciRole.branches[0]: a plain branch name like main"),
    ({"oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/X"},
     "ai-platform:ciRole.oidcProviderArn: string should match pattern"),
    ({"maxSessionHours": 24}, "ai-platform:ciRole.maxSessionHours: input should be less than or equal to 12"),
    ({"repositry": REPO}, "ai-platform:ciRole.repositry: unknown key (did you mean 'repository'?)"),
])
def test_config_mistakes_name_the_key(ci_role, expected):
    found = problems(**ci_role)
    assert any(p.startswith(expected) for p in found), found


def test_workflows_run_from_where_the_shipped_roles_trust():
    """The stack files' ciRole sections and the deploy workflow agree: dev deploys from a push to a
    branch the dev role trusts, prod from the environment the prod role trusts."""
    deploy = yaml.safe_load((stack_config.PROJECT_DIR / ".github/workflows/deploy.yml").read_text())
    trigger = deploy.get("on", deploy.get(True))
    dev, prod = config_for("dev").ciRole, config_for("prod").ciRole
    assert "environment" not in deploy["jobs"]["dev"]
    assert set(trigger["push"]["branches"]) <= set(dev.branches)
    assert deploy["jobs"]["prod"]["environment"] in prod.environments
    assert prod.branches == []  # prod is never deployed straight from a branch
