"""The platform's policies as pure functions over engine-level (camelCase) resource inputs.

Every policy is evaluated the same way by two callers:

- the CrossGuard pack (`policy/__main__.py`, through `pulumi_policies()`), inside `pulumi preview/up`;
- `python -m platformctl policy check PLAN_JSON`, over the resources of an offline `plan.json`.

A resource policy is `check(resource_type, props, settings) -> list[Violation]`; a stack policy is
`check(resources, settings) -> list[Violation]`. `props` are plain dicts/lists. A value that is not
known yet is the string "<computed>" (a secret is "[secret]"): the policies report such a value as
"not evaluated" instead of guessing, because a guess either blocks a good deployment or lets a bad
one through. Missing values mean "not set" and are judged by their Kubernetes/AWS default.

Settings are pydantic models, one per configurable policy. Their JSON schema is the pack's config
schema, and `load_config()` reads the same `policy/config.<stack>.json` file the Pulumi CLI takes
with `--policy-pack-config`, so both callers agree on every cap.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stack_config.gpu_instances import GPU_INSTANCE_TYPES
from stack_config.base import OFFLINE_SECRET_PLACEHOLDER as SECRET

UNKNOWN = "<computed>"  # platformctl.mockrun.COMPUTED: the pack does not depend on the CLI

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
# The platform taints every GPU pool with nvidia.com/gpu=true:NoSchedule and labels it with its
# pool name; workloads select a pool with one of POOL_SELECTOR_KEYS.
GPU_TAINT = (GPU_RESOURCE, "true", "NoSchedule")
POOL_LABEL = "ai-platform/gpu-pool"
POOL_SELECTOR_KEYS = (POOL_LABEL, "eks.amazonaws.com/nodegroup")
GPU_FAMILIES = frozenset(t.family for t in GPU_INSTANCE_TYPES.values())

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
# Karpenter NodePools (gpuProvisioner karpenter) are judged like node groups, through node_pool_props.
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
GPU_POOL_TYPES = frozenset({NODE_GROUP, NODE_POOL})
KARPENTER_CAPACITY = {"spot": "SPOT", "on-demand": "ON_DEMAND", "reserved": "RESERVED"}
# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_TYPES = frozenset(POD_SPEC_PATHS)
BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE_TYPES = frozenset({
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
})
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}

Level = Literal["advisory", "mandatory", "remediate", "disabled"]
LEVELS: tuple[str, ...] = ("advisory", "mandatory", "remediate", "disabled")


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Violation:
    """One finding. `evaluated=False` is a "not evaluated" note (a value unknown until deploy)."""

    message: str
    urn: Optional[str] = None  # stack policies name the offending resource; resource policies don't need to
    evaluated: bool = True


def not_evaluated(what: str, urn: Optional[str] = None) -> Violation:
    return Violation(f"not evaluated: {what} is not known until deployment", urn, evaluated=False)


class _Unknown(Exception):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in (UNKNOWN, SECRET)


def _get(obj: Any, *path: Any, default: Any = None, where: str = "") -> Any:
    """Walk `path`; a missing step gives `default`, an unknown step raises _Unknown(dotted path)."""
    done = where
    for step in path:
        if is_unknown(obj):
            raise _Unknown(done or "the value")
        if isinstance(step, int):
            if not isinstance(obj, (list, tuple)) or step >= len(obj):
                return default
            obj = obj[step]
            done += f"[{step}]"
        else:
            if not isinstance(obj, Mapping) or step not in obj or obj[step] is None:
                return default
            obj = obj[step]
            done = f"{done}.{step}" if done else str(step)
    if is_unknown(obj):
        raise _Unknown(done or "the value")
    return obj


def _list(obj: Any, *path: Any, where: str = "") -> list:
    value = _get(obj, *path, default=[], where=where)
    return list(value) if isinstance(value, (list, tuple)) else []


# --- Kubernetes pod specs --------------------------------------------------------------------

@dataclass(frozen=True)
class Container:
    name: str
    kind: str  # "container" | "initContainer"
    raw: Mapping[str, Any]
    path: str

    @property
    def label(self) -> str:
        return f"{'init container' if self.kind == 'initContainer' else 'container'} '{self.name}'"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Any:
    """The pod spec of a workload (None when the kind has none); raises _Unknown if unknown."""
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return None
    return _get(props, *path, default={})


def containers(spec: Mapping[str, Any]) -> list[Container]:
    found = []
    for kind, key in (("initContainer", "initContainers"), ("container", "containers")):
        for index, raw in enumerate(_list(spec, key, where="podSpec")):
            if not isinstance(raw, Mapping):
                raise _Unknown(f"podSpec.{key}[{index}]")
            name = raw.get("name")
            name = name if isinstance(name, str) and not is_unknown(name) else f"#{index}"
            found.append(Container(name, kind, raw, f"{key}[{index}]"))
    return found


def _gpu_quantity(container: Container, section: str) -> Any:
    """The raw nvidia.com/gpu quantity in requests/limits (None when absent; UNKNOWN when unknown)."""
    try:
        return _get(container.raw, "resources", section, GPU_RESOURCE)
    except _Unknown:
        return UNKNOWN


def _num(value: Any) -> str:
    """Engine numbers arrive as floats (3.0); show them as people wrote them."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _whole(value: Any) -> Optional[int]:
    """A Kubernetes quantity as a whole number of devices, or None if it is not one ("0.5", "500m")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def uses_gpu(container: Container) -> bool:
    """True when the container mentions nvidia.com/gpu, or a MIG slice (nvidia.com/mig-<profile>,
    advertised by mixed-strategy MIG pools), with a non-zero (or unknown) quantity."""
    for section in ("requests", "limits"):
        value = _gpu_quantity(container, section)
        if value is not None and (is_unknown(value) or _whole(value) != 0):
            return True
        try:
            quantities = _get(container.raw, "resources", section)
        except _Unknown:
            continue
        if isinstance(quantities, Mapping) and any(
                name.startswith(MIG_RESOURCE_PREFIX) and (is_unknown(v) or _whole(v) != 0)
                for name, v in quantities.items()):
            return True
    return False


def pod_gpus(spec: Mapping[str, Any]) -> Optional[int]:
    """GPUs the scheduler reserves for the pod: max(sum of containers, largest init container).

    None when any quantity is unknown or not a whole number (the caller reports that)."""
    total, init_max = 0, 0
    for c in containers(spec):
        values = [_gpu_quantity(c, s) for s in ("limits", "requests")]
        if any(is_unknown(v) for v in values):
            return None
        numbers = [_whole(v) for v in values if v is not None]
        if any(n is None for n in numbers):
            return None
        count = max(numbers, default=0)
        if c.kind == "initContainer":
            init_max = max(init_max, count)
        else:
            total += count
    return max(total, init_max)


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != key:
            return False
        return self.operator == "Exists" or self.value == value

    def describe(self) -> str:
        if not self.key and self.operator == "Exists":
            return "{operator: Exists} (tolerates every taint)"
        parts = [f"key: {self.key}", f"operator: {self.operator}"]
        if self.operator != "Exists":
            parts.append(f"value: {self.value!r}")
        parts.append(f"effect: {self.effect or '<any>'}")
        return "{" + ", ".join(parts) + "}"


def tolerations(spec: Mapping[str, Any]) -> list[Toleration]:
    found = []
    for index, raw in enumerate(_list(spec, "tolerations", where="podSpec")):
        where = f"podSpec.tolerations[{index}]"
        key = _get(raw, "key", default="", where=where)
        operator = _get(raw, "operator", default="Equal", where=where)
        value = _get(raw, "value", default="", where=where)
        effect = _get(raw, "effect", default="", where=where)
        found.append(Toleration(str(key), str(operator), str(value), str(effect)))
    return found


def _tolerates(tols: Iterable[Toleration], key: str, value: str, effect: str) -> bool:
    return any(t.tolerates(key, value, effect) for t in tols)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator in ("Gt", "Lt") and present:
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except (ValueError, IndexError):
                return False
            return have > want if self.operator == "Gt" else have < want
        return False

    def describe(self) -> str:
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        return f"{self.key} {self.operator} {list(self.values)}" if self.values else f"{self.key} {self.operator}"


def node_requirements(spec: Mapping[str, Any]) -> list[list[Requirement]]:
    """Alternatives (ORed) of requirement lists (ANDed) a node must meet: nodeSelector AND one
    required node-affinity term. `[[]]` means "any node"."""
    base = []
    selector = _get(spec, "nodeSelector", default={}, where="podSpec")
    for key in selector:
        value = _get(selector, key, default="", where="podSpec.nodeSelector")
        base.append(Requirement(str(key), "In", (str(value),)))
    terms = _list(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                  "nodeSelectorTerms", where="podSpec")
    if not terms:
        return [base]
    alternatives = []
    for t_index, term in enumerate(terms):
        where = f"podSpec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{t_index}]"
        reqs = list(base)
        for e_index, expr in enumerate(_list(term, "matchExpressions", where=where)):
            w = f"{where}.matchExpressions[{e_index}]"
            values = tuple(str(v) for v in _list(expr, "values", where=w))
            if any(is_unknown(v) for v in values):
                raise _Unknown(f"{w}.values")
            reqs.append(Requirement(str(_get(expr, "key", default="", where=w)),
                                    str(_get(expr, "operator", default="In", where=w)), values))
        alternatives.append(reqs)
    return alternatives


def _selects_pool(alternatives: list[list[Requirement]]) -> bool:
    return all(
        any(r.key in POOL_SELECTOR_KEYS and r.operator in ("In", "Exists") for r in reqs)
        for reqs in alternatives
    )


def _gpu_workload_spec(resource_type: str, props: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The pod spec if the workload uses GPUs, else None. Raises _Unknown."""
    spec = pod_spec(resource_type, props)
    if not isinstance(spec, Mapping):
        return None
    return spec if any(uses_gpu(c) for c in containers(spec)) else None


# --- settings (per-policy configuration) -----------------------------------------------------

class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(Settings):
    pass


class GpuLimitMaxSettings(Settings):
    maxGpusPerPod: int = Field(8, ge=1, description="Most GPUs one pod may reserve (all containers).")


class GpuTaintReservedSettings(Settings):
    allowedDaemonSetNamespaces: list[str] = Field(
        ["gpu-operator", "monitoring"],
        description="Namespaces whose DaemonSets may tolerate the GPU taint without using a GPU "
                    "(GPU operator, node/DCGM exporters).",
    )


class GpuNodeGroupLimitsSettings(Settings):
    allowedInstanceTypes: list[str] = Field(
        sorted(GPU_INSTANCE_TYPES), description="Instance types a GPU node group may use (default: every NVIDIA GPU type).")
    maxSize: int = Field(10, ge=1, description="Largest scalingConfig.maxSize of one GPU node group.")
    allowedCapacityTypes: list[Literal["ON_DEMAND", "SPOT"]] = Field(
        ["ON_DEMAND", "SPOT"], min_length=1, description="Capacity types a GPU node group may use.")


class ImageTagPinnedSettings(Settings):
    forbiddenTags: list[str] = Field(["latest", "main"], description="Tags that move and are refused.")


class GpuBudgetSettings(Settings):
    maxGpus: int = Field(32, ge=0, description="Most GPUs all pools of the stack together can run.")


# --- the policies ----------------------------------------------------------------------------

ResourceCheck = Callable[[str, Mapping[str, Any], Any], list[Violation]]


@dataclass(frozen=True)
class StackResource:
    """A resource as stack policies see it (from plan.json or from the live engine)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    dependencies: tuple[str, ...] = ()
    # Input name -> URNs it was computed from; the precise link (e.g. a public access block's
    # `bucket` input) when the source provides it, `dependencies` otherwise.
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


StackCheck = Callable[[Sequence[StackResource], Any], list[Violation]]


@dataclass(frozen=True)
class PolicyDef:
    name: str
    description: str
    kind: Literal["resource", "stack"]
    check: Callable[..., list[Violation]]
    settings: type[Settings] = NoSettings
    resource_types: frozenset[str] = frozenset()
    remediation: str = ""
    enforcement_level: Level = "mandatory"

    def parse_settings(self, raw: Optional[Mapping[str, Any]]) -> Settings:
        """Settings from a config object, defaults filled in (raises ValidationError)."""
        data = {k: v for k, v in dict(raw or {}).items() if k != "enforcementLevel"}
        return self.settings.model_validate(data)

    def config_schema(self) -> dict[str, Any]:
        schema = self.settings.model_json_schema()
        return {"properties": schema.get("properties", {}), "required": schema.get("required")}


def _guard(check: Callable[..., list[Violation]]) -> Callable[..., list[Violation]]:
    """Turn an unknown value anywhere in a check into one "not evaluated" note."""

    def guarded(*args: Any) -> list[Violation]:
        try:
            return check(*args)
        except _Unknown as exc:
            return [not_evaluated(exc.path)]

    guarded.__name__ = check.__name__
    guarded.__doc__ = check.__doc__
    return guarded


@_guard
def check_gpu_limits_required(resource_type: str, props: Mapping[str, Any], settings: Any = None) -> list[Violation]:
    """A container that requests nvidia.com/gpu sets the same positive whole number in limits."""
    spec = pod_spec(resource_type, props)
    if not isinstance(spec, Mapping):
        return []
    found = []
    for c in containers(spec):
        request, limit = _gpu_quantity(c, "requests"), _gpu_quantity(c, "limits")
        if request is None and limit is None:
            continue
        if is_unknown(request) or is_unknown(limit):
            found.append(not_evaluated(f"{c.label} resources.{{requests,limits}}['{GPU_RESOURCE}']"))
            continue
        if limit is None:
            found.append(Violation(
                f"{c.label} requests {GPU_RESOURCE}={request!r} but sets no limit; "
                f"fix: set resources.limits['{GPU_RESOURCE}'] to {request!r} (GPUs cannot be overcommitted)"))
            continue
        whole = _whole(limit)
        if whole is None or whole <= 0:
            found.append(Violation(
                f"{c.label} limits {GPU_RESOURCE}={limit!r}, which is not a positive whole number of GPUs; "
                f"fix: set resources.limits['{GPU_RESOURCE}'] to 1 or more (fractions need MIG or time-slicing)"))
            continue
        if request is not None and _whole(request) != whole:
            found.append(Violation(
                f"{c.label} requests {GPU_RESOURCE}={request!r} but limits {limit!r}; "
                f"fix: make requests equal limits ({whole}) or drop the request"))
    return found


@_guard
def check_gpu_limit_max(resource_type: str, props: Mapping[str, Any], settings: GpuLimitMaxSettings) -> list[Violation]:
    """GPUs per pod (all containers) stay within maxGpusPerPod."""
    spec = _gpu_workload_spec(resource_type, props)
    if spec is None:
        return []
    count = pod_gpus(spec)
    if count is None:
        # Unknown or fractional quantities: gpu-limits-required names the offending value.
        return [Violation("not evaluated: a GPU quantity is unknown or not a whole number", evaluated=False)]
    if count > settings.maxGpusPerPod:
        per = ", ".join(
            f"{c.name}={_gpu_quantity(c, 'limits') or _gpu_quantity(c, 'requests')}"
            for c in containers(spec) if uses_gpu(c)
        )
        return [Violation(
            f"pod reserves {count} GPUs ({per}), more than maxGpusPerPod={settings.maxGpusPerPod}; "
            f"fix: lower the {GPU_RESOURCE} limits or raise maxGpusPerPod in the stack's policy config")]
    return []


@_guard
def check_gpu_workload_tolerates_taint(resource_type: str, props: Mapping[str, Any], settings: Any = None) -> list[Violation]:
    """A GPU pod tolerates nvidia.com/gpu NoSchedule and selects a GPU pool."""
    spec = _gpu_workload_spec(resource_type, props)
    if spec is None:
        return []
    gpu_users = ", ".join(f"'{c.name}'" for c in containers(spec) if uses_gpu(c))
    found = []
    key, value, effect = GPU_TAINT
    tols = tolerations(spec)
    if not _tolerates(tols, key, value, effect):
        have = ", ".join(t.describe() for t in tols) or "none"
        found.append(Violation(
            f"pod uses GPUs (container {gpu_users}) but does not tolerate the GPU taint {key}={value}:{effect} "
            f"(tolerations: {have}), so it can never schedule on a GPU node; fix: add toleration "
            f"{{key: {key}, operator: Exists, effect: {effect}}}"))
    if not _selects_pool(node_requirements(spec)):
        found.append(Violation(
            f"pod uses GPUs (container {gpu_users}) but selects no GPU pool (no nodeSelector or required "
            f"node affinity on {' / '.join(POOL_SELECTOR_KEYS)}); fix: set nodeSelector "
            f"{{{POOL_LABEL}: <pool name>}}"))
    return found


@_guard
def check_gpu_taint_reserved(resource_type: str, props: Mapping[str, Any], settings: GpuTaintReservedSettings) -> list[Violation]:
    """A pod without GPUs does not tolerate the GPU taint (allow-listed DaemonSets excepted)."""
    spec = pod_spec(resource_type, props)
    if not isinstance(spec, Mapping) or any(uses_gpu(c) for c in containers(spec)):
        return []
    key, value, effect = GPU_TAINT
    offending = [t for t in tolerations(spec) if t.tolerates(key, value, effect)]
    if not offending:
        return []
    if resource_type == "kubernetes:apps/v1:DaemonSet":
        # An unset namespace is the provider's default namespace, never an allow-listed one.
        namespace = _get(props, "metadata", "namespace", default="default")
        if namespace in settings.allowedDaemonSetNamespaces:
            return []
    return [Violation(
        f"pod requests no GPU but tolerates the GPU taint with {offending[0].describe()}, so it can "
        f"take a GPU node the autoscaler added for a GPU pod; fix: remove that toleration "
        f"(only DaemonSets in namespaces {', '.join(settings.allowedDaemonSetNamespaces)} may keep it)")]


def _requirement_values(spec: Any, key: str) -> list[Any]:
    for index, req in enumerate(_list(spec, "template", "spec", "requirements")):
        where = f"spec.template.spec.requirements[{index}]"
        if _get(req, "key", where=where) == key and _get(req, "operator", where=where) == "In":
            return _list(req, "values", where=where)
    return []


def node_pool_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """A Karpenter NodePool (karpenter.sh/v1) in a managed node group's terms: instance types from
    its `node.kubernetes.io/instance-type In` requirement, capacity types from
    `karpenter.sh/capacity-type`, the node template's labels and taints (Kubernetes effects), and
    as maxSize the most nodes its `limits[nvidia.com/gpu]` admits (of its smallest allowed type);
    `gpuLimit` keeps the limit itself for the GPU budget."""
    spec = _get(props, "spec", default={})
    types = _requirement_values(spec, "node.kubernetes.io/instance-type")
    limit = _get(spec, "limits", GPU_RESOURCE)
    gpus = [GPU_INSTANCE_TYPES[t].gpus for t in types if t in GPU_INSTANCE_TYPES]
    capacity = [KARPENTER_CAPACITY.get(str(c), str(c)) for c in _requirement_values(spec, "karpenter.sh/capacity-type")]
    return {
        "instanceTypes": types, "capacityTypes": capacity or ["ON_DEMAND"],
        "labels": dict(_get(spec, "template", "metadata", "labels", default={})),
        "taints": _list(spec, "template", "spec", "taints"),
        "scalingConfig": {"maxSize": int(limit) // min(gpus) if limit is not None and gpus else None},
        "gpuLimit": None if limit is None else int(limit),
        "nodeGroupName": _get(props, "metadata", "name", default=""),
    }


def _as_node_group(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    return node_pool_props(props) if resource_type == NODE_POOL else props


def _node_group_is_gpu(props: Mapping[str, Any]) -> bool:
    ami = _get(props, "amiType", default="")
    if "NVIDIA" in ami or "GPU" in ami:
        return True
    types = _list(props, "instanceTypes")
    if any(is_unknown(t) for t in types):
        raise _Unknown("instanceTypes")
    return any(str(t).split(".", 1)[0] in GPU_FAMILIES for t in types)


def _taints(props: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for index, raw in enumerate(_list(props, "taints")):
        where = f"taints[{index}]"
        effect = str(_get(raw, "effect", default="", where=where))
        found.append((str(_get(raw, "key", default="", where=where)), str(_get(raw, "value", default="", where=where)),
                      EFFECTS.get(effect, effect)))
    return found


@_guard
def check_gpu_node_group_tainted(resource_type: str, props: Mapping[str, Any], settings: Any = None) -> list[Violation]:
    """A node group (or Karpenter NodePool) with an NVIDIA AMI or GPU instance family carries the
    nvidia.com/gpu NoSchedule taint."""
    if resource_type not in GPU_POOL_TYPES:
        return []
    props = _as_node_group(resource_type, props)
    if not _node_group_is_gpu(props):
        return []
    key, value, effect = GPU_TAINT
    if any(k == key and e == effect for k, _, e in _taints(props)):
        return []
    why = _get(props, "amiType", default="") or ", ".join(map(str, _list(props, "instanceTypes")))
    return [Violation(
        f"GPU node group ({why}) has no {key} {effect} taint, so any pod can land on its GPU nodes "
        f"and keep them from scaling down; fix: add taint {{key: {key}, value: {value}, effect: NO_SCHEDULE}}")]


@_guard
def check_gpu_node_group_limits(resource_type: str, props: Mapping[str, Any], settings: GpuNodeGroupLimitsSettings) -> list[Violation]:
    """GPU node groups (and NodePools) use allowed instance types and capacity types, and maxSize <= cap."""
    if resource_type not in GPU_POOL_TYPES:
        return []
    props = _as_node_group(resource_type, props)
    if not _node_group_is_gpu(props):
        return []
    found = []
    types = _list(props, "instanceTypes")
    if any(is_unknown(t) for t in types):
        raise _Unknown("instanceTypes")
    bad = [t for t in types if t not in settings.allowedInstanceTypes]
    if bad:
        found.append(Violation(
            f"instance type(s) {', '.join(bad)} not allowed for this stack; fix: use one of "
            f"{', '.join(settings.allowedInstanceTypes)}"))
    max_size = _get(props, "scalingConfig", "maxSize")
    if max_size is not None and max_size > settings.maxSize:
        found.append(Violation(
            f"scalingConfig.maxSize={_num(max_size)} exceeds the cap of {settings.maxSize} nodes per GPU pool; "
            f"fix: lower maxSize (gpuNodeGroups[].maxSize) to {settings.maxSize} or less"))
    pool_capacity = _get(props, "capacityTypes", default=None)
    for capacity in pool_capacity or [_get(props, "capacityType", default="ON_DEMAND")]:
        if capacity not in settings.allowedCapacityTypes:
            fallback = (" (a NodePool of a SPOT pool falls back to on-demand: karpenter.sh/capacity-type allows both)"
                        if pool_capacity and "SPOT" in pool_capacity else "")
            found.append(Violation(
                f"capacityType={capacity} is not allowed for this stack{fallback}; fix: set capacityType to "
                f"{' or '.join(settings.allowedCapacityTypes)}"))
    return found


def image_problem(image: str, forbidden: Sequence[str]) -> Optional[str]:
    """Why an image reference is not pinned (None when it is: a fixed tag or a digest)."""
    if "@" in image:
        return None  # a digest is the strongest pin
    last = image.rsplit("/", 1)[-1]  # a registry port (host:5000/x) is not a tag
    if ":" not in last:
        return "has no tag (pulls 'latest')"
    tag = last.rsplit(":", 1)[1]
    if tag in forbidden:
        return f"uses the moving tag '{tag}'"
    return None


@_guard
def check_image_tag_pinned(resource_type: str, props: Mapping[str, Any], settings: ImageTagPinnedSettings) -> list[Violation]:
    """Every container image has a tag (or digest) that does not move."""
    spec = pod_spec(resource_type, props)
    if not isinstance(spec, Mapping):
        return []
    found = []
    for c in containers(spec):
        image = c.raw.get("image")
        if is_unknown(image):
            found.append(not_evaluated(f"{c.label} image"))
            continue
        if not isinstance(image, str):
            continue  # no image: the API server rejects the object, nothing to pin
        problem = image_problem(image, settings.forbiddenTags)
        if problem:
            found.append(Violation(
                f"{c.label} image {image!r} {problem}; fix: pin a release tag or a digest "
                f"(e.g. {image.split('@')[0].rsplit(':', 1)[0] if ':' in image.rsplit('/', 1)[-1] else image}:<version>)"))
    return found


def _refers_to(resource: StackResource, bucket: StackResource) -> bool:
    """Does a bucket sub-resource (public access block, SSE config) belong to this bucket?"""
    linked = resource.property_dependencies.get("bucket")
    if linked is not None:
        return bucket.urn in linked
    if bucket.urn in resource.dependencies:
        return True
    ref = resource.props.get("bucket")
    if ref is None or is_unknown(ref):
        return False
    names = {bucket.props.get("bucket"), bucket.props.get("id"), bucket.name}
    return ref in {n for n in names if isinstance(n, str) and not is_unknown(n)}


def _sse_algorithms(rules: Any) -> list[Any]:
    if isinstance(rules, Mapping):
        rules = [rules]
    algorithms = []
    for rule in rules if isinstance(rules, list) else []:
        algorithms.append(_get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm"))
    return algorithms


def check_s3_bucket_private_encrypted(resources: Sequence[StackResource], settings: Any = None) -> list[Violation]:
    """Every S3 bucket has a public access block with all four flags on and default encryption."""
    found = []
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        try:
            blocks = [r for r in resources if r.type == PUBLIC_ACCESS_BLOCK and _refers_to(r, bucket)]
            if not blocks:
                found.append(Violation(
                    f"bucket {bucket.name} has no BucketPublicAccessBlock; fix: add aws.s3.BucketPublicAccessBlock "
                    f"with {', '.join(f'{f}=True' for f in PUBLIC_ACCESS_FLAGS)}", bucket.urn))
            elif not any(all(_get(b.props, f, default=False) is True for f in PUBLIC_ACCESS_FLAGS) for b in blocks):
                off = [f for f in PUBLIC_ACCESS_FLAGS if _get(blocks[0].props, f, default=False) is not True]
                if off:
                    found.append(Violation(
                        f"bucket {bucket.name}: public access block {blocks[0].name} leaves {', '.join(off)} off; "
                        f"fix: set {', '.join(f'{f}=True' for f in off)}", blocks[0].urn))
            algorithms = _sse_algorithms(_get(bucket.props, "serverSideEncryptionConfiguration", "rule", default=[]))
            for sse in (r for r in resources if r.type in SSE_TYPES and _refers_to(r, bucket)):
                algorithms += _sse_algorithms(_get(sse.props, "rules", default=[]))
            if not any(a in SSE_ALGORITHMS for a in algorithms):
                found.append(Violation(
                    f"bucket {bucket.name} declares no default encryption; fix: add "
                    f"aws.s3.BucketServerSideEncryptionConfiguration with sseAlgorithm 'aws:kms' (or 'AES256')",
                    bucket.urn))
        except _Unknown as exc:
            found.append(not_evaluated(f"bucket {bucket.name} {exc.path}", bucket.urn))
    return found


@dataclass(frozen=True)
class _Pool:
    resource: StackResource
    name: str
    labels: Mapping[str, str]
    taints: list[tuple[str, str, str]]


def _gpu_pools(resources: Sequence[StackResource]) -> tuple[list[_Pool], list[Violation]]:
    pools, notes = [], []
    for r in resources:
        if r.type not in GPU_POOL_TYPES:
            continue
        try:
            props = _as_node_group(r.type, r.props)
            if not _node_group_is_gpu(props):
                continue
            labels = dict(_get(props, "labels", default={}))
            if any(is_unknown(v) for v in labels.values()):
                raise _Unknown("labels")
            group_name = _get(props, "nodeGroupName", default=r.name)
            if r.type == NODE_POOL:  # Karpenter's own node labels (karpenter.sh/v1 well-known labels)
                labels.setdefault("karpenter.sh/nodepool", str(group_name))
            else:
                labels.setdefault("eks.amazonaws.com/nodegroup", str(group_name))
                labels.setdefault("eks.amazonaws.com/capacityType", str(_get(props, "capacityType", default="ON_DEMAND")))
            pools.append(_Pool(r, labels.get(POOL_LABEL, r.name), labels, _taints(props)))
        except _Unknown as exc:
            notes.append(not_evaluated(f"node group {r.name} {exc.path}", r.urn))
    return pools, notes


def check_gpu_budget(resources: Sequence[StackResource], settings: GpuBudgetSettings) -> list[Violation]:
    """Sum over GPU pools of maxSize x GPUs per instance stays within maxGpus."""
    pools, notes = _gpu_pools(resources)
    total, parts = 0, []
    for pool in pools:
        if pool.resource.type == NODE_POOL:  # the limit is the GPU count itself
            limit = node_pool_props(pool.resource.props)["gpuLimit"]
            if limit is None:
                notes.append(Violation(f"NodePool {pool.name} has no {GPU_RESOURCE} limit: it can grow without bound; "
                                       f"fix: set spec.limits[{GPU_RESOURCE}]", pool.resource.urn))
                continue
            total += limit
            parts.append(f"{pool.name}: limit {limit} GPU")
            continue
        try:
            max_size = _get(pool.resource.props, "scalingConfig", "maxSize", default=None)
            types = _list(pool.resource.props, "instanceTypes")
        except _Unknown as exc:
            notes.append(not_evaluated(f"node group {pool.resource.name} {exc.path}", pool.resource.urn))
            continue
        unknown_types = [t for t in types if t not in GPU_INSTANCE_TYPES]
        if max_size is None or not types or unknown_types:
            what = f"GPU count of {', '.join(map(str, unknown_types))}" if unknown_types else "scalingConfig.maxSize / instanceTypes"
            notes.append(Violation(f"not evaluated: node group {pool.resource.name}: {what} unknown",
                                   pool.resource.urn, evaluated=False))
            continue
        # A pool may mix types; the autoscaler can pick the one with the most GPUs.
        per_node = max(GPU_INSTANCE_TYPES[t].gpus for t in types)
        total += int(max_size) * per_node
        parts.append(f"{pool.name}: {_num(max_size)} nodes x {per_node} GPU")
    if notes:
        return notes  # a partial sum would understate the budget: do not pass it
    if total > settings.maxGpus:
        return [Violation(
            f"the GPU pools can scale to {total} GPUs ({'; '.join(parts)}), over the stack budget of "
            f"maxGpus={settings.maxGpus}; fix: lower gpuNodeGroups[].maxSize or raise gpu-budget.maxGpus")]
    return []


def check_gpu_workload_has_pool(resources: Sequence[StackResource], settings: Any = None) -> list[Violation]:
    """Every GPU workload's node selection matches a GPU pool of the stack, and it tolerates that
    pool's taints. (A missing toleration of the platform GPU taint itself, and a missing pool
    selector, are gpu-workload-tolerates-taint's findings and are not repeated here.)"""
    pools, found = _gpu_pools(resources)
    for r in resources:
        if r.type not in WORKLOAD_TYPES:
            continue
        try:
            spec = _gpu_workload_spec(r.type, r.props)
            if spec is None:
                continue
            alternatives = node_requirements(spec)
            if not _selects_pool(alternatives):
                continue
            tols = tolerations(spec)
        except _Unknown as exc:
            found.append(not_evaluated(f"{r.name} {exc.path}", r.urn))
            continue
        wanted = " or ".join(", ".join(q.describe() for q in reqs) for reqs in alternatives)
        matching = [p for p in pools if any(all(q.matches(p.labels) for q in reqs) for reqs in alternatives)]
        if not matching:
            have = "; ".join(f"{p.resource.name} ({POOL_LABEL}={p.labels.get(POOL_LABEL, '-')})" for p in pools) or "none"
            found.append(Violation(
                f"GPU workload {r.name} selects nodes with {wanted}, which no GPU node group in this stack "
                f"carries (GPU node groups: {have}); fix: select an existing pool by its {POOL_LABEL} label",
                r.urn))
            continue
        usable = []
        for pool in matching:
            blocking = [t for t in pool.taints if t[2] in ("NoSchedule", "NoExecute")
                        and t != GPU_TAINT and not _tolerates(tols, *t)]
            if not blocking:
                usable.append(pool)
        if not usable:
            pool = matching[0]
            missing = [t for t in pool.taints if t[2] in ("NoSchedule", "NoExecute") and t != GPU_TAINT
                       and not _tolerates(tols, *t)]
            found.append(Violation(
                f"GPU workload {r.name} selects pool {pool.name} but does not tolerate its taint(s) "
                f"{', '.join(f'{k}={v}:{e}' for k, v, e in missing)}; fix: add matching tolerations",
                r.urn))
    return found


ALL_POLICIES: list[PolicyDef] = [
    PolicyDef(
        "gpu-limits-required",
        "Containers that request nvidia.com/gpu set the same positive whole number in limits.",
        "resource", check_gpu_limits_required, resource_types=WORKLOAD_TYPES,
        remediation="Set resources.limits['nvidia.com/gpu'] to a whole number >= 1, equal to the request.",
    ),
    PolicyDef(
        "gpu-limit-max",
        "A pod reserves at most maxGpusPerPod GPUs (all containers together).",
        "resource", check_gpu_limit_max, GpuLimitMaxSettings, WORKLOAD_TYPES,
        remediation="Lower the GPU limits of the pod's containers or raise maxGpusPerPod for the stack.",
    ),
    PolicyDef(
        "gpu-workload-tolerates-taint",
        "GPU pods tolerate the nvidia.com/gpu NoSchedule taint and select a GPU pool.",
        "resource", check_gpu_workload_tolerates_taint, resource_types=WORKLOAD_TYPES,
        remediation="Add toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule} and "
                    "nodeSelector {ai-platform/gpu-pool: <pool>}.",
    ),
    PolicyDef(
        "gpu-taint-reserved",
        "Pods that use no GPU do not tolerate the GPU taint (allow-listed DaemonSets excepted).",
        "resource", check_gpu_taint_reserved, GpuTaintReservedSettings, WORKLOAD_TYPES,
        remediation="Remove the nvidia.com/gpu (or match-everything) toleration from pods that use no GPU.",
    ),
    PolicyDef(
        "gpu-node-group-tainted",
        "GPU node groups carry the nvidia.com/gpu NoSchedule taint.",
        "resource", check_gpu_node_group_tainted, resource_types=GPU_POOL_TYPES,
        remediation="Add taint {key: nvidia.com/gpu, value: 'true', effect: NO_SCHEDULE} to the node group.",
    ),
    PolicyDef(
        "gpu-node-group-limits",
        "GPU node groups use allowed instance and capacity types and stay under the maxSize cap.",
        "resource", check_gpu_node_group_limits, GpuNodeGroupLimitsSettings, GPU_POOL_TYPES,
        remediation="Change gpuNodeGroups[] in Pulumi.<stack>.yaml to fit the stack's policy config.",
    ),
    PolicyDef(
        "image-tag-pinned",
        "Container images carry a fixed tag or digest (not missing, 'latest' or 'main').",
        "resource", check_image_tag_pinned, ImageTagPinnedSettings, WORKLOAD_TYPES,
        remediation="Pin every image to a release tag or a digest.",
    ),
    PolicyDef(
        "s3-bucket-private-encrypted",
        "S3 buckets block all public access and declare default encryption.",
        "stack", check_s3_bucket_private_encrypted,
        remediation="Add a BucketPublicAccessBlock (all four flags true) and a "
                    "BucketServerSideEncryptionConfiguration for the bucket.",
    ),
    PolicyDef(
        "gpu-budget",
        "The GPU pools together can never run more than maxGpus GPUs.",
        "stack", check_gpu_budget, GpuBudgetSettings,
        remediation="Lower gpuNodeGroups[].maxSize or raise the stack's GPU budget.",
    ),
    PolicyDef(
        "gpu-workload-has-pool",
        "Every GPU workload selects a GPU node group of the stack and tolerates its taints.",
        "stack", check_gpu_workload_has_pool,
        remediation="Point the workload's nodeSelector at an existing pool's ai-platform/gpu-pool label.",
    ),
]

POLICIES_BY_NAME: dict[str, PolicyDef] = {p.name: p for p in ALL_POLICIES}


# --- configuration (the --policy-pack-config file) -------------------------------------------

class PolicyConfigError(Exception):
    """Every problem of a policy config file, each as `<file>: <key>: <message>`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid policy config:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class PackConfig:
    """Enforcement level and settings per policy, as the Pulumi CLI would apply the file."""

    levels: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Settings] = field(default_factory=dict)
    source: Optional[str] = None

    def level(self, name: str) -> str:
        return self.levels.get(name, POLICIES_BY_NAME[name].enforcement_level)

    def settings_for(self, name: str) -> Settings:
        return self.settings.get(name) or POLICIES_BY_NAME[name].parse_settings({})


def _level(value: Any, where: str, problems: list[str]) -> Optional[str]:
    if value in LEVELS:
        return value
    problems.append(f"{where}: enforcement level must be one of {', '.join(LEVELS)} (got {value!r})")
    return None


def parse_config(data: Any, source: str = "config") -> PackConfig:
    """Validate a policy pack config object (the JSON the CLI takes) and fill in defaults."""
    if not isinstance(data, Mapping):
        raise PolicyConfigError([f"{source}: must be a JSON object keyed by policy name"])
    problems: list[str] = []
    levels: dict[str, str] = {}
    settings: dict[str, Settings] = {}
    overall = data.get("all")
    if overall is not None:
        value = overall.get("enforcementLevel") if isinstance(overall, Mapping) else overall
        level = _level(value, f"{source}: all", problems)
        if level:
            levels.update({p.name: level for p in ALL_POLICIES})
    for name, value in data.items():
        if name == "all":
            continue
        policy = POLICIES_BY_NAME.get(name)
        if policy is None:
            close = difflib.get_close_matches(name, list(POLICIES_BY_NAME), n=1)
            problems.append(f"{source}: {name}: unknown policy" + (f" (did you mean '{close[0]}'?)" if close else ""))
            continue
        if isinstance(value, str):
            level = _level(value, f"{source}: {name}", problems)
            if level:
                levels[name] = level
            continue
        if not isinstance(value, Mapping):
            problems.append(f"{source}: {name}: must be an enforcement level or an object")
            continue
        if "enforcementLevel" in value:
            level = _level(value["enforcementLevel"], f"{source}: {name}.enforcementLevel", problems)
            if level:
                levels[name] = level
        try:
            settings[name] = policy.parse_settings(value)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                key = ".".join(str(p) for p in error["loc"])
                message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
                if error["type"] == "extra_forbidden":
                    close = difflib.get_close_matches(str(error["loc"][0]), list(policy.settings.model_fields), n=1)
                    message += f" (did you mean '{close[0]}'?)" if close else f" ({name} has no settings)" if not policy.settings.model_fields else ""
                problems.append(f"{source}: {name}.{key}: {message}")
    if problems:
        raise PolicyConfigError(problems)
    return PackConfig(levels, settings, source)


def load_config(path: str | Path) -> PackConfig:
    """Read and validate `policy/config.<stack>.json`. Raises PolicyConfigError (never a traceback)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyConfigError([f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"]) from None
    return parse_config(data, str(path))


# --- evaluation over a list of resources (plan.json or tests) --------------------------------

@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    resource_type: str
    resource_name: str
    urn: str
    message: str
    evaluated: bool = True


def evaluate(resources: Sequence[StackResource], config: PackConfig = PackConfig()) -> list[Finding]:
    """Run every enabled policy over a stack's resources, in ALL_POLICIES order."""
    by_urn = {r.urn: r for r in resources}
    findings: list[Finding] = []
    for policy in ALL_POLICIES:
        level = config.level(policy.name)
        if level == "disabled":
            continue
        level = "mandatory" if level == "remediate" else level
        settings = config.settings_for(policy.name)
        if policy.kind == "resource":
            pairs = [(r, v) for r in resources if r.type in policy.resource_types
                     for v in policy.check(r.type, r.props, settings)]
        else:
            pairs = [(by_urn.get(v.urn) if v.urn else None, v) for v in policy.check(resources, settings)]
        for resource, v in pairs:
            findings.append(Finding(
                policy.name, level,
                resource.type if resource else "", resource.name if resource else "",
                resource.urn if resource else (v.urn or ""), v.message, v.evaluated))
    return findings


# --- the CrossGuard side ---------------------------------------------------------------------

def plain(value: Any) -> Any:
    """Copy the engine's unknown-checking proxies into plain data, unknowns as UNKNOWN, so the
    pure checks see the same shapes as in plan.json."""
    from pulumi_policy.proxy import UnknownValueError

    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def pulumi_policies() -> list[Any]:
    """ALL_POLICIES as pulumi_policy objects (the pack's policies). Constructing them starts nothing."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        StackValidationPolicy,
    )
    from pulumi_policy.proxy import UnknownValueError

    class NotEvaluated(UnknownValueError):
        # The engine turns UnknownValueError into an advisory "can't run policy during preview"
        # diagnostic; reusing it keeps "not evaluated" visible without blocking the update.
        def __init__(self, message: str):
            Exception.__init__(self, message)
            self.message = message

    def report(found: list[Violation], report_violation: Callable[..., None]) -> None:
        notes = []
        for v in found:
            if v.evaluated:
                report_violation(v.message, v.urn)
            else:
                notes.append(v.message)
        if notes:
            raise NotEvaluated("; ".join(notes))

    def resource_validate(defn: PolicyDef) -> Callable[..., None]:
        def validate(args: Any, report_violation: Callable[..., None]) -> None:
            if args.resource_type not in defn.resource_types:
                return
            settings = defn.parse_settings(args.get_config())
            report(defn.check(args.resource_type, plain(args.props), settings), report_violation)
        return validate

    def stack_validate(defn: PolicyDef) -> Callable[..., None]:
        def validate(args: Any, report_violation: Callable[..., None]) -> None:
            resources = []
            for r in args.resources:
                deps = tuple(d.urn for d in (r.dependencies or []))
                prop_deps = {k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()}
                resources.append(StackResource(r.resource_type, r.name, r.urn, plain(r.props), deps, prop_deps))
            settings = defn.parse_settings(args.get_config())
            report(defn.check(resources, settings), report_violation)
        return validate

    built: list[Any] = []
    for defn in ALL_POLICIES:
        schema = defn.config_schema()
        common = dict(
            enforcement_level=EnforcementLevel(defn.enforcement_level),
            config_schema=PolicyConfigSchema(schema["properties"], schema["required"]) if schema["properties"] else None,
            remediation_steps=defn.remediation,
        )
        if defn.kind == "resource":
            built.append(ResourceValidationPolicy(defn.name, defn.description, resource_validate(defn), **common))
        else:
            built.append(StackValidationPolicy(defn.name, defn.description, stack_validate(defn), **common))
    return built
