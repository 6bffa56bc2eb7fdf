"""Test-side schema of the Karpenter v1 API objects the platform writes: NodePool
(`karpenter.sh/v1`) and EC2NodeClass (`karpenter.k8s.aws/v1`).

Transcribed field by field from the CRDs of aws/karpenter-provider-aws at tag v1.14.0 (the
release the `oci://public.ecr.aws/karpenter/karpenter` chart 1.14.0 is packaged from, by
hack/release/common.sh):
  - pkg/apis/crds/karpenter.sh_nodepools.yaml
  - pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml
Every OpenAPI constraint of a modelled field is here (types, enums, `pattern`, min/max, maxItems,
required) and so is every CEL rule (`x-kubernetes-validations`) on it, as a validator quoting the
rule's message. OpenAPI `pattern`s are unanchored (ECMA-262 search), so they are searched here too
(`ami-[0-9a-z]+` matches anywhere, as the API server does); CEL `matches()` is too.

This is the checker, not the builder: components/karpenter_manifests.py must not import it.
Each model forbids unknown fields, so a typo or a v1beta1-era field fails. Fields of the CRDs the
platform does not write are left out on purpose and are therefore rejected as unknown:
NodePool `spec.replicas` is modelled (static pools), `status` is not; EC2NodeClass
capacityReservationSelectorTerms, connectionTracking, cpuOptions, networkInterfaces and
placementGroupSelector are not. `metadata` is free-form in the CRDs (`type: object`); only
name, labels and annotations are allowed here. Defaults the API server applies are not filled in
(a missing field stays missing), so a test can tell "set by us" from "defaulted".
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# --- shared pieces ----------------------------------------------------------------------------


def _search(regex: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if compiled.search(value) is None:
            raise ValueError(f"{value!r} does not match the CRD pattern {regex}")
        return value
    return AfterValidator(check)


def _non_empty(message: str):
    def check(value: str) -> str:
        if value == "":
            raise ValueError(message)
        return value
    return AfterValidator(check)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
# NodeClaimTemplateSpec.expireAfter and Disruption.consolidateAfter
DURATION_OR_NEVER = r"^(([0-9]+(s|m|h))+|Never)$"
# NodeClaimTemplateSpec.terminationGracePeriod
DURATION = r"^([0-9]+(s|m|h))+$"

Quantity = Union[int, Annotated[str, _search(QUANTITY)]]
LabelValue = Annotated[str, Field(max_length=63), _search(LABEL_VALUE)]

# The label keys a NodePool may set or require in Karpenter's own domains (CEL rules on
# template.metadata.labels and requirements[].key).
KARPENTER_SH_ALLOWED = ("karpenter.sh/capacity-type", "karpenter.sh/nodepool")
KARPENTER_K8S_AWS_ALLOWED = (
    "karpenter.k8s.aws/instance-tenancy", "karpenter.k8s.aws/capacity-reservation-type",
    "karpenter.k8s.aws/capacity-reservation-id", "karpenter.k8s.aws/capacity-reservation-interruptible",
    "karpenter.k8s.aws/ec2nodeclass", "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-category", "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-family", "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-local-nvme", "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu", "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz", "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-ebs-bandwidth", "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-name", "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-count", "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name", "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count", "karpenter.k8s.aws/instance-capability-flex",
    "karpenter.k8s.aws/placement-group-id", "karpenter.k8s.aws/placement-group-partition",
)


def label_key_problem(key: str) -> Optional[str]:
    """The four CEL rules shared by template.metadata.labels keys and requirements[].key."""
    domain = key.split("/", 1)[0]  # CEL: x.find("^([^/]+)")
    if key not in KARPENTER_SH_ALLOWED and domain.endswith("karpenter.sh"):
        return 'label domain "karpenter.sh" is restricted'
    if key == "karpenter.sh/nodepool":
        return 'label "karpenter.sh/nodepool" is restricted'
    if key == "kubernetes.io/hostname":
        return 'label "kubernetes.io/hostname" is restricted'
    if key not in KARPENTER_K8S_AWS_ALLOWED and domain.endswith("karpenter.k8s.aws"):
        return 'label domain "karpenter.k8s.aws" is restricted'
    return None


class ObjectMeta(Strict):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None


# --- NodePool (karpenter.sh_nodepools.yaml) ---------------------------------------------------

class TemplateMetadata(Strict):
    annotations: Optional[dict[str, str]] = None
    labels: Optional[Annotated[dict[str, LabelValue], Field(max_length=100)]] = None

    @model_validator(mode="after")
    def _label_keys(self):
        for key in self.labels or {}:
            problem = label_key_problem(key)
            if problem:
                raise ValueError(f"{key}: {problem}")
        return self


class NodeSelectorRequirement(Strict):
    key: Annotated[str, Field(max_length=316), _search(QUALIFIED_NAME)]
    operator: Literal["Gte", "Lte", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: Optional[list[LabelValue]] = None
    minValues: Optional[Annotated[int, Field(ge=1, le=50)]] = None

    @model_validator(mode="after")
    def _key(self):
        problem = label_key_problem(self.key)
        if problem:
            raise ValueError(f"{self.key}: {problem}")
        return self


def _requirements_rules(requirements: list[NodeSelectorRequirement]) -> list[NodeSelectorRequirement]:
    for req in requirements:
        values = req.values or []
        if req.operator == "In" and not values:
            raise ValueError("requirements with operator 'In' must have a value defined")
        if req.operator in ("Gt", "Lt", "Gte", "Lte") and not (len(values) == 1 and values[0].isdigit()):
            raise ValueError("requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value")
        if req.operator == "In" and req.minValues is not None and len(values) < req.minValues:
            raise ValueError("requirements with 'minValues' must have at least that many values specified in the 'values' field")
    return requirements


class Taint(Strict):
    key: Annotated[str, Field(min_length=1), _search(QUALIFIED_NAME)]
    value: Optional[Annotated[str, _search(QUALIFIED_NAME)]] = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    timeAdded: Optional[str] = None


class NodeClassReference(Strict):
    group: Annotated[str, _search(r"^[^/]*$"), _non_empty("group may not be empty")]
    kind: Annotated[str, _non_empty("kind may not be empty")]
    name: Annotated[str, _non_empty("name may not be empty")]


class NodeClaimTemplateSpec(Strict):
    nodeClassRef: NodeClassReference
    requirements: Annotated[list[NodeSelectorRequirement], Field(max_length=100), AfterValidator(_requirements_rules)]
    taints: Optional[list[Taint]] = None
    startupTaints: Optional[list[Taint]] = None
    expireAfter: Optional[Annotated[str, _search(DURATION_OR_NEVER)]] = None  # default 720h
    terminationGracePeriod: Optional[Annotated[str, _search(DURATION)]] = None


class NodeClaimTemplate(Strict):
    metadata: Optional[TemplateMetadata] = None
    spec: NodeClaimTemplateSpec


class Budget(Strict):
    nodes: Annotated[str, _search(r"^((100|[0-9]{1,2})%|[0-9]+)$")]  # default 10%, but required
    reasons: Optional[Annotated[list[Literal["Underutilized", "Empty", "Drifted"]], Field(max_length=50)]] = None
    schedule: Optional[Annotated[str, _search(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$")]] = None
    duration: Optional[Annotated[str, _search(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")]] = None

    @model_validator(mode="after")
    def _reasons_set(self):
        if self.reasons is not None and len(set(self.reasons)) != len(self.reasons):
            raise ValueError("reasons is a set (x-kubernetes-list-type: set): duplicate entry")
        return self


def _budgets_rules(budgets: list[Budget]) -> list[Budget]:
    if not all((b.schedule is None) == (b.duration is None) for b in budgets):
        raise ValueError("'schedule' must be set with 'duration'")
    return budgets


class Disruption(Strict):
    # Required inside `disruption` (the CRD's default for the whole block is {consolidateAfter: 0s}).
    consolidateAfter: Annotated[str, _search(DURATION_OR_NEVER)]
    consolidationPolicy: Optional[Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"]] = None
    budgets: Optional[Annotated[list[Budget], Field(max_length=50), AfterValidator(_budgets_rules)]] = None


class NodePoolSpec(Strict):
    template: NodeClaimTemplate
    disruption: Optional[Disruption] = None
    limits: Optional[dict[str, Quantity]] = None
    weight: Optional[Annotated[int, Field(ge=1, le=100)]] = None
    replicas: Optional[Annotated[int, Field(ge=0)]] = None

    @model_validator(mode="after")
    def _static_rules(self):
        if self.replicas is not None and self.limits and set(self.limits) != {"nodes"}:
            raise ValueError("only 'limits.nodes' is supported on static NodePools")
        if self.replicas is not None and self.weight is not None:
            raise ValueError("'weight' is not supported on static NodePools")
        return self


class NodePool(Strict):
    apiVersion: Literal["karpenter.sh/v1"]
    kind: Literal["NodePool"]
    metadata: ObjectMeta
    spec: NodePoolSpec


# --- EC2NodeClass (karpenter.k8s.aws_ec2nodeclasses.yaml) --------------------------------------

ALIAS_FAMILIES = ("al2", "al2023", "bottlerocket", "windows2019", "windows2022", "windows2025")
WINDOWS_FAMILIES = ("windows2019", "windows2022", "windows2025")
# amiFamily each alias family requires when amiFamily is set (besides 'Custom')
ALIAS_AMI_FAMILY = {"al2": "AL2", "al2023": "AL2023", "bottlerocket": "Bottlerocket", "windows2019": "Windows2019",
                    "windows2022": "Windows2022", "windows2025": "Windows2025"}


def _alias(value: str) -> str:
    if re.search(r"^[a-zA-Z0-9]+@.+$", value) is None:
        raise ValueError("'alias' is improperly formatted, must match the format 'family@version'")
    family, version = value.split("@")[0], value.split("@")[1]
    if family not in ALIAS_FAMILIES:
        raise ValueError("family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', "
                         "'windows2019', 'windows2022', 'windows2025'")
    if family in WINDOWS_FAMILIES and version != "latest":
        raise ValueError("windows families may only specify version 'latest'")
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    if not all(k != "" and v != "" for k, v in value.items()):
        raise ValueError("empty tag keys or values aren't supported")
    return value


SelectorTags = Annotated[dict[str, str], AfterValidator(_tags)]


class AMISelectorTerm(Strict):
    alias: Optional[Annotated[str, Field(max_length=30), AfterValidator(_alias)]] = None
    id: Optional[Annotated[str, _search(r"ami-[0-9a-z]+")]] = None
    name: Optional[str] = None
    owner: Optional[str] = None
    ssmParameter: Optional[str] = None
    tags: Optional[SelectorTags] = None


def _ami_terms_rules(terms: list[AMISelectorTerm]) -> list[AMISelectorTerm]:
    fields = [{k for k, v in t if v is not None} for t in terms]
    if not all(f & {"tags", "id", "name", "alias", "ssmParameter"} for f in fields):
        raise ValueError("expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']")
    if any("id" in f and f & {"alias", "tags", "name", "owner"} for f in fields):
        raise ValueError("'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms")
    if any("alias" in f and f & {"id", "tags", "name", "owner"} for f in fields):
        raise ValueError("'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms")
    if any("alias" in f for f in fields) and len(terms) != 1:
        raise ValueError("'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms")
    return terms


class SubnetSelectorTerm(Strict):
    id: Optional[Annotated[str, _search(r"subnet-[0-9a-z]+")]] = None
    tags: Optional[SelectorTags] = None


def _subnet_terms_rules(terms: list[SubnetSelectorTerm]) -> list[SubnetSelectorTerm]:
    if len(terms) == 0:
        raise ValueError("subnetSelectorTerms cannot be empty")
    if not all(t.tags is not None or t.id is not None for t in terms):
        raise ValueError("expected at least one, got none, ['tags', 'id']")
    # Upstream rule is `!self.all(...)` (not `exists`): transcribed as written.
    if all(t.id is not None and t.tags is not None for t in terms):
        raise ValueError("'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term")
    return terms


class SecurityGroupSelectorTerm(Strict):
    id: Optional[Annotated[str, _search(r"sg-[0-9a-z]+")]] = None
    name: Optional[str] = None
    tags: Optional[SelectorTags] = None


def _sg_terms_rules(terms: list[SecurityGroupSelectorTerm]) -> list[SecurityGroupSelectorTerm]:
    if len(terms) == 0:
        raise ValueError("securityGroupSelectorTerms cannot be empty")
    if not all(t.tags is not None or t.id is not None or t.name is not None for t in terms):
        raise ValueError("expected at least one, got none, ['tags', 'id', 'name']")
    if all(t.id is not None and (t.tags is not None or t.name is not None) for t in terms):
        raise ValueError("'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term")
    if all(t.name is not None and (t.tags is not None or t.id is not None) for t in terms):
        raise ValueError("'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term")
    return terms


VOLUME_SIZE = (r"^((?:[1-9][0-9]{0,3}|[1-4][0-9]{4}|[5][0-8][0-9]{3}|59000)Gi|(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|[6][0-3][0-9]{3}|64000)G"
               r"|([1-9]||[1-5][0-7]|58)Ti|([1-9]||[1-5][0-9]|6[0-3]|64)T)$")


class BlockDevice(Strict):
    deleteOnTermination: Optional[bool] = None
    encrypted: Optional[bool] = None
    iops: Optional[int] = None
    kmsKeyID: Optional[str] = None
    snapshotID: Optional[str] = None
    throughput: Optional[int] = None
    volumeInitializationRate: Optional[Annotated[int, Field(ge=100, le=300)]] = None
    volumeSize: Optional[Annotated[str, _search(VOLUME_SIZE)]] = None
    volumeType: Optional[Literal["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"]] = None

    @model_validator(mode="after")
    def _rules(self):
        if self.snapshotID is None and self.volumeSize is None:
            raise ValueError("snapshotID or volumeSize must be defined")
        if self.volumeInitializationRate is not None and not self.snapshotID:
            raise ValueError("snapshotID must be set when volumeInitializationRate is set")
        return self


class BlockDeviceMapping(Strict):
    deviceName: Optional[str] = None
    ebs: Optional[BlockDevice] = None
    rootVolume: Optional[bool] = None


def _bdm_rules(mappings: list[BlockDeviceMapping]) -> list[BlockDeviceMapping]:
    if sum(1 for m in mappings if m.rootVolume) > 1:
        raise ValueError("must have only one blockDeviceMappings with rootVolume")
    return mappings


class MetadataOptions(Strict):
    # CRD defaults (applied by the API server, not here): enabled, disabled, 1, required.
    httpEndpoint: Optional[Literal["enabled", "disabled"]] = None
    httpProtocolIPv6: Optional[Literal["enabled", "disabled"]] = None
    httpPutResponseHopLimit: Optional[Annotated[int, Field(ge=1, le=64)]] = None
    httpTokens: Optional[Literal["required", "optional"]] = None


EVICTION_SIGNALS = ("memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available",
                    "imagefs.inodesFree", "pid.available")
RESERVED_KEYS = ("cpu", "memory", "ephemeral-storage", "pid")
EVICTION_QUANTITY = (r"^((\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)%||(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                     r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?)$")


def _keys_in(allowed: tuple[str, ...], name: str):
    def check(value: dict[str, str]) -> dict[str, str]:
        if not all(k in allowed for k in value):
            raise ValueError(f"valid keys for {name} are {list(allowed)}")
        return value
    return AfterValidator(check)


def _not_negative(name: str):
    def check(value: dict[str, str]) -> dict[str, str]:
        if any(v.startswith("-") for v in value.values()):
            raise ValueError(f"{name} value cannot be a negative resource quantity")
        return value
    return AfterValidator(check)


EvictionMap = dict[str, Annotated[str, _search(EVICTION_QUANTITY)]]
ReservedMap = dict[str, Annotated[str, _search(QUANTITY)]]


class KubeletConfiguration(Strict):
    clusterDNS: Optional[list[str]] = None
    cpuCFSQuota: Optional[bool] = None
    evictionHard: Optional[Annotated[EvictionMap, _keys_in(EVICTION_SIGNALS, "evictionHard")]] = None
    evictionMaxPodGracePeriod: Optional[int] = None
    evictionSoft: Optional[Annotated[EvictionMap, _keys_in(EVICTION_SIGNALS, "evictionSoft")]] = None
    evictionSoftGracePeriod: Optional[Annotated[dict[str, str], _keys_in(EVICTION_SIGNALS, "evictionSoftGracePeriod")]] = None
    imageGCHighThresholdPercent: Optional[Annotated[int, Field(ge=0, le=100)]] = None
    imageGCLowThresholdPercent: Optional[Annotated[int, Field(ge=0, le=100)]] = None
    kubeReserved: Optional[Annotated[ReservedMap, _keys_in(RESERVED_KEYS, "kubeReserved"), _not_negative("kubeReserved")]] = None
    maxPods: Optional[Annotated[int, Field(ge=0)]] = None
    podsPerCore: Optional[Annotated[int, Field(ge=0)]] = None
    systemReserved: Optional[Annotated[ReservedMap, _keys_in(RESERVED_KEYS, "systemReserved"), _not_negative("systemReserved")]] = None

    @model_validator(mode="after")
    def _rules(self):
        high, low = self.imageGCHighThresholdPercent, self.imageGCLowThresholdPercent
        if high is not None and low is not None and not high > low:
            raise ValueError("imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent")
        soft, grace = self.evictionSoft, self.evictionSoftGracePeriod
        if soft is not None and not all(k in (grace or {}) for k in soft):
            raise ValueError("evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod")
        if grace is not None and not all(k in (soft or {}) for k in grace):
            raise ValueError("evictionSoftGracePeriod OwnerKey does not have a matching evictionSoft")
        return self


def _node_class_tags(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if key == "":
            raise ValueError("empty tag keys aren't supported")
        if key == "eks:eks-cluster-name":
            raise ValueError("tag contains a restricted tag matching eks:eks-cluster-name")
        if key.startswith("kubernetes.io/cluster"):
            raise ValueError("tag contains a restricted tag matching kubernetes.io/cluster/")
        if key in ("karpenter.sh/nodepool", "karpenter.sh/nodeclaim", "karpenter.k8s.aws/ec2nodeclass"):
            raise ValueError(f"tag contains a restricted tag matching {key}")
    return value


class EC2NodeClassSpec(Strict):
    amiFamily: Optional[Literal["AL2", "AL2023", "Bottlerocket", "Custom", "Windows2019", "Windows2022", "Windows2025"]] = None
    amiSelectorTerms: Annotated[list[AMISelectorTerm], Field(min_length=1, max_length=30), AfterValidator(_ami_terms_rules)]
    subnetSelectorTerms: Annotated[list[SubnetSelectorTerm], Field(max_length=30), AfterValidator(_subnet_terms_rules)]
    securityGroupSelectorTerms: Annotated[list[SecurityGroupSelectorTerm], Field(max_length=30), AfterValidator(_sg_terms_rules)]
    role: Optional[Annotated[str, _non_empty("role cannot be empty")]] = None
    instanceProfile: Optional[Annotated[str, _non_empty("instanceProfile cannot be empty")]] = None
    associatePublicIPAddress: Optional[bool] = None
    blockDeviceMappings: Optional[Annotated[list[BlockDeviceMapping], Field(max_length=50), AfterValidator(_bdm_rules)]] = None
    context: Optional[str] = None
    detailedMonitoring: Optional[bool] = None
    instanceStorePolicy: Optional[Literal["RAID0"]] = None
    ipPrefixCount: Optional[Annotated[int, Field(ge=0)]] = None
    kubelet: Optional[KubeletConfiguration] = None
    metadataOptions: Optional[MetadataOptions] = None
    tags: Optional[Annotated[dict[str, str], AfterValidator(_node_class_tags)]] = None
    userData: Optional[str] = None

    @model_validator(mode="after")
    def _rules(self):
        if (self.role is None) == (self.instanceProfile is None):
            raise ValueError("must specify exactly one of ['role', 'instanceProfile']")
        aliases = [t.alias for t in self.amiSelectorTerms if t.alias is not None]
        for alias in aliases:
            wanted = ALIAS_AMI_FAMILY[alias.split("@")[0]]
            if self.amiFamily is not None and self.amiFamily not in ("Custom", wanted):
                raise ValueError(f"if set, amiFamily must be '{wanted}' or 'Custom' when using an {wanted} alias")
        if not aliases and self.amiFamily is None:
            raise ValueError("must specify amiFamily if amiSelectorTerms does not contain an alias")
        return self


class EC2NodeClass(Strict):
    apiVersion: Literal["karpenter.k8s.aws/v1"]
    kind: Literal["EC2NodeClass"]
    metadata: ObjectMeta
    spec: EC2NodeClassSpec
