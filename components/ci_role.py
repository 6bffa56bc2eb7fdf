"""IAM roles for the GitHub Actions workflows, assumed through GitHub's OIDC provider.

Two roles, because a pull request runs the pull request's code: whoever can open one could
otherwise run `pulumi up` with the deploy role's rights.
  - deploy: trusted only for this repository's listed branches and GitHub environments (the
    `production` environment's required reviewers gate the prod job, and so the role);
  - preview (optional): trusted only for this repository's pull requests, read-only policies.
Trust uses StringEquals on the exact `sub` claims (GitHub's default claim format) plus the STS
audience, so neither another repository nor another branch of this one can assume a role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.iam import managed_policy_arn, web_identity_trust_policy
from stack_config.ci import GITHUB_OIDC_HOST

GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"


def deploy_subjects(repository: str, branches: Sequence[str], environments: Sequence[str]) -> list[str]:
    """`sub` claims of the jobs allowed to deploy. A job with `environment:` gets the environment
    claim instead of the branch one, so the prod job needs its environment listed."""
    return ([f"repo:{repository}:ref:refs/heads/{branch}" for branch in branches]
            + [f"repo:{repository}:environment:{env}" for env in environments])


def preview_subjects(repository: str) -> list[str]:
    return [f"repo:{repository}:pull_request"]


def github_trust_policy(provider_arn: str, subjects: Sequence[str]) -> str:
    if not subjects:
        raise ValueError("a GitHub OIDC trust policy needs at least one subject")
    return web_identity_trust_policy(provider_arn, GITHUB_OIDC_HOST, list(subjects), STS_AUDIENCE)


def policy_arn(partition: str, ref: str) -> str:
    """A full ARN as given, or an AWS managed policy name (AdministratorAccess, ReadOnlyAccess)."""
    return ref if ref.startswith("arn:") else managed_policy_arn(partition, ref)


def role_name(stack: str, kind: str) -> str:
    # Fixed names, so the ARN to put into the repository variables is predictable.
    return f"ai-platform-{stack}-ci-{kind}"


@dataclass(frozen=True)
class CiRoleArgs:
    stack: str
    partition: str
    repository: str
    branches: tuple[str, ...]
    environments: tuple[str, ...]
    policy_arns: tuple[str, ...]
    preview_role: bool
    preview_policy_arns: tuple[str, ...]
    permissions_boundary_arn: str = ""
    oidc_provider_arn: str = ""
    max_session_hours: int = 2
    # When set, the roles get EKS access entries on this cluster (deploy: admin, preview: view).
    cluster_name: Optional[pulumi.Input[str]] = None


class CiRole(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: Optional[pulumi.Output[str]]
    oidc_provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CiRoleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:ci:CiRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.oidc_provider_arn:
            provider_arn: pulumi.Input[str] = args.oidc_provider_arn
        else:
            # No thumbprint: AWS validates GitHub's certificate against its own trusted CAs.
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=child,
            )
            provider_arn = provider.arn

        def trust(subjects: list[str]) -> pulumi.Output[str]:
            return pulumi.Output.from_input(provider_arn).apply(lambda arn: github_trust_policy(arn, subjects))

        def role(kind: str, subjects: list[str], policies: Sequence[str], description: str) -> aws.iam.Role:
            created = aws.iam.Role(
                f"{name}-{kind}",
                name=role_name(args.stack, kind),
                description=description,
                assume_role_policy=trust(subjects),
                max_session_duration=args.max_session_hours * 3600,
                permissions_boundary=args.permissions_boundary_arn or None,
                opts=child,
            )
            for index, ref in enumerate(policies):
                aws.iam.RolePolicyAttachment(
                    f"{name}-{kind}-{index}",
                    role=created.name,
                    policy_arn=policy_arn(args.partition, ref),
                    opts=child,
                )
            return created

        deploy = role("deploy", deploy_subjects(args.repository, args.branches, args.environments), args.policy_arns,
                      f"GitHub Actions deploys of stack {args.stack} from {args.repository}")
        preview = None
        if args.preview_role:
            preview = role("preview", preview_subjects(args.repository), args.preview_policy_arns,
                           f"GitHub Actions pull-request previews of stack {args.stack} from {args.repository}")

        if args.cluster_name is not None:
            self._cluster_access(name, args, deploy, "AmazonEKSClusterAdminPolicy", "deploy")
            if preview is not None:
                self._cluster_access(name, args, preview, "AmazonEKSViewPolicy", "preview")

        self.oidc_provider_arn = pulumi.Output.from_input(provider_arn)
        self.deploy_role_arn = deploy.arn
        self.preview_role_arn = preview.arn if preview is not None else None
        outputs = {"deployRoleArn": self.deploy_role_arn, "oidcProviderArn": self.oidc_provider_arn}
        if self.preview_role_arn is not None:
            outputs["previewRoleArn"] = self.preview_role_arn
        self.register_outputs(outputs)

    def _cluster_access(self, name: str, args: CiRoleArgs, role: aws.iam.Role, access_policy: str, kind: str) -> None:
        entry = aws.eks.AccessEntry(
            f"{name}-{kind}", cluster_name=args.cluster_name, principal_arn=role.arn, type="STANDARD",
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-{kind}",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            policy_arn=f"arn:{args.partition}:eks::aws:cluster-access-policy/{access_policy}",
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
        )
