"""AWS-managed data stores reachable only from the EKS cluster: RDS PostgreSQL and ElastiCache
(Valkey) replication groups in the private subnets, each behind a security group that admits its port
from the cluster security group (pods and nodes) only. Used by OpenWebUI and the inference gateway.

Builders, not components: the resources are children of the caller's component (`parent`), named
from its resource name, so moving OpenWebUI's builders here kept their URNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_random as random

POSTGRES_PORT = 5432
REDIS_PORT = 6379
# ElastiCache: "The replication group identifier ... must contain from 1 to 40 alphanumeric characters or hyphens."
REPLICATION_GROUP_ID_MAX = 40


@dataclass(frozen=True)
class ClusterNetwork:
    """Where a data store lives; reachable only from the cluster's security group. `name_prefix`
    (the cluster name) starts every AWS name."""

    name_prefix: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    cluster_security_group_id: pulumi.Input[str]


@dataclass(frozen=True)
class Owner:
    """Who a data store belongs to: `resource_name` prefixes the Pulumi names (`<name>-db`,
    `<name>-redis`, ...), `ident` the AWS names (`<prefix>-<ident>`), `label` the descriptions."""

    resource_name: str
    ident: str
    label: str


@dataclass(frozen=True)
class PostgresSpec:
    instance_class: str
    engine_version: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    backup_retention_days: int
    multi_az: bool
    db_name: str
    username: str


@dataclass(frozen=True)
class ValkeySpec:
    node_type: str
    engine_version: str
    nodes: int  # 1: one node; 2 or more: a primary and replicas across AZs with automatic failover
    description: str


@dataclass(frozen=True)
class Postgres:
    instance: aws.rds.Instance
    password: random.RandomPassword


@dataclass(frozen=True)
class Valkey:
    group: aws.elasticache.ReplicationGroup
    token: random.RandomPassword


def cluster_only_security_group(resource_name: str, group_name: str, description: str, service: str, port: int,
                                net: ClusterNetwork, parent: pulumi.Resource) -> aws.ec2.SecurityGroup:
    """A security group admitting `port` only from the EKS cluster security group (pods and nodes)."""
    child = pulumi.ResourceOptions(parent=parent)
    group = aws.ec2.SecurityGroup(resource_name, name=group_name, description=description, vpc_id=net.vpc_id, opts=child)
    aws.vpc.SecurityGroupIngressRule(
        f"{resource_name}-from-cluster",
        security_group_id=group.id,
        referenced_security_group_id=net.cluster_security_group_id,
        ip_protocol="tcp", from_port=port, to_port=port,
        description=f"{service} from EKS pods and nodes",
        opts=child,
    )
    return group


def _security_group(owner: Owner, suffix: str, service: str, port: int, net: ClusterNetwork,
                    parent: pulumi.Resource) -> aws.ec2.SecurityGroup:
    return cluster_only_security_group(
        f"{owner.resource_name}-{suffix}", f"{net.name_prefix}-{owner.ident}-{suffix}",
        f"{owner.label} {service}: {port} from the EKS cluster security group only", service, port, net, parent)


def postgres(owner: Owner, spec: PostgresSpec, net: ClusterNetwork, protect_data: bool,
             parent: pulumi.Resource) -> Postgres:
    """Encrypted, backed up, deletion-protected with a final snapshot (`protect` with protect_data);
    the master password generated (alphanumeric: it goes into a URL and RDS refuses / @ " and spaces)."""
    child = pulumi.ResourceOptions(parent=parent)
    security_group = _security_group(owner, "db", "PostgreSQL", POSTGRES_PORT, net, parent)
    subnet_group = aws.rds.SubnetGroup(
        f"{owner.resource_name}-db",
        name=f"{net.name_prefix}-{owner.ident}",
        subnet_ids=net.private_subnet_ids,
        description=f"{owner.label} PostgreSQL in the private subnets",
        opts=child,
    )
    password = random.RandomPassword(f"{owner.resource_name}-db-password", length=32, special=False, opts=child)
    instance = aws.rds.Instance(
        f"{owner.resource_name}-db",
        identifier=f"{net.name_prefix}-{owner.ident}",
        engine="postgres",
        engine_version=spec.engine_version,
        instance_class=spec.instance_class,
        allocated_storage=spec.allocated_storage_gib,
        max_allocated_storage=spec.max_allocated_storage_gib,
        storage_type="gp3",
        storage_encrypted=True,
        db_name=spec.db_name,
        username=spec.username,
        password=password.result,
        db_subnet_group_name=subnet_group.name,
        vpc_security_group_ids=[security_group.id],
        publicly_accessible=False,
        multi_az=spec.multi_az,
        backup_retention_period=spec.backup_retention_days,
        copy_tags_to_snapshot=True,
        deletion_protection=True,
        skip_final_snapshot=False,
        final_snapshot_identifier=f"{net.name_prefix}-{owner.ident}-final",
        auto_minor_version_upgrade=True,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect_data),
    )
    return Postgres(instance, password)


def replication_group_id(owner: Owner, net: ClusterNetwork) -> str:
    ident = f"{net.name_prefix}-{owner.ident}"
    if len(ident) > REPLICATION_GROUP_ID_MAX:
        raise pulumi.RunError(f"ElastiCache replication group id {ident!r} is longer than {REPLICATION_GROUP_ID_MAX} "
                              "characters; use a shorter stack name")
    return ident


def valkey(owner: Owner, spec: ValkeySpec, net: ClusterNetwork, parent: pulumi.Resource,
           depends_on: Optional[list[pulumi.Resource]] = None) -> Valkey:
    """ElastiCache (Valkey) rather than a Redis pod: AWS runs failover across AZs, patching and
    encryption at rest, and there is no in-cluster StatefulSet to secure and keep alive. TLS required,
    AUTH token generated (alphanumeric: it goes into URLs, and ElastiCache refuses @ " / in tokens).
    No snapshots: callers keep only state their pods rebuild."""
    group_id = replication_group_id(owner, net)
    child = pulumi.ResourceOptions(parent=parent)
    security_group = _security_group(owner, "redis", "Valkey", REDIS_PORT, net, parent)
    subnet_group = aws.elasticache.SubnetGroup(
        f"{owner.resource_name}-redis",
        name=group_id,
        subnet_ids=net.private_subnet_ids,
        description=f"{owner.label} Valkey in the private subnets",
        opts=child,
    )
    token = random.RandomPassword(f"{owner.resource_name}-redis-token", length=48, special=False, opts=child)
    failover = spec.nodes > 1
    group = aws.elasticache.ReplicationGroup(
        f"{owner.resource_name}-redis",
        replication_group_id=group_id,
        description=spec.description,
        engine="valkey",
        engine_version=spec.engine_version,
        node_type=spec.node_type,
        num_cache_clusters=spec.nodes,
        automatic_failover_enabled=failover,
        multi_az_enabled=failover,
        port=REDIS_PORT,
        subnet_group_name=subnet_group.name,
        security_group_ids=[security_group.id],
        at_rest_encryption_enabled=True,
        transit_encryption_enabled=True,
        transit_encryption_mode="required",
        auth_token=token.result,
        auto_minor_version_upgrade=True,
        snapshot_retention_limit=0,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
    )
    return Valkey(group, token)
