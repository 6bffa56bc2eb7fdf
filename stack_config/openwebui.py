"""Configuration of OpenWebUI (the chat UI on the platform's LLMs) and of how the UIs are exposed
(AWS Load Balancer Controller, one shared ALB for OpenWebUI and Grafana).

Builds on `base` only; imported by `triton` (exposure) and `model`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Optional

from pydantic import Field, SecretStr, model_validator

from .base import ARN_PREFIX, REGION, BucketName, ConfigModel, Email, NamespaceName, problems

# Top-level secret key (registered in model.SECRET_KEYS): the OIDC client secret, used by
# OpenWebUI in `oidc` mode and by oauth2-proxy in `trusted-header` mode.
OIDC_CLIENT_SECRET_KEY = "openWebUiOidcClientSecret"

# A pinned release tag (v0.11.0), never a moving one: `main`/`latest` change under a running stack
# and OpenWebUI migrates its database on start, so an unplanned upgrade cannot be rolled back.
IMAGE_TAG_PATTERN = r"^v?\d+\.\d+\.\d+(-[\w.]+)?$"
HOSTNAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
ACM_ARN = rf"^{ARN_PREFIX}:acm:({REGION}):\d{{12}}:certificate/[0-9a-f-]{{36}}$"
HEADER_NAME = r"^[A-Za-z][A-Za-z0-9-]*$"


class OidcConfig(ConfigModel):
    """The identity provider: OpenWebUI's own OIDC login (`oidc`) or oauth2-proxy (`trusted-header`)."""

    # The provider's discovery document, e.g. https://idp.example.com/.well-known/openid-configuration
    providerUrl: Annotated[str, Field(pattern=r"^https://\S+/\.well-known/openid-configuration$")]
    clientId: Annotated[str, Field(min_length=1)]
    providerName: Annotated[str, Field(min_length=1)] = "SSO"
    scopes: Annotated[str, Field(pattern=r"^[\w:./-]+( [\w:./-]+)*$")] = "openid email profile"
    # Create an OpenWebUI account on first SSO login (the account still starts as defaultUserRole).
    enableSignup: bool = True

    @property
    def issuer_url(self) -> str:
        return self.providerUrl.removesuffix("/.well-known/openid-configuration")

    @model_validator(mode="after")
    def _check(self):
        if "openid" not in self.scopes.split():
            problems([("scopes", f"must include 'openid' (got {self.scopes!r})")])
        return self


class AuthConfig(ConfigModel):
    mode: Literal["builtin", "oidc", "trusted-header"] = "builtin"
    # builtin: self-service sign-up on the login page. Off in prod; new accounts need an admin.
    enableSignup: bool = False
    defaultUserRole: Literal["pending", "user"] = "pending"
    # builtin: the admin account created at first start (its password is generated into a Secret).
    # Unset, the first account signed up on the login page becomes the admin (then sign-up closes
    # again unless enableSignup); refused for an internet-facing UI, where anyone could be first.
    adminEmail: Optional[Email] = None
    oidc: Optional[OidcConfig] = None
    # trusted-header: the authenticating proxy in front of OpenWebUI. Only `oauth2-proxy` (deployed
    # by this stack) is accepted: without it anyone could log in as anyone by sending the header.
    proxy: Literal["none", "oauth2-proxy"] = "none"
    emailHeader: Annotated[str, Field(pattern=HEADER_NAME)] = "X-Forwarded-Email"
    nameHeader: Annotated[str, Field(pattern=HEADER_NAME)] = "X-Forwarded-Preferred-Username"

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.mode in ("oidc", "trusted-header") and self.oidc is None:
            found.append(("oidc", f"required when mode is {self.mode} (providerUrl, clientId; the client "
                                  f"secret is the secret key {OIDC_CLIENT_SECRET_KEY})"))
        if self.mode == "builtin" and self.oidc is not None:
            found.append(("oidc", "only applies to mode oidc or trusted-header (mode is builtin)"))
        if self.mode == "trusted-header" and self.proxy != "oauth2-proxy":
            found.append(("proxy", "mode trusted-header needs proxy: oauth2-proxy; without an authenticating proxy "
                                   "in front, anyone reaching OpenWebUI could log in as any user by sending the "
                                   f"{self.emailHeader} header"))
        if self.mode != "trusted-header" and self.proxy != "none":
            found.append(("proxy", f"only applies to mode trusted-header (mode is {self.mode})"))
        if self.mode != "builtin" and self.adminEmail is not None:
            found.append(("adminEmail", f"only applies to mode builtin (mode is {self.mode}; accounts come from the identity provider)"))
        problems(found)
        return self


class PostgresConfig(ConfigModel):
    """The RDS PostgreSQL instance created when persistence.database is postgres."""

    instanceClass: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.medium"
    engineVersion: Annotated[str, Field(pattern=r"^1[4-8](\.\d+)?$")] = "16"
    allocatedStorageGiB: Annotated[int, Field(ge=20, le=65536)] = 20
    maxAllocatedStorageGiB: Annotated[int, Field(ge=20, le=65536)] = 100
    # At least one day: automated backups stay on.
    backupRetentionDays: Annotated[int, Field(ge=1, le=35)] = 7
    multiAz: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.maxAllocatedStorageGiB < self.allocatedStorageGiB:
            problems([("maxAllocatedStorageGiB", f"must be >= allocatedStorageGiB ({self.maxAllocatedStorageGiB} < {self.allocatedStorageGiB})")])
        return self


class UploadsConfig(ConfigModel):
    """Where uploaded files live with more than one replica: a dedicated S3 bucket created by the
    stack (private, encrypted, versioned), reached through an IRSA role."""

    # Unset: ai-platform-<stack>-openwebui-<region>.
    bucketName: Optional[BucketName] = None
    keyPrefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")] = "uploads"
    # A deleted or overwritten upload stays recoverable (as a noncurrent version) this long.
    noncurrentVersionDays: Annotated[int, Field(ge=1, le=3650)] = 30

    def bucket_name(self, stack: str, region: str) -> str:
        return self.bucketName or f"ai-platform-{stack}-openwebui-{region}"


class RedisConfig(ConfigModel):
    """ElastiCache (Valkey) shared by the replicas for websocket sessions and app state."""

    nodeType: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.micro"
    engineVersion: Annotated[str, Field(pattern=r"^[78]\.\d+$")] = "8.0"
    # 1: a single node. 2 or more: a primary and replicas in different AZs with automatic failover.
    nodes: Annotated[int, Field(ge=1, le=6)] = 1


class PersistenceConfig(ConfigModel):
    # sqlite: the database lives on the data volume (one writer, so one replica).
    # postgres: an RDS instance created by the stack; DATABASE_URL comes from a Secret.
    database: Literal["sqlite", "postgres"] = "sqlite"
    volumeSizeGiB: Annotated[int, Field(ge=1, le=16384)] = 10
    # gp3-retain keeps the EBS volume when the claim is deleted (reclaim policy Retain).
    storageClass: Annotated[str, Field(min_length=1)] = "gp3-retain"
    postgres: PostgresConfig = PostgresConfig()
    # Used only with replicas > 1 (postgres): uploads in S3, the vector store in PostgreSQL
    # (pgvector), websockets through Redis; the pods keep nothing durable.
    uploads: UploadsConfig = UploadsConfig()
    redis: RedisConfig = RedisConfig()


class OpenWebUiConfig(ConfigModel):
    enabled: bool = True
    imageTag: Annotated[str, Field(pattern=IMAGE_TAG_PATTERN)] = "v0.11.0"
    namespace: NamespaceName = "openwebui"
    replicas: Annotated[int, Field(ge=1, le=20)] = 1
    # The uid and gid OpenWebUI runs as (also the fsGroup of its volumes). Any non-root uid runs
    # the upstream image: its files are root's and world-readable, and everything it writes is on
    # volumes. A value below 10000 adds a documented checkov CKV_K8S_40 skip.
    runAsUser: Annotated[int, Field(ge=1)] = 10001
    auth: AuthConfig = AuthConfig()
    persistence: PersistenceConfig = PersistenceConfig()
    # Chat traffic through the inference gateway (its own static key, limited and metered like any
    # application) instead of straight to Triton's OpenAI frontends. Needs gateway.enabled.
    viaGateway: bool = False

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.replicas > 1 and self.persistence.database == "sqlite":
            found.append(("replicas", f"must be 1 with persistence.database sqlite (SQLite allows one writer; "
                                      f"use postgres for {self.replicas} replicas)"))
        problems(found)
        return self


class ExposureConfig(ConfigModel):
    """How the UIs are reached. Without a hostname and certificate a UI stays ClusterIP-only and the
    stack exports the `kubectl port-forward` command instead."""

    # AWS Load Balancer Controller (serves ingressClassName alb).
    loadBalancerController: bool = True
    scheme: Literal["internet-facing", "internal"] = "internal"
    # ACM certificate covering the hostnames, in the stack's region. HTTPS only; HTTP redirects.
    certificateArn: Optional[Annotated[str, Field(pattern=ACM_ARN)]] = None
    openWebUiHostname: Optional[Annotated[str, Field(pattern=HOSTNAME, max_length=253)]] = None
    grafanaHostname: Optional[Annotated[str, Field(pattern=HOSTNAME, max_length=253)]] = None
    # The inference gateway's API (gateway.enabled); unset: in-cluster only.
    gatewayHostname: Optional[Annotated[str, Field(pattern=HOSTNAME, max_length=253)]] = None
    # Source ranges allowed to reach the ALB (empty: the ALB default, everyone for its scheme).
    inboundCidrs: list[Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")]] = []
    # The CIDRs of the subnets the ALB lives in, which the UIs' NetworkPolicies admit. Default: the
    # subnets the stack makes for it; required for an internet-facing ALB in a brought VPC (the CIDRs
    # of network.existingVpc.publicSubnetIds, unknown before deploy; the VPC CIDR would admit every pod).
    albSourceCidrs: list[Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")]] = []
    # Ingresses in one group share one ALB.
    groupName: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")] = "ai-platform"

    @property
    def hostnames(self) -> list[str]:
        return [h for h in (self.openWebUiHostname, self.grafanaHostname, self.gatewayHostname) if h]

    @model_validator(mode="after")
    def _check(self):
        found = []
        if self.hostnames and self.certificateArn is None:
            found.append(("certificateArn", "required when a hostname is set (the ALB serves HTTPS only)"))
        if self.certificateArn is not None and not self.hostnames:
            found.append(("certificateArn", "set, but no openWebUiHostname, grafanaHostname or gatewayHostname uses it"))
        if self.hostnames and not self.loadBalancerController:
            found.append(("loadBalancerController", "must be true when a hostname is set (nothing else serves "
                                                    "ingressClassName alb on this cluster)"))
        if self.openWebUiHostname and self.openWebUiHostname == self.grafanaHostname:
            found.append(("grafanaHostname", "must differ from openWebUiHostname (both share one ALB, routed by host)"))
        if self.gatewayHostname and self.gatewayHostname in (self.openWebUiHostname, self.grafanaHostname):
            found.append(("gatewayHostname", "must differ from openWebUiHostname and grafanaHostname (one ALB, routed by host)"))
        problems(found)
        return self


def certificate_region(arn: str) -> str:
    match = re.fullmatch(ACM_ARN, arn)
    return match.group(2) if match else ""


def alb_source_problems(exposure: ExposureConfig, *, vpc_cidr: str, brought_vpc: bool) -> list[tuple[str, str]]:
    """`exposure.albSourceCidrs`: the CIDRs the UIs' ALB connects from (components.exposure.alb_source)."""
    key = "exposure.albSourceCidrs"
    found = []
    vpc = ipaddress.ip_network(vpc_cidr)
    for cidr in exposure.albSourceCidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            found.append((key, f"{cidr} is not a valid IPv4 CIDR ({error})"))
            continue
        if not net.subnet_of(vpc) or (exposure.scheme == "internet-facing" and net == vpc):
            found.append((key, f"{cidr} must be a subnet of network.vpcCidr {vpc}, and not all of it for an "
                               f"internet-facing ALB (that would admit every pod)"))
    exposed = exposure.certificateArn and exposure.loadBalancerController
    if exposed and brought_vpc and exposure.scheme == "internet-facing" and not exposure.albSourceCidrs:
        found.append((key, "required for an internet-facing ALB in a brought VPC (network.existingVpc): the CIDRs "
                           "of its publicSubnetIds, which the UIs' NetworkPolicies admit (not the VPC CIDR: it "
                           "holds every pod)"))
    return found


def stack_problems(ui: OpenWebUiConfig, exposure: ExposureConfig, *, region: str,
                   oidc_client_secret: Optional[SecretStr]) -> list[tuple[str, str]]:
    """Checks across `openWebUi`, `exposure`, the region and the secret key `oidc_client_secret`
    (openWebUiOidcClientSecret); called from StackConfig's validator."""
    found = []
    if exposure.certificateArn and certificate_region(exposure.certificateArn) != region:
        found.append(("exposure.certificateArn", f"is in {certificate_region(exposure.certificateArn)}, but an ALB can only "
                                                 f"use certificates of its own region ({region})"))
    if not ui.enabled:
        return found
    mode = ui.auth.mode
    if mode in ("oidc", "trusted-header") and oidc_client_secret is None:
        found.append((OIDC_CLIENT_SECRET_KEY, f"required when openWebUi.auth.mode is {mode} "
                                              f"(pulumi config set --secret {OIDC_CLIENT_SECRET_KEY} ...)"))
    if (mode == "builtin" and ui.auth.adminEmail is None and exposure.openWebUiHostname
            and exposure.scheme == "internet-facing"):
        found.append(("openWebUi.auth.adminEmail", "required for an internet-facing OpenWebUI: otherwise whoever "
                                                   "signs up first on the public login page becomes the admin"))
    if mode == "trusted-header" and not exposure.openWebUiHostname:
        found.append(("openWebUi.auth.mode", "trusted-header needs exposure.openWebUiHostname and certificateArn: "
                                             "oauth2-proxy's login callback and secure cookie need the HTTPS hostname"))
    return found
