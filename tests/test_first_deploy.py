"""The first-deploy check (`platformctl/first_deploy.py`): each rule on small synthetic plans, in a
variant that deadlocks and one that converges, then on the real stacks' plans.

Upstream behaviour the rules encode (each test names the one it relies on):
- [await] pulumi/pulumi-kubernetes `provider/pkg/await/awaiters.go` (Deployment, StatefulSet, Job
  awaited; a Job until complete, `await/job.go`), `provider/pkg/metadata/overrides.go`
  (`pulumi.com/skipAwait`), `provider/pkg/provider/helm_release.go` (`client.Wait = !skipAwait`,
  default timeout 300 s); main after v4.32.0.
- [cutoff] kubernetes/autoscaler tag cluster-autoscaler-1.33.0 `cluster-autoscaler/FAQ.md` ("How does
  Cluster Autoscaler work with Pod Priority and Preemption?": pods below the cut-off don't trigger
  scale-ups) and `cluster-autoscaler/config/flags/flags.go` (`expendable-pods-priority-cutoff`, -10).
- [template] same tag, `cloudprovider/aws/README.md` (node-template label/taint/resources tags are
  required to scale from 0) and `cloudprovider/aws/aws_manager.go` `buildNodeFromTemplate`
  (nvidia.com/gpu from the instance type; EKS managed node group labels/taints added).
- [discovery] kubernetes/autoscaler tag cluster-autoscaler-chart-9.46.6 `charts/cluster-autoscaler/values.yaml`
  `autoDiscovery.tags` (`k8s.io/cluster-autoscaler/enabled`, `k8s.io/cluster-autoscaler/<clusterName>`).
- [quota] kubernetes/website `content/en/docs/concepts/policy/resource-quotas.md` (extended resources:
  `requests.` quotas only; terminated pods do not count).
- [triton] triton-inference-server/server `src/command_line_parser.h` (`exit_on_error_{true}`).
- [endpoint] EKS API reference VpcConfigRequest (endpointPublicAccess default true,
  endpointPrivateAccess default false, publicAccessCidrs default 0.0.0.0/0).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from platformctl import first_deploy as fd
from tests.harness import plan, plan_with, stack_values

CLUSTER = "c1"
GPU_LABEL = "ai-platform/gpu-pool"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


# --- a small synthetic plan, in plan.json's shape ----------------------------------------------

def res(type_: str, name: str, inputs: dict[str, Any], deps: list[str] = (), parent: str = "") -> dict[str, Any]:
    return {"urn": f"urn:pulumi:t::ai-platform::{type_}::{name}", "type": type_, "name": name, "parent": parent,
            "dependencies": list(deps), "inputs": inputs}


def urn(doc: dict[str, Any], name: str) -> str:
    return next(r["urn"] for r in doc["resources"] if r["name"] == name)


def node_group(name: str, labels: dict, taints: list, desired: int, max_size: int, types=("g6.xlarge",), min_size=None) -> dict:
    return res(fd.NODE_GROUP, name, {"labels": labels, "taints": taints, "instanceTypes": list(types), "capacityType": "ON_DEMAND",
                                     "scalingConfig": {"minSize": desired if min_size is None else min_size, "desiredSize": desired, "maxSize": max_size}})


def asg_tags(group: dict, tags: dict[str, str]) -> list[dict]:
    return [res(fd.ASG_TAG, f"{group['name']}-{key}", {"autoscalingGroupName": "<computed>", "tag": {"key": key, "value": value}},
                deps=[group["urn"]]) for key, value in tags.items()]


def gpu_pool_tags(pool: str = "inference", gpus: str = "1", resource: str = "nvidia.com/gpu") -> dict[str, str]:
    return {"k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
            f"{fd.TEMPLATE}label/{GPU_LABEL}": pool, f"{fd.TEMPLATE}taint/nvidia.com/gpu": "true:NoSchedule",
            f"{fd.TEMPLATE}resources/{resource}": gpus}


def autoscaler_release(**extra_args: str) -> dict:
    values = {"autoDiscovery": {"clusterName": CLUSTER}, "nodeSelector": {"role": "system"}, "extraArgs": dict(extra_args)}
    return res(fd.RELEASE, "cluster-autoscaler", {"chart": "cluster-autoscaler", "version": "9.46.6", "name": "cluster-autoscaler",
                                                  "namespace": "kube-system", "values": values})


def priority_class(name: str, value: int) -> dict:
    return res(fd.PRIORITY_CLASS, f"pc-{name}", {"kind": "PriorityClass", "metadata": {"name": name}, "value": value})


def gpu_pod(gpus: int = 1, priority: str = "critical", pool: str = "inference", resource: str = "nvidia.com/gpu", **extra: Any) -> dict:
    container = {"name": "main", "image": "x", "resources": {"requests": {resource: str(gpus)}, "limits": {resource: str(gpus)}}}
    return {"containers": [container], "nodeSelector": {GPU_LABEL: pool}, "tolerations": [TOLERATION], "priorityClassName": priority, **extra}


def deployment(name: str, pod: dict, namespace: str = "inference", replicas: int | None = 1, deps=(), annotations=None) -> dict:
    spec = {"template": {"spec": pod}, **({"replicas": replicas} if replicas is not None else {})}
    meta = {"name": name, "namespace": namespace, **({"annotations": annotations} if annotations else {})}
    return res("kubernetes:apps/v1:Deployment", f"{name}-deployment", {"kind": "Deployment", "metadata": meta, "spec": spec}, deps)


def job(name: str, pod: dict, namespace: str = "gpu-operator", deps=()) -> dict:
    return res("kubernetes:batch/v1:Job", name, {"kind": "Job", "metadata": {"name": name, "namespace": namespace},
                                                 "spec": {"template": {"spec": pod}}}, deps)


def quota(namespace: str, hard: dict[str, Any]) -> dict:
    return res(fd.QUOTA, f"quota-{namespace}", {"kind": "ResourceQuota", "metadata": {"name": "gpu-quota", "namespace": namespace},
                                                 "spec": {"hard": hard}})


def eks(**vpc: Any) -> dict:
    return res(fd.CLUSTER, "cluster-eks", {"name": CLUSTER, "vpcConfig": {"subnetIds": "<computed>", **vpc}})


def base(*extra: dict, gpu_desired: int = 0, gpu_max: int = 2, tags: dict | None = None) -> dict[str, Any]:
    """A converging stack: a public endpoint, an untainted system pool with nodes, a tainted GPU
    pool at zero that the autoscaler can scale, the priority classes, plus `extra`."""
    system = node_group("system", {"role": "system"}, [], desired=2, max_size=3, types=("m6i.large",))
    gpu = node_group("gpu-inference", {GPU_LABEL: "inference"}, [GPU_TAINT], desired=gpu_desired, max_size=gpu_max)
    resources = [eks(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"]), system, gpu,
                 *asg_tags(gpu, gpu_pool_tags() if tags is None else tags), autoscaler_release(),
                 priority_class("critical", 100000), priority_class("batch", -100), priority_class("low", -10), *extra]
    return {"stack": "t", "resources": resources, "outputs": {}}


def step(report: fd.Report, title_part: str) -> fd.Step:
    found = [s for s in report.steps if title_part in s.title]
    assert len(found) == 1, [s.title for s in report.steps]
    return found[0]


def rules(s: fd.Step, status: str) -> list[str]:
    return [f.rule for f in s.findings if f.status == status]


# --- the baseline converges; the walk is in dependency order ------------------------------------

def test_a_stack_that_converges_exits_zero_and_lists_every_awaited_step_in_order():
    """[await] Deployments, Jobs and Helm releases are awaited; a dependent starts after them."""
    doc = base(job("validate", gpu_pod(priority="critical")))
    doc["resources"].append(deployment("standard", gpu_pod(), deps=[urn(doc, "validate")]))
    report = fd.check(doc)
    assert report.exit_code == 0, fd.render(report)
    titles = [s.title for s in report.steps]
    assert titles[0] == "Kubernetes API endpoint"
    assert titles.index("Job gpu-operator/validate") < titles.index("Deployment inference/standard")
    assert any(t.startswith("Release kube-system/cluster-autoscaler") for t in titles)
    assert step(report, "Job gpu-operator/validate").waits.startswith("the Job completes")
    assert report.to_json()["steps"][0]["order"] == 1


def test_dependencies_order_the_walk_even_when_listed_later():
    doc = base()
    doc["resources"].append(deployment("late", gpu_pod(), deps=["urn:pulumi:t::ai-platform::kubernetes:batch/v1:Job::first"]))
    doc["resources"].append(job("first", gpu_pod()))
    titles = [s.title for s in fd.check(doc).steps]
    assert titles.index("Job gpu-operator/first") < titles.index("Deployment inference/late")


# --- placement: select and tolerate an existing pool that has the resources ---------------------

@pytest.mark.parametrize("pod, reason", [
    (gpu_pod(pool="training"), "is not selected"),
    ({**gpu_pod(), "tolerations": []}, "nvidia.com/gpu=true:NoSchedule is not tolerated"),
    (gpu_pod(gpus=4), "has 1 nvidia.com/gpu, a pod asks 4"),
    ({**gpu_pod(), "nodeSelector": {}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": GPU_LABEL, "operator": "In", "values": ["llm"]}]}]}}}}, "is not selected"),
])
def test_pods_no_pool_can_run_are_a_deadlock(pod, reason):
    report = fd.check(base(deployment("standard", pod)))
    s = step(report, "Deployment inference/standard")
    assert rules(s, fd.FAIL) == ["placement"] and reason in s.findings[0].message
    assert report.exit_code == fd.EXIT_DEADLOCK and s.findings[0].fix


def test_required_node_affinity_and_untainted_system_pool_place_pods():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": GPU_LABEL, "operator": "In", "values": ["llm"]}]},
        {"matchExpressions": [{"key": GPU_LABEL, "operator": "In", "values": ["inference"]}]}]}}}
    web = {"containers": [{"name": "web", "image": "x"}]}  # no selector, no toleration: the system pool
    report = fd.check(base(deployment("standard", {**gpu_pod(), "nodeSelector": {}, "affinity": affinity}),
                           deployment("web", web, namespace="openwebui")))
    assert report.exit_code == 0
    assert "runs on gpu-inference" in step(report, "inference/standard").findings[0].message
    assert step(report, "openwebui/web").findings[0].message == "runs on system"


# --- scale-up from zero ---------------------------------------------------------------------------

def test_a_pod_below_the_expendable_cutoff_never_scales_a_pool_from_zero():
    """[cutoff] the original dev defect: the validation Job's class is -100, the cut-off -10, and
    its pool starts with 0 nodes, so nothing adds a node for it."""
    report = fd.check(base(job("validate", gpu_pod(priority="batch"))))
    s = step(report, "Job gpu-operator/validate")
    assert rules(s, fd.FAIL) == ["scale-up"]
    assert "priority -100 (batch) is below the autoscaler's expendable cut-off -10 (upstream default)" in s.findings[1].message
    assert report.exit_code == fd.EXIT_DEADLOCK


@pytest.mark.parametrize("priority, extra_args, fails", [
    ("low", {}, False),  # -10 is not below -10: "Nothing changes for pods with priority greater or equal to cutoff"
    ("batch", {fd.CUTOFF_FLAG: "-1000"}, False),  # the release lowers the cut-off
    ("critical", {fd.CUTOFF_FLAG: "200000"}, True),  # ... or raises it above everything
])
def test_the_cutoff_is_read_from_the_autoscaler_release(priority, extra_args, fails):
    """[cutoff][discovery] extraArgs become --<key>=<value> on the autoscaler."""
    doc = base(job("validate", gpu_pod(priority=priority)))
    doc["resources"] = [autoscaler_release(**extra_args) if r["name"] == "cluster-autoscaler" else r for r in doc["resources"]]
    assert ("scale-up" in rules(step(fd.check(doc), "validate"), fd.FAIL)) is fails


def test_a_pool_with_nodes_needs_no_scale_up_for_a_low_priority_pod():
    report = fd.check(base(job("validate", gpu_pod(priority="batch")), gpu_desired=1))
    assert report.exit_code == 0, fd.render(report)


def test_no_autoscaler_or_no_discovery_tag_means_a_pool_at_zero_stays_at_zero():
    """[discovery] the chart discovers ASGs carrying both tags."""
    no_scaler = base(deployment("standard", gpu_pod()))
    no_scaler["resources"] = [r for r in no_scaler["resources"] if r["name"] != "cluster-autoscaler"]
    assert "installs no cluster-autoscaler" in step(fd.check(no_scaler), "standard").findings[1].message
    tags = gpu_pool_tags()
    del tags[f"k8s.io/cluster-autoscaler/{CLUSTER}"]
    s = step(fd.check(base(deployment("standard", gpu_pod()), tags=tags)), "standard")
    assert rules(s, fd.FAIL) == ["scale-up"] and f"k8s.io/cluster-autoscaler/{CLUSTER}" in s.findings[1].message


def test_mig_pods_need_the_mig_resource_in_the_node_template():
    """[template] a mixed-strategy pod asks nvidia.com/mig-<profile>; a template advertising only
    nvidia.com/gpu never scales the pool for it (issue 12 finding 11)."""
    mig = "nvidia.com/mig-1g.10gb"
    deadlock = fd.check(base(deployment("standard", gpu_pod(resource=mig))))
    s = step(deadlock, "standard")
    assert rules(s, fd.FAIL) == ["scale-up"] and f"advertises 0 {mig} (source: none)" in s.findings[1].message
    converges = fd.check(base(deployment("standard", gpu_pod(resource=mig)), tags={**gpu_pool_tags(), f"{fd.TEMPLATE}resources/{mig}": "7"}))
    assert converges.exit_code == 0, fd.render(converges)


def test_gpus_without_the_resource_tag_come_from_the_instance_type_with_a_warning():
    """[template] aws_manager.go sets nvidia.com/gpu from the instance type; the tag overrides."""
    tags = {k: v for k, v in gpu_pool_tags().items() if "/resources/" not in k}
    report = fd.check(base(deployment("standard", gpu_pod()), tags=tags))
    assert report.exit_code == 0 and rules(step(report, "standard"), fd.WARN) == ["scale-up"]


def test_node_template_labels_and_taints_must_admit_the_pod():
    """[template] without the label tag the autoscaler learns the label only through EKS
    DescribeNodegroup (a warning); a template taint the pod does not tolerate blocks it."""
    no_label = {k: v for k, v in gpu_pool_tags().items() if "/label/" not in k}
    report = fd.check(base(deployment("standard", gpu_pod()), tags=no_label))
    assert report.exit_code == 0 and "DescribeNodegroup" in step(report, "standard").findings[1].message
    extra_taint = {**gpu_pool_tags(), f"{fd.TEMPLATE}taint/dedicated": "ml:NoSchedule"}
    s = step(fd.check(base(deployment("standard", gpu_pod()), tags=extra_taint)), "standard")
    assert rules(s, fd.FAIL) == ["scale-up"] and "dedicated=ml:NoSchedule is not tolerated" in s.findings[1].message


# --- the GPU peak: pool maxima and namespace quotas ---------------------------------------------

def test_concurrent_workloads_that_exceed_the_pool_maximum_leave_the_lowest_priority_pending():
    """The dev defect's second half: Triton takes both GPUs (maxSize 2), the Job waits forever."""
    report = fd.check(base(job("validate", gpu_pod(priority="low")), deployment("a", gpu_pod()), deployment("b", gpu_pod())))
    assert rules(step(report, "Job gpu-operator/validate"), fd.FAIL) == ["capacity"]
    assert rules(step(report, "inference/a"), fd.FAIL) == [] == rules(step(report, "inference/b"), fd.FAIL)
    peak, = report.peaks
    assert (peak.scope, peak.peak, peak.limit, peak.status) == ("pool gpu-inference", 3, 2, fd.FAIL)


def test_a_job_the_others_depend_on_is_done_before_they_start():
    """[await][quota] the engine creates a dependent after the Job completed; its pod no longer
    holds a GPU or counts in a quota."""
    doc = base(job("validate", gpu_pod(priority="low"), namespace="inference"), quota("inference", {"requests.nvidia.com/gpu": "2"}))
    doc["resources"] += [deployment(n, gpu_pod(), deps=[urn(doc, "validate")]) for n in ("a", "b")]
    report = fd.check(doc)
    assert report.exit_code == 0, fd.render(report)
    assert [(p.scope, p.peak) for p in report.peaks] == [("pool gpu-inference", 2), ("namespace inference", 2)]


def test_equal_priorities_over_the_maximum_all_risk_pending():
    report = fd.check(base(deployment("a", gpu_pod()), deployment("b", gpu_pod()), gpu_max=1))
    assert rules(step(report, "inference/a"), fd.FAIL) == ["capacity"] == rules(step(report, "inference/b"), fd.FAIL)


def test_replicas_come_from_the_hpa_minimum_and_pods_are_packed_per_node():
    hpa = res(fd.HPA_TYPES[0], "hpa", {"metadata": {"name": "hpa", "namespace": "inference"},
                                      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "standard"}, "minReplicas": 3}})
    report = fd.check(base(deployment("standard", gpu_pod(), replicas=None), hpa))
    assert step(report, "standard").waits.startswith("3 pod(s) ready") and report.exit_code == fd.EXIT_DEADLOCK
    # 3-GPU pods on 4-GPU nodes: two pods need two nodes, though 6 <= 4 x 2 would suggest one.
    tags = {**gpu_pool_tags(), f"{fd.TEMPLATE}resources/nvidia.com/gpu": "4"}
    packed = fd.check(base(deployment("big", gpu_pod(gpus=3), replicas=2), tags=tags, gpu_max=1))
    assert rules(step(packed, "big"), fd.FAIL) == ["capacity"] and "needs 2 node(s) of 4; maxSize 1" in packed.peaks[0].detail


@pytest.mark.parametrize("hard, status", [({"requests.nvidia.com/gpu": "1"}, fd.FAIL), ({"requests.nvidia.com/gpu": "2"}, fd.OK),
                                          ({"requests.nvidia.com/gpu": "<computed>"}, fd.WARN)])
def test_namespace_quota_against_the_peak(hard, status):
    """[quota] a pod beyond `requests.nvidia.com/gpu` is refused at creation (exceeded quota)."""
    report = fd.check(base(deployment("a", gpu_pod()), deployment("b", gpu_pod()), quota("inference", hard)))
    quota_peak = [p for p in report.peaks if p.scope == "namespace inference"][0]
    assert quota_peak.status == status and quota_peak.peak == 2
    assert ("quota" in rules(step(report, "inference/a"), fd.FAIL)) is (status == fd.FAIL)


# --- models Triton loads at start ---------------------------------------------------------------

def triton(args: list[str]) -> dict:
    pod = gpu_pod()
    pod["containers"][0].update(command=["tritonserver"], args=["--model-repository=s3://models/triton/standard", *args])
    return deployment("standard", pod)


def s3_object(key: str) -> dict:
    return res(fd.S3_OBJECTS[0], key.replace("/", "-"), {"bucket": "models", "key": key})


def test_explicit_models_missing_from_what_the_stack_puts_there_are_flagged():
    """[triton] with explicit control tritonserver exits when a --load-model fails (exit-on-error
    defaults to true): the prod defect, add_sub against a prefix holding only `.keep`."""
    bucket = res("aws:s3/bucket:Bucket", "models", {"bucket": "models"})
    report = fd.check(base(triton(["--model-control-mode=explicit", "--load-model=add_sub"]), s3_object("triton/standard/.keep"), bucket))
    finding, = [f for f in step(report, "standard").findings if f.rule == "models"]
    assert finding.status == fd.WARN and "add_sub" in finding.message and "This stack creates the bucket" in finding.message
    assert "platformctl preflight" in finding.fix and report.exit_code == 0  # the bucket's contents are unknown to the plan


@pytest.mark.parametrize("args, objects, expect", [
    (["--model-control-mode", "explicit", "--load-model", "add_sub"], ["triton/standard/add_sub/config.pbtxt"], [fd.OK]),
    (["--model-control-mode=explicit", "--load-model=*"], [], []),
    (["--model-control-mode=poll"], [], []),
    (["--model-control-mode=explicit", "--load-model=a", "--load-model=b"], ["triton/standard/a/1/model.onnx"], [fd.OK, fd.WARN]),
])
def test_models_put_there_by_the_stack_pass(args, objects, expect):
    report = fd.check(base(triton(args), *[s3_object(k) for k in objects]))
    assert [f.status for f in step(report, "standard").findings if f.rule == "models"] == expect


# --- the API endpoint ---------------------------------------------------------------------------

def ingress(name: str, **inputs: Any) -> dict:
    return res(fd.INGRESS_RULE, name, {"securityGroupId": "<computed>", "ipProtocol": "tcp", **inputs})


@pytest.mark.parametrize("vpc, rules_, status", [
    ({}, [], fd.OK),  # EKS defaults: public from 0.0.0.0/0
    ({"endpointPublicAccess": True, "publicAccessCidrs": ["8.8.8.0/24"]}, [], fd.OK),
    # prod's committed RFC 5737 placeholder: pulumi up refuses it before creating anything (a warning)
    ({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.10/32"]}, [], fd.WARN),
    ({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.10/32", "8.8.8.8/32"]}, [], fd.OK),
    ({"endpointPublicAccess": False, "endpointPrivateAccess": True}, [], fd.FAIL),
    ({"endpointPublicAccess": False, "endpointPrivateAccess": True},
     [ingress("cluster-api-access-0", fromPort=443, toPort=443, cidrIpv4="10.20.0.0/16")], fd.OK),
    ({"endpointPublicAccess": False, "endpointPrivateAccess": True},
     [ingress("cluster-api-access-runner", fromPort=443, toPort=443, referencedSecurityGroupId="<computed>")], fd.OK),
    ({"endpointPublicAccess": False, "endpointPrivateAccess": True}, [ingress("cluster-api-access-0", fromPort=22, toPort=22)], fd.FAIL),
    ({"endpointPublicAccess": False, "endpointPrivateAccess": True}, [ingress("openwebui-db", fromPort=443, toPort=443)], fd.FAIL),
    ({"endpointPublicAccess": True, "publicAccessCidrs": "<computed>"}, [], fd.WARN),
])
def test_the_deployer_must_reach_the_api(vpc, rules_, status):
    """[endpoint] prod's defect: private-only with the cluster security group admitting itself only."""
    doc = base(*rules_)
    doc["resources"][0] = eks(**vpc)
    report = fd.check(doc)
    assert report.steps[0].status == status, report.steps[0].findings
    assert report.exit_code == (fd.EXIT_DEADLOCK if status == fd.FAIL else 0)


# --- awaits skipped, values unknown ---------------------------------------------------------------

def test_skip_await_turns_a_deadlock_into_a_warning():
    """[await] `pulumi.com/skipAwait: "true"`: pulumi up does not wait for the object."""
    report = fd.check(base(deployment("standard", gpu_pod(pool="training"), annotations={fd.SKIP_AWAIT: "true"})))
    s = step(report, "standard")
    assert s.waits.startswith("not awaited") and s.status == fd.WARN and report.exit_code == 0
    release = res(fd.RELEASE, "r", {"chart": "x", "name": "r", "namespace": "n", "skipAwait": True})
    assert step(fd.check(base(release)), "Release n/r").waits == "not awaited (skipAwait)"


def test_values_known_only_after_deploy_are_warnings():
    doc = base(deployment("standard", {**gpu_pod(), "nodeSelector": "<computed>"}))
    assert step(fd.check(doc), "standard").status == fd.WARN
    doc = base(deployment("standard", gpu_pod()))
    doc["resources"][2]["inputs"]["scalingConfig"]["desiredSize"] = "<computed>"
    report = fd.check(doc)
    assert report.exit_code == 0 and rules(step(report, "standard"), fd.WARN) == ["scale-up"]


def test_unknown_or_system_priority_classes():
    report = fd.check(base(deployment("a", gpu_pod(priority="nobody")), deployment("b", gpu_pod(priority="system-node-critical"))))
    assert "not created by this stack" in step(report, "inference/a").findings[0].message
    assert rules(step(report, "inference/b"), fd.FAIL) == []


# --- the real stacks ----------------------------------------------------------------------------

def real(stack: str) -> dict[str, Any]:
    return copy.deepcopy(plan(stack).to_json())


def of(doc: dict, type_: str, pred=lambda r: True) -> list[dict]:
    return [r for r in doc["resources"] if r["type"] == type_ and pred(r)]


def validation_job(doc: dict) -> dict:
    jobs = of(doc, "kubernetes:batch/v1:Job", lambda r: r["inputs"]["metadata"]["namespace"] == "gpu-operator")
    assert jobs, "dev runs a GPU validation Job"
    return jobs[0]


def test_real_dev_plan_with_an_expendable_validation_job_deadlocks():
    """[cutoff] issue 12 finding 1 on the real dev plan: the validation Job at a -100 class, its
    pool at 0 nodes (dev's GPU pool idles at zero)."""
    doc = real("dev")
    doc["resources"].append(priority_class("expendable", -100))
    validation_job(doc)["inputs"]["spec"]["template"]["spec"]["priorityClassName"] = "expendable"
    for group in of(doc, fd.NODE_GROUP, lambda r: r["name"].startswith("gpu-")):
        group["inputs"]["scalingConfig"].update(desiredSize=0, minSize=0)
    report = fd.check(doc)
    s = step(report, f"Job gpu-operator/{validation_job(doc)['inputs']['metadata']['name']}")
    scale_up = [f for f in s.findings if f.rule == "scale-up" and f.status == fd.FAIL]
    assert scale_up and "priority -100 (expendable) is below the autoscaler's expendable cut-off -10" in scale_up[0].message
    assert report.exit_code == fd.EXIT_DEADLOCK


def test_real_dev_plan_converges_with_the_job_above_the_cutoff_and_ordered_before_triton():
    """Priority alone is not enough at dev's maxSize 2: Triton's two pods take both GPUs while the
    Job runs. Ordered first (Triton depends on it), the Job's GPU is free again before they start.
    (dev without its TensorRT build, whose Job also orders standard's Triton after validation.)"""
    doc = copy.deepcopy(plan_with("dev", modelBuilds=[]).to_json())
    job_ = validation_job(doc)
    doc["resources"].append(priority_class("batch-scalable", 0))
    job_["inputs"]["spec"]["template"]["spec"]["priorityClassName"] = "batch-scalable"
    tritons = of(doc, "kubernetes:apps/v1:Deployment", lambda r: r["inputs"]["metadata"]["namespace"] == "inference")
    assert len(tritons) == 2
    for group in of(doc, fd.NODE_GROUP, lambda r: r["name"] == "gpu-inference"):
        group["inputs"]["scalingConfig"].update(desiredSize=0, minSize=0, maxSize=2)
    # The whole Triton component waits for the Job (its ServiceAccount too): drop every such edge.
    unordered = [r for r in doc["resources"] if job_["urn"] in r.get("dependencies", []) and "TritonServer$" in r["urn"]]
    for resource in unordered:
        resource["dependencies"] = [d for d in resource["dependencies"] if d != job_["urn"]]
    concurrent = fd.check(doc)
    failed = [(s.title, f.rule) for s in concurrent.steps for f in s.findings if f.status == fd.FAIL]
    assert failed == [(f"Job gpu-operator/{job_['inputs']['metadata']['name']}", "capacity")]
    for triton_ in tritons:
        triton_["dependencies"].append(job_["urn"])
    ordered = fd.check(doc)
    assert [s.status for s in ordered.steps if s.status == fd.FAIL] == [], fd.render(ordered)


def test_real_prod_plan_with_a_pool_too_small_for_the_peak_fails():
    """prod's standard Deployment starts at its HPA's minReplicas (2) on the 1-GPU inference pool."""
    doc = real("prod")
    group, = of(doc, fd.NODE_GROUP, lambda r: r["name"] == "gpu-inference")
    group["inputs"]["scalingConfig"].update(minSize=1, desiredSize=1, maxSize=1)
    report = fd.check(doc)
    peak = [p for p in report.peaks if p.scope == "pool gpu-inference"][0]
    assert (peak.peak, peak.limit, peak.status) == (2, 1, fd.FAIL)
    assert report.exit_code == fd.EXIT_DEADLOCK


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_plan_with_a_private_only_endpoint_and_no_access_rule_fails(stack):
    """[endpoint] issue 12 finding 2: no laptop, hosted runner or in-VPC runner reaches the API."""
    doc = real(stack)
    cluster, = of(doc, fd.CLUSTER)
    cluster["inputs"]["vpcConfig"].update(endpointPublicAccess=False, endpointPrivateAccess=True, publicAccessCidrs=[])
    doc["resources"] = [r for r in doc["resources"] if not r["name"].startswith(fd.API_ACCESS_RULE_PREFIX)]
    report = fd.check(doc)
    assert report.steps[0].status == fd.FAIL and "private-only endpoint and no access path" in report.steps[0].findings[0].message
    doc["resources"].append(ingress("cluster-api-access-0", fromPort=443, toPort=443, cidrIpv4="10.0.0.0/8"))
    assert fd.check(doc).steps[0].status == fd.OK


def test_dev_with_its_validation_disabled_converges_through_the_real_program():
    """The whole program, a config variant: without the Job, Triton's 2 GPUs fit dev's pool and quota."""
    values = stack_values("dev")
    run = plan_with("dev", gpuStack={**values["gpuStack"], "validation": {"enabled": False}})
    report = fd.check(run.to_json())
    assert [s.title for s in report.steps if s.status == fd.FAIL] == [], fd.render(report)
    assert {p.scope: (p.peak, p.limit) for p in report.peaks}["pool gpu-inference"][0] == 2


def test_dev_passes():
    report = fd.check(plan("dev").to_json())
    assert report.exit_code == 0, "\n".join(line for _, line in fd.render(report))


def test_prod_passes():
    report = fd.check(plan("prod").to_json())
    assert report.exit_code == 0, "\n".join(line for _, line in fd.render(report))


# --- how long pulumi up waits -------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("2100s", 2100), ("1h30m", 5400), ("45m", 2700), ("", None), ("soon", None), (None, None)])
def test_go_durations_as_the_engine_reads_custom_timeouts(text, seconds):
    assert fd.go_duration_seconds(text) == seconds


def test_custom_timeouts_win_over_the_annotation_and_the_default():
    """pulumi/pulumi-kubernetes `provider/pkg/metadata/overrides.go` TimeoutDuration: the
    customTimeouts resource option first, then `pulumi.com/timeoutSeconds`, else the await default."""
    job = {"inputs": {"metadata": {"annotations": {fd.TIMEOUT_SECONDS: "900"}}}, "customTimeouts": {"create": "40m"}}
    assert fd.await_timeout(job, "Job") == 2400
    job["customTimeouts"] = {}
    assert fd.await_timeout(job, "Job") == 900
    assert fd.await_timeout({"inputs": {"metadata": {}}}, "Job") == fd.DEFAULT_TIMEOUT["Job"] == 600


def test_the_validation_job_is_given_its_configured_budget_in_the_real_plan():
    """The plan records customTimeouts, so the first-deploy step shows the wait pulumi up really
    allows the GPU validation Job (timeoutSeconds + 300 s for the node to come up)."""
    doc = real("dev")
    job_ = validation_job(doc)
    budget = stack_values("dev")["gpuStack"]["validation"].get("timeoutSeconds", 1800) + 300
    assert job_["customTimeouts"] == {"create": f"{budget}s"}
    s = step(fd.check(doc), f"Job gpu-operator/{job_['inputs']['metadata']['name']}")
    assert s.waits == f"the Job completes, timeout {budget} s"


def test_a_build_source_the_stack_does_not_put_in_the_bucket_is_flagged():
    """dev's TensorRT build Job waits (bounded) for its source ONNX with `aws s3api head-object`
    (components/model_builds.fetch_script); on a new account nothing is there unless uploaded while
    `pulumi up` runs: a warning naming the upload when the stack does not put it there (a source key
    published by a pipeline), ok when the stack uploads it from a file that exists (dev's
    `sourceFile`), a warning naming `make examples` when that file is missing where the plan ran."""
    doc = real("dev")
    jobs = of(doc, "kubernetes:batch/v1:Job", lambda r: r["inputs"]["metadata"]["name"].startswith("model-build-"))
    assert len(jobs) == 1
    title = f"Job inference/{jobs[0]['inputs']['metadata']['name']}"
    upload, = [r for r in doc["resources"] if r["type"] == fd.S3_OBJECTS[0] and r["name"] == "model-build-text-orientation-source"]
    doc["resources"].remove(upload)
    finding, = [f for f in step(fd.check(doc), title).findings if f.rule == "models"]
    assert finding.status == fd.WARN and "sources/text-orientation/model.onnx" in finding.message and "aws s3 cp" in finding.fix
    bucket, key = re.search(r"s3://([^/]+)/(\S+?),", finding.message).groups()
    assert (bucket, key) == (upload["inputs"]["bucket"], upload["inputs"]["key"])
    for exists, status in ((True, fd.OK), (False, fd.WARN)):
        source = {"fileAsset": "build/examples/trt-source/text_orientation/1/model.onnx", "exists": exists}
        doc["resources"].append(res(fd.S3_OBJECTS[0], f"source-{exists}", {"bucket": bucket, "key": key, "source": source}))
        finding, = [f for f in step(fd.check(doc), title).findings if f.rule == "models"]
        assert finding.status == status and (exists or "`make trt-sources`" in finding.fix)
        doc["resources"].pop()
