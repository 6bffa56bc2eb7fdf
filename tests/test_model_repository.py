"""The S3 model repository: bucket settings per stack (protection in prod, force-destroy only in
dev), and least-privilege IAM: a read-only IRSA role per Triton deployment pinned to its
ServiceAccount and prefix, and a publisher policy that can delete only when configured."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.model_repository import PREFIX_MARKER, ModelRepository, ModelRepositoryArgs, RepositoryReader
from components.triton import service_account_name
from tests.harness import COMPUTED, STACKS, config_for, inputs, json_policy, plan, plan_with, run, stack_values

BUCKET = "aws:s3/bucket:Bucket"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"


def bucket_name(stack: str) -> str:
    return config_for(stack).modelRepository.bucket_name(stack, config_for(stack).region)


def sub_resource(run, type_suffix: str):
    found = [r for r in run.resources if r.type.endswith(type_suffix) and r.parent_type == "ai-platform:models:ModelRepository"]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def allow_statements(document: dict) -> list[dict]:
    return [s for s in document["Statement"] if s["Effect"] == "Allow"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def assert_least_privilege(document: dict) -> None:
    """No wildcard actions or resources in any Allow statement."""
    for statement in allow_statements(document):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"wildcard action {action}"
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and not resource.startswith("arn:aws:s3:::*"), f"wildcard resource {resource}"


# --- the bucket ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_one_bucket_per_stack_with_the_exported_name(stack):
    run = plan(stack)
    buckets = run.of_type(BUCKET)
    assert len(buckets) == 1
    assert inputs(buckets[0])["bucket"] == bucket_name(stack) == f"ai-platform-{stack}-models-{config_for(stack).region}"
    assert run.outputs["modelBucket"].value == bucket_name(stack)


def test_prod_bucket_is_protected_and_retained_and_never_force_destroyed():
    bucket = plan("prod").of_type(BUCKET)[0]
    assert bucket.protect and bucket.retain_on_delete
    assert inputs(bucket)["forceDestroy"] is False


def test_only_dev_may_force_destroy_its_bucket():
    bucket = plan("dev").of_type(BUCKET)[0]
    assert config_for("dev").protectData is False
    assert inputs(bucket)["forceDestroy"] is True
    assert not bucket.protect and not bucket.retain_on_delete


def test_protect_data_decides_protection_not_the_stack_name():
    bucket = plan_with("dev", protectData=True).of_type(BUCKET)[0]
    assert bucket.protect and bucket.retain_on_delete and inputs(bucket)["forceDestroy"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_bucket_is_versioned_encrypted_private_and_owner_enforced(stack):
    run = plan(stack)
    name = bucket_name(stack)
    versioning = inputs(sub_resource(run, "BucketVersioning"))
    assert versioning["bucket"] == name and versioning["versioningConfiguration"]["status"] == "Enabled"

    sse = inputs(sub_resource(run, "BucketServerSideEncryptionConfiguration"))
    assert sse["bucket"] == name
    [rule] = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["bucketKeyEnabled"] is True

    block = inputs(sub_resource(run, "BucketPublicAccessBlock"))
    assert block["bucket"] == name
    assert all(block[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))

    ownership = inputs(sub_resource(run, "BucketOwnershipControls"))
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"


@pytest.mark.parametrize("stack", STACKS)
def test_bucket_policy_refuses_everything_without_tls(stack):
    run = plan(stack)
    policy = sub_resource(run, "BucketPolicy")
    document = json_policy(policy)
    arn = f"arn:aws:s3:::{bucket_name(stack)}"
    [statement] = document["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == sorted([arn, f"{arn}/*"])


@pytest.mark.parametrize("stack", STACKS)
def test_old_model_versions_expire_after_the_configured_days(stack):
    repository = config_for(stack).modelRepository
    lifecycle = inputs(sub_resource(plan(stack), "BucketLifecycleConfiguration"))
    rules = {rule["id"]: rule for rule in lifecycle["rules"]}
    expiry = rules["expire-old-model-versions"]
    assert expiry["status"] == "Enabled"
    assert expiry["noncurrentVersionExpiration"]["noncurrentDays"] == repository.noncurrentVersionDays
    assert expiry["noncurrentVersionExpiration"]["newerNoncurrentVersions"] == repository.noncurrentVersionsKept
    assert expiry["abortIncompleteMultipartUpload"]["daysAfterInitiation"] > 0
    # dev keeps a week, prod a quarter: the stack files differ on purpose
    assert {"dev": 7, "prod": 90}[stack] == repository.noncurrentVersionDays


def test_customer_managed_key_is_used_for_encryption_and_granted_to_readers_only_on_that_key():
    key = "arn:aws:kms:us-west-2:123456789012:key/0f2b5c8e-1111-2222-3333-444455556666"
    run = plan_with("dev", modelRepository={"kmsKeyArn": key})
    sse = inputs(sub_resource(run, "BucketServerSideEncryptionConfiguration"))
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == key
    reader = json_policy(run.named("model-repository-reader-standard", ROLE_POLICY))
    [kms] = [s for s in reader["Statement"] if s["Sid"] == "UseModelKey"]
    assert kms["Action"] == ["kms:Decrypt"] and kms["Resource"] == key
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}


@pytest.mark.parametrize("stack", STACKS)
def test_every_deployment_prefix_exists_before_any_model_is_pushed(stack):
    """Triton exits on a repository path with nothing under it, which is every prefix of a new
    bucket: the program writes a hidden marker under each, after default encryption is set."""
    run = plan(stack)
    # The repository's own objects (dev's TensorRT build uploads its source too: test_model_builds).
    markers = [r for r in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if r.parent_type == "ai-platform:models:ModelRepository"]
    prefixes = sorted({d.modelPrefix for d in config_for(stack).tritonDeployments})
    assert sorted(inputs(m)["key"] for m in markers) == [f"{p}/{PREFIX_MARKER}" for p in prefixes]
    encryption = sub_resource(run, "BucketServerSideEncryptionConfiguration")
    for marker in markers:
        assert inputs(marker)["bucket"] == bucket_name(stack)
        assert encryption.urn in marker.dependencies
    # Hidden: `models push` neither uploads nor prunes such keys (tests/test_models_push.py).
    assert PREFIX_MARKER.startswith(".")


@pytest.mark.parametrize("stack", STACKS)
def test_each_triton_deployment_waits_for_the_marker_of_its_prefix(stack):
    """Triton exits at start when its repository path holds nothing: triton-inference-server/core
    r25.06 src/model_repository_manager/model_repository_manager.cc returns "repository path is
    not a valid directory", and tritonserver.cc TRITONSERVER_ServerNew stops the server on that
    error while exit-on-error is true (its default, server src/command_line_parser.h at v2.59.0).
    So the Deployment must depend on the `.keep` object of its own prefix: without the dependency
    Pulumi may create both at once and the first pods crash-loop on an empty prefix."""
    run = plan(stack)
    markers = {inputs(m)["key"]: m.urn for m in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    for deployment in config_for(stack).tritonDeployments:
        resource = run.named(f"triton-{deployment.name}-deployment", "kubernetes:apps/v1:Deployment")
        assert markers[f"{deployment.modelPrefix}/{PREFIX_MARKER}"] in resource.dependencies, deployment.name
        others = [urn for key, urn in markers.items() if key != f"{deployment.modelPrefix}/{PREFIX_MARKER}"]
        assert not set(others) & set(resource.dependencies), "a deployment waits only for its own prefix"


def test_deployments_sharing_a_prefix_share_one_marker():
    resources = record(build_repository(readers=[RepositoryReader("a", "ns", "a", "triton/shared"),
                                                 RepositoryReader("b", "ns", "b", "triton/shared")]))
    markers = [r for r in resources if r.type == "aws:s3/bucketObjectv2:BucketObjectv2"]
    assert [(r.name, inputs(r)["key"]) for r in markers] == [("repo-prefix-a", f"triton/shared/{PREFIX_MARKER}")]


# --- read-only roles (IRSA) ----------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_each_deployment_reads_only_its_own_prefix(stack):
    run = plan(stack)
    arn = f"arn:aws:s3:::{bucket_name(stack)}"
    deployments = config_for(stack).tritonDeployments
    assert {d.mode for d in deployments} == {"standard", "llm"}
    for deployment in deployments:
        document = json_policy(run.named(f"model-repository-reader-{deployment.name}", ROLE_POLICY))
        assert_least_privilege(document)
        prefix = deployment.modelPrefix
        statements = {s["Sid"]: s for s in document["Statement"]}
        assert set(statements) == {"HeadModelBucket", "ListModelPrefix", "ReadModels"}
        # Triton's HeadBucket needs s3:ListBucket without a prefix; only prefix-less requests pass.
        assert statements["HeadModelBucket"] == {
            "Sid": "HeadModelBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn,
            "Condition": {"Null": {"s3:prefix": "true"}},
        }
        assert statements["ListModelPrefix"] == {
            "Sid": "ListModelPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/", f"{prefix}/*"]}},
        }
        assert statements["ReadModels"] == {
            "Sid": "ReadModels", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/{prefix}/*",
        }


@pytest.mark.parametrize("stack", STACKS)
def test_reader_roles_and_service_accounts_name_the_same_subject(stack):
    """The trust is pinned to system:serviceaccount:<ns>:<sa>; the ServiceAccount the pods run as
    must be exactly that one, in that namespace, annotated with that role."""
    run = plan(stack)
    for deployment in config_for(stack).tritonDeployments:
        role = run.named(f"model-repository-reader-{deployment.name}", ROLE)
        account = run.named(f"triton-{deployment.name}-sa")
        metadata = inputs(account)["metadata"]
        assert (metadata["namespace"], metadata["name"]) == (deployment.namespace, service_account_name(deployment.name))
        assert "eks.amazonaws.com/role-arn" in metadata["annotations"]
        assert role.urn in account.dependencies  # the annotation is this role's ARN
        # ...and the pods start only once the role may read (no AccessDenied crash loop)
        assert run.named(f"model-repository-reader-{deployment.name}", ROLE_POLICY).urn in account.dependencies
        pod = inputs(run.named(f"triton-{deployment.name}-deployment"))["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == metadata["name"]


def record(build) -> list:
    """What `build` registers under the preview mocks (components built with known inputs, so
    documents made from them are known too)."""
    return run(build, stack="test").resources


OIDC_ARN = "arn:aws-cn:iam::123456789012:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/ABC123"
ISSUER = "oidc.eks.cn-north-1.amazonaws.com.cn/id/ABC123"


def build_repository(**changes):
    args = dict(
        bucket_name="models-cn", partition="aws-cn", oidc_provider_arn=OIDC_ARN, oidc_issuer=ISSUER,
        readers=[RepositoryReader("chat", "llm", "chat", "triton/chat"), RepositoryReader("vision", "inference", "vision", "triton/vision")],
    )
    args.update(changes)
    return lambda: ModelRepository("repo", ModelRepositoryArgs(**args))


def by_name(resources, name, type_):
    [found] = [r for r in resources if r.name == name and r.type == type_]
    return found


def test_irsa_trust_is_pinned_to_the_exact_service_account_and_sts_audience():
    resources = record(build_repository())
    trust = json.loads(inputs(by_name(resources, "repo-reader-chat", ROLE))["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:llm:chat",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }}


def test_arns_follow_the_partition():
    resources = record(build_repository())
    reader = json.loads(inputs(by_name(resources, "repo-reader-vision", ROLE_POLICY))["policy"])
    resources_named = [r for s in reader["Statement"] for r in as_list(s["Resource"])]
    assert resources_named == ["arn:aws-cn:s3:::models-cn", "arn:aws-cn:s3:::models-cn", "arn:aws-cn:s3:::models-cn/triton/vision/*"]
    bucket_policy = json.loads(inputs(by_name(resources, "repo-tls-only", "aws:s3/bucketPolicy:BucketPolicy"))["policy"])
    assert bucket_policy["Statement"][0]["Resource"] == ["arn:aws-cn:s3:::models-cn", "arn:aws-cn:s3:::models-cn/*"]


# --- publisher -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_publisher_puts_and_lists_every_deployment_prefix_and_deletes_only_when_configured(stack):
    run = plan(stack)
    arn = f"arn:aws:s3:::{bucket_name(stack)}"
    # and the TensorRT builds' source directories (modelBuilds: uploaded before the build)
    prefixes = [d.modelPrefix for d in config_for(stack).tritonDeployments]
    prefixes += [b.source.rsplit("/", 1)[0] for b in config_for(stack).modelBuilds]
    document = json_policy(run.named("model-repository-publisher", "aws:iam/policy:Policy"))
    assert_least_privilege(document)
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["ListModelPrefixes"]["Action"] == "s3:ListBucket"
    assert statements["ListModelPrefixes"]["Resource"] == arn
    assert statements["ListModelPrefixes"]["Condition"]["StringLike"]["s3:prefix"] == [v for p in prefixes for v in (f"{p}/", f"{p}/*")]
    publish = statements["PublishModels"]
    assert publish["Resource"] == [f"{arn}/{p}/*" for p in prefixes]
    assert "s3:PutObject" in publish["Action"]
    allow_delete = config_for(stack).modelRepository.publisher.allowDelete
    assert ("s3:DeleteObject" in publish["Action"]) is allow_delete
    assert {"dev": True, "prod": False}[stack] is allow_delete


def test_publisher_role_only_with_trusted_principals_and_its_arn_is_exported():
    run = plan("prod")
    assert not [r for r in run.of_type(ROLE) if r.name == "model-repository-publisher"]
    assert "modelPublisherRoleArn" not in run.outputs
    assert "modelPublisherPolicyArn" in run.outputs

    principals = ["arn:aws:iam::123456789012:role/model-publishers", "arn:aws:iam::123456789012:user/release-bot"]
    repository = dict(stack_values("prod")["modelRepository"])
    repository["publisher"] = {"trustedPrincipalArns": principals, "allowDelete": False}
    run = plan_with("prod", modelRepository=repository)
    role = run.named("model-repository-publisher", ROLE)
    trust = json.loads(inputs(role)["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}]
    attachment = run.named("model-repository-publisher", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert run.named("model-repository-publisher", "aws:iam/policy:Policy").urn in attachment.dependencies
    assert run.outputs["modelPublisherRoleArn"].value == COMPUTED  # known after deploy, but exported


def test_publisher_trust_refuses_anything_but_iam_principal_arns():
    import stack_config

    values, secret = stack_config.read_stack_files("dev")
    values["ai-platform:modelRepository"] = json.dumps({"publisher": {"trustedPrincipalArns": ["*"]}})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    assert any(p.startswith("ai-platform:modelRepository.publisher.trustedPrincipalArns[0]: string should match pattern")
               for p in caught.value.problems), caught.value.problems


def test_a_default_bucket_name_over_63_characters_is_a_clear_error():

    import stack_config
    from platformctl.mockrun import run_program

    values, secret = stack_config.read_stack_files("dev")
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev-" + "x" * 40, values, secret)
    assert "is longer than 63 characters; set ai-platform:modelRepository.bucketName" in str(caught.value)
