"""The model repository: one private, versioned, encrypted S3 bucket per stack, a read-only IRSA
role per Triton deployment (its prefix only) and a publisher policy/role for whoever pushes models.

Every policy document is built from the bucket *name* chosen before deploy (not from the bucket's
ARN output), so `pulumi preview` shows the exact documents and tests can assert them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.s3 import bucket_arn, private_bucket
from components.iam import IrsaRole, IrsaRoleArgs

# Object the program keeps under every reader prefix (see ModelRepository).
PREFIX_MARKER = ".keep"


def _prefix_conditions(prefixes: Sequence[str]) -> list[str]:
    # `prefix/` is what a client lists to open the "directory"; `prefix/*` everything under it.
    values: list[str] = []
    for prefix in prefixes:
        values += [f"{prefix}/", f"{prefix}/*"]
    return values


def _kms_statement(kms_key_arn: Optional[str], actions: list[str]) -> list[dict]:
    # Only a customer managed key needs IAM grants; the AWS managed key (aws/s3) trusts every
    # principal of the account that S3 acts for.
    if not kms_key_arn:
        return []
    return [{"Sid": "UseModelKey", "Effect": "Allow", "Action": actions, "Resource": kms_key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"s3.{kms_key_arn.split(':')[3]}.amazonaws.com"}}}]


def reader_policy(partition: str, bucket: str, prefix: str, kms_key_arn: Optional[str] = None) -> str:
    """Read-only access to one prefix: list it, get its objects. Nothing else in the bucket."""
    arn = bucket_arn(partition, bucket)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                # Triton sends HeadBucket before every listing, and S3 authorizes HeadBucket as
                # s3:ListBucket *without* a prefix: the prefix condition below alone refuses it
                # and Triton cannot even start. `Null` admits only prefix-less requests, which is
                # the least S3 allows for HeadBucket: the role can see key names at the bucket
                # root, never read an object outside its prefix.
                "Sid": "HeadModelBucket",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"Null": {"s3:prefix": "true"}},
            },
            {
                "Sid": "ListModelPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": _prefix_conditions([prefix])}},
            },
            {
                "Sid": "ReadModels",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{arn}/{prefix}/*",
            },
            *_kms_statement(kms_key_arn, ["kms:Decrypt"]),
        ],
    })


def publisher_policy(partition: str, bucket: str, prefixes: Sequence[str], allow_delete: bool,
                     kms_key_arn: Optional[str] = None) -> str:
    """Publish models under `prefixes`: list them, put (and read back, for sync by content)
    objects, abort multipart uploads; delete only when `allow_delete` (for `models push --prune`)."""
    arn = bucket_arn(partition, bucket)
    object_actions = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    if allow_delete:
        object_actions.append("s3:DeleteObject")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListModelPrefixes",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": _prefix_conditions(prefixes)}},
            },
            {
                "Sid": "PublishModels",
                "Effect": "Allow",
                "Action": object_actions,
                "Resource": [f"{arn}/{prefix}/*" for prefix in prefixes],
            },
            *_kms_statement(kms_key_arn, ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
    })


def principals_trust_policy(principal_arns: Sequence[str]) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": list(principal_arns)}, "Action": "sts:AssumeRole"}],
    })


@dataclass(frozen=True)
class RepositoryReader:
    """A Triton deployment that reads its models from `prefix` as `namespace/service_account`."""

    name: str
    namespace: str
    service_account: str
    prefix: str


@dataclass(frozen=True)
class ModelRepositoryArgs:
    bucket_name: str
    partition: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    readers: Sequence[RepositoryReader] = ()
    protect_data: bool = True
    noncurrent_version_days: int = 30
    noncurrent_versions_kept: int = 3
    kms_key_arn: Optional[str] = None
    publisher_principal_arns: Sequence[str] = ()
    publisher_allow_delete: bool = False
    # Prefixes the publisher may write; default: every reader's prefix.
    publisher_prefixes: Sequence[str] = field(default_factory=tuple)


class ModelRepository(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    # The `.keep` object under each reader's prefix, by reader name (readers sharing a prefix
    # share one): Triton cannot start before it exists, so its Deployment depends on it.
    prefix_markers: dict[str, aws.s3.BucketObjectv2]
    # The bucket and its default encryption: what an object the stack writes waits for.
    bucket_ready: list[pulumi.Resource]
    bucket_arn: str
    reader_role_arns: dict[str, pulumi.Output[str]]
    publisher_policy_arn: pulumi.Output[str]
    publisher_role_arn: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: ModelRepositoryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:models:ModelRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition, bucket_name = args.partition, args.bucket_name

        storage = private_bucket(
            name, bucket_name,
            partition=partition,
            protect_data=args.protect_data,
            noncurrent_version_days=args.noncurrent_version_days,
            noncurrent_versions_kept=args.noncurrent_versions_kept,
            kms_key_arn=args.kms_key_arn,
            expiry_rule_id="expire-old-model-versions",
            name_config_key="ai-platform:modelRepository.bucketName",
            parent=self,
        )
        bucket, encryption = storage.bucket, storage.encryption
        self.bucket_ready = [bucket, encryption]

        # Triton refuses to start on a repository path with no object under it ("repository
        # path is not a valid directory"), which is every prefix of a new bucket: without this
        # marker the first `pulumi up` would wait out the startup budget on crash-looping pods.
        # Hidden, so Triton sees no model in it and `models push --prune` leaves it alone.
        named_by: dict[str, RepositoryReader] = {}
        for reader in args.readers:
            named_by.setdefault(reader.prefix, reader)  # deployments may share a prefix
        markers: dict[str, aws.s3.BucketObjectv2] = {}
        for prefix, reader in named_by.items():
            markers[prefix] = aws.s3.BucketObjectv2(
                f"{name}-prefix-{reader.name}",
                bucket=bucket.bucket,
                key=f"{prefix}/{PREFIX_MARKER}",
                content=f"Keeps s3://{bucket_name}/{prefix}/ a valid (empty) Triton model repository. Do not delete.\n",
                content_type="text/plain",
                # Written after default encryption is set, so it is encrypted like the models.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket, encryption]),
            )
        self.prefix_markers = {reader.name: markers[reader.prefix] for reader in args.readers}

        self.reader_role_arns = {}
        for reader in args.readers:
            # Triton comes up only once the role can read, not crash-looping on AccessDenied.
            self.reader_role_arns[reader.name] = IrsaRole(f"{name}-reader-{reader.name}", IrsaRoleArgs(
                args.oidc_provider_arn, args.oidc_issuer, reader.namespace, reader.service_account,
                policy=reader_policy(partition, bucket_name, reader.prefix, args.kms_key_arn),
                description=f"Triton {reader.namespace}/{reader.service_account}: read models under s3://{bucket_name}/{reader.prefix}/",
                max_session_duration=3600,
            ), child, moved_from=self).arn

        prefixes = list(dict.fromkeys(args.publisher_prefixes or [r.prefix for r in args.readers]))
        if not prefixes:
            raise ValueError("the publisher needs at least one prefix (no Triton deployment reads from the bucket)")
        policy = aws.iam.Policy(
            f"{name}-publisher",
            description=f"Publish models to s3://{bucket_name} ({', '.join(p + '/' for p in prefixes)})",
            policy=publisher_policy(partition, bucket_name, prefixes, args.publisher_allow_delete, args.kms_key_arn),
            opts=child,
        )
        self.publisher_policy_arn = policy.arn
        self.publisher_role_arn = None
        if args.publisher_principal_arns:
            role = aws.iam.Role(
                f"{name}-publisher",
                description=f"Publish models to s3://{bucket_name}",
                assume_role_policy=principals_trust_policy(args.publisher_principal_arns),
                max_session_duration=3600,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(f"{name}-publisher", role=role.name, policy_arn=policy.arn, opts=child)
            self.publisher_role_arn = role.arn

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket_arn(partition, bucket_name)
        self.register_outputs({
            "bucketName": self.bucket_name,
            "readerRoleArns": self.reader_role_arns,
            "publisherPolicyArn": self.publisher_policy_arn,
            "publisherRoleArn": self.publisher_role_arn,
        })
