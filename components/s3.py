"""A private S3 bucket as the platform keeps data: the same hardening for every bucket it creates
(model repository, OpenWebUI uploads). Plain functions; the calling component owns the resources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def tls_only_bucket_policy(partition: str, bucket: str) -> str:
    """Refuse every request that is not over TLS (a Deny, so no grant anywhere can override it)."""
    arn = bucket_arn(partition, bucket)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })


@dataclass(frozen=True)
class PrivateBucket:
    bucket: aws.s3.Bucket
    encryption: aws.s3.BucketServerSideEncryptionConfiguration  # objects written after it are encrypted


def lifecycle_rules(expiry_rule_id: str, noncurrent_version_days: int, noncurrent_versions_kept: Optional[int]) -> list[dict]:
    """Old versions expire (keeping the newest `noncurrent_versions_kept`), stale multipart uploads
    and expired delete markers go."""
    return [
        {
            "id": expiry_rule_id,
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {
                "noncurrent_days": noncurrent_version_days,
                **({"newer_noncurrent_versions": noncurrent_versions_kept} if noncurrent_versions_kept else {}),
            },
            # An interrupted multipart upload leaves invisible parts that are billed.
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        },
        {
            "id": "remove-expired-delete-markers",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "expiration": {"expired_object_delete_marker": True},
        },
    ]


def private_bucket(
    name: str,
    bucket_name: str,
    *,
    partition: str,
    protect_data: bool,
    noncurrent_version_days: int,
    noncurrent_versions_kept: Optional[int] = None,
    kms_key_arn: Optional[str] = None,
    expiry_rule_id: str = "expire-noncurrent-versions",
    name_config_key: str,
    parent: pulumi.Resource,
) -> PrivateBucket:
    """Versioned, SSE-KMS with a bucket key, owner-enforced, all public access blocked, TLS-only,
    old versions and stale multipart uploads expired. With `protect_data` the bucket is protected
    and retained on delete; only a throwaway stack may force-destroy a bucket that holds data."""
    if len(bucket_name) > 63:
        # A derived default (stack and region in it) can outgrow S3's limit: say which key fixes it.
        raise pulumi.RunError(f"bucket name {bucket_name!r} is longer than 63 characters; set {name_config_key}")
    bucket = aws.s3.Bucket(
        name,
        bucket=bucket_name,
        force_destroy=not protect_data,
        # Even `pulumi stack rm --force` or removing the code must not delete the data.
        opts=pulumi.ResourceOptions(parent=parent, protect=protect_data, retain_on_delete=protect_data),
    )
    # Sub-resources take the bucket's name output: known at preview and a dependency on it.
    sub = pulumi.ResourceOptions(parent=parent, depends_on=[bucket])
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.bucket,
        rule={"object_ownership": "BucketOwnerEnforced"}, opts=sub,
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access", bucket=bucket.bucket,
        block_public_acls=True, block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
        opts=sub,
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning", bucket=bucket.bucket,
        versioning_configuration={"status": "Enabled"}, opts=sub,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.bucket,
        rules=[{
            "apply_server_side_encryption_by_default": {
                "sse_algorithm": "aws:kms",
                **({"kms_master_key_id": kms_key_arn} if kms_key_arn else {}),
            },
            # One data key per bucket instead of per object: far fewer KMS calls on large writes.
            "bucket_key_enabled": True,
        }],
        opts=sub,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle", bucket=bucket.bucket,
        rules=lifecycle_rules(expiry_rule_id, noncurrent_version_days, noncurrent_versions_kept),
        # Lifecycle rules on a bucket without versioning enabled would not see noncurrent versions.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[bucket, versioning]),
    )
    aws.s3.BucketPolicy(
        f"{name}-tls-only", bucket=bucket.bucket,
        policy=tls_only_bucket_policy(partition, bucket_name),
        # S3 refuses a bucket policy while the public access block is being changed.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[bucket, public_access]),
    )
    return PrivateBucket(bucket, encryption)
