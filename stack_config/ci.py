"""`ciRole`: the IAM roles the GitHub Actions workflows assume through GitHub OIDC (no long-lived keys).

Off by default. When enabled the stack creates (or reuses) the account's GitHub OIDC provider and:
  - a deploy role (`ciRoleArn`) that only runs from this repository's listed branches (push to main:
    `pulumi up` for dev) and GitHub environments (`production`: `pulumi up` for prod after approval);
  - optionally a preview role (`ciPreviewRoleArn`) for pull requests, read-only by default.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator

from .base import ARN_PREFIX, ConfigModel, problems

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"

# GitHub's own limits on names (owner: 39 chars, repository: 100); no wildcards anywhere, so a
# trust policy can always use StringEquals and never matches more than what is listed.
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
_BRANCH_PATTERN = r"^[A-Za-z0-9._/-]+$"
_ENVIRONMENT_PATTERN = r"^[A-Za-z0-9._ -]{1,255}$"
_OIDC_PROVIDER_ARN = rf"^{ARN_PREFIX}:iam::\d{{12}}:oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$"
_POLICY_ARN = rf"{ARN_PREFIX}:iam::(aws|\d{{12}}):policy/[\w+=,.@/-]+"
_POLICY = rf"^({_POLICY_ARN}|[A-Za-z0-9_+=,.@-]+)$"
_BOUNDARY = rf"^({_POLICY_ARN})?$"

Branch = Annotated[str, Field(pattern=_BRANCH_PATTERN, max_length=255)]
Environment = Annotated[str, Field(pattern=_ENVIRONMENT_PATTERN)]
PolicyRef = Annotated[str, Field(pattern=_POLICY)]


class CiRoleConfig(ConfigModel):
    enabled: bool = False
    # owner/name of the GitHub repository whose workflows may assume the roles.
    repository: str = ""
    # Deploy role: workflow runs on a push to these branches (sub `repo:<repo>:ref:refs/heads/<b>`)...
    branches: list[Branch] = ["main"]
    # ...or in a job with `environment: <e>` (sub `repo:<repo>:environment:<e>`; GitHub enforces the
    # environment's required reviewers before the job, and so before the role, can run).
    environments: list[Environment] = ["production"]
    # `pulumi up` creates VPCs, EKS, IAM roles and policies: no narrow policy covers that, so the
    # default is AdministratorAccess, held in check by the trust policy above and, if you have one,
    # a permissions boundary. Names are AWS managed policies; full ARNs are taken as they are.
    policyArns: list[PolicyRef] = ["AdministratorAccess"]
    permissionsBoundaryArn: Annotated[str, Field(pattern=_BOUNDARY)] = ""
    # Preview role for pull requests (sub `repo:<repo>:pull_request`): a PR runs the PR's code,
    # so it gets read-only AWS access and view access on the cluster, never the deploy role.
    previewRole: bool = True
    previewPolicyArns: list[PolicyRef] = ["ReadOnlyAccess"]
    # An account has one provider per URL: when another stack (or a human) created it already,
    # give its ARN here and this stack will not create a second one.
    oidcProviderArn: Annotated[str, Field(pattern=rf"^$|{_OIDC_PROVIDER_ARN}")] = ""
    # Register the roles in the cluster (EKS access entries): deploy = cluster admin (it manages
    # Helm releases and RBAC), preview = view.
    clusterAccess: bool = True
    maxSessionHours: Annotated[int, Field(ge=1, le=12)] = 2

    @model_validator(mode="after")
    def _check(self):
        found: list[tuple[str, str]] = []
        if self.enabled:
            if not self.repository:
                found.append(("repository", "required when enabled (the GitHub repository as owner/name)"))
            elif not re.fullmatch(REPOSITORY_PATTERN, self.repository):
                found.append(("repository", f"must be owner/name, e.g. my-org/ai-platform (got {self.repository!r})"))
            if not self.branches and not self.environments:
                found.append(("branches", "list at least one branch or environment the deploy role may run from"))
            if not self.policyArns:
                found.append(("policyArns", "list at least one policy for the deploy role (it runs pulumi up)"))
            if self.previewRole and not self.previewPolicyArns:
                found.append(("previewPolicyArns", "list at least one policy for the preview role (e.g. ReadOnlyAccess)"))
        for index, branch in enumerate(self.branches):
            if branch.startswith("refs/") or branch.startswith("/") or branch.endswith("/") or ".." in branch:
                found.append((f"branches[{index}]", f"a plain branch name like main or release/1.x (got {branch!r})"))
        problems(found)
        return self
