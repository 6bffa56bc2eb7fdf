"""`platformctl preflight`: will this stack get its GPUs in this account and region?

The usual first-deploy failure of a GPU platform is capacity, and it fails silently: node groups
sit at zero because the account's G/VT or P vCPU quota is too small, or the GPU type is not offered
in one of the zones. This command asks AWS (read-only) before `pulumi up`:

- are the configured zones real, and is every GPU type offered in each of them?
- how many vCPUs the node groups need at desired and at max size, per EC2 quota bucket, against
  the account's applied quotas;
- does EKS offer the Kubernetes version here, and is the NVIDIA AMI published for it?
- is every model a Triton deployment must load at start (`modelControl.loadModels` names) already
  under its prefix of the model bucket? tritonserver exits at start on a missing one.
- is the source ONNX of every TensorRT build (`modelBuilds[].source`) in the model bucket? The
  build Job waits 15 minutes for a missing one, then fails, and `pulumi up` with it. A build with
  `sourceFile` is uploaded by the stack: that local file must exist (`pulumi up` refuses without).

A check that cannot be answered (no credentials, API unreachable, permission denied) is a warning
that says why; only a definite "no" is a failure. Exit code 1 on any failure (or any warning with
--strict), 2 on an invalid configuration or arguments.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.config import Config
from rich.console import Console
from rich.table import Table
from rich.text import Text

import stack_config
from stack_config import ConfigError, StackConfig
from stack_config.model import placeholder_cidrs
from stack_config.gpu_instances import AMI_ARCH, GPU_INSTANCE_TYPES
from stack_config.base import REGION
from stack_config.model_builds import SOURCE_WAIT_SECONDS, producer_hint

from . import cost
from .aws_errors import AWS_ERRORS, UNREACHABLE, error_code, explain_error
from .prices import PRICING_API_REGION, LivePrices, PricesUnavailable, TablePrices

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Quota:
    code: str
    name: str


# EC2 vCPU quotas per bucket and capacity type (Service Quotas, service code "ec2").
QUOTAS: dict[tuple[str, str], Quota] = {
    ("G", "ON_DEMAND"): Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("G", "SPOT"): Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("P", "ON_DEMAND"): Quota("L-417A185B", "Running On-Demand P instances"),
    ("P", "SPOT"): Quota("L-7212CCBC", "All P Spot Instance Requests"),
    ("Standard", "ON_DEMAND"): Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    ("Standard", "SPOT"): Quota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
}
STANDARD_FAMILY_LETTERS = set("acdhimrtz")

# SSM public parameters of the EKS-optimized NVIDIA AMIs, per managed node group amiType.
AMI_PARAMETERS = {
    "AL2023_x86_64_NVIDIA": "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
    "AL2023_ARM_64_NVIDIA": "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/arm64/nvidia/recommended/image_id",
    "BOTTLEROCKET_x86_64_NVIDIA": "/aws/service/bottlerocket/aws-k8s-{version}-nvidia/x86_64/latest/image_id",
    "BOTTLEROCKET_ARM_64_NVIDIA": "/aws/service/bottlerocket/aws-k8s-{version}-nvidia/arm64/latest/image_id",
}

# Short timeouts and few retries: preflight is interactive, and an unreachable endpoint should
# turn into a warning within seconds, not after botocore's default minute of retries.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    extended_support: bool = False
    offline: str | None = None  # why AWS could not be asked at all, if it could not

    def add(self, check: Check) -> None:
        self.checks.append(check)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def by_name(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r} (have: {[c.name for c in self.checks]})")


# --- AWS plumbing --------------------------------------------------------------------------

class AwsClients:
    """boto3 clients for one region, built on first use.

    `endpoint_url=None` leaves botocore to honour AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>
    itself; `overrides` lets tests hand in stubbed clients per service.
    """

    def __init__(self, region: str, endpoint_url: str | None = None,
                 overrides: dict[str, Any] | None = None, session: boto3.session.Session | None = None):
        self.region = region
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = dict(overrides or {})
        self._session = session

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            session = self._session or boto3.session.Session()
            region = PRICING_API_REGION if service == "pricing" else self.region
            self._clients[service] = session.client(
                service, region_name=region, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
            )
        return self._clients[service]


# --- what the stack needs -----------------------------------------------------------------

def quota_bucket(instance_type: str) -> str | None:
    """EC2 quota bucket of an instance type: 'G', 'P', 'Standard', or None when not covered here."""
    if instance_type in GPU_INSTANCE_TYPES:
        return GPU_INSTANCE_TYPES[instance_type].quota_bucket
    family = instance_type.split(".", 1)[0]
    if family[:1] in STANDARD_FAMILY_LETTERS and not family.startswith(("dl", "inf", "trn")):
        return "Standard"
    return None


@dataclass
class Need:
    desired: int = 0
    max: int = 0
    parts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Group:
    """A node group as the quota and offering checks see it."""

    label: str
    key: str  # config key path, for the fix column
    instance_types: tuple[str, ...]
    capacity: str
    desired: int
    max: int


def node_groups(config: StackConfig) -> list[Group]:
    system = config.cluster.systemNodeGroup
    groups = [Group("system", "ai-platform:cluster.systemNodeGroup", tuple(system.instanceTypes),
                    system.capacityType, system.desiredSize, system.maxSize)]
    for index, pool in enumerate(config.gpuNodeGroups):
        groups.append(Group(pool.name, f"ai-platform:gpuNodeGroups[{index}]", tuple(pool.instanceTypes),
                            pool.capacityType, pool.desiredSize, pool.maxSize))
        if config.gpuProvisioner == "karpenter" and pool.capacityType == "SPOT":
            # The pool's NodePool allows spot and on-demand: when spot runs dry, on-demand quota is drawn.
            groups.append(Group(f"{pool.name} (on-demand fallback)", f"ai-platform:gpuNodeGroups[{index}]",
                                tuple(pool.instanceTypes), "ON_DEMAND", 0, pool.maxSize))
    return groups


def vcpu_needs(config: StackConfig, vcpus_of: Callable[[str], int | None]) -> tuple[dict[tuple[str, str], Need], list[str]]:
    """vCPUs per (bucket, capacity) at desired and at max size, and the types that fit no bucket.

    A node of a group with several types may be any of them, so it counts as the largest.
    """
    needs: dict[tuple[str, str], Need] = {}
    unknown: list[str] = []
    for group in node_groups(config):
        for bucket in sorted({quota_bucket(t) or "" for t in group.instance_types}):
            types = [t for t in group.instance_types if (quota_bucket(t) or "") == bucket]
            if not bucket:
                unknown.extend(types)
                continue
            sizes = [v for v in (vcpus_of(t) for t in types) if v is not None]
            if not sizes:
                unknown.extend(types)
                continue
            per_node = max(sizes)
            need = needs.setdefault((bucket, group.capacity), Need())
            need.desired += per_node * group.desired
            need.max += per_node * group.max
            need.parts.append(f"{group.label}: {group.desired}/{group.max} nodes x {per_node} vCPUs")
    return needs, unknown


def table_vcpus(instance_type: str) -> int | None:
    entry = GPU_INSTANCE_TYPES.get(instance_type)
    return entry.vcpus if entry else None


# --- checks -------------------------------------------------------------------------------

def _zone_list(zones) -> str:
    return ", ".join(sorted(zones)) or "none"


def check_zones(ec2: Any, region: str, zones: list[str]) -> tuple[Check, list[str]]:
    response = ec2.describe_availability_zones()
    region_zones = sorted(
        z["ZoneName"] for z in response.get("AvailabilityZones", [])
        if z.get("State", "available") == "available"
        and z.get("ZoneType", "availability-zone") == "availability-zone"
    )
    missing = [z for z in zones if z not in region_zones]
    if missing:
        return Check(
            "zones", FAIL,
            f"{_zone_list(missing)} not available in {region} for this account (available: {_zone_list(region_zones)})",
            f"set ai-platform:network.availabilityZones to zones from: {_zone_list(region_zones)}",
        ), region_zones
    return Check("zones", OK, f"{_zone_list(zones)} available in {region}"), region_zones


def fetch_offerings(ec2: Any, instance_types: list[str]) -> dict[str, set[str]]:
    offered: dict[str, set[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    pages = paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": sorted(instance_types)}],
    )
    for page in pages:
        for offering in page.get("InstanceTypeOfferings", []):
            offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
    return offered


def _gpu_label(instance_type: str) -> str:
    spec = GPU_INSTANCE_TYPES[instance_type]
    return f"{instance_type} ({spec.gpus}x {spec.gpu_model} {spec.gpu_memory_gib} GiB)"


def alternatives(pool_types: tuple[str, ...], ami_type: str, zones: list[str],
                 offered: dict[str, set[str]], price_of: Callable[[str], float | None], limit: int = 3) -> list[str]:
    """GPU types offered in every configured zone that could replace the pool's types: same GPU
    count and architecture, one per family; at least as much GPU memory first, then the cheapest."""
    reference = [GPU_INSTANCE_TYPES[t] for t in pool_types]
    gpus = reference[0].gpus
    memory = min(t.gpu_memory_gib for t in reference)
    arch = AMI_ARCH[ami_type]
    candidates = [
        spec for name, spec in GPU_INSTANCE_TYPES.items()
        if name not in pool_types and spec.gpus == gpus and spec.arch == arch
        and all(z in offered.get(name, ()) for z in zones)
    ]

    def rank(spec):
        price = price_of(spec.name)
        return (spec.gpu_memory_gib < memory, price if price is not None else float("inf"), spec.vcpus, spec.name)

    # One per family: g5.2xlarge next to g5.xlarge is noise; the reader wants the options.
    picked: dict[str, str] = {}
    for spec in sorted(candidates, key=rank):
        picked.setdefault(spec.family, spec.name)
    return list(picked.values())[:limit]


def check_pool_offerings(
    pool, index: int, region: str, zones: list[str], region_zones: list[str],
    offered: dict[str, set[str]], price_of: Callable[[str], float | None],
) -> Check:
    name = f"offerings: {pool.name}"
    key = f"ai-platform:gpuNodeGroups[{index}]"
    types = tuple(pool.instanceTypes)
    lacking = {t: [z for z in zones if z not in offered.get(t, set())] for t in types}
    if not any(lacking.values()):
        return Check(name, OK, f"{', '.join(types)} offered in every zone ({', '.join(zones)})")

    gaps = []
    for t in types:
        if not offered.get(t):
            gaps.append(f"{t} is not offered in {region}")
        elif lacking[t]:
            gaps.append(f"{t} not offered in {', '.join(lacking[t])}")
    uncovered = [z for z in zones if all(z in lacking[t] for t in types)]

    options = []
    alts = alternatives(types, pool.amiType, zones, offered, price_of)
    if alts:
        options.append(f"{key}.instanceTypes: use {', '.join(_gpu_label(a) for a in alts)} (offered in all of {', '.join(zones)})")
    good_zones = [z for z in region_zones if all(z in offered.get(t, set()) for t in types)]
    if len(good_zones) >= 2:
        options.append(f"ai-platform:network.availabilityZones: pick from {', '.join(good_zones)} (offer all of {', '.join(types)})")
    complete = [t for t in types if not lacking[t]]
    if complete and uncovered == []:
        options.append(f"{key}.instanceTypes: drop {', '.join(t for t in types if lacking[t])}")
    fix = "; or ".join(options) if options else f"no GPU type with {GPU_INSTANCE_TYPES[types[0]].gpus} GPU(s) is offered in all configured zones; choose other zones or another region"

    if uncovered:
        detail = "; ".join(gaps) + f": the pool cannot launch nodes in {', '.join(uncovered)}"
        return Check(name, FAIL, detail, fix)
    detail = "; ".join(gaps) + " (other types of the pool cover those zones)"
    return Check(name, WARN, detail, fix)


def fetch_facts(ec2: Any, instance_types: list[str]) -> dict[str, tuple[int, int, str]]:
    """vCPUs, GPU count and GPU names per instance type, as EC2 reports them."""
    facts: dict[str, tuple[int, int, str]] = {}
    if not instance_types:
        return facts
    paginator = ec2.get_paginator("describe_instance_types")
    for page in paginator.paginate(InstanceTypes=sorted(instance_types)):
        for it in page.get("InstanceTypes", []):
            gpus = (it.get("GpuInfo") or {}).get("Gpus", [])
            count = sum(g.get("Count", 0) for g in gpus)
            names = ", ".join(f"{g.get('Manufacturer', '')} {g.get('Name', '')}".strip() for g in gpus)
            facts[it["InstanceType"]] = (int(it["VCpuInfo"]["DefaultVCpus"]), count, names)
    return facts


def check_facts(facts: dict[str, tuple[int, int, str]], gpu_types: list[str]) -> Check:
    shown, stale = [], []
    for t in gpu_types:
        if t not in facts:
            continue
        vcpus, gpus, names = facts[t]
        shown.append(f"{t}: {vcpus} vCPUs, {gpus}x {names or 'GPU'}")
        local = GPU_INSTANCE_TYPES[t]
        if (local.vcpus, local.gpus) != (vcpus, gpus):
            stale.append(f"{t} (AWS: {vcpus} vCPUs/{gpus} GPUs, table: {local.vcpus}/{local.gpus})")
    if stale:
        return Check(
            "instance types", WARN,
            f"AWS and the local GPU table disagree: {'; '.join(stale)}; quota figures use AWS's",
            "update stack_config/gpu_instances.py",
        )
    return Check("instance types", OK, "; ".join(shown) or "no GPU type of the stack is offered here")


def check_quota(quotas: Any, region: str, bucket: str, capacity: str, need: Need) -> Check:
    quota = QUOTAS[(bucket, capacity)]
    label = f"quota {bucket} {'spot' if capacity == 'SPOT' else 'on-demand'}"
    wanted = f"needs {need.desired} vCPUs at desired, {need.max} at max ({'; '.join(need.parts)})"
    request = (
        f"aws service-quotas request-service-quota-increase --region {region} "
        f"--service-code ec2 --quota-code {quota.code} --desired-value {need.max}"
    )
    try:
        value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=quota.code)["Quota"]["Value"]
    except AWS_ERRORS as exc:
        if error_code(exc) == "NoSuchResourceException":
            reason = f"quota {quota.code} not visible in {region} (NoSuchResourceException)"
        else:
            reason = explain_error(exc, "servicequotas:GetServiceQuota")
        return Check(label, WARN, f"{wanted}; {reason}",
                     f"check in the Service Quotas console that '{quota.name}' ({quota.code}) is >= {need.max}")
    value = int(value)
    if value >= need.max:
        return Check(label, OK, f"{wanted}; quota {quota.code} is {value} (shared with everything else in {region})")
    if value < need.desired:
        effect = "node groups cannot reach their desired size"
    else:
        effect = "node groups cannot scale to max size"
    return Check(
        label, FAIL,
        f"{wanted}; quota {quota.code} '{quota.name}' is {value}: {effect}",
        f"request {quota.code} >= {need.max} vCPUs (+{need.max - value}): {request}",
    )


def check_eks_version(eks: Any, region: str, version: str) -> tuple[Check, bool]:
    """The check, and whether the version is in (paid) extended support."""
    name = f"EKS {version}"
    try:
        response = eks.describe_cluster_versions(clusterVersions=[version], includeAll=True)
    except AWS_ERRORS as exc:
        return Check(name, WARN, f"not checked: {explain_error(exc, 'eks:DescribeClusterVersions')}"), False
    entries = [v for v in response.get("clusterVersions", []) if v.get("clusterVersion") == version]
    fix = "set ai-platform:cluster.kubernetesVersion to a version in standard support"
    if not entries:
        return Check(name, FAIL, f"EKS does not offer Kubernetes {version} in {region}", fix), False
    entry = entries[0]
    status = str(entry.get("versionStatus") or entry.get("status") or "").upper().replace("-", "_")
    if status == "STANDARD_SUPPORT":
        until = entry.get("endOfStandardSupportDate")
        suffix = f" until {until:%Y-%m-%d}" if hasattr(until, "strftime") else ""
        return Check(name, OK, f"offered in {region}, standard support{suffix}"), False
    if status == "EXTENDED_SUPPORT":
        return Check(name, WARN, f"offered in {region} in extended support: the control plane is billed at the extended-support rate", fix), True
    return Check(name, FAIL, f"Kubernetes {version} is {status.lower() or 'not supported'} on EKS in {region}", fix), False


def check_ami(ssm: Any, region: str, version: str, ami_type: str, pools: list[str]) -> Check:
    name = f"AMI {ami_type}"
    parameter = AMI_PARAMETERS[ami_type].format(version=version)
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except AWS_ERRORS as exc:
        if error_code(exc) in ("ParameterNotFound", "ParameterVersionNotFound"):
            others = ", ".join(a for a in AMI_PARAMETERS if a != ami_type and AMI_ARCH[a] == AMI_ARCH[ami_type])
            return Check(
                name, FAIL,
                f"no {ami_type} AMI for Kubernetes {version} in {region} ({parameter} not found); used by {', '.join(pools)}",
                f"set ai-platform:cluster.kubernetesVersion to a version with a published NVIDIA AMI, or amiType {others}",
            )
        return Check(name, WARN, f"not checked: {explain_error(exc, 'ssm:GetParameter')} ({parameter})")
    return Check(name, OK, f"{value} for Kubernetes {version} ({', '.join(pools)})")


def pinned_ami_parameter(version: str, ami_type: str) -> str | None:
    """The SSM parameter Karpenter resolves an EC2NodeClass's pinned AL2023 alias through
    (aws/karpenter-provider-aws v1.14.0 pkg/providers/amifamily/al2023.go `resolvePath`); None for
    Bottlerocket (its nvidia variant is checked through the recommended parameter above)."""
    from components.karpenter_manifests import AMI_ALIASES, AMI_FAMILY

    if AMI_FAMILY.get(ami_type) != "AL2023":
        return None
    release = AMI_ALIASES["AL2023"].split("@", 1)[1]
    arch = "arm64" if "ARM_64" in ami_type else "x86_64"
    return (f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/{arch}/nvidia/"
            f"amazon-eks-node-al2023-{arch}-nvidia-{version}-{release}/image_id")


def check_pinned_ami(ssm: Any, region: str, version: str, parameter: str, pools: list[str]) -> Check:
    name = f"AMI pin {parameter.rsplit('/', 2)[-2]}"
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except AWS_ERRORS as exc:
        if error_code(exc) in ("ParameterNotFound", "ParameterVersionNotFound"):
            return Check(name, FAIL, f"the pinned Karpenter AMI release does not exist for Kubernetes {version} in {region} "
                         f"({parameter}); the EC2NodeClass would never be ready ({', '.join(pools)})",
                         "pin a release published for this Kubernetes version (components/karpenter_manifests.py AMI_ALIASES)")
        return Check(name, WARN, f"not checked: {explain_error(exc, 'ssm:GetParameter')} ({parameter})")
    return Check(name, OK, f"{value} for Kubernetes {version} ({', '.join(pools)})")


def check_startup_models(s3: Any, bucket: str, deployments) -> list[Check]:
    """One check per deployment that names models to load at start (explicit mode): each must
    have objects under `<prefix>/<model>/` in the bucket, or tritonserver exits at start
    (`--exit-on-error` defaults to true) and `pulumi up` waits out the startup budget."""
    checks = []
    for index, deployment in enumerate(deployments):
        models = deployment.modelControl.startup_models
        if not models:
            continue
        name = f"models: {deployment.name}"
        where = f"s3://{bucket}/{deployment.modelPrefix}/"
        key = f"ai-platform:tritonDeployments[{index}].modelControl.loadModels"
        try:
            missing = [m for m in models if not s3.list_objects_v2(
                Bucket=bucket, Prefix=f"{deployment.modelPrefix}/{m}/", MaxKeys=1).get("KeyCount", 0)]
        except AWS_ERRORS as exc:
            if error_code(exc) == "NoSuchBucket":
                checks.append(Check(name, FAIL,
                                    f"bucket {bucket} does not exist yet, so {', '.join(models)} cannot be in {where}: "
                                    "Triton would exit at start and the first `pulumi up` would never finish",
                                    f'set {key} to ["*"] (load whatever the prefix holds) or [] for the first deploy, '
                                    "then `platformctl models push` and list the names again"))
            else:
                checks.append(Check(name, WARN, f"not checked: {explain_error(exc, 's3:ListBucket')} ({where})",
                                    f"make sure {', '.join(models)} are under {where} before `pulumi up`"))
            continue
        if missing:
            checks.append(Check(name, FAIL,
                                f"{', '.join(missing)} not under {where}: tritonserver exits at start on a missing "
                                "--load-model, so the Deployment never becomes ready",
                                f"push them first (`platformctl models push DIR --bucket {bucket} --prefix "
                                f'{deployment.modelPrefix}`), or drop them from {key} (["*"] loads what is there)'))
        else:
            checks.append(Check(name, OK, f"{', '.join(models)} present under {where}"))
    return checks


def check_build_sources(s3: Any, bucket: str, builds, project_dir: Path | None = None) -> list[Check]:
    """One check per TensorRT build: its source ONNX should be in the bucket before `pulumi up`;
    the Job's `fetch` waits SOURCE_WAIT_SECONDS for it, then fails, and `pulumi up` with it. No
    bucket yet (a new account): the first `pulumi up` creates it, the source follows (a warning)."""
    checks, wait = [], SOURCE_WAIT_SECONDS // 60
    for index, build in enumerate(builds):
        name, where = f"build source: {build.name}", f"s3://{bucket}/{build.source}"
        if build.source_file:
            local = Path(project_dir or stack_config.PROJECT_DIR) / build.source_file
            checks.append(_source_file_check(name, where, index, build.sourceFile, local))
            continue
        fix = (f"upload the ONNX first: `aws s3 cp model.onnx {where}` (e.g. the INT8 output of `platformctl models "
               f"optimize`), or remove ai-platform:modelBuilds[{index}]")
        try:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=build.source, MaxKeys=1).get("Contents", [])
        except AWS_ERRORS as exc:
            if error_code(exc) == "NoSuchBucket":
                checks.append(Check(name, WARN, f"bucket {bucket} does not exist yet: the first `pulumi up` creates "
                                                f"it, then its build Job waits {wait} min for {where}",
                                    f"once the bucket exists (during that `pulumi up`): `aws s3 cp model.onnx {where}`"))
            else:
                checks.append(Check(name, WARN, f"not checked: {explain_error(exc, 's3:ListBucket')} ({where})",
                                    f"make sure {where} exists before `pulumi up`"))
            continue
        if any(obj.get("Key") == build.source for obj in listed):
            checks.append(Check(name, OK, f"{where} present"))
        else:
            checks.append(Check(name, FAIL, f"{where} missing: the build Job waits {wait} min for it, then fails, and "
                                            "`pulumi up` with it", fix))
    return checks


def _source_file_check(name: str, where: str, index: int, given: str, local: Path) -> Check:
    """A build whose source the stack uploads (`sourceFile`): the local file must exist, else
    `pulumi preview`/`up` refuse to start (stack_config.refuse_missing_source_files)."""
    if local.is_file():
        return Check(name, OK, f"{given} ({local.stat().st_size / 1e6:.1f} MB): `pulumi up` uploads it to {where} before the build")
    return Check(name, FAIL, f"ai-platform:modelBuilds[{index}].sourceFile {given} does not exist: `pulumi preview` and "
                             f"`pulumi up` refuse to start without it (the stack uploads it to {where})",
                 producer_hint(given))


# --- the run ------------------------------------------------------------------------------

def retarget(config: StackConfig, region: str) -> StackConfig:
    """The stack as if deployed to `region`: zones keep their letters (us-west-2a -> eu-west-1a)."""
    if region == config.region:
        return config
    zones = [region + z[len(config.region):] for z in config.network.availabilityZones]
    network = config.network.model_copy(update={"availabilityZones": zones})
    return config.model_copy(update={"region": region, "network": network})


def _offline_checks(config: StackConfig, reason: str) -> list[Check]:
    """What can still be said without AWS: the vCPUs each quota must allow."""
    checks = []
    needs, _ = vcpu_needs(config, table_vcpus)
    for (bucket, capacity), need in sorted(needs.items()):
        if bucket == "Standard":
            continue  # system types are not in the local table; only GPU buckets can be sized offline
        quota = QUOTAS[(bucket, capacity)]
        checks.append(Check(
            f"quota {bucket} {'spot' if capacity == 'SPOT' else 'on-demand'}", WARN,
            f"needs {need.desired} vCPUs at desired, {need.max} at max; not checked: {reason}",
            f"make sure '{quota.name}' ({quota.code}) is >= {need.max} in {config.region}",
        ))
    checks.append(Check("zones, offerings, EKS, AMI", WARN, f"not checked: {reason}"))
    return checks


def check_api_access(config: StackConfig) -> Check:
    """Who can reach the Kubernetes API once the cluster exists: `pulumi up` creates everything on
    the cluster through it, so the deployer must be among them. A documentation placeholder in the
    access lists (the committed prod config ships one) fails here, as it does in `pulumi up`."""
    name, cluster = "API access", config.cluster
    placeholders = placeholder_cidrs(config)
    if placeholders:
        keys = ", ".join(f"ai-platform:{key} = {cidr}" for key, cidr in placeholders)
        return Check(name, FAIL, f"placeholder (RFC 5737 documentation range) still set: {keys}",
                     "replace it with the egress address(es) of whoever runs `pulumi up` (VPN, office, the "
                     "PROD_RUNNER's NAT); `pulumi up` refuses it too")
    ways = []
    if cluster.endpointPublicAccess:
        ways.append(f"public endpoint from {', '.join(cluster.publicAccessCidrs)}")
    private = [*cluster.apiAccessCidrs, *cluster.apiAccessSecurityGroupIds] if cluster.endpointPrivateAccess else []
    if private:
        ways.append(f"private endpoint (443) from {', '.join(private)}")
    return Check(name, OK, "; ".join(ways) + ": run `pulumi up` from one of these")


def _check_credentials(config: StackConfig, clients: AwsClients, report: Report) -> bool:
    """Whom the calls run as. False when AWS cannot be asked at all: the report then holds only
    what can be said offline (the vCPUs each quota must allow)."""
    try:
        identity = clients("sts").get_caller_identity()
    except AWS_ERRORS as exc:
        reason = explain_error(exc, "sts:GetCallerIdentity")
        report.offline = reason
        if isinstance(exc, UNREACHABLE):
            fix = "check network access to the AWS API, or the --endpoint-url / AWS_ENDPOINT_URL override"
        else:
            fix = "configure AWS credentials for the target account"
        report.add(Check("credentials", WARN, reason, fix))
        report.checks.extend(_offline_checks(config, reason))
        return False
    report.add(Check("credentials", OK, f"account {identity.get('Account')} ({identity.get('Arn')})"))
    return True


def _table_price_of(region: str) -> Callable[[str], float | None]:
    """Instance prices to rank alternatives by; without a table for the region, by size only."""
    try:
        return TablePrices(region).instance_hour
    except PricesUnavailable:
        return lambda _t: None


def check_system_offerings(system, zones: list[str], offered: dict[str, set[str]]) -> Check:
    """The system node group launches in a zone as long as one of its types is offered there."""
    missing = {t: [z for z in zones if z not in offered.get(t, set())] for t in system.instanceTypes}
    if not any(missing.values()):
        return Check("offerings: system", OK, f"{', '.join(system.instanceTypes)} offered in every zone")
    gaps = "; ".join(f"{t} not offered in {', '.join(z)}" for t, z in missing.items() if z)
    status = FAIL if all(missing.values()) else WARN
    return Check("offerings: system", status, gaps,
                 "ai-platform:cluster.systemNodeGroup.instanceTypes: add a type offered in every zone")


def _offering_checks(config: StackConfig, ec2: Any, report: Report, stack_types: list[str]) -> dict[str, set[str]] | None:
    """Zones, then every pool's and the system group's types in them; the offerings (None when
    EC2 would not list them)."""
    region, zones = config.region, list(config.network.availabilityZones)
    try:
        zone_check, region_zones = check_zones(ec2, region, zones)
        report.add(zone_check)
    except AWS_ERRORS as exc:
        report.add(Check("zones", WARN, f"not checked: {explain_error(exc, 'ec2:DescribeAvailabilityZones')}"))
        region_zones = list(zones)
    price_of = _table_price_of(region)
    try:
        offered = fetch_offerings(ec2, sorted(set(GPU_INSTANCE_TYPES) | set(stack_types)))
    except AWS_ERRORS as exc:
        report.add(Check("offerings", WARN, f"not checked: {explain_error(exc, 'ec2:DescribeInstanceTypeOfferings')}"))
        return None
    for index, pool in enumerate(config.gpuNodeGroups):
        report.add(check_pool_offerings(pool, index, region, zones, region_zones, offered, price_of))
    report.add(check_system_offerings(config.cluster.systemNodeGroup, zones, offered))
    return offered


def _quota_checks(config: StackConfig, clients: AwsClients, ec2: Any, report: Report,
                  stack_types: list[str], offered: dict[str, set[str]] | None) -> None:
    """The instance types as EC2 describes them, then the vCPU quotas they need (EC2's vCPU
    counts where it answered, the local table's otherwise)."""
    facts: dict[str, tuple[int, int, str]] = {}
    try:
        known_here = [t for t in stack_types if offered is None or offered.get(t)]
        facts = fetch_facts(ec2, known_here)
        report.add(check_facts(facts, [t for t in stack_types if t in GPU_INSTANCE_TYPES]))
    except AWS_ERRORS as exc:
        report.add(Check("instance types", WARN,
                         f"not checked ({explain_error(exc, 'ec2:DescribeInstanceTypes')}); quota figures use the local table"))

    def vcpus_of(instance_type: str) -> int | None:
        return facts[instance_type][0] if instance_type in facts else table_vcpus(instance_type)

    needs, unknown = vcpu_needs(config, vcpus_of)
    quotas = clients("service-quotas")
    for key in QUOTAS:  # fixed order: G, P, Standard; on-demand before spot
        if key in needs and needs[key].max > 0:
            report.add(check_quota(quotas, config.region, key[0], key[1], needs[key]))
    if unknown:
        report.add(Check("quota (other)", WARN,
                         f"no vCPU quota bucket known for {', '.join(sorted(set(unknown)))}; not checked"))


def _version_checks(config: StackConfig, clients: AwsClients, report: Report) -> None:
    """EKS offers the Kubernetes version, and each GPU AMI type is published for it."""
    region, version = config.region, config.cluster.kubernetesVersion
    eks_check, report.extended_support = check_eks_version(clients("eks"), region, version)
    report.add(eks_check)
    ssm = clients("ssm")
    ami_pools: dict[str, list[str]] = {}
    for pool in config.gpuNodeGroups:
        ami_pools.setdefault(pool.amiType, []).append(pool.name)
    for ami_type, pools in ami_pools.items():
        report.add(check_ami(ssm, region, version, ami_type, pools))
        pinned = pinned_ami_parameter(version, ami_type) if config.gpuProvisioner == "karpenter" else None
        if pinned:
            report.add(check_pinned_ami(ssm, region, version, pinned, pools))


def run_checks(config: StackConfig, clients: AwsClients, stack: str | None = None, project_dir: Path | None = None) -> Report:
    """Every check; the model-bucket check needs the stack name (the default bucket name holds it),
    the build-source check the project directory (where `sourceFile`s are; default the checkout's)."""
    report = Report()
    report.add(check_api_access(config))
    if not _check_credentials(config, clients, report):
        return report
    ec2 = clients("ec2")
    stack_types = sorted({t for g in node_groups(config) for t in g.instance_types})
    offered = _offering_checks(config, ec2, report, stack_types)
    _quota_checks(config, clients, ec2, report, stack_types, offered)
    _version_checks(config, clients, report)
    if stack and any(d.modelControl.startup_models for d in config.tritonDeployments):
        bucket = config.modelRepository.bucket_name(stack, config.region)
        report.checks.extend(check_startup_models(clients("s3"), bucket, config.tritonDeployments))
    if stack and config.modelBuilds:
        bucket = config.modelRepository.bucket_name(stack, config.region)
        report.checks.extend(check_build_sources(clients("s3"), bucket, config.modelBuilds, project_dir))
    return report


STATUS_STYLE = {OK: "green", WARN: "yellow", FAIL: "bold red"}


def render(report: Report, console: Console, stack: str, region: str) -> None:
    table = Table(title=f"Preflight: stack {stack} in {region}", title_justify="left")
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Detail", overflow="fold")
    table.add_column("Fix", overflow="fold")
    for check in report.checks:
        # Text, not str: details hold key paths like gpuNodeGroups[0] that rich would read as markup.
        table.add_row(Text(check.name), Text(check.status, style=STATUS_STYLE[check.status]),
                      Text(check.detail), Text(check.fix))
    console.print(table)
    console.print(f"preflight: {report.count(OK)} ok, {report.count(WARN)} warn, {report.count(FAIL)} fail", markup=False)


def preflight(
    stack: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    live_prices: bool = False,
    spot_discount: float = cost.DEFAULT_SPOT_DISCOUNT,
    strict: bool = False,
    console: Console | None = None,
    err_console: Console | None = None,
    clients: AwsClients | None = None,
    project_dir=stack_config.PROJECT_DIR,
) -> int:
    console = console or Console()
    err_console = err_console or Console(stderr=True)
    try:
        config = stack_config.load_from_files(stack, project_dir)
    except ConfigError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    target = region or config.region
    if not re.fullmatch(REGION, target):
        err_console.print(f"error: --region: not an AWS region name: {target!r}", markup=False)
        return 2
    if target != config.region:
        console.print(f"Region override: stack {stack} is configured for {config.region}; checking {target} "
                      "with the same zone letters.", markup=False)
    config = retarget(config, target)
    clients = clients or AwsClients(target, endpoint_url)

    report = run_checks(config, clients, stack, Path(project_dir))
    render(report, console, stack, target)

    prices = None
    if live_prices and report.offline:
        console.print(f"Live prices skipped ({report.offline}); using the price table.", markup=False)
    elif live_prices:
        try:
            prices = LivePrices(target, clients("pricing"))
        except PricesUnavailable as exc:
            console.print(f"Cost estimate: not available: {exc}", markup=False)
    console.print()
    cost.estimate_or_note(config, console, prices=prices, spot_discount=spot_discount,
                          extended_support=report.extended_support,
                          plan_facts=_plan_facts(stack, project_dir, err_console))

    if report.count(FAIL) or (strict and report.count(WARN)):
        return 1
    return 0


def _plan_facts(stack: str, project_dir, err_console: Console):
    """What the offline plan counts (persistent volumes, load balancers, KMS keys, databases), so
    preflight prices the same line items as `platformctl plan`; None (config-only estimate) when
    the program cannot be run here."""
    import pulumi

    from platformctl.mockrun import run_stack

    try:
        run = run_stack(stack, stack_file=Path(project_dir) / f"Pulumi.{stack}.yaml")
    except (ConfigError, pulumi.RunError) as exc:
        err_console.print(f"note: cost estimate from the config alone (the offline plan failed: {exc})", markup=False)
        return None
    return cost.facts_from_plan(run.to_json())


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), e.g. 0.6 for 60% off (got {text})")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="check GPU quotas, zone offerings, EKS version and AMI in AWS; print the cost estimate",
        description=(__doc__ or "").split("\n\n", 1)[0],
    )
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml), e.g. dev or prod")
    parser.add_argument("--region", help="region to check (default: the stack's aws:region)")
    parser.add_argument("--endpoint-url", help="AWS endpoint override (default: AWS_ENDPOINT_URL if set)")
    parser.add_argument("--live-prices", action="store_true", help="price instance types with the AWS Pricing API")
    parser.add_argument("--spot-discount", type=_fraction, default=cost.DEFAULT_SPOT_DISCOUNT,
                        help=f"assumed discount of spot below on-demand (default {cost.DEFAULT_SPOT_DISCOUNT})")
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too (for CI)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return preflight(
        args.stack,
        region=args.region,
        endpoint_url=args.endpoint_url,
        live_prices=args.live_prices,
        spot_discount=args.spot_discount,
        strict=args.strict,
    )

