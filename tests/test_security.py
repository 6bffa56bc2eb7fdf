"""Security of what the platform renders, for dev and prod: checkov finds nothing, no secret in plain
text, every container hardened, namespaces labelled for Pod Security Admission, default-deny
NetworkPolicies with only the platform's paths open, stateful resources protected in prod, and
minimal node networking on the cluster side."""

from __future__ import annotations

import fnmatch

import ipaddress
import json
import os
import shutil
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import security
from components.network import subnet_cidrs
from platformctl import security_scan as scan
from tests.harness import STACKS, config_for, inputs, plan, run



# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plans(written_plans) -> dict[str, Path]:
    """What `platformctl plan` writes for each stack (tests/conftest.py: the plan command's
    function, run once per stack per worker)."""
    for stack, written in written_plans.items():
        assert written.exit_code == 0, f"{stack}: plan exited {written.exit_code}\n{written.stdout[-3000:]}"
    return {stack: written.directory for stack, written in written_plans.items()}


def checkov_or_skip(directory: Path) -> scan.CheckovReport:
    try:
        return scan.run_checkov(directory)
    except scan.CheckovUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def failed_in(report: scan.CheckovReport, directory: str) -> list[dict]:
    """The failed checks of a scan over several directories that are in the files of one of them
    (checkov's file_path is relative to the scanned root: /<directory>/<file>)."""
    return [c for c in report.failed_checks if Path(c["file_path"]).parts[1:2] == (directory,)]


@pytest.fixture(scope="module")
def checkov_stacks(plans, tmp_path_factory) -> scan.CheckovReport:
    """One checkov run over the manifests of every stack (<root>/<stack>/*.yaml): checkov's start-up
    is most of its time."""
    root = tmp_path_factory.mktemp("checkov-stacks")
    for stack in STACKS:
        shutil.copytree(plans[stack] / "manifests", root / stack)
    return checkov_or_skip(root)


def objects(plan_dir: Path) -> list[dict]:
    return [obj for _, obj in scan.load_manifests(plan_dir)]


def pod_cidrs(stack: str) -> list[str]:
    config = config_for(stack)
    return subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[1]


def alb_cidrs(stack: str) -> list[str]:
    config = config_for(stack)
    return subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[0]


def run_under_mocks(program) -> list[dict]:
    """Run `program` (creating Kubernetes objects) under the mock runtime; their manifests."""
    return [r.public_inputs() for r in run(program, stack="test").resources if r.type.startswith("kubernetes:") and r.custom]


# --- checkov -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_no_failed_check(stack, plans, checkov_stacks):
    report = checkov_stacks
    manifests = len(list((plans[stack] / "manifests").glob("*.yaml")))
    failures = failed_in(report, stack)
    print(f"dev+prod: checkov passed={report.passed} failed={report.failed} skipped={report.skipped}; {stack}: {manifests} manifests")
    assert report.parsing_errors == 0
    assert manifests and report.resource_count > 0, "checkov scanned nothing: the gate would pass vacuously"
    assert failures == [], "checkov failures:\n" + "\n".join(scan.CheckovReport(0, len(failures), 0, 0, 0, failures).failures())


INSECURE_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:latest
        securityContext: {privileged: true}
"""


def hardened_deployment() -> dict:
    """INSECURE_DEPLOYMENT built from the platform's helpers, declaring one checkov skip."""
    volumes, mounts = security.writable_dirs({"tmp": "/tmp"})
    deployment = yaml.safe_load(INSECURE_DEPLOYMENT)
    deployment["metadata"]["annotations"] = security.checkov_skips({"CKV_K8S_43": "tags are pinned; digests are resolved by the registry policy"})
    deployment["spec"]["template"]["spec"] = {
        "automountServiceAccountToken": False,
        "securityContext": security.restricted_pod_security_context(),
        "volumes": volumes,
        "containers": [{
            "name": "web", "image": "nginxinc/nginx-unprivileged:1.29.1", "imagePullPolicy": "Always",
            "securityContext": security.restricted_security_context(),
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
            "volumeMounts": mounts,
        }],
    }
    return deployment


def test_checkov_gate_catches_an_insecure_deployment_and_honours_a_skip(tmp_path):
    """The gate is real: an insecure Deployment fails the checks our manifests pass, and a Deployment
    built from the helpers passes with exactly the one skip it declares (one checkov run over both:
    bad/ declares no skip, so every skip of the run is good/'s)."""
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (bad / "web.yaml").write_text(INSECURE_DEPLOYMENT)
    deployment = hardened_deployment()
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": "demo"},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    (good / "web.yaml").write_text(yaml.safe_dump(deployment) + "---\n" + yaml.safe_dump(policy))
    assert "checkov.io/" not in INSECURE_DEPLOYMENT
    report = checkov_or_skip(tmp_path)
    failed = {c["check_id"] for c in failed_in(report, "bad")}
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_38", "CKV_K8S_8", "CKV_K8S_9"} <= failed

    good_failures = failed_in(report, "good")
    assert good_failures == [], scan.CheckovReport(0, len(good_failures), 0, 0, 0, good_failures).failures()
    assert report.failed == len(failed_in(report, "bad"))  # every failure is attributed to a directory
    assert report.skipped == 1
    assert scan.pod_security_findings("web.yaml", deployment) == []


def test_every_checkov_skip_is_documented_with_its_reason(plans):
    in_manifests = {}
    for stack in STACKS:
        in_manifests.update(scan.checkov_skips_in(objects(plans[stack])))
    documented = scan.documented_skips()
    assert scan.SECURITY_DOC.exists()

    def rows(key):  # a row's object may be a glob: TensorRT build Jobs carry a hash of their spec
        return [row for row in documented if row[0] == key[0] and fnmatch.fnmatchcase(key[1], row[1])]

    undocumented = sorted(key for key in in_manifests if not rows(key))
    stale = sorted(row for row in documented if not any(row in rows(key) for key in in_manifests))
    assert not undocumented, f"skips missing from docs/security.md (add a row `| check | object | reason |`): {undocumented}"
    assert not stale, f"docs/security.md lists skips no manifest has any more: {stale}"
    for key, reason in in_manifests.items():
        assert reason, f"{key}: the skip annotation has no reason (checkov.io/skipN: CKV_K8S_nn=<reason>)"
        assert all(documented[row] for row in rows(key)), f"{key}: no reason in docs/security.md"


def test_skip_annotations_are_numbered_and_need_a_reason():
    assert security.checkov_skips({"CKV_K8S_43": "pinned tags", "CKV_K8S_22": "writes to /app"}) == {
        "checkov.io/skip1": "CKV_K8S_22=writes to /app", "checkov.io/skip2": "CKV_K8S_43=pinned tags"}
    with pytest.raises(ValueError):
        security.checkov_skips({"CKV_K8S_43": " "})


# --- secret hygiene ------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_material_in_plan_or_manifests(stack, plans):
    directory = plans[stack]
    findings = scan.plan_secret_findings(json.loads((directory / "plan.json").read_text()))
    for name, obj in scan.load_manifests(directory):
        findings += scan.manifest_secret_findings(name, obj)
    for name, release in scan.load_helm_releases(directory):
        findings += scan.values_secret_findings(f"helm/{name}.yaml", release.get("values") or {})
        findings += scan.text_secret_findings(yaml.safe_dump(release), f"helm/{name}.yaml")
    assert not findings, "\n".join(findings)


def test_secret_scanner_finds_planted_secrets():
    """Each kind of leak the hygiene test looks for is found (so a clean result means something)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ui"},
              "stringData": {"WEBUI_SECRET_KEY": "generated-7f3a9c", "ok": "[secret]"}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ui", "namespace": "ui"},
                  "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "ui", "image": "x", "env": [
                      {"name": "OAUTH_CLIENT_SECRET", "value": "s3cr3t-value"},
                      {"name": "DATABASE_URL", "value": "postgresql://webui:hunter2@db:5432/webui"},
                      {"name": "ENABLE_SIGNUP", "value": "false"},
                      {"name": "WEBUI_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                  ]}]}}}}
    findings = scan.manifest_secret_findings("s.yaml", secret) + scan.manifest_secret_findings("d.yaml", deployment)
    text = "\n".join(findings)
    assert "stringData.WEBUI_SECRET_KEY" in text and "stringData.ok" not in text
    assert "env OAUTH_CLIENT_SECRET has a literal value" in text
    assert "URL with a password" in text and "env ENABLE_SIGNUP" not in text and "env WEBUI_SECRET_KEY" not in text
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"
    planted = {"resources": [
        {"type": "aws:rds/instance:Instance", "name": "db", "inputs": {"password": "plaintext-pw", "username": "admin"}},
        {"type": "kubernetes:core/v1:ConfigMap", "name": "cm", "inputs": {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"key.pem": pem}}},
        {"type": "aws:iam/accessKey:AccessKey", "name": "k", "inputs": {"note": "AKIAIOSFODNN7EXAMPLE"}},
        {"type": "aws:ssm/parameter:Parameter", "name": "p", "inputs": {"type": "SecureString", "value": "x"}},
    ], "outputs": {"hfToken": "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"}}
    text = "\n".join(scan.plan_secret_findings(planted))
    for expected in ("db: password has a literal value", "PEM private key", "AWS access key id", "SecureString value", "Hugging Face token"):
        assert expected in text, expected
    clean = {"resources": [{"type": "aws:rds/instance:Instance", "name": "db",
                            "inputs": {"password": "[secret]", "manageMasterUserPassword": True, "passwordKey": "admin-password"}}]}
    assert scan.plan_secret_findings(clean) == []


# --- pod security --------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_hardened(stack, plans):
    findings, checked = [], []
    for name, obj in scan.load_manifests(plans[stack]):
        if scan.pod_template(obj) is not None:
            checked.append(scan.object_id(obj))
            findings += scan.pod_security_findings(name, obj)
    print(f"{stack}: pod security checked on {checked}")
    assert not findings, "\n".join(findings)


def test_pod_security_check_flags_each_missing_setting():
    deployment = yaml.safe_load(INSECURE_DEPLOYMENT)
    text = "\n".join(scan.pod_security_findings("web.yaml", deployment))
    for expected in ("automountServiceAccountToken", "runAsNonRoot", "allowPrivilegeEscalation", "privileged",
                     "capabilities.drop", "seccompProfile", "readOnlyRootFilesystem", "no requests", "no limits",
                     "no livenessProbe", "no readinessProbe"):
        assert expected in text, expected


@pytest.mark.parametrize("stack", STACKS)
def test_namespaces_carry_pod_security_labels(stack, plans):
    objs = objects(plans[stack])
    findings = scan.namespace_findings(objs, scan.load_helm_releases(plans[stack]))
    levels = scan.namespace_levels(objs)
    print(f"{stack}: " + ", ".join(f"{ns}={v['enforce']}" for ns, v in sorted(levels.items())))
    assert levels, "the plan creates no namespace"
    assert not findings, "\n".join(findings)
    for ns, level in levels.items():
        if level["enforce"] != "restricted":
            assert len(level["reason"]) > 15, f"{ns} is {level['enforce']}: say why it cannot be restricted"


@pytest.mark.parametrize("stack", STACKS)
def test_openwebui_is_restricted_with_no_root_or_writable_root_exception(stack, plans):
    """The upstream image runs as root (open-webui/open-webui v0.11.0 Dockerfile: `ARG UID=0`), which
    kept `openwebui` at `baseline` with checkov skips for root (CKV_K8S_23), a writable root
    (CKV_K8S_22) and a low uid (CKV_K8S_40). It runs as uid 10001 on a read-only root with its
    writable paths as volumes (docs/security.md), so none of those exceptions remain."""
    objs = objects(plans[stack])
    assert scan.namespace_levels(objs)["openwebui"]["enforce"] == "restricted"
    (deployment,) = [o for o in objs if o.get("kind") == "Deployment" and o["metadata"]["name"] == "open-webui"]
    skipped = {check for check, _ in scan.checkov_skips_in([deployment])}
    assert not skipped & {"CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_40"}, skipped
    assert scan.pod_security_findings("open-webui", deployment) == []


def test_namespace_helper_labels_and_refuses_a_missing_reason():
    assert security.pod_security_labels("baseline") == {
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "baseline", "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "latest",
    }
    with pytest.raises(ValueError, match="one of restricted, baseline, privileged"):
        security.pod_security_labels("strict")
    with pytest.raises(ValueError, match="reason"):
        security.namespace("ui", "baseline", "  ", parent=None)


# --- network policies ------------------------------------------------------------------------------

def workload_pods(objs: list[dict]) -> list[tuple[dict, scan.Pod]]:
    return [(obj, pod) for obj in objs if (pod := scan.pod_of(obj)) is not None]


def workload_namespaces(objs: list[dict]) -> set[str]:
    """Namespaces the project creates for its own workloads: restricted or baseline. Privileged
    ones hold node agents (GPU operator, node-exporter) that run on the host network, where
    NetworkPolicies do not apply (see docs/security.md)."""
    return {ns for ns, level in scan.namespace_levels(objs).items() if level["enforce"] in ("restricted", "baseline")}


def images(obj: dict) -> str:
    return " ".join(c.get("image", "") for c in (scan.pod_template(obj) or {}).get("spec", {}).get("containers", []))


@pytest.mark.parametrize("stack", STACKS)
def test_workload_namespaces_deny_ingress_by_default(stack, plans):
    objs = objects(plans[stack])
    policies = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    namespaces = workload_namespaces(objs)
    assert namespaces, "no workload namespace in the plan"
    missing = sorted(namespaces - scan.default_deny_namespaces(policies, "Ingress"))
    assert not missing, f"no default-deny ingress NetworkPolicy in {missing} (components.security.default_deny)"


PROMETHEUS = scan.Pod("monitoring", tuple(security.PROMETHEUS_POD_LABELS.items()))
COREDNS = scan.Pod("kube-system", tuple(security.DNS_POD_LABELS.items()), (("dns", 53),))
S3_IP = "52.216.0.10"  # an S3 address (us-east-1)


@pytest.mark.parametrize("stack", STACKS)
def test_the_platform_paths_are_open(stack, plans):
    """DNS from every pod that cannot egress freely; OpenWebUI -> the inference gateway -> Triton's
    OpenAI port (llm) and KServe-v2 HTTP port (standard), or OpenWebUI -> Triton without the gateway;
    Prometheus -> every metrics port a ServiceMonitor/PodMonitor scrapes; the ALB -> each UI
    behind an Ingress; Triton -> S3 over HTTPS."""
    objs = objects(plans[stack])
    model = scan.NetworkModel.from_objects(objs, pod_cidrs(stack))
    pods = workload_pods(objs)
    problems, checked = [], []

    for obj, pod in pods:
        if not model.egress_allowed(pod, COREDNS, 53, "UDP"):
            problems.append(f"{scan.object_id(obj)} cannot resolve names (DNS egress to kube-dns:53/UDP)")

    tritons = [(o, p) for o, p in pods if "tritonserver" in images(o)]
    webuis = [(o, p) for o, p in pods if "open-webui" in images(o)]
    # The serving pods (prod's key-sync and migration Jobs run the same image but serve nothing).
    gateways = [(o, p) for o, p in pods if "berriai/litellm" in images(o) and o.get("kind") == "Deployment"]
    # openWebUi.viaGateway (both stacks): OpenWebUI -> the gateway -> Triton (9000 of llm, 8000 of standard).
    callers = gateways if gateways else webuis
    for ui_obj, ui in webuis:
        for gw_obj, gateway in gateways:
            checked.append(f"{scan.object_id(ui_obj)} -> {scan.object_id(gw_obj)}:4000")
            if not model.allowed(ui, gateway, 4000):
                problems.append(f"OpenWebUI {scan.object_id(ui_obj)} cannot reach the gateway {scan.object_id(gw_obj)}")
    for caller_obj, caller in callers:
        for tr_obj, triton in tritons:
            port = 9000 if 9000 in {number for _, number in triton.ports} else 8000
            if port == 8000 and caller in [p for _, p in webuis]:
                continue  # OpenWebUI speaks only the OpenAI API
            checked.append(f"{scan.object_id(caller_obj)} -> {scan.object_id(tr_obj)}:{port}")
            if not model.allowed(caller, triton, port):
                problems.append(f"{scan.object_id(caller_obj)} cannot reach Triton {scan.object_id(tr_obj)} on {port}")
    for tr_obj, triton in tritons:
        checked.append(f"{scan.object_id(tr_obj)} -> S3:443")
        if not model.egress_allowed(triton, S3_IP, 443):
            problems.append(f"Triton {scan.object_id(tr_obj)} cannot reach S3 over HTTPS")

    services = [o for o in objs if o.get("kind") == "Service"]
    for monitor in (o for o in objs if o.get("kind") in ("ServiceMonitor", "PodMonitor")):
        for target, port in scrape_targets(monitor, services, pods):
            checked.append(f"prometheus -> {scan.object_id(target)}:{port}")
            if not model.ingress_allowed(scan.pod_of(target), PROMETHEUS, port):
                problems.append(f"Prometheus cannot scrape {scan.object_id(target)} on {port} ({scan.object_id(monitor)})")

    alb_ip = str(next(ipaddress.ip_network(alb_cidrs(stack)[0]).hosts()) + 10)
    for ingress in (o for o in objs if o.get("kind") == "Ingress"):
        for target, port in ingress_targets(ingress, services, pods):
            checked.append(f"ALB -> {scan.object_id(target)}:{port}")
            if not model.ingress_allowed(scan.pod_of(target), alb_ip, port):
                problems.append(f"the ALB cannot reach {scan.object_id(target)} on {port} ({scan.object_id(ingress)})")
    print(f"{stack}: paths checked: {checked}")
    assert not problems, "\n".join(problems)


def _service_target_port(service: dict, port_ref) -> int | str | None:
    for port in (service.get("spec") or {}).get("ports") or []:
        if port_ref in (port.get("name"), port.get("port")):
            return port.get("targetPort", port.get("port"))
    return None


def _pods_behind(service: dict, pods) -> list:
    selector = (service.get("spec") or {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    return [(o, p) for o, p in pods if selector and p.namespace == namespace and scan.selector_matches({"matchLabels": selector}, p.label_dict)]


def scrape_targets(monitor: dict, services: list[dict], pods) -> list[tuple[dict, int]]:
    spec = monitor.get("spec") or {}
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"].get("namespace")]
    out = []
    if monitor["kind"] == "PodMonitor":
        for obj, pod in pods:
            if pod.namespace in namespaces and scan.selector_matches(spec.get("selector") or {}, pod.label_dict):
                for endpoint in spec.get("podMetricsEndpoints") or []:
                    number = pod.resolve(endpoint.get("port") or endpoint.get("targetPort"))
                    if number:
                        out.append((obj, number))
        return out
    for service in services:
        if service["metadata"].get("namespace") not in namespaces or not scan.selector_matches(spec.get("selector") or {}, service["metadata"].get("labels") or {}):
            continue
        for endpoint in spec.get("endpoints") or []:
            target = _service_target_port(service, endpoint.get("port")) if endpoint.get("port") else endpoint.get("targetPort")
            for obj, pod in _pods_behind(service, pods):
                number = pod.resolve(target) if target is not None else None
                if number:
                    out.append((obj, number))
    return out


def ingress_targets(ingress: dict, services: list[dict], pods) -> list[tuple[dict, int]]:
    out = []
    namespace = ingress["metadata"].get("namespace")
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        for path in ((rule.get("http") or {}).get("paths")) or []:
            backend = (path.get("backend") or {}).get("service") or {}
            port = backend.get("port") or {}
            for service in services:
                if service["metadata"].get("name") == backend.get("name") and service["metadata"].get("namespace") == namespace:
                    target = _service_target_port(service, port.get("name") or port.get("number"))
                    for obj, pod in _pods_behind(service, pods):
                        number = pod.resolve(target) if target is not None else None
                        if number:
                            out.append((obj, number))
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_else_is_open(stack, plans):
    """Every allow rule names its peers and ports; and no workload port is reachable from a pod of
    another namespace, from a pod IP, or from the internet."""
    objs = objects(plans[stack])
    model = scan.NetworkModel.from_objects(objs, pod_cidrs(stack))
    findings = []
    for policy in model.policies:
        findings += scan.policy_shape_findings(policy, pod_cidrs(stack))
    intruder = scan.Pod("intruder", (("app", "intruder"),))
    pod_ip = str(next(ipaddress.ip_network(pod_cidrs(stack)[0]).hosts()) + 100)
    # Policies for an internal NLB admit the private subnets (and so pods) by necessity; they say
    # why in an annotation and are listed here. Every other path must stay closed to pod IPs.
    nlb_policies = [p for p in model.policies if scan.admits_pod_network(p)]
    print(f"{stack}: policies admitting the pod network: " + "; ".join(f"{scan.object_id(p)} ({scan.admits_pod_network(p)})" for p in nlb_policies))
    strict = scan.NetworkModel([p for p in model.policies if not scan.admits_pod_network(p)], model.pod_cidrs, model.namespace_labels)
    namespaces = workload_namespaces(objs)
    for obj, pod in workload_pods(objs):
        if pod.namespace not in namespaces:
            continue
        for port_name, number in pod.ports or (("", 80),):
            for source, label, m in ((intruder, "a pod of another namespace", strict), (pod_ip, f"pod IP {pod_ip}", strict),
                                     ("203.0.113.7", "the internet", model)):
                if m.ingress_allowed(pod, source, number):
                    findings.append(f"{scan.object_id(obj)}:{number} is reachable from {label}")
    assert not findings, "\n".join(findings)


def test_triton_clients_open_the_serving_ports_to_their_pods_only():
    """`tritonDeployments[].clients` names pods (namespace and labels), never a whole namespace, and
    opens the serving ports, not metrics."""
    from tests.harness import plan_with, stack_values

    deployments = [dict(d) for d in stack_values("dev")["tritonDeployments"]]
    deployments[0]["clients"] = [{"namespace": "ci-runners"}]
    objs = [inputs(r) for r in plan_with("dev", tritonDeployments=deployments).kubernetes_objects()]
    model = scan.NetworkModel.from_objects(objs, pod_cidrs("dev"))
    [policy] = [p for p in model.policies if p["metadata"]["name"] == "standard-allow-clients"]
    assert scan.policy_shape_findings(policy, pod_cidrs("dev")) == []
    [triton] = [pod for obj, pod in workload_pods(objs) if obj["metadata"]["name"] == "standard"]
    runner = scan.Pod("ci-runners", (("ai-platform/triton-client", "true"),))
    assert model.ingress_allowed(triton, runner, 8000) and model.ingress_allowed(triton, runner, 8001)
    assert not model.ingress_allowed(triton, runner, 8002)
    assert not model.ingress_allowed(triton, scan.Pod("ci-runners", (("app", "other"),)), 8000)


def test_policy_builders_open_exactly_their_path():
    """The helpers every component uses, run under the mock runtime and evaluated."""
    triton_labels = {"app.kubernetes.io/name": "triton"}
    ui_labels = {"app.kubernetes.io/name": "open-webui"}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        opts = pulumi.ResourceOptions(provider=provider)
        security.default_deny("inference", opts, egress=True)
        security.allow_dns_egress("inference", opts)
        security.allow_from_pods("inference", "allow-openwebui", triton_labels, [9000], "openwebui", ui_labels, opts)
        security.allow_prometheus_scrape("inference", triton_labels, [8002], opts)
        security.allow_https_egress("inference", triton_labels, opts)
        security.default_deny_ingress("openwebui", opts)
        security.allow_alb_ingress("openwebui", ui_labels, [8080], ["10.20.224.0/27"], opts)

    manifests = run_under_mocks(program)
    assert {m["metadata"]["name"] for m in manifests if m.get("kind") == "NetworkPolicy"} == {
        "default-deny", "allow-dns-egress", "allow-openwebui", "allow-prometheus-scrape", "allow-https-egress", "allow-alb-ingress"}
    model = scan.NetworkModel.from_objects(manifests, ["10.20.0.0/19"])
    triton = scan.Pod("inference", tuple(triton_labels.items()), (("openai", 9000), ("metrics", 8002)))
    ui = scan.Pod("openwebui", tuple(ui_labels.items()), (("http", 8080),))
    other = scan.Pod("openwebui", (("app", "other"),))
    assert model.allowed(ui, triton, 9000)
    assert not model.allowed(ui, triton, 8002) and not model.allowed(other, triton, 9000)
    assert model.ingress_allowed(triton, PROMETHEUS, 8002) and not model.ingress_allowed(triton, PROMETHEUS, 9000)
    assert model.egress_allowed(triton, COREDNS, 53, "UDP")
    assert model.egress_allowed(triton, S3_IP, 443) and not model.egress_allowed(triton, S3_IP, 80)
    assert not model.egress_allowed(triton, "169.254.169.254", 443), "instance metadata must stay unreachable"
    assert not model.egress_allowed(triton, "10.20.1.5", 443), "HTTPS egress must not reach VPC-internal services"
    assert model.ingress_allowed(ui, "10.20.224.12", 8080) and not model.ingress_allowed(ui, "10.20.3.4", 8080)
    assert not model.ingress_allowed(ui, "10.20.224.12", 9090)
    for policy in model.policies:
        assert scan.policy_shape_findings(policy, ["10.20.0.0/19"]) == [], policy["metadata"]["name"]
    with pytest.raises(ValueError, match="everyone"):
        security.allow_from_cidrs("openwebui", "x", ui_labels, [8080], ["0.0.0.0/0"], pulumi.ResourceOptions())
    with pytest.raises(ValueError, match="pod selectors"):
        security.allow_from_pods("inference", "x", {}, [9000], "openwebui", ui_labels, pulumi.ResourceOptions())


def test_shape_check_flags_policies_that_open_too_much():
    def policy(spec):
        return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ui"}, "spec": spec}
    pods = ["10.20.0.0/19"]
    assert "no 'from'" in scan.policy_shape_findings(policy({"podSelector": {}, "ingress": [{}]}), pods)[0]
    assert "whole namespace" in scan.policy_shape_findings(policy({"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {}}], "ports": [{"port": 80}]}]}), pods)[0]
    assert "covers pod IPs" in scan.policy_shape_findings(policy({"podSelector": {}, "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 80}]}]}), pods)[0]
    assert "only allowed for egress on 443" in scan.policy_shape_findings(policy({"podSelector": {}, "egress": [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}]}), pods)[0]
    assert "no ports" in scan.policy_shape_findings(policy({"podSelector": {}, "egress": [
        {"to": [{"podSelector": {"matchLabels": {"a": "b"}}}]}]}), pods)[0]


# --- the monitoring namespace ----------------------------------------------------------------------

# kube-prometheus-stack and prometheus-adapter pods are made by Helm (not rendered offline), so they
# are modelled here with the labels and container ports the charts (and the Prometheus operator,
# for its StatefulSets) give them, written out independently of components/monitoring.py: a
# selector there that drifts from what the chart renders fails these tests. node-exporter is not
# modelled: it runs on the host network, where NetworkPolicies do not apply.
MONITORING = "monitoring"
CHART_PODS = {
    "prometheus": scan.Pod(MONITORING, (
        ("app.kubernetes.io/instance", "kube-prometheus-stack-prometheus"), ("app.kubernetes.io/managed-by", "prometheus-operator"),
        ("app.kubernetes.io/name", "prometheus"), ("operator.prometheus.io/name", "kube-prometheus-stack-prometheus"),
        ("prometheus", "kube-prometheus-stack-prometheus")), (("http-web", 9090), ("reloader-web", 8080))),
    "alertmanager": scan.Pod(MONITORING, (
        ("alertmanager", "kube-prometheus-stack-alertmanager"), ("app.kubernetes.io/instance", "kube-prometheus-stack-alertmanager"),
        ("app.kubernetes.io/managed-by", "prometheus-operator"), ("app.kubernetes.io/name", "alertmanager")),
        (("http-web", 9093), ("mesh-tcp", 9094), ("reloader-web", 8080))),
    "grafana": scan.Pod(MONITORING, (("app.kubernetes.io/instance", "kube-prometheus-stack"), ("app.kubernetes.io/name", "grafana")),
                        (("grafana", 3000),)),
    "kube-state-metrics": scan.Pod(MONITORING, (
        ("app.kubernetes.io/component", "metrics"), ("app.kubernetes.io/instance", "kube-prometheus-stack"),
        ("app.kubernetes.io/name", "kube-state-metrics"), ("release", "kube-prometheus-stack")), (("http", 8080), ("metrics", 8081))),
    "operator": scan.Pod(MONITORING, (
        ("app", "kube-prometheus-stack-operator"), ("app.kubernetes.io/component", "prometheus-operator"),
        ("app.kubernetes.io/name", "kube-prometheus-stack-prometheus-operator"), ("release", "kube-prometheus-stack")),
        (("https", 10250),)),
    "prometheus-adapter": scan.Pod(MONITORING, (
        ("app.kubernetes.io/component", "metrics"), ("app.kubernetes.io/instance", "prometheus-adapter"),
        ("app.kubernetes.io/name", "prometheus-adapter"), ("app.kubernetes.io/part-of", "prometheus-adapter")), (("https", 6443),)),
}
# Pods that must get nothing: another pod of the namespace (the chart's admission-certificate Job)
# and workloads of other namespaces.
OTHER_PODS = {
    "admission-job": scan.Pod(MONITORING, (("app", "kube-prometheus-stack-admission-create"),)),
    "triton": scan.Pod("inference", (("app.kubernetes.io/name", "triton"),)),
    "openwebui": scan.Pod("openwebui", (("app.kubernetes.io/name", "open-webui"),)),
}
# (destination, port, protocol) -> the pods that may connect. Every port of every chart pod is listed.
MONITORING_PATHS = {
    ("prometheus", 9090, "TCP"): {"grafana", "prometheus", "prometheus-adapter"},
    ("prometheus", 8080, "TCP"): {"prometheus"},
    ("alertmanager", 9093, "TCP"): {"prometheus", "grafana"},
    ("alertmanager", 8080, "TCP"): {"prometheus"},
    ("alertmanager", 9094, "TCP"): {"alertmanager"},
    ("alertmanager", 9094, "UDP"): {"alertmanager"},
    ("grafana", 3000, "TCP"): {"prometheus"},
    ("kube-state-metrics", 8080, "TCP"): {"prometheus"},
    ("kube-state-metrics", 8081, "TCP"): set(),
    ("operator", 10250, "TCP"): {"prometheus"},
    ("prometheus-adapter", 6443, "TCP"): set(),
}
INTERNET_IP = "203.0.113.7"


def vpc_ip(stack: str) -> str:
    """An address in the private subnets: a pod's, or the EKS control plane ENI's (the same range)."""
    return str(next(ipaddress.ip_network(pod_cidrs(stack)[0]).hosts()) + 7)


def monitoring_path_problems(model: scan.NetworkModel) -> list[str]:
    problems = []
    sources = {**CHART_PODS, **OTHER_PODS}
    for (dst, port, protocol), expected in MONITORING_PATHS.items():
        allowed = {name for name, pod in sources.items() if model.ingress_allowed(CHART_PODS[dst], pod, port, protocol)}
        if allowed != expected:
            problems.append(f"{dst}:{port}/{protocol}: open to {sorted(allowed)}, expected {sorted(expected)}")
    return problems


def test_every_port_of_the_chart_pods_has_an_expected_path():
    """The matrix covers every port the modelled pods listen on (a port left out would go unchecked)."""
    listed = {(dst, port) for dst, port, _ in MONITORING_PATHS}
    assert listed == {(name, number) for name, pod in CHART_PODS.items() for _, number in pod.ports}


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_denies_ingress_and_opens_only_its_paths(stack, plans):
    """Grafana (an admin login), Prometheus and Alertmanager are closed to the rest of the cluster:
    only the paths of the stack itself are open, and the API server's webhook/APIService ports."""
    objs = objects(plans[stack])
    model = scan.NetworkModel.from_objects(objs, pod_cidrs(stack))
    assert MONITORING in scan.default_deny_namespaces(model.policies, "Ingress")
    mine = [p for p in model.policies if p["metadata"]["namespace"] == MONITORING]
    # Policies that admit the VPC by necessity (the API server has no pod identity on EKS).
    by_cidr = {p["metadata"]["name"] for p in mine if scan.admits_pod_network(p)}
    autoscaled = any(d.autoscaled for d in config_for(stack).tritonDeployments)
    assert by_cidr == {"allow-operator-webhook"} | ({"allow-prometheus-adapter-api"} if autoscaled else set())
    strict = scan.NetworkModel([p for p in model.policies if not scan.admits_pod_network(p)], model.pod_cidrs, model.namespace_labels)
    problems = monitoring_path_problems(strict)

    # VPC addresses (the API server's ENIs, pods, the ALB subnets: Grafana is not exposed in the
    # stack files) reach exactly the webhook and, when installed, the adapter; the internet nothing.
    alb_ip = str(next(ipaddress.ip_network(alb_cidrs(stack)[0]).hosts()) + 10)
    expected = {("operator", 10250)} | ({("prometheus-adapter", 6443)} if autoscaled else set())
    for source, want in ((vpc_ip(stack), expected), (alb_ip, expected), (INTERNET_IP, set())):
        reached = {(dst, port) for dst, port, protocol in MONITORING_PATHS
                   if model.ingress_allowed(CHART_PODS[dst], source, port, protocol)}
        if reached != want:
            problems.append(f"{source} reaches {sorted(reached)}, expected {sorted(want)}")
    assert not problems, "\n".join(problems)


def test_monitoring_path_check_catches_an_open_namespace():
    """Without the policies (the namespace as it was) every path is open: the check is not vacuous."""
    problems = monitoring_path_problems(scan.NetworkModel([], ["10.20.0.0/19"]))
    assert any(p.startswith("grafana:3000/TCP: open to") and "triton" in p for p in problems)
    assert len(problems) == len(MONITORING_PATHS)


@pytest.mark.parametrize("scheme", ["internet-facing", "internal"])
def test_grafana_behind_the_alb_is_open_to_the_alb_subnets_on_its_port_only(scheme):
    from tests.harness import plan_with, stack_values
    exposure = {**stack_values("dev")["exposure"], "scheme": scheme, "grafanaHostname": "grafana.example.com",
                "certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"}
    run = plan_with("dev", exposure=exposure)
    objs = [inputs(r) for r in run.kubernetes_objects()]
    model = scan.NetworkModel.from_objects(objs, pod_cidrs("dev"))
    (policy,) = [p for p in model.policies if p["metadata"]["namespace"] == MONITORING and p["metadata"]["name"] == "allow-alb-ingress"]
    assert scan.policy_shape_findings(policy, pod_cidrs("dev")) == []
    subnets = alb_cidrs("dev") if scheme == "internet-facing" else pod_cidrs("dev")
    alb_ip = str(next(ipaddress.ip_network(subnets[0]).hosts()) + 10)
    grafana = CHART_PODS["grafana"]
    assert model.ingress_allowed(grafana, alb_ip, 3000)
    assert not model.ingress_allowed(CHART_PODS["prometheus"], alb_ip, 9090)
    assert not model.ingress_allowed(CHART_PODS["alertmanager"], alb_ip, 9093)
    assert not model.ingress_allowed(grafana, INTERNET_IP, 3000)
    # An internal ALB shares the pods' subnets, so its rule admits pod IPs too: said on the policy.
    # An internet-facing one lives in the public subnets, so pods stay out.
    assert bool(scan.admits_pod_network(policy)) == (scheme == "internal")
    assert model.ingress_allowed(grafana, OTHER_PODS["triton"], 3000) == (scheme == "internal")
    strict = scan.NetworkModel([p for p in model.policies if not scan.admits_pod_network(p)], model.pod_cidrs, model.namespace_labels)
    assert monitoring_path_problems(strict) == []


def test_multi_peer_helpers_refuse_open_selectors():
    with pytest.raises(ValueError, match="whole namespace"):
        security.pod_peer(MONITORING, {})
    with pytest.raises(ValueError, match="peers and ports"):
        security.ingress_rule([security.pod_peer(MONITORING, {"a": "b"})], [])
    with pytest.raises(ValueError, match="peers and ports"):
        security.ingress_rule([], [9090])
    with pytest.raises(ValueError, match="pod labels"):
        security.allow_ingress(MONITORING, "x", {}, [security.ingress_rule([security.pod_peer(MONITORING, {"a": "b"})], [1])],
                               pulumi.ResourceOptions())


# --- nothing lost on destroy/replace in prod ----------------------------------------------------------

# Types that hold data, and what protects each beyond Pulumi's `protect`/`retainOnDelete`.
STATEFUL_TYPES = {
    "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:rds/instance:Instance", "aws:rds/cluster:Cluster",
    "aws:ebs/volume:Volume", "aws:efs/fileSystem:FileSystem", "aws:dynamodb/table:Table", "aws:kms/key:Key",
    "aws:eks/cluster:Cluster", "aws:ecr/repository:Repository", "aws:secretsmanager/secret:Secret",
    "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume",
}


def stateful_problems(run) -> tuple[list[str], list[str]]:
    listed, problems = [], []
    for r in run.resources:
        if r.type not in STATEFUL_TYPES:
            continue
        i = inputs(r)
        guard = []
        if r.protect:
            guard.append("protect")
        if r.retain_on_delete:
            guard.append("retainOnDelete")
        name = f"{r.type.split(':')[-1]} {r.name}"
        if r.type.startswith("aws:s3/bucket"):
            if i.get("forceDestroy"):
                problems.append(f"{name}: forceDestroy would delete every object on destroy")
            versioning = [v for v in run.resources if v.type.startswith("aws:s3/bucketVersioning")
                          and (r.urn in v.dependencies or inputs(v).get("bucket") in (i.get("bucket"), r.name))]
            status = [inputs(v).get("versioningConfiguration", {}).get("status") for v in versioning]
            if "Enabled" in status or (i.get("versioning") or {}).get("enabled"):
                guard.append("versioning")
            else:
                problems.append(f"{name}: versioning is not enabled")
        if r.type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
            if i.get("deletionProtection") is True:
                guard.append("deletionProtection")
            else:
                problems.append(f"{name}: deletionProtection is not true")
            if i.get("skipFinalSnapshot"):
                problems.append(f"{name}: skipFinalSnapshot loses the data on destroy")
        if r.type == "aws:eks/cluster:Cluster":
            if i.get("deletionProtection") is True:
                guard.append("deletionProtection")
            else:
                problems.append(f"{name}: deletionProtection is not true")
        if r.type == "aws:dynamodb/table:Table" and i.get("deletionProtectionEnabled"):
            guard.append("deletionProtection")
        if r.type == "aws:kms/key:Key":
            # A destroyed key is only scheduled for deletion; the window is the time to cancel it.
            if (i.get("deletionWindowInDays") or 0) >= 30:
                guard.append("30-day deletion window")
            else:
                problems.append(f"{name}: deletionWindowInDays < 30")
        if r.type == "kubernetes:core/v1:PersistentVolumeClaim":
            storage_class = (i.get("spec") or {}).get("storageClassName")
            if storage_class == "gp3-retain":
                guard.append("Retain volume")
            else:
                problems.append(f"{name}: storageClassName {storage_class!r}: its volume is deleted with the claim (use gp3-retain)")
        if r.type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster", "aws:eks/cluster:Cluster", "aws:kms/key:Key"):
            pass  # their own deletion guards above are what counts
        elif not (r.protect or r.retain_on_delete):
            problems.append(f"{name}: neither protect nor retainOnDelete")
        listed.append(f"{name}: {', '.join(guard) or 'UNPROTECTED'}")
    return listed, problems


def test_every_stateful_resource_of_prod_is_protected():
    listed, problems = stateful_problems(plan("prod"))
    print("prod stateful resources:\n  " + "\n  ".join(listed))
    assert any(line.startswith("Cluster ") for line in listed) and any(line.startswith("Key ") for line in listed)
    assert not problems, "\n".join(problems)


def test_prod_volumes_claimed_through_helm_are_retained():
    """Volumes a chart creates (Prometheus, Grafana...) must use the Retain class in prod too."""
    problems = []
    for release in plan("prod").of_type("kubernetes:helm.sh/v3:Release"):
        for path, value in scan._walk(inputs(release).get("values") or {}):
            if path.endswith("storageClassName") and value != "gp3-retain":
                problems.append(f"{release.name}: {path} = {value!r}")
    assert not problems, "\n".join(problems)


def test_gp3_retain_class_keeps_volumes():
    classes = {inputs(r)["metadata"]["name"]: inputs(r) for r in plan("prod").of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert classes["gp3-retain"]["reclaimPolicy"] == "Retain"
    assert classes["gp3-retain"]["parameters"]["encrypted"] == "true"


# --- cluster side ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_node_networking_is_minimal(stack):
    """Nodes use only the EKS-managed cluster security group: no extra groups or open rules, no SSH,
    no public IPs; NetworkPolicies are enforced by the VPC CNI."""
    run = plan(stack)
    extra = [r.name for r in run.resources if r.type.startswith(("aws:ec2/securityGroup", "aws:vpc/securityGroup"))
             and any(c.get("cidrBlocks") == ["0.0.0.0/0"] or c.get("cidrIpv4") == "0.0.0.0/0" for c in [inputs(r)] + list(inputs(r).get("ingress") or []))]
    assert not extra, f"security groups open to the internet: {extra}"
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert "remoteAccess" not in inputs(group), f"{group.name}: SSH access to nodes"
    for template in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        i = inputs(template)
        assert "vpcSecurityGroupIds" not in i and "securityGroupNames" not in i, f"{template.name}: extra node security groups"
        assert not any(ni.get("associatePublicIpAddress") for ni in i.get("networkInterfaces") or []), f"{template.name}: public IPs"
    (cni,) = [a for a in run.of_type("aws:eks/addon:Addon") if inputs(a)["addonName"] == "vpc-cni"]
    assert json.loads(inputs(cni)["configurationValues"])["enableNetworkPolicy"] == "true"


@pytest.mark.parametrize("stack", STACKS)
def test_public_api_endpoint_only_from_configured_cidrs(stack):
    config = config_for(stack)
    vpc = inputs(plan(stack).of_type("aws:eks/cluster:Cluster")[0])["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    if config.cluster.endpointPublicAccess:
        assert vpc["publicAccessCidrs"] == config.cluster.publicAccessCidrs
    else:
        assert vpc["endpointPublicAccess"] is False and "publicAccessCidrs" not in vpc
