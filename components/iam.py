"""IAM policy documents shared by components (plain functions), and the one IRSA role component."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def service_trust_policy(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def web_identity_trust_policy(provider_arn: str, issuer: str, subjects: str | list[str], audience: str = "sts.amazonaws.com") -> str:
    """Trust for tokens of one OIDC issuer (EKS for IRSA, GitHub Actions), pinned to exact subjects
    and the STS audience with StringEquals: nothing matches that is not listed."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer}:sub": subjects, f"{issuer}:aud": audience}},
        }],
    })


def irsa_trust_policy(oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str, service_account: str) -> pulumi.Output[str]:
    """Trust for one Kubernetes ServiceAccount through the cluster's OIDC provider (IRSA): pinned to
    the exact `system:serviceaccount:<ns>:<sa>` subject and the STS audience."""

    def document(args: list[Any]) -> str:
        provider_arn, issuer = args
        return web_identity_trust_policy(provider_arn, issuer, f"system:serviceaccount:{namespace}:{service_account}")

    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(document)


@dataclass(frozen=True)
class IrsaRoleArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    # The one ServiceAccount that may assume the role.
    namespace: str
    service_account: str
    policy: pulumi.Input[str]  # the inline policy document (JSON)
    description: Optional[str] = None
    max_session_duration: Optional[int] = None


class IrsaRole(pulumi.ComponentResource):
    """A workload's IAM role (IRSA): trust pinned to one ServiceAccount, one inline policy, and an
    `arn` that resolves only once that policy is attached, so whatever is annotated with it (the
    ServiceAccount, a Helm release) starts able to call AWS instead of failing on AccessDenied.

    The role and policy are named `name`; `moved_from` is the component that used to create them
    itself: they keep their URN through an alias to it."""

    arn: pulumi.Output[str]
    role: aws.iam.Role

    def __init__(self, name: str, args: IrsaRoleArgs, opts: Optional[pulumi.ResourceOptions] = None,
                 moved_from: Optional[pulumi.Resource] = None):
        super().__init__("ai-platform:iam:IrsaRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=moved_from)] if moved_from else None)
        self.role = aws.iam.Role(
            name,
            description=args.description,
            assume_role_policy=irsa_trust_policy(args.oidc_provider_arn, args.oidc_issuer, args.namespace, args.service_account),
            max_session_duration=args.max_session_duration,
            opts=child,
        )
        policy = aws.iam.RolePolicy(name, role=self.role.id, policy=args.policy, opts=child)
        self.arn = pulumi.Output.all(self.role.arn, policy.id).apply(lambda values: values[0])
        self.register_outputs({"arn": self.arn})
