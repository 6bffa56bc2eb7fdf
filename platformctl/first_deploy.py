"""First-deploy check: from the plan alone, can the first `pulumi up` on a new account finish?

`pulumi up` waits for some Kubernetes objects to become ready before it creates what depends on
them, and fails when a wait times out. This module walks those waits in dependency order and
checks, from `plan.json` (resources with their inputs and dependencies; the manifests and Helm
values are the same inputs), that each can finish:

- placement: the pods select (nodeSelector, required node affinity) and tolerate an existing
  node group and that group can carry the extended resources (GPUs) they request;
- scale-up: a node group that starts with no nodes gets one for them: cluster-autoscaler is
  installed and discovers the group, the pods' priority is not below its expendable cut-off, and
  the group's node template (ASG tags) advertises the resources, labels and taints involved;
- capacity: GPUs at the peak of the first deploy (workloads that run at the same time, by the
  dependency graph) fit the node groups' maxima and the namespaces' GPU quotas;
- models: models Triton must load at start (explicit model control), and the source a TensorRT
  build Job waits for, are put there by the stack (an upload from a local file counts when the
  file exists where the plan ran);
- API endpoint: the machine running `pulumi up` can reach the cluster's Kubernetes API.

A certain deadlock is `FAIL` (the plan exits with `EXIT_DEADLOCK`); what the plan cannot know
(a value computed at deploy, a bucket's contents) is `warn`. Walked: Deployments, StatefulSets, Jobs
and Helm releases. DaemonSets, Services and PVCs are awaited too but not walked (a DaemonSet waits
only for nodes that exist; Services and PVCs hold no pods); a Helm release's pods are not in the plan,
so only its `values.nodeSelector` is looked at, as a warning at most.

Upstream behaviour this follows (verified at the pinned versions):
- What `pulumi up` waits for: pulumi/pulumi-kubernetes `provider/pkg/await/awaiters.go` (Deployment,
  StatefulSet, DaemonSet, Job, Pod, Service, Ingress, PVC have await logic; a Job is ready when
  complete: `await/job.go`), skipped by the annotation `pulumi.com/skipAwait: "true"`
  (`provider/pkg/metadata/annotations.go`, `overrides.go` SkipAwaitLogic; checked in `await/await.go`);
  default timeouts 10 minutes (`DefaultDeploymentTimeoutMins`, `DefaultJobTimeoutMins`,
  `DefaultStatefulSetTimeoutMins`), or `pulumi.com/timeoutSeconds`. A Helm `Release` runs Helm with
  `Wait = !skipAwait` and a default timeout of 300 s (`provider/pkg/provider/helm_release.go`).
  Read on the repository's main after v4.32.0 (the stored snapshot); the SDK here is 4.34.2.
- cluster-autoscaler 1.33 (`cluster-autoscaler/FAQ.md` "How does Cluster Autoscaler work with Pod
  Priority and Preemption?"; flag `expendable-pods-priority-cutoff`, default -10, in
  `cluster-autoscaler/config/flags/flags.go`): pods below the cut-off never trigger a scale-up.
- Scale from zero on AWS (`cluster-autoscaler/cloudprovider/aws/README.md`, `aws_manager.go`
  `buildNodeFromTemplate`): the node template is built from the ASG tags
  `k8s.io/cluster-autoscaler/node-template/{label,taint,resources}/...`, `nvidia.com/gpu` defaults
  to the instance type's GPU count, and for an EKS managed node group the labels, taints and
  resource tags of the node group itself are added (EKS `DescribeNodegroup`).
- Auto-discovery: chart cluster-autoscaler 9.46.6 `values.yaml` `autoDiscovery.tags` default
  `k8s.io/cluster-autoscaler/enabled` and `k8s.io/cluster-autoscaler/<clusterName>`; `extraArgs`
  become `--<key>=<value>` (`templates/deployment.yaml`).
- ResourceQuota for extended resources: only `requests.<resource>` is allowed; terminated pods do
  not count (kubernetes/website `content/en/docs/concepts/policy/resource-quotas.md`).
- EKS endpoint access: `endpointPublicAccess` defaults to true, `endpointPrivateAccess` to false,
  `publicAccessCidrs` to 0.0.0.0/0 (EKS API reference, VpcConfigRequest).
- Triton exits when a model given with `--load-model` fails to load: `exit_on_error_{true}` in
  triton-inference-server/server `src/command_line_parser.h`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from stack_config.model import DOCUMENTATION_RANGES
from stack_config.model_builds import producer_hint

COMPUTED = "<computed>"
OK, WARN, FAIL = "ok", "warn", "FAIL"
_RANK = {OK: 0, WARN: 1, FAIL: 2}
EXIT_DEADLOCK = 3
PLAN_SECTION_TITLE = "First deploy"

DEFAULT_EXPENDABLE_CUTOFF = -10
CUTOFF_FLAG = "expendable-pods-priority-cutoff"
# Built-in PriorityClasses every cluster has (kubernetes scheduling API: SystemCriticalPriority).
BUILTIN_PRIORITY = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
TEMPLATE = "k8s.io/cluster-autoscaler/node-template/"
CLUSTER_NAME_TEMPLATE = "{{ .Values.autoDiscovery.clusterName }}"
DEFAULT_DISCOVERY_TAGS = ("k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{CLUSTER_NAME_TEMPLATE}")
API_ACCESS_RULE_PREFIX = "cluster-api-access"
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
DEFAULT_TIMEOUT = {"Deployment": 600, "StatefulSet": 600, "Job": 600}
HELM_DEFAULT_TIMEOUT = 300

WORKLOAD_TYPES = {
    "kubernetes:apps/v1:Deployment": "Deployment",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:batch/v1:Job": "Job",
}
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
ASG_TAG = "aws:autoscaling/tag:Tag"
CLUSTER = "aws:eks/cluster:Cluster"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
QUOTA = "kubernetes:core/v1:ResourceQuota"
HPA_TYPES = ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "kubernetes:autoscaling/v1:HorizontalPodAutoscaler")
S3_OBJECTS = ("aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject")
EKS_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
# Node labels a plan cannot evaluate (set per node at run time).
RUNTIME_LABEL_PREFIXES = ("topology.kubernetes.io/", "kubernetes.io/hostname", "eks.amazonaws.com/nodegroup")


# --- report -------------------------------------------------------------------------------------

@dataclass
class Finding:
    status: str
    rule: str
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "rule": self.rule, "message": self.message, **({"fix": self.fix} if self.fix else {})}


@dataclass
class Step:
    urn: str
    name: str
    title: str
    waits: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        return max((f.status for f in self.findings), key=_RANK.__getitem__, default=OK)

    def to_json(self, order: int) -> dict[str, Any]:
        return {"order": order, "urn": self.urn, "name": self.name, "title": self.title, "waits": self.waits,
                "status": self.status, "findings": [f.to_json() for f in self.findings]}


@dataclass
class Peak:
    scope: str  # "pool <name>" or "namespace <name>"
    resource: str
    peak: int
    limit: Optional[int]
    detail: str
    workloads: list[str]
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "resource": self.resource, "peak": self.peak, "limit": self.limit,
                "detail": self.detail, "workloads": self.workloads, "status": self.status}


@dataclass
class Report:
    steps: list[Step]
    peaks: list[Peak]

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps for f in s.findings if f.status == status)

    @property
    def exit_code(self) -> int:
        return EXIT_DEADLOCK if self.count(FAIL) else 0

    def to_json(self) -> dict[str, Any]:
        return {"exitCode": self.exit_code, "deadlocks": self.count(FAIL), "warnings": self.count(WARN),
                "steps": [s.to_json(i) for i, s in enumerate(self.steps, 1)],
                "gpuPeak": [p.to_json() for p in self.peaks]}


# --- the plan -----------------------------------------------------------------------------------

class Plan:
    """plan.json's resources, indexed; `deps(urn)` is everything a resource waits for."""

    def __init__(self, doc: dict[str, Any]):
        self.resources: list[dict[str, Any]] = list(doc.get("resources") or [])
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.position = {r["urn"]: i for i, r in enumerate(self.resources)}
        self._deps: dict[str, frozenset[str]] = {}

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] in types]

    def deps(self, urn: str) -> frozenset[str]:
        """Transitive dependencies (the engine creates, and awaits, all of them first)."""
        if urn in self._deps:
            return self._deps[urn]
        seen: set[str] = set()
        stack = list((self.by_urn.get(urn) or {}).get("dependencies") or [])
        while stack:
            dep = stack.pop()
            if dep in seen:
                continue
            seen.add(dep)
            if dep in self._deps:
                seen |= self._deps[dep]
            else:
                stack.extend((self.by_urn.get(dep) or {}).get("dependencies") or [])
        self._deps[urn] = frozenset(seen)
        return self._deps[urn]


def _get(value: Any, *path: str, default: Any = None) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def _known(value: Any) -> bool:
    return value is not None and value != COMPUTED and COMPUTED not in str(value)


def _unknown(value: Any) -> bool:
    """Absent is known (a default applies); `<computed>` anywhere inside is not."""
    return value is not None and COMPUTED in str(value)


def _int(value: Any) -> Optional[int]:
    """An integer count (GPUs, sizes, priorities): None when unknown or not an integer."""
    if isinstance(value, bool) or not _known(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _inputs(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("inputs") or {}


def _meta(resource: dict[str, Any]) -> dict[str, Any]:
    return _inputs(resource).get("metadata") or {}


def _object_title(kind: str, resource: dict[str, Any]) -> str:
    meta = _meta(resource)
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{kind} {where}{meta.get('name', resource['name'])}"


# --- node groups --------------------------------------------------------------------------------

@dataclass
class Pool:
    """An EKS managed node group as the plan declares it, with its Auto Scaling group's tags."""

    name: str
    urn: str
    labels: dict[str, str]
    taints: list[dict[str, str]]  # Kubernetes form: key, value, effect (NoSchedule, ...)
    min_size: Optional[int]
    desired: Optional[int]
    max_size: Optional[int]
    instance_types: list[str]
    capacity_type: str
    asg_tags: dict[str, str]
    nodegroup_tags: dict[str, str]
    known: bool = True  # labels and taints known at preview
    karpenter: bool = False  # a Karpenter NodePool (starts with no nodes; max_size from its GPU limit)

    def _generic_labels(self) -> dict[str, str]:
        labels = {"kubernetes.io/os": "linux"}
        if len(self.instance_types) == 1:
            labels["node.kubernetes.io/instance-type"] = self.instance_types[0]
        return labels

    def node_labels(self) -> dict[str, str]:
        """Labels a node of the group carries: the group's, plus those EKS and the kubelet set."""
        if self.karpenter:  # Karpenter labels its nodes with the pool and capacity type (karpenter.sh/v1 well-known labels)
            return {**self._generic_labels(), "karpenter.sh/nodepool": self.name, **self.labels}
        return {**self._generic_labels(), "eks.amazonaws.com/capacityType": self.capacity_type or "ON_DEMAND", **self.labels}

    def _template(self, kind: str, source: dict[str, str]) -> dict[str, str]:
        prefix = f"{TEMPLATE}{kind}/"
        return {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix) and _known(v)}

    def template_labels(self, with_nodegroup: bool) -> dict[str, str]:
        """The autoscaler's labels for a node it would add: generic ones, the ASG's label tags and,
        through EKS DescribeNodegroup, the node group's labels (aws_manager.go)."""
        return {**self._generic_labels(), **(self.labels if with_nodegroup else {}), **self._template("label", self.asg_tags)}

    def template_taints(self) -> list[dict[str, str]]:
        """ASG taint tags (`<value>:<effect>`) plus the node group's own taints (DescribeNodegroup)."""
        taints = []
        for key, value in self._template("taint", self.asg_tags).items():
            if ":" in value:
                taint_value, effect = value.rsplit(":", 1)
                taints.append({"key": key, "value": taint_value, "effect": effect})
        return taints + self.taints

    def advertised(self, resource: str) -> tuple[Optional[int], str]:
        """Per node, how many of an extended resource the autoscaler's template advertises, and
        from where: the ASG tag, the node group's tag, or (nvidia.com/gpu only) the instance type;
        (None, "none") when nothing in the plan says."""
        for source, tags in (("ASG tag", self.asg_tags), ("node group tag", self.nodegroup_tags)):
            value = tags.get(f"{TEMPLATE}resources/{resource}")
            if value is not None:
                return _int(value), source
        if resource.startswith("nvidia.com/") and self.instance_types:
            from stack_config.gpu_instances import GPU_INSTANCE_TYPES

            known = GPU_INSTANCE_TYPES.get(self.instance_types[0])
            if known is None:  # not a GPU instance type: no NVIDIA resource at all
                return 0, f"instance type {self.instance_types[0]} (no GPU)"
            if resource == "nvidia.com/gpu":
                return known.gpus, f"instance type {self.instance_types[0]}"
        return None, "none"


def _taints(raw: Any) -> tuple[list[dict[str, str]], bool]:
    if not _known(raw):
        return [], raw is None
    taints = [{"key": t.get("key", ""), "value": t.get("value", ""), "effect": EKS_EFFECTS.get(t.get("effect", ""), t.get("effect", ""))}
              for t in raw or []]
    return taints, True


def _asg_tags_by_pool(plan: Plan, groups: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """aws:autoscaling/tag:Tag resources per node group: a tag belongs to the group whose URN it
    depends on (its ASG name is read from the group), else to the only group beside it."""
    by_urn: dict[str, dict[str, str]] = {g["urn"]: {} for g in groups}
    by_parent: dict[str, list[str]] = {}
    for group in groups:
        by_parent.setdefault(group.get("parent", ""), []).append(group["urn"])
    for tag in plan.of_type(ASG_TAG):
        owners = [d for d in tag.get("dependencies") or [] if d in by_urn]
        siblings = by_parent.get(tag.get("parent", ""), [])
        owner = owners[0] if len(owners) == 1 else (siblings[0] if not owners and len(siblings) == 1 else None)
        key, value = _get(_inputs(tag), "tag", "key"), _get(_inputs(tag), "tag", "value")
        if owner and _known(key):
            by_urn[owner][key] = value
    return by_urn


def pools(plan: Plan) -> list[Pool]:
    groups = plan.of_type(NODE_GROUP)
    tags = _asg_tags_by_pool(plan, groups)
    found = []
    for group in groups:
        inputs = _inputs(group)
        scaling = inputs.get("scalingConfig") or {}
        taints, taints_known = _taints(inputs.get("taints"))
        labels = inputs.get("labels") or {}
        min_size = _int(scaling.get("minSize"))
        found.append(Pool(
            name=group["name"], urn=group["urn"],
            labels=labels if _known(labels) else {}, taints=taints,
            min_size=min_size, desired=_int(scaling.get("desiredSize", min_size)), max_size=_int(scaling.get("maxSize")),
            instance_types=[t for t in inputs.get("instanceTypes") or [] if _known(t)] if _known(inputs.get("instanceTypes")) else [],
            capacity_type=inputs.get("capacityType") or "ON_DEMAND",
            asg_tags=tags[group["urn"]],
            nodegroup_tags={k: v for k, v in (inputs.get("tags") or {}).items()} if isinstance(inputs.get("tags"), dict) else {},
            known=_known(labels) and taints_known,
        ))
    return found


def _requirement(spec: dict[str, Any], key: str) -> list[str]:
    for req in _get(spec, "template", "spec", "requirements", default=[]) or []:
        if isinstance(req, dict) and req.get("key") == key and req.get("operator") == "In" and _known(req.get("values")):
            return [v for v in req["values"] if _known(v)]
    return []


def node_pools(plan: Plan) -> list[Pool]:
    """Karpenter NodePools as pools: labels and taints from the node template, instance types from
    the `node.kubernetes.io/instance-type In` requirement, no nodes at the start (a NodePool has no
    minimum), and as many nodes as the `nvidia.com/gpu` limit holds (karpenter.sh/v1 NodePool
    spec.limits: Karpenter launches no node that would take the pool past it)."""
    from stack_config.gpu_instances import GPU_INSTANCE_TYPES

    found = []
    for resource in plan.of_type(NODE_POOL):
        inputs = _inputs(resource)
        spec = inputs.get("spec") or {}
        labels = _get(spec, "template", "metadata", "labels", default={})
        taints = _get(spec, "template", "spec", "taints", default=[])
        types = _requirement(spec, "node.kubernetes.io/instance-type")
        gpus = GPU_INSTANCE_TYPES[types[0]].gpus if types and types[0] in GPU_INSTANCE_TYPES else None
        limit = _int(_get(spec, "limits", "nvidia.com/gpu"))
        found.append(Pool(
            name=_get(inputs, "metadata", "name", default=resource["name"]), urn=resource["urn"],
            labels=labels if _known(labels) else {}, taints=[dict(t) for t in taints] if _known(taints) else [],
            min_size=0, desired=0, max_size=limit // gpus if limit is not None and gpus else None,
            instance_types=types, capacity_type=",".join(_requirement(spec, "karpenter.sh/capacity-type")),
            asg_tags={}, nodegroup_tags={}, known=_known(labels) and _known(taints), karpenter=True,
        ))
    return found


def karpenter_controller(plan: Plan) -> Optional[str]:
    """The Karpenter controller release's name, if the stack installs it."""
    for release in plan.of_type(RELEASE):
        if str(_inputs(release).get("chart", "")).rsplit("/", 1)[-1] == "karpenter":
            return release["name"]
    return None


# --- cluster-autoscaler -------------------------------------------------------------------------

@dataclass
class Autoscaler:
    name: str
    cutoff: Optional[int]  # None: unknown at preview
    cutoff_source: str
    discovery_tags: list[str]  # empty: no auto-discovery (groups listed by name)


def autoscaler(plan: Plan) -> Optional[Autoscaler]:
    """The cluster-autoscaler Helm release: its expendable-pods cut-off and ASG discovery tags."""
    for release in plan.of_type(RELEASE):
        inputs = _inputs(release)
        if str(inputs.get("chart", "")).rsplit("/", 1)[-1] != "cluster-autoscaler":
            continue
        values = inputs.get("values") or {}
        cutoff, source = DEFAULT_EXPENDABLE_CUTOFF, "upstream default"
        extra = _get(values, "extraArgs", CUTOFF_FLAG)
        custom = [a for a in values.get("customArgs") or [] if str(a).startswith(f"--{CUTOFF_FLAG}=")]
        if extra is not None:
            cutoff, source = _int(extra), f"extraArgs.{CUTOFF_FLAG}"
        elif custom:
            cutoff, source = _int(str(custom[-1]).split("=", 1)[1]), "customArgs"
        cluster_name = _get(values, "autoDiscovery", "clusterName")
        tags = _get(values, "autoDiscovery", "tags", default=list(DEFAULT_DISCOVERY_TAGS))
        discovery = [str(t).replace(CLUSTER_NAME_TEMPLATE, str(cluster_name)) for t in tags] if cluster_name else []
        return Autoscaler(release["name"], cutoff, source, discovery)
    return None


# --- pods: scheduling -----------------------------------------------------------------------------

def _expression(expr: dict[str, Any], labels: dict[str, str]) -> Optional[bool]:
    """One node selector requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt); None: not knowable."""
    key, op, values = expr.get("key", ""), expr.get("operator", "In"), [str(v) for v in expr.get("values") or []]
    if key not in labels:
        if key.startswith(RUNTIME_LABEL_PREFIXES) or key == "node.kubernetes.io/instance-type":
            return None
        return op in ("NotIn", "DoesNotExist")
    value = labels[key]
    if op in ("Gt", "Lt"):
        left, right = _int(value), _int(values[0] if values else None)
        return None if left is None or right is None else (left > right if op == "Gt" else left < right)
    return {"In": value in values, "NotIn": value not in values, "Exists": True, "DoesNotExist": False}.get(op)


def selects(pod: dict[str, Any], labels: dict[str, str]) -> Optional[bool]:
    """Whether a pod's nodeSelector and required node affinity admit a node with these labels
    (terms are ORed, the expressions of a term ANDed). None when it hangs on a runtime label."""
    requirements = [{"key": k, "operator": "In", "values": [v]} for k, v in (pod.get("nodeSelector") or {}).items()]
    results = [_expression(r, labels) for r in requirements]
    terms = _get(pod, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
    if terms:
        term_results = [_all([_expression(e, labels) for e in t.get("matchExpressions") or []]) for t in terms]
        results.append(True if True in term_results else (None if None in term_results else False))
    return _all(results)


def _all(results: list[Optional[bool]]) -> Optional[bool]:
    return False if False in results else (None if None in results else True)


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes toleration matching (core/v1 Toleration: empty key + Exists tolerates all)."""
    for tol in tolerations or []:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        operator = tol.get("operator") or "Equal"
        if not tol.get("key") and operator == "Exists":
            return True
        if tol.get("key") == taint["key"] and (operator == "Exists" or str(tol.get("value", "")) == str(taint["value"])):
            return True
    return False


def untolerated(pod: dict[str, Any], taints: Iterable[dict[str, str]]) -> list[str]:
    return [f"{t['key']}={t['value']}:{t['effect']}" for t in taints
            if t["effect"] in BLOCKING_EFFECTS and not tolerates(pod.get("tolerations") or [], t)]


def _containers(pod: dict[str, Any], key: str) -> list[dict[str, Any]]:
    containers = pod.get(key)
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def extended_requests(pod: dict[str, Any]) -> dict[str, int]:
    """Extended resources (a domain-prefixed name such as nvidia.com/gpu) one pod asks for:
    containers add up, an init container runs alone; requests default to limits."""
    def per_container(container: dict[str, Any]) -> dict[str, int]:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {k: _int(v) or 0 for k, v in merged.items() if "/" in k and not k.startswith(("kubernetes.io/", "hugepages-"))}

    total: dict[str, int] = {}
    for container in _containers(pod, "containers"):
        for name, count in per_container(container).items():
            total[name] = total.get(name, 0) + count
    for container in _containers(pod, "initContainers"):
        for name, count in per_container(container).items():
            total[name] = max(total.get(name, 0), count)
    return {k: v for k, v in total.items() if v > 0}


# --- pods: the awaited workloads ----------------------------------------------------------------

@dataclass
class Workload:
    resource: dict[str, Any]
    kind: str
    pod: dict[str, Any]
    pods: int  # pods running at once at first deploy
    requests: dict[str, int]  # per pod
    priority: Optional[int]
    priority_source: str
    candidates: list[str] = field(default_factory=list)  # node groups it can run on

    @property
    def urn(self) -> str:
        return self.resource["urn"]

    @property
    def namespace(self) -> str:
        return _meta(self.resource).get("namespace") or "default"

    @property
    def title(self) -> str:
        return _object_title(self.kind, self.resource)

    def demand(self, resource: str) -> int:
        return self.pods * self.requests.get(resource, 0)


def priority_classes(plan: Plan) -> tuple[dict[str, Optional[int]], Optional[tuple[str, Optional[int]]]]:
    """PriorityClass name -> value, and the global default class if one is declared."""
    classes: dict[str, Optional[int]] = dict(BUILTIN_PRIORITY)
    default = None
    for resource in plan.of_type(PRIORITY_CLASS):
        name = _meta(resource).get("name", resource["name"])
        classes[name] = _int(_inputs(resource).get("value"))
        if _inputs(resource).get("globalDefault") is True:
            default = (name, classes[name])
    return classes, default


def pod_priority(pod: dict[str, Any], classes: dict[str, Optional[int]], default: Optional[tuple[str, Optional[int]]]) -> tuple[Optional[int], str]:
    name = pod.get("priorityClassName")
    if name:
        return classes.get(name), name if name in classes else f"{name} (not in the plan)"
    if default:
        return default[1], f"{default[0]} (globalDefault)"
    return 0, "no priorityClassName: 0"


def _first_deploy_pods(resource: dict[str, Any], kind: str, hpas: dict[tuple[str, str, str], Any]) -> int:
    """Pods at once at first deploy: replicas (1 by default) raised to an HPA's minReplicas; a
    Job's parallelism (1 by default), no more than its completions."""
    spec = _inputs(resource).get("spec") or {}
    if kind == "Job":
        parallelism = _int(spec.get("parallelism", 1)) or 1
        completions = _int(spec.get("completions"))
        return min(parallelism, completions) if completions else parallelism
    meta = _meta(resource)
    replicas = _int(spec.get("replicas", 1))
    replicas = 1 if replicas is None else replicas
    hpa_min = _int(hpas.get((meta.get("namespace") or "default", kind, meta.get("name", "")), 0)) or 0
    return max(replicas, hpa_min)


def workloads(plan: Plan) -> list[Workload]:
    classes, default = priority_classes(plan)
    hpas = {}
    for hpa in plan.of_type(*HPA_TYPES):
        target = _get(_inputs(hpa), "spec", "scaleTargetRef") or {}
        hpas[(_meta(hpa).get("namespace") or "default", target.get("kind"), target.get("name"))] = _get(_inputs(hpa), "spec", "minReplicas", default=1)
    found = []
    for resource in plan.of_type(*WORKLOAD_TYPES):
        kind = WORKLOAD_TYPES[resource["type"]]
        pod = _get(_inputs(resource), "spec", "template", "spec") or {}
        priority, source = pod_priority(pod, classes, default)
        found.append(Workload(resource, kind, pod, _first_deploy_pods(resource, kind, hpas), extended_requests(pod), priority, source))
    return found


# --- rule: placement ----------------------------------------------------------------------------

def _pool_refusal(w: Workload, pool: Pool) -> tuple[Optional[str], bool]:
    """Why a node of the pool cannot run the pod (None if it can), and whether that is certain."""
    selected = selects(w.pod, pool.node_labels())
    if selected is False:
        return f"{pool.name} (labels {_labels(pool.labels)}) is not selected", True
    bad = untolerated(w.pod, pool.taints)
    if bad:
        return f"{pool.name}'s taint {', '.join(bad)} is not tolerated", True
    for resource, count in sorted(w.requests.items()):
        per_node, _ = pool.advertised(resource)
        if per_node is not None and per_node < count:
            return f"a node of {pool.name} has {per_node} {resource}, a pod asks {count}", True
    return None, selected is True and pool.known


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def check_placement(w: Workload, node_groups: list[Pool]) -> list[Finding]:
    """Its pods select, tolerate and fit (extended resources per node) at least one node group."""
    if not w.pod or any(_unknown(w.pod.get(key)) for key in ("nodeSelector", "tolerations", "affinity")):
        return [Finding(WARN, "placement", "the pod's scheduling fields are unknown at preview")]
    refusals, uncertain = [], []
    for pool in node_groups:
        reason, certain = _pool_refusal(w, pool)
        if reason:
            refusals.append(reason)
        else:
            w.candidates.append(pool.name)
            if not certain:
                uncertain.append(pool.name)
    findings = []
    if w.priority_source.endswith("(not in the plan)"):
        findings.append(Finding(WARN, "placement", f"PriorityClass {w.pod.get('priorityClassName')} is not created by this stack: "
                                "pods naming a missing class are rejected", "create the PriorityClass in the stack or fix the name"))
    if not w.candidates:
        wants = f"nodeSelector {_labels(w.pod.get('nodeSelector') or {})}, requests {_labels({k: str(v) for k, v in w.requests.items()})}"
        return findings + [Finding(FAIL, "placement", f"no node group can run its pods ({wants}): " + "; ".join(refusals),
                                   "make the pod's nodeSelector/affinity and tolerations match a node group's labels and taints, "
                                   "or add a node group that has them and the resources it requests")]
    status = WARN if len(uncertain) == len(w.candidates) else OK
    note = f" (depends on labels the plan cannot see: {', '.join(uncertain)})" if status == WARN else ""
    return findings + [Finding(status, "placement", f"runs on {', '.join(w.candidates)}{note}")]


# --- rule: scale-up from zero -------------------------------------------------------------------

def _karpenter_problems(w: Workload, pool: Pool, controller: Optional[str]) -> list[Finding]:
    """What keeps Karpenter from launching a node of the NodePool for the pod: no controller, a
    limit below one node, no allowed type with the GPUs asked for. Labels and taints were matched
    by placement (the NodePool's template is the node). No priority cut-off: Karpenter provisions
    for every pod kube-scheduler marks Unschedulable (kubernetes-sigs/karpenter v1.14.0
    pkg/utils/pod/scheduling.go `IsProvisionable`)."""
    if controller is None:
        return [Finding(FAIL, "scale-up", f"NodePool {pool.name} starts with no nodes and the stack installs no Karpenter controller",
                        "install Karpenter (gpuProvisioner: karpenter) or use node groups")]
    found = []
    if pool.max_size is not None and pool.max_size < 1:
        found.append(Finding(FAIL, "scale-up", f"NodePool {pool.name}'s nvidia.com/gpu limit holds no node of its type",
                             f"raise {pool.name}'s maxSize"))
    for resource, count in sorted(w.requests.items()):
        per_node, source = pool.advertised(resource)
        if per_node is None or per_node < count:
            found.append(Finding(FAIL, "scale-up", f"NodePool {pool.name} allows no instance type with {count} {resource} "
                                 f"({per_node or 0} per node, {source})", "allow an instance type with enough GPUs"))
    return found


def _scale_up_problems(w: Workload, pool: Pool, scaler: Optional[Autoscaler], controller: Optional[str] = None) -> list[Finding]:
    """What keeps cluster-autoscaler from adding a node of `pool` for the pod (FAQ.md, aws/README.md)."""
    if pool.karpenter:
        return _karpenter_problems(w, pool, controller)
    if scaler is None:
        return [Finding(FAIL, "scale-up", f"{pool.name} starts with 0 nodes and the stack installs no cluster-autoscaler: nothing adds a node",
                        f"raise {pool.name}'s desiredSize or enable the cluster-autoscaler")]
    found = []
    if pool.max_size == 0:
        found.append(Finding(FAIL, "scale-up", f"{pool.name} has maxSize 0", f"raise {pool.name}'s maxSize"))
    missing = [t for t in scaler.discovery_tags if t not in pool.asg_tags]
    if not scaler.discovery_tags:
        found.append(Finding(WARN, "scale-up", "the autoscaler has no ASG auto-discovery; the plan cannot tell whether it manages " + pool.name))
    elif missing:
        found.append(Finding(FAIL, "scale-up", f"{pool.name}'s Auto Scaling group lacks the discovery tag(s) {', '.join(missing)}: the autoscaler never manages it",
                             "tag the node group's Auto Scaling group with them (aws:autoscaling/tag:Tag)"))
    found += _priority_problems(w, scaler)
    found += _template_problems(w, pool)
    return found


def _priority_problems(w: Workload, scaler: Autoscaler) -> list[Finding]:
    if w.priority is None or scaler.cutoff is None:
        return [Finding(WARN, "scale-up", f"pod priority ({w.priority_source}) or the autoscaler's cut-off is unknown at preview")]
    if w.priority < scaler.cutoff:
        return [Finding(FAIL, "scale-up",
                        f"pod priority {w.priority} ({w.priority_source}) is below the autoscaler's expendable cut-off {scaler.cutoff} "
                        f"({scaler.cutoff_source}): such pods never trigger a scale-up, and its node group starts with 0 nodes",
                        f"give the pods a PriorityClass with value >= {scaler.cutoff}, or make them wait for a workload that brings "
                        "a node up (depend on it), or start the node group with a node (desiredSize)")]
    return []


def _template_problems(w: Workload, pool: Pool) -> list[Finding]:
    """The node template must advertise the resources, carry the labels and only taints the pod tolerates."""
    found = []
    for resource, count in sorted(w.requests.items()):
        per_node, source = pool.advertised(resource)
        tag = f"{TEMPLATE}resources/{resource}"
        if per_node is None or per_node < count:
            found.append(Finding(FAIL, "scale-up", f"{pool.name}'s node template advertises {per_node or 0} {resource} (source: {source}), "
                                 f"a pod asks {count}: the autoscaler never adds a node for it", f"tag the Auto Scaling group {tag}: <per node>"))
        elif source != "ASG tag":
            found.append(Finding(WARN, "scale-up", f"{resource} per node comes from the {source}, not the ASG tag {tag}", f"tag the Auto Scaling group {tag}"))
    selected = selects(w.pod, pool.template_labels(with_nodegroup=False))
    if selected is not True:
        via_nodegroup = selects(w.pod, pool.template_labels(with_nodegroup=True))
        if via_nodegroup is True:
            found.append(Finding(WARN, "scale-up", f"the pod's node labels are on {pool.name} but not in its ASG label tags; "
                                 "the autoscaler learns them only through EKS DescribeNodegroup",
                                 f"tag the Auto Scaling group {TEMPLATE}label/<key>: <value>"))
        else:
            found.append(Finding(FAIL if via_nodegroup is False else WARN, "scale-up",
                                 f"{pool.name}'s node template labels ({_labels(pool.template_labels(True))}) do not satisfy the pod's nodeSelector/affinity",
                                 f"tag the Auto Scaling group {TEMPLATE}label/<key>: <value>"))
    bad = untolerated(w.pod, pool.template_taints())
    if bad:
        found.append(Finding(FAIL, "scale-up", f"{pool.name}'s node template taint {', '.join(bad)} is not tolerated by the pod",
                             "tolerate the taint or fix the template's taint tag"))
    return found


def check_scale_up(w: Workload, by_name: dict[str, Pool], scaler: Optional[Autoscaler],
                   controller: Optional[str] = None) -> list[Finding]:
    """A pod whose node groups all start with 0 nodes runs only once the autoscaler adds one."""
    candidates = [by_name[name] for name in w.candidates]
    if not candidates:
        return []
    if any(p.desired is None for p in candidates):
        return [Finding(WARN, "scale-up", "a node group's desiredSize is unknown at preview")]
    if any(p.desired > 0 for p in candidates):
        return []  # nodes exist from the start; the capacity rule checks they suffice
    outcomes = {p.name: _scale_up_problems(w, p, scaler, controller) for p in candidates}
    viable = [name for name, found in outcomes.items() if not any(f.status == FAIL for f in found)]
    if viable and by_name[viable[0]].karpenter:
        return outcomes[viable[0]] + [Finding(OK, "scale-up", f"NodePool {viable[0]} starts with no nodes; Karpenter launches "
                                              f"one ({controller}; no priority cut-off)")]
    if viable:
        name = viable[0]
        advertises = f", node template advertises {_labels({k: str(v) for k, v in w.requests.items()})}" if w.requests else ""
        return outcomes[name] + [Finding(OK, "scale-up", f"{name} starts with 0 nodes; the autoscaler adds one (priority {w.priority} "
                                         f">= cut-off {scaler.cutoff if scaler else '?'}{advertises})")]
    return [f for found in outcomes.values() for f in found]


# --- rule: GPU peak against node group maxima and quotas ----------------------------------------

def concurrent(a: Workload, b: Workload, plan: Plan) -> bool:
    """Two workloads hold resources at the same time unless one is a Job the other depends on:
    the engine creates a dependent only after the Job completed, and a completed pod holds no
    node resources and counts in no quota."""
    if a.kind == "Job" and a.urn in plan.deps(b.urn):
        return False
    if b.kind == "Job" and b.urn in plan.deps(a.urn):
        return False
    return True


def heaviest_concurrent(items: list[Workload], weight, plan: Plan) -> list[Workload]:
    """The set of workloads running at once with the largest total weight (maximum-weight clique
    of the 'runs at the same time' graph; Bron-Kerbosch, the sets here are small)."""
    items = [w for w in items if weight(w) > 0]
    together = {w.urn: {o.urn for o in items if o.urn != w.urn and concurrent(w, o, plan)} for w in items}
    by_urn = {w.urn: w for w in items}
    best: list[str] = []

    def total(urns: Iterable[str]) -> int:
        return sum(weight(by_urn[u]) for u in urns)

    def expand(clique: list[str], candidates: set[str], excluded: set[str]) -> None:
        nonlocal best
        if not candidates and not excluded:
            if total(clique) > total(best):
                best = list(clique)
            return
        for urn in sorted(candidates):
            expand(clique + [urn], candidates & together[urn], excluded & together[urn])
            candidates = candidates - {urn}
            excluded = excluded | {urn}

    expand([], set(by_urn), set())
    return [by_urn[u] for u in best]


def nodes_needed(pod_sizes: list[int], per_node: int) -> int:
    """Nodes to hold these pods (first-fit decreasing: what the scheduler can at best achieve)."""
    free: list[int] = []
    for size in sorted(pod_sizes, reverse=True):
        for i, room in enumerate(free):
            if room >= size:
                free[i] -= size
                break
        else:
            free.append(per_node - size)
    return len(free)


def left_pending(clique: list[Workload], fits) -> list[Workload]:
    """Who stays Pending when the peak does not fit: the scheduler places higher-priority pods
    first (and they may preempt lower ones); within a priority, who wins is a race, so the whole
    tier that no longer fits, and every tier below it, is at risk."""
    placed: list[Workload] = []
    for priority in sorted({w.priority or 0 for w in clique}, reverse=True):
        tier = [w for w in clique if (w.priority or 0) == priority]
        if not fits(placed + tier):
            return [w for w in clique if w not in placed]
        placed += tier
    return []


def _pool_peak(resource: str, group: tuple[str, ...], members: list[Workload], by_name: dict[str, Pool], plan: Plan) -> tuple[Optional[Peak], list[Workload]]:
    """The group's peak and the workloads left Pending at it."""
    clique = heaviest_concurrent(members, lambda w: w.demand(resource), plan)
    if not clique:
        return None, []
    peak = sum(w.demand(resource) for w in clique)
    pools_ = [by_name[n] for n in group]
    per_node = [p.advertised(resource)[0] for p in pools_]
    names, scope = [w.title for w in clique], f"pool {'+'.join(group)}"
    if any(n is None for n in per_node) or any(p.max_size is None for p in pools_):
        return Peak(scope, resource, peak, None, "per-node count or maxSize unknown at preview", names, WARN), []
    limit = sum(p.max_size * n for p, n in zip(pools_, per_node))
    if len(pools_) == 1:
        def fits(ws: list[Workload]) -> bool:
            return nodes_needed([w.requests[resource] for w in ws for _ in range(w.pods)], per_node[0]) <= pools_[0].max_size
        detail = f"needs {nodes_needed([w.requests[resource] for w in clique for _ in range(w.pods)], per_node[0])} node(s) of {per_node[0]}; maxSize {pools_[0].max_size}"
    else:
        def fits(ws: list[Workload]) -> bool:
            return sum(w.demand(resource) for w in ws) <= limit
        detail = " + ".join(f"{p.name} {p.max_size} x {n}" for p, n in zip(pools_, per_node))
    pending = left_pending(clique, fits)
    return Peak(scope, resource, peak, limit, detail, names, FAIL if pending else OK), pending


def check_capacity(ws: list[Workload], by_name: dict[str, Pool], plan: Plan) -> tuple[dict[str, list[Finding]], list[Peak]]:
    """Extended resources at the first deploy's peak against each node group's maxSize x per node."""
    findings: dict[str, list[Finding]] = {}
    peaks = []
    for resource in sorted({r for w in ws for r in w.requests}):
        users = [w for w in ws if resource in w.requests and w.candidates]
        for group in sorted({tuple(sorted(w.candidates)) for w in users}):
            members = [w for w in users if set(w.candidates) <= set(group)]
            peak, pending = _pool_peak(resource, group, members, by_name, plan)
            if peak is None:
                continue
            peaks.append(peak)
            for w in pending:
                findings.setdefault(w.urn, []).append(Finding(
                    FAIL, "capacity", f"{resource} at the peak of the first deploy: {peak.peak} ({', '.join(peak.workloads)} at once) "
                    f"do not fit pool {'+'.join(group)} ({peak.detail}); higher-priority pods are placed first, and this one "
                    f"(priority {w.priority}) can be left Pending",
                    f"raise maxSize of {' / '.join(group)}, or order the workloads (a Job another workload depends on "
                    "finishes before it starts), or request fewer"))
    return findings, peaks


def check_quotas(ws: list[Workload], plan: Plan) -> tuple[dict[str, list[Finding]], list[Peak]]:
    """`requests.<extended resource>` quotas: pods beyond it are refused at creation."""
    findings: dict[str, list[Finding]] = {}
    peaks = []
    for quota in plan.of_type(QUOTA):
        spec = _inputs(quota).get("spec") or {}
        namespace = _meta(quota).get("namespace") or "default"
        if spec.get("scopes") or spec.get("scopeSelector"):
            continue  # a scoped quota applies to some pods only: not evaluated
        for key, hard in sorted((spec.get("hard") or {}).items()):
            match = re.fullmatch(r"(?:requests|limits)\.(.+/.+)", key)
            if not match:
                continue
            resource = match.group(1)
            users = [w for w in ws if w.namespace == namespace and resource in w.requests]
            clique = heaviest_concurrent(users, lambda w: w.demand(resource), plan)
            peak, limit = sum(w.demand(resource) for w in clique), _int(hard)
            status = WARN if limit is None else (OK if peak <= limit else FAIL)
            names = [w.title for w in clique]
            peaks.append(Peak(f"namespace {namespace}", resource, peak, limit, f"ResourceQuota {_meta(quota).get('name')} {key}", names, status))
            if status == FAIL:
                for w in clique:
                    findings.setdefault(w.urn, []).append(Finding(
                        FAIL, "quota", f"{resource} at the peak of the first deploy in namespace {namespace}: {peak} ({', '.join(names)} at once) "
                        f"> quota {key}={limit}: the pod beyond it is refused (exceeded quota)",
                        f"raise the namespace's GPU quota to {peak} or run fewer at once"))
    return findings, peaks


# --- rule: models Triton loads at start ---------------------------------------------------------

def _flags(argv: list[Any]) -> list[tuple[str, str]]:
    """`--name=value` and `--name value` pairs of a command line."""
    found, i = [], 0
    while i < len(argv):
        arg = str(argv[i])
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
            elif i + 1 < len(argv) and not str(argv[i + 1]).startswith("-"):
                name, value = arg[2:], str(argv[i + 1])
                i += 1
            else:
                name, value = arg[2:], ""
            found.append((name, value))
        i += 1
    return found


def _s3_location(repository: str) -> Optional[tuple[str, str]]:
    """s3://bucket/prefix or s3://host:port/bucket/prefix (Triton's S3 repository forms)."""
    match = re.fullmatch(r"s3://(?:[^/]+:\d+/)?([^/]+)/?(.*)", repository)
    return (match.group(1), match.group(2).strip("/")) if match else None


def _model_finding(model: str, repositories: list[str], plan: Plan) -> Finding:
    objects = [(_inputs(o).get("bucket"), str(_inputs(o).get("key", ""))) for o in plan.of_type(*S3_OBJECTS)]
    buckets = {_inputs(b).get("bucket") for b in plan.of_type("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")}
    created = False
    for repository in repositories:
        location = _s3_location(repository)
        if location is None or not all(_known(part) for part in location):
            continue
        bucket, prefix = location
        created = created or bucket in buckets
        under = f"{prefix}/{model}/" if prefix else f"{model}/"
        keys = sorted(key for b, key in objects if b == bucket and key.startswith(under))
        if keys:
            return Finding(OK, "models", f"{model}: the stack puts s3://{bucket}/{keys[0]}")
    fresh = (" This stack creates the bucket, so on a new account it starts with only what the stack puts there: unless the "
             "model is published while `pulumi up` waits, the first deploy fails." if created else "")
    return Finding(WARN, "models",
                   f"Triton must load {model} at start (--model-control-mode=explicit --load-model={model}) and exits when it cannot "
                   f"(--exit-on-error defaults to true), so the Deployment never becomes ready; nothing in the stack puts {model} under "
                   f"{' or '.join(repositories) or 'its model repository'}, and the plan cannot see the bucket.{fresh}",
                   "publish the model before deploying (platformctl models push; platformctl preflight checks the bucket), "
                   "or start without --load-model and load it later")


_S3_READ = re.compile(r"head-object --bucket '?([^' ]+)'? --key '?([^' ]+)'?")


def objects_read_at_start(w: Workload) -> list[tuple[str, str]]:
    """(bucket, key) a pod's init containers wait for with `aws s3api head-object` (a TensorRT
    build's source ONNX: components/model_builds.fetch_script)."""
    found = []
    for container in _containers(w.pod, "initContainers"):
        script = " ".join(str(a) for key in ("command", "args") if isinstance(container.get(key), list) for a in container[key])
        found += _S3_READ.findall(script)
    return found


def _source_finding(bucket: str, key: str, plan: Plan) -> Finding:
    """A build Job waits (a bounded time) for its source; the plan sees only what the stack puts there.
    An upload from a local file (`modelBuilds[].sourceFile`, plan.json `{"fileAsset", "exists"}`)
    whose file is missing where the plan ran: `pulumi preview`/`up` refuse to start without it."""
    uploads = [o for o in plan.of_type(*S3_OBJECTS) if (_inputs(o).get("bucket"), _inputs(o).get("key")) == (bucket, key)]
    if uploads:
        source = _inputs(uploads[0]).get("source")
        if isinstance(source, dict) and source.get("exists") is False:
            path = source.get("fileAsset")
            return Finding(WARN, "models",
                           f"the stack uploads the source s3://{bucket}/{key} from {path} (modelBuilds[].sourceFile), which does "
                           "not exist here: `pulumi preview` and `pulumi up` refuse to start without it",
                           f"{producer_hint(str(path))} (needed before `pulumi preview` / `pulumi up`)")
        return Finding(OK, "models", f"the stack puts the source s3://{bucket}/{key}")
    return Finding(WARN, "models",
                   f"waits for s3://{bucket}/{key}, which nothing in the stack puts there: on a new account the bucket is created "
                   "by this same `pulumi up`, so the Job fails after its wait unless the source is uploaded meanwhile",
                   f"upload it once the bucket exists (aws s3 cp model.onnx s3://{bucket}/{key}; README, TensorRT builds); "
                   "platformctl preflight checks it")


def models_loaded_at_start(w: Workload) -> list[tuple[str, list[str]]]:
    """Models a container must load at start: (model, repositories) for explicit model control."""
    wanted = []
    for container in _containers(w.pod, "containers"):
        argv = [a for key in ("command", "args") if isinstance(container.get(key), list) for a in container[key]]
        flags = _flags(argv)
        modes = [value for name, value in flags if name == "model-control-mode"]
        if not modes or modes[-1] != "explicit":
            continue
        repositories = [value for name, value in flags if name == "model-repository"]
        wanted += [(value, repositories) for name, value in flags if name == "load-model" and value != "*"]
    return wanted


# --- rule: the Kubernetes API is reachable by the deployer --------------------------------------

def _admits_https(rule: dict[str, Any]) -> bool:
    inputs = _inputs(rule)
    protocol = str(inputs.get("ipProtocol", "")).lower()
    if protocol in ("-1", "all"):
        return True
    low, high = _int(inputs.get("fromPort")), _int(inputs.get("toPort"))
    return protocol in ("tcp", "6") and (low is None or low <= 443) and (high is None or high >= 443)


def _rule_source(rule: dict[str, Any]) -> str:
    inputs = _inputs(rule)
    for key in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId"):
        if inputs.get(key) is not None:
            return f"{key} {inputs[key]}"
    return "an unnamed source"


def _placeholder(cidr: str) -> bool:
    """An RFC 5737 documentation range: a placeholder nobody deploys from (stack_config refuses it
    at `pulumi up`, so this is a warning, not a deadlock)."""
    try:
        return any(ipaddress.IPv4Network(cidr).subnet_of(r) for r in DOCUMENTATION_RANGES)
    except (ValueError, TypeError):
        return False


def check_endpoint(plan: Plan) -> Step:
    """The Kubernetes provider reaches the API from where `pulumi up` runs: a public endpoint (from
    publicAccessCidrs) or, private-only, through security group rules `cluster-api-access-*` on 443."""
    clusters = plan.of_type(CLUSTER)
    step = Step(clusters[0]["urn"] if clusters else "", clusters[0]["name"] if clusters else "", "Kubernetes API endpoint",
                "every Kubernetes object: the provider calls the API from where `pulumi up` runs")
    if not clusters:
        step.findings.append(Finding(OK, "api-endpoint", "no EKS cluster in this stack"))
        return step
    vpc = _inputs(clusters[0]).get("vpcConfig") or {}
    public, private = vpc.get("endpointPublicAccess", True), vpc.get("endpointPrivateAccess", False)
    cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
    rules = [r for r in plan.of_type(INGRESS_RULE) if r["name"].startswith(API_ACCESS_RULE_PREFIX)]
    admitting = [r for r in rules if _admits_https(r)]
    fix = ("either set cluster.endpointPublicAccess true with cluster.publicAccessCidrs listing the deployers' CIDRs, or admit the deployer "
           "(its CIDRs, or the security group of a runner in the VPC) on 443 to the cluster security group "
           f"(security group ingress rules named {API_ACCESS_RULE_PREFIX}-*)")
    if not _known(public) or (public is True and not _known(cidrs)):
        step.findings.append(Finding(WARN, "api-endpoint", "endpoint access is unknown at preview"))
    elif public is True and all(_placeholder(c) for c in cidrs):
        step.findings.append(Finding(WARN, "api-endpoint", f"public endpoint admits only documentation placeholder(s) {', '.join(cidrs)} "
                                     "(RFC 5737): `pulumi up` and `platformctl preflight` refuse them before anything is created",
                                     "set cluster.publicAccessCidrs to the deployers' egress CIDRs"))
    elif public is True:
        step.findings.append(Finding(OK, "api-endpoint", f"public endpoint, reachable from {', '.join(cidrs)}: run `pulumi up` from there"))
    elif private is not True:
        step.findings.append(Finding(FAIL, "api-endpoint", "neither public nor private endpoint access: EKS refuses it", fix))
    elif admitting:
        step.findings.append(Finding(OK, "api-endpoint", "private endpoint; port 443 admitted from " + ", ".join(_rule_source(r) for r in admitting)))
    else:
        what = f"{len(rules)} {API_ACCESS_RULE_PREFIX} rule(s), none admitting TCP 443" if rules else "no access path"
        step.findings.append(Finding(FAIL, "api-endpoint",
                                     f"private-only endpoint and {what}: the cluster security group admits only itself, so no laptop, "
                                     "hosted runner or runner in the VPC reaches the API and `pulumi up` fails at the first Kubernetes object", fix))
    return step


# --- steps and their order ----------------------------------------------------------------------

def release_step(release: dict[str, Any], node_groups: list[Pool]) -> Step:
    """A Helm release waits (Helm --wait) for its objects unless skipAwait. Its pods are not in the
    plan; only the chart's conventional top-level `nodeSelector`/`tolerations` values are checked."""
    inputs = _inputs(release)
    timeout = _int(inputs.get("timeout")) or HELM_DEFAULT_TIMEOUT
    waits = ("not awaited (skipAwait)" if inputs.get("skipAwait") is True
             else f"Helm --wait: the chart's pods, PVCs, Services and workloads ready, timeout {timeout} s")
    title = f"Release {inputs.get('namespace') or 'default'}/{inputs.get('name') or release['name']} ({inputs.get('chart')} {inputs.get('version', '')})".rstrip()
    step = Step(release["urn"], release["name"], title.replace(" )", ")"), waits)
    values = inputs.get("values") or {}
    pod = {"nodeSelector": values.get("nodeSelector"), "tolerations": values.get("tolerations")}
    if not isinstance(pod["nodeSelector"], dict) or not pod["nodeSelector"] or _unknown(pod):
        step.findings.append(Finding(OK, "placement", "the chart's pods are not in the plan: not checked"))
        return step
    fits = [p for p in node_groups if selects(pod, p.node_labels()) is not False and not untolerated(pod, p.taints)]
    if not fits:
        step.findings.append(Finding(WARN, "placement", f"values.nodeSelector {_labels(pod['nodeSelector'])} selects no node group "
                                     "(if the chart applies it to its pods, they stay Pending)", "match a node group's labels"))
    elif all(p.desired == 0 for p in fits):
        step.findings.append(Finding(WARN, "placement", f"values.nodeSelector selects only node groups that start with 0 nodes ({', '.join(p.name for p in fits)})"))
    else:
        step.findings.append(Finding(OK, "placement", f"values.nodeSelector {_labels(pod['nodeSelector'])} -> {', '.join(p.name for p in fits)}"))
    return step


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


def go_duration_seconds(text: Any) -> Optional[int]:
    """Seconds of a Go duration string as the engine reads a customTimeouts value ("2100s", "1h30m");
    None when absent or not a duration."""
    if not isinstance(text, str) or not text or _GO_DURATION.sub("", text):
        return None
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return int(sum(float(n) * scale[unit] for n, unit in _GO_DURATION.findall(text)))


def await_timeout(resource: dict[str, Any], kind: str) -> int:
    """How long the provider waits on create: the `customTimeouts` option first, then the
    `pulumi.com/timeoutSeconds` annotation, then the kind's default (pulumi/pulumi-kubernetes
    `provider/pkg/metadata/overrides.go` TimeoutDuration; defaults in `provider/pkg/await`)."""
    custom = go_duration_seconds((resource.get("customTimeouts") or {}).get("create"))
    annotated = _int((_meta(resource).get("annotations") or {}).get(TIMEOUT_SECONDS))
    return custom or annotated or DEFAULT_TIMEOUT[kind]


def workload_step(w: Workload) -> Step:
    """What the provider waits for and how long (`await_timeout`)."""
    annotations = _meta(w.resource).get("annotations") or {}
    limit = f"timeout {await_timeout(w.resource, w.kind)} s"
    if str(annotations.get(SKIP_AWAIT, "")).lower() == "true":
        waits = "not awaited (pulumi.com/skipAwait)"
    elif w.kind == "Job":
        waits = f"the Job completes, {limit}"
    else:
        waits = f"{w.pods} pod(s) ready, {limit}"
    return Step(w.urn, w.resource["name"], w.title, waits)


def in_order(steps: dict[str, Step], plan: Plan) -> list[Step]:
    """Dependencies first (the engine's order); otherwise as the plan lists them."""
    remaining = sorted(steps, key=lambda u: plan.position.get(u, 0))
    done: set[str] = set()
    ordered = []
    while remaining:
        ready = next((u for u in remaining if not (plan.deps(u) & steps.keys()) - done), remaining[0])
        ordered.append(steps[ready])
        done.add(ready)
        remaining.remove(ready)
    return ordered


def check(doc: dict[str, Any]) -> Report:
    """The first-deploy check over a plan (plan.json's shape)."""
    plan = Plan(doc)
    node_groups, scaler, ws = pools(plan) + node_pools(plan), autoscaler(plan), workloads(plan)
    controller = karpenter_controller(plan)
    by_name = {p.name: p for p in node_groups}
    steps: dict[str, Step] = {}
    for w in ws:
        step = steps[w.urn] = workload_step(w)
        step.findings += check_placement(w, node_groups)
        step.findings += check_scale_up(w, by_name, scaler, controller)
        step.findings += [_model_finding(model, repos, plan) for model, repos in models_loaded_at_start(w)]
        step.findings += [_source_finding(bucket, key, plan) for bucket, key in objects_read_at_start(w)]
    capacity, pool_peaks = check_capacity(ws, by_name, plan)
    quotas, quota_peaks = check_quotas(ws, plan)
    for urn, found in [*capacity.items(), *quotas.items()]:
        steps[urn].findings += found
    for step in steps.values():
        if step.waits.startswith("not awaited"):  # `pulumi up` does not hang on it
            step.findings = [Finding(WARN, f.rule, f"not awaited: {f.message}", f.fix) if f.status == FAIL else f for f in step.findings]
    for release in plan.of_type(RELEASE):
        steps[release["urn"]] = release_step(release, node_groups)
    return Report([check_endpoint(plan), *in_order(steps, plan)], pool_peaks + quota_peaks)


# --- output -------------------------------------------------------------------------------------

def render(report: Report) -> list[tuple[str, str]]:
    """Lines with their status: what `pulumi up` waits for, in order, each ok / warn / FAIL."""
    lines = [("", f"First deploy: {len(report.steps)} step(s) `pulumi up` waits for, in order (checked from the plan alone)")]
    for i, step in enumerate(report.steps, 1):
        lines.append((step.status, f"{i:>2}. {step.status:<4}  {step.title}  [{step.waits}]"))
        for f in step.findings:
            lines.append((f.status, f"        {f.status:<4}  {f.rule}: {f.message}"))
            if f.fix and f.status != OK:
                lines.append((f.status, f"              fix: {f.fix}"))
    if report.peaks:
        lines.append(("", "GPUs at the peak of the first deploy (workloads running at once, by the dependency graph):"))
        for p in report.peaks:
            limit = "unknown" if p.limit is None else str(p.limit)
            lines.append((p.status, f"    {p.status:<4}  {p.scope}: {p.resource} {p.peak} of {limit} ({p.detail}): {', '.join(p.workloads)}"))
    failing, warnings = sum(1 for s in report.steps if s.status == FAIL), report.count(WARN)
    verdict = (f"{failing} step(s) can certainly not finish: the first `pulumi up` would fail (exit {EXIT_DEADLOCK})" if failing
               else "every awaited step can finish")
    lines.append((FAIL if failing else OK, f"Result: {verdict}; {warnings} warning(s) (unknown at preview)."))
    return lines


STYLES = {FAIL: "red", WARN: "yellow", OK: "", "": "bold"}


def plan_section(run: Any, config: Any, plan_doc: dict, console: Any, markdown: bool) -> tuple[str, int]:
    """`platformctl plan` hook: print the first-deploy walk under the resource tree; exit
    EXIT_DEADLOCK when a step can certainly not finish."""
    from rich.text import Text

    report = check(plan_doc)
    lines = render(report)
    if not markdown:
        for status, line in lines:
            console.print(Text(line, style=STYLES.get(status, "")), soft_wrap=True)
    return "```\n" + "\n".join(line for _, line in lines) + "\n```", report.exit_code
