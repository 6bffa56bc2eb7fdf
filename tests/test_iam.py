"""The one IRSA role component (components.iam.IrsaRole), used by every workload role.

IRSA: the pod's projected token is exchanged with sts:AssumeRoleWithWebIdentity; the role's trust
must pin the token's `sub` (system:serviceaccount:<namespace>:<name>) and `aud` (sts.amazonaws.com)
claims (AWS EKS User Guide, "Assign IAM roles to Kubernetes service accounts",
https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html). Pulumi passes a
resource's dependencies on through Outputs (Output.all carries every input's resources), which is how
`arn` makes its users wait for the policy (pulumi/pulumi sdk/python/lib/pulumi/output.py `all`)."""

import json

import pulumi_aws as aws
import pytest

from components.iam import IrsaRole, IrsaRoleArgs
from tests.harness import STACKS, inputs, plan, run

OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC"
ISSUER = "oidc.eks.us-west-2.amazonaws.com/id/ABC"
ROLE, POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
POLICY_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})


def build():
    role = IrsaRole("reader", IrsaRoleArgs(OIDC_ARN, ISSUER, "inference", "triton", POLICY_DOC, max_session_duration=3600))
    # Anything annotated with the ARN (here an SSM parameter standing in for a ServiceAccount).
    aws.ssm.Parameter("user", type="String", value=role.arn)


def test_trust_is_pinned_to_one_service_account_and_the_sts_audience():
    result = run(build)
    trust = json.loads(inputs(result.named("reader", ROLE))["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:inference:triton",
                                                       f"{ISSUER}:aud": "sts.amazonaws.com"}}
    assert inputs(result.named("reader", ROLE))["maxSessionDuration"] == 3600
    assert inputs(result.named("reader", POLICY))["policy"] == POLICY_DOC


def test_the_arn_makes_its_users_wait_for_the_policy():
    result = run(build)
    user = result.named("user")
    assert result.named("reader", POLICY).urn in user.dependencies
    assert result.named("reader", ROLE).urn in user.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_every_workload_role_is_an_irsa_role(stack):
    """Web-identity roles (a ServiceAccount's) are IrsaRole children, with their one inline policy.
    The EBS CSI driver's role, an EKS add-on's with an AWS-managed policy, is the exception."""
    result = plan(stack)
    oidc = result.named("cluster-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider").urn
    # Their trust names the cluster's OIDC provider (an ARN known after deploy): they depend on it.
    web_identity = [r for r in result.of_type(ROLE) if oidc in r.dependencies]
    outside = [r.name for r in web_identity if r.parent_type != "ai-platform:iam:IrsaRole"]
    assert outside == ["cluster-ebs-csi"]
    assert len(web_identity) >= 4
    for role in web_identity:
        if role.name != "cluster-ebs-csi":
            assert [p.name for p in result.children_of(result.by_urn(role.parent)) if p.type == POLICY] == [role.name]
