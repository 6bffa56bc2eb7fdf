"""Security checks over what `platformctl plan` writes (plan.json, manifests/, helm/): checkov,
secret hygiene, pod security, Pod Security Admission labels and a small NetworkPolicy evaluator.

Used by tests/test_security.py (the gate) and bench/security.py (the README figures). Everything
works on plain dicts as they appear in the written files, so it checks what would be applied.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import yaml

from components.monitoring import selector_matches
from platformctl.mockrun import COMPUTED, SECRET

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHECKOV_VENV = PROJECT_DIR / ".venv-checkov"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
ENSURE_CHECKOV = PROJECT_DIR / "scripts" / "ensure-checkov.sh"
SECURITY_DOC = PROJECT_DIR / "docs" / "security.md"

PSA = "pod-security.kubernetes.io"
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")
# Namespaces the platform does not own: EKS add-ons live there and a default deny would cut them off.
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "default"}


# --- reading the plan output -----------------------------------------------------------------

def load_manifests(plan_dir: Path) -> list[tuple[str, dict]]:
    """(file name, object) for every manifest of a plan directory."""
    return [(p.name, yaml.safe_load(p.read_text())) for p in sorted((plan_dir / "manifests").glob("*.yaml"))]


def load_helm_releases(plan_dir: Path) -> list[tuple[str, dict]]:
    helm = plan_dir / "helm"
    return [(p.stem, yaml.safe_load(p.read_text())) for p in sorted(helm.glob("*.yaml"))] if helm.is_dir() else []


def object_id(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{where}{meta.get('name')}"


# --- checkov ---------------------------------------------------------------------------------

class CheckovUnavailable(RuntimeError):
    pass


@dataclass
class CheckovReport:
    passed: int
    failed: int
    skipped: int
    parsing_errors: int
    resource_count: int
    failed_checks: list[dict] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [f"{c['check_id']} {c.get('check_name', '')} on {c.get('resource')} ({Path(c.get('file_path', '')).name})"
                for c in self.failed_checks]


def ensure_checkov() -> Path:
    if not CHECKOV.exists() or not (CHECKOV_VENV / ".requirements-sha256").exists():
        subprocess.run([str(ENSURE_CHECKOV)], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900)
    if not CHECKOV.exists():
        raise CheckovUnavailable(f"checkov is not installed in {CHECKOV_VENV} (run scripts/ensure-checkov.sh)")
    return CHECKOV


def run_checkov(manifests_dir: Path) -> CheckovReport:
    """checkov over one directory of manifests, offline, framework kubernetes."""
    checkov = ensure_checkov()
    result = subprocess.run(
        [str(checkov), "-d", str(manifests_dir), "--framework", "kubernetes", "--skip-download", "--quiet", "-o", "json"],
        capture_output=True, text=True, timeout=600,
        # No telemetry or update checks: the scan must not depend on the network.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"},
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {result.returncode}: {result.stderr[-2000:]}")
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov printed no JSON ({exc}): {result.stdout[:500]} {result.stderr[-1000:]}") from None
    reports = doc if isinstance(doc, list) else [doc]
    total = CheckovReport(0, 0, 0, 0, 0)
    for report in reports:
        summary = report.get("summary", report)  # with nothing to scan checkov prints the bare summary
        total.passed += summary.get("passed", 0)
        total.failed += summary.get("failed", 0)
        total.skipped += summary.get("skipped", 0)
        total.parsing_errors += summary.get("parsing_errors", 0)
        total.resource_count += summary.get("resource_count", 0)
        total.failed_checks += (report.get("results") or {}).get("failed_checks", [])
    return total


def checkov_skips_in(objects: Iterable[dict]) -> dict[tuple[str, str], str]:
    """{(check id, object id): reason} from the checkov skip annotations of the objects."""
    skips = {}
    for obj in objects:
        for key, value in ((obj.get("metadata") or {}).get("annotations") or {}).items():
            if SKIP_ANNOTATION.match(key):
                check, _, reason = str(value).partition("=")
                skips[(check.strip(), object_id(obj))] = reason.strip()
    return skips


def documented_skips(doc: Path = SECURITY_DOC) -> dict[tuple[str, str], str]:
    """{(check id, object id): reason} from the skip table of docs/security.md
    (rows `| CKV_K8S_nn | Kind/namespace/name | reason |`)."""
    skips = {}
    if not doc.exists():
        return skips
    for line in doc.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"CKV2?_K8S_\d+", cells[0]):
            skips[(cells[0], cells[1])] = cells[2]
    return skips


# --- secret hygiene --------------------------------------------------------------------------

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|WEBHOOK)", re.I)
SECRET_KEY = re.compile(r"(password|passwd|secret|token|apikey|api_key|privatekey|private_key|webhookurl|webhook_url|credentials?)$", re.I)
# Keys that name where a secret is, not the secret itself.
POINTER_KEY = re.compile(r"^existing|(secretname|secretref|name|ref|file|path|key|keys|id|arn|enabled|create)$", re.I)
HARMLESS_VALUE = re.compile(r"^(|true|false|none|null|\d+|<computed>|\[secret\])$", re.I)
PATTERNS = {
    "PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws.{0,20}secret.{0,20}[\"':= ]+[0-9a-zA-Z/+]{40}\b"),
    "URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@\"']+:(?!\[secret\]@)[^\s@/\"']+@"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/"),
    "Slack token": re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
    "Hugging Face token": re.compile(r"\bhf_[0-9A-Za-z]{30,}"),
    "JWT": re.compile(r"\beyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}"),
}


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def text_secret_findings(text: str, where: str) -> list[str]:
    return [f"{where}: {label}" for label, pattern in PATTERNS.items() if pattern.search(text)]


def _env_findings(spec: dict, where: str) -> list[str]:
    found = []
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            name, value = str(env.get("name", "")), env.get("value")
            if value is None or not SECRET_NAME.search(name) or HARMLESS_VALUE.match(str(value)):
                continue
            if re.search(r"(_FILE|_PATH|_NAME|_HEADER|_URL_FILE)$", name):
                continue  # points at a mounted file / names a header, not the secret
            found.append(f"{where} container {container.get('name')}: env {name} has a literal value "
                         f"(use valueFrom.secretKeyRef)")
    return found


def manifest_secret_findings(name: str, obj: dict) -> list[str]:
    """Secret material in one manifest: Secret data that is not a Pulumi secret, secret-looking env
    vars with literal values, and known key/token/URL-with-password patterns anywhere."""
    where = f"{name} ({object_id(obj)})"
    found = text_secret_findings(yaml.safe_dump(obj), where)
    if obj.get("kind") == "Secret":
        for section in ("data", "stringData"):
            data = obj.get(section)
            if isinstance(data, str):  # the whole map is one Pulumi secret
                if data not in (SECRET, COMPUTED):
                    found.append(f"{where}: {section} is not a Pulumi secret")
                continue
            for key, value in (data or {}).items():
                if value not in (SECRET, COMPUTED):
                    found.append(f"{where}: {section}.{key} is not a Pulumi secret (it would be stored in the state in plain text)")
    for spec in pod_specs(obj):
        found += _env_findings(spec, where)
    return found


def values_secret_findings(where: str, values: Any) -> list[str]:
    """Secret-named keys with literal string values (Helm values, resource inputs)."""
    found = []
    for path, value in _walk(values):
        key = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])
        if not isinstance(value, str) or HARMLESS_VALUE.match(value):
            continue
        if SECRET_KEY.search(key) and not POINTER_KEY.search(key):
            found.append(f"{where}: {path} has a literal value (make it a Pulumi secret / existingSecret)")
    return found


def plan_secret_findings(plan_doc: dict) -> list[str]:
    found = text_secret_findings(json.dumps(plan_doc), "plan.json")
    for resource in plan_doc.get("resources", []):
        inputs = resource.get("inputs") or {}
        where = f"plan.json {resource['type']} {resource['name']}"
        if resource["type"].startswith("kubernetes:") and "kind" in inputs:
            found += manifest_secret_findings("plan.json", inputs)
            continue
        found += values_secret_findings(where, inputs)
        if resource["type"] == "aws:ssm/parameter:Parameter" and inputs.get("type") == "SecureString" and inputs.get("value") not in (SECRET, COMPUTED):
            found.append(f"{where}: SecureString value is not a Pulumi secret")
        if resource["type"] == "aws:secretsmanager/secretVersion:SecretVersion" and inputs.get("secretString") not in (None, SECRET, COMPUTED):
            found.append(f"{where}: secretString is not a Pulumi secret")
    for name, value in (plan_doc.get("outputs") or {}).items():
        found += values_secret_findings(f"plan.json output {name}", {name: value})
    return found


# --- workloads and pod security ----------------------------------------------------------------

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
RUN_TO_COMPLETION = {"Job", "CronJob"}


def pod_template(obj: dict) -> Optional[dict]:
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": obj.get("spec") or {}}
    if kind == "CronJob":
        return ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec", {}).get("template")
    return (obj.get("spec") or {}).get("template")


def pod_specs(obj: dict) -> list[dict]:
    template = pod_template(obj)
    return [template.get("spec") or {}] if template else []


def _effective(container: dict, pod: dict, key: str) -> Any:
    ctx = container.get("securityContext") or {}
    return ctx[key] if key in ctx else (pod.get("securityContext") or {}).get(key)


def pod_security_findings(name: str, obj: dict) -> list[str]:
    """What a container of the platform must have: non-root, no privilege escalation, no
    capabilities, seccomp RuntimeDefault, read-only root (or a documented CKV_K8S_22 skip),
    requests and limits, probes (long-running containers), no service-account token unless a
    documented CKV_K8S_38 skip says why the pod needs the API."""
    template = pod_template(obj)
    if template is None:
        return []
    spec = template.get("spec") or {}
    where = f"{name} ({object_id(obj)})"
    skipped = {check for check, _ in checkov_skips_in([obj])}
    found = []
    if spec.get("automountServiceAccountToken") is not False and "CKV_K8S_38" not in skipped:
        found.append(f"{where}: automountServiceAccountToken is not false (and no documented CKV_K8S_38 skip)")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(f"{where}: {flag} is set")
    containers = [(c, False) for c in spec.get("containers") or []] + [(c, True) for c in spec.get("initContainers") or []]
    for container, is_init in containers:
        cw = f"{where} container {container.get('name')}"
        ctx = container.get("securityContext") or {}
        if _effective(container, spec, "runAsNonRoot") is not True and "CKV_K8S_23" not in skipped:
            found.append(f"{cw}: runAsNonRoot is not true (and no documented CKV_K8S_23 skip)")
        if _effective(container, spec, "runAsUser") == 0:
            found.append(f"{cw}: runs as uid 0")
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"{cw}: allowPrivilegeEscalation is not false")
        if ctx.get("privileged"):
            found.append(f"{cw}: privileged")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{cw}: capabilities.drop does not include ALL")
        if caps.get("add"):
            found.append(f"{cw}: adds capabilities {caps['add']}")
        if (_effective(container, spec, "seccompProfile") or {}).get("type") != "RuntimeDefault":
            found.append(f"{cw}: seccompProfile is not RuntimeDefault")
        if ctx.get("readOnlyRootFilesystem") is not True and "CKV_K8S_22" not in skipped:
            found.append(f"{cw}: readOnlyRootFilesystem is not true (and no documented CKV_K8S_22 skip)")
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in (resources.get(section) or {})]
            if missing:
                found.append(f"{cw}: no {section} for {', '.join(missing)}")
        if not is_init and obj.get("kind") not in RUN_TO_COMPLETION:
            for probe in ("livenessProbe", "readinessProbe"):
                if not container.get(probe):
                    found.append(f"{cw}: no {probe}")
    return found


def namespace_levels(objects: Iterable[dict]) -> dict[str, dict[str, str]]:
    """{namespace: {"enforce", "audit", "warn", "reason"}} for every Namespace object."""
    out = {}
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        out[meta.get("name")] = {
            mode: labels.get(f"{PSA}/{mode}", "") for mode in ("enforce", "audit", "warn")
        } | {"reason": (meta.get("annotations") or {}).get("ai-platform/pod-security-reason", "")}
    return out


def namespace_findings(objects: list[dict], releases: list[tuple[str, dict]]) -> list[str]:
    """Every namespace the project creates has PSA labels (enforce/audit/warn + versions) and a
    reason; every namespace something is deployed into is one the project creates (so it is
    labelled), except the EKS system namespaces."""
    found = []
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        for mode in ("enforce", "audit", "warn"):
            if labels.get(f"{PSA}/{mode}") not in ("restricted", "baseline", "privileged"):
                found.append(f"Namespace {meta.get('name')}: no valid {PSA}/{mode} label")
            if not labels.get(f"{PSA}/{mode}-version"):
                found.append(f"Namespace {meta.get('name')}: no {PSA}/{mode}-version label")
        if not (meta.get("annotations") or {}).get("ai-platform/pod-security-reason"):
            found.append(f"Namespace {meta.get('name')}: no ai-platform/pod-security-reason annotation")
    created = set(namespace_levels(objects))
    used = {(obj.get("metadata") or {}).get("namespace") for obj in objects} - {None}
    for name, release in releases:
        used.add(release.get("namespace") or "default")
        if release.get("createNamespace"):
            found.append(f"Helm release {name}: createNamespace makes a namespace without Pod Security labels; create it with components.security.namespace")
    for namespace in sorted(used - created - SYSTEM_NAMESPACES):
        found.append(f"namespace {namespace} is used but not created by the project (so it has no Pod Security labels)")
    return found


# --- NetworkPolicies ----------------------------------------------------------------------------



@dataclass(frozen=True)
class Pod:
    """A pod as a NetworkPolicy sees it (namespace labels default to the metadata.name label)."""
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int], ...] = ()  # (name, containerPort)

    @property
    def label_dict(self) -> dict:
        return dict(self.labels)

    def resolve(self, port: int | float | str) -> Optional[int]:
        if isinstance(port, str) and not port.isdigit():
            return next((number for name, number in self.ports if name == port), None)
        return int(port)


def _number(port: Any) -> Optional[int]:
    """A numeric port (plan files can carry 443 as 443.0); None for a named port."""
    if isinstance(port, (int, float)):
        return int(port)
    return int(port) if str(port).isdigit() else None


def pod_of(obj: dict) -> Optional[Pod]:
    template = pod_template(obj)
    if template is None:
        return None
    ports = tuple((p.get("name", ""), int(float(p["containerPort"])))
                  for c in (template.get("spec") or {}).get("containers") or [] for p in c.get("ports") or [])
    labels = tuple(sorted(((template.get("metadata") or {}).get("labels") or {}).items()))
    return Pod((obj.get("metadata") or {}).get("namespace") or "default", labels, ports)


def _port_matches(rule_ports: Optional[list], port: int, protocol: str, dst: Optional[Pod]) -> bool:
    if not rule_ports:
        return True
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != protocol:
            continue
        if "port" not in rp:
            return True
        number = dst.resolve(rp["port"]) if dst else _number(rp["port"])
        if number is None:
            continue
        end = int(rp.get("endPort", number))
        if number <= port <= end:
            return True
    return False


def _peer_matches(peer: dict, src: Pod | str, policy_namespace: str, pod_cidrs: list[str],
                  namespace_labels: Optional[dict[str, dict]] = None) -> bool:
    """Does a from/to peer match a pod or an IP? Pods also match ipBlocks that cover the pod
    network (with the VPC CNI, pod IPs are VPC IPs)."""
    if "ipBlock" in peer:
        block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        excepts = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except") or []]
        if isinstance(src, str):
            ip = ipaddress.ip_address(src)
            return ip in block and not any(ip in e for e in excepts)
        for cidr in pod_cidrs:  # a pod matches when the block covers part of the pod network
            net = ipaddress.ip_network(cidr)
            if block.overlaps(net) and not any(net.subnet_of(e) for e in excepts if e.version == net.version):
                return True
        return False
    if isinstance(src, str):
        return False
    if "namespaceSelector" in peer:
        labels = {**(namespace_labels or {}).get(src.namespace, {}), "kubernetes.io/metadata.name": src.namespace}
        if not selector_matches(peer["namespaceSelector"], labels):
            return False
    elif src.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), src.label_dict)


def _types(policy: dict) -> list[str]:
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


@dataclass
class NetworkModel:
    policies: list[dict]
    pod_cidrs: list[str] = field(default_factory=list)
    namespace_labels: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[dict], pod_cidrs: list[str]) -> "NetworkModel":
        objects = list(objects)
        return cls(
            [o for o in objects if o.get("kind") == "NetworkPolicy"],
            pod_cidrs,
            {(o.get("metadata") or {}).get("name"): (o.get("metadata") or {}).get("labels") or {} for o in objects if o.get("kind") == "Namespace"},
        )

    def _selecting(self, pod: Pod, direction: str) -> list[dict]:
        return [p for p in self.policies
                if (p.get("metadata") or {}).get("namespace") == pod.namespace
                and direction in _types(p)
                and selector_matches((p.get("spec") or {}).get("podSelector") or {}, pod.label_dict)]

    def ingress_allowed(self, dst: Pod, src: Pod | str, port: int, protocol: str = "TCP") -> bool:
        selecting = self._selecting(dst, "Ingress")
        if not selecting:
            return True  # not isolated
        for policy in selecting:
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                peers = rule.get("from")
                if (not peers or any(_peer_matches(peer, src, dst.namespace, self.pod_cidrs, self.namespace_labels) for peer in peers)) \
                        and _port_matches(rule.get("ports"), port, protocol, dst):
                    return True
        return False

    def egress_allowed(self, src: Pod, dst: Pod | str, port: int, protocol: str = "TCP") -> bool:
        selecting = self._selecting(src, "Egress")
        if not selecting:
            return True
        for policy in selecting:
            for rule in (policy.get("spec") or {}).get("egress") or []:
                peers = rule.get("to")
                if (not peers or any(_peer_matches(peer, dst, src.namespace, self.pod_cidrs, self.namespace_labels) for peer in peers)) \
                        and _port_matches(rule.get("ports"), port, protocol, dst if isinstance(dst, Pod) else None):
                    return True
        return False

    def allowed(self, src: Pod | str, dst: Pod | str, port: int, protocol: str = "TCP") -> bool:
        """Both ends agree: src may send (egress) and dst may receive (ingress)."""
        out_ok = self.egress_allowed(src, dst, port, protocol) if isinstance(src, Pod) else True
        in_ok = self.ingress_allowed(dst, src, port, protocol) if isinstance(dst, Pod) else True
        return out_ok and in_ok


def default_deny_namespaces(policies: list[dict], direction: str = "Ingress") -> set[str]:
    """Namespaces with a policy that selects every pod for `direction` and allows nothing."""
    out = set()
    for p in policies:
        spec = p.get("spec") or {}
        if spec.get("podSelector") in ({}, None) and direction in _types(p) and not spec.get(direction.lower()):
            out.add((p.get("metadata") or {}).get("namespace"))
    return out


POD_NETWORK_ANNOTATION = "ai-platform/admits-pod-network"


def admits_pod_network(policy: dict) -> str:
    """The stated reason a policy admits address ranges that cover pod IPs (internal NLB), or ''."""
    return ((policy.get("metadata") or {}).get("annotations") or {}).get(POD_NETWORK_ANNOTATION, "")


PUBLIC_HTTPS_EXCEPT = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


def policy_shape_findings(policy: dict, pod_cidrs: list[str]) -> list[str]:
    """'Nothing else open': every allow rule names its peers and its ports; pod peers name pod
    labels (never a whole namespace); address blocks never cover the pod network or the world,
    except HTTPS egress to public addresses (S3, model hub) with private and link-local ranges
    excluded."""
    spec = policy.get("spec") or {}
    where = object_id(policy)
    found = []
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(spec.get(direction) or []):
            rw = f"{where} {direction}[{index}]"
            peers, ports = rule.get(peer_key), rule.get("ports")
            if not peers:
                found.append(f"{rw}: no '{peer_key}' (open to every peer)")
                continue
            if not ports or any("port" not in p for p in ports):
                found.append(f"{rw}: no ports (open on every port)")
            for peer in peers:
                if "ipBlock" in peer:
                    block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    excepts = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except") or []]
                    if block.prefixlen == 0:
                        public_https = (direction == "egress" and {_number(p.get("port")) for p in ports or []} == {443}
                                        and {str(e) for e in excepts} >= set(PUBLIC_HTTPS_EXCEPT))
                        if not public_https:
                            found.append(f"{rw}: {block} is only allowed for egress on 443 with private and link-local ranges excepted")
                    elif direction == "ingress" and any(block.overlaps(ipaddress.ip_network(c)) for c in pod_cidrs) \
                            and not admits_pod_network(policy):
                        found.append(f"{rw}: {block} covers pod IPs (the VPC CNI gives pods subnet IPs), so every pod is let in")
                else:
                    if not (peer.get("podSelector") or {}).get("matchLabels") and not (peer.get("podSelector") or {}).get("matchExpressions"):
                        found.append(f"{rw}: a peer without pod labels opens the port to a whole namespace")
    return found
