"""IAM policy documents shared by components (plain functions, no resources)."""

from __future__ import annotations

import json
from typing import Any

import pulumi


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
