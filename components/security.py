"""Security building blocks every on-cluster component uses: namespaces with Pod Security Admission
labels, the restricted security contexts, and the NetworkPolicies of the paths the platform needs.

Everything returns plain Kubernetes-spelled dicts (camelCase) or creates resources under the `parent`
the caller passes, whose Kubernetes provider (from the component's `providers` option) they inherit,
so the same values work in typed resources and Helm values.

Usage inside a component:

    ns = security.namespace("inference", "restricted", "Triton runs as non-root with dropped caps", parent=self)
    opts = pulumi.ResourceOptions(parent=self, depends_on=[ns])
    security.default_deny("inference", opts, egress=True)
    security.allow_dns_egress("inference", opts)
    security.allow_from_pods("inference", "openwebui-to-triton", TRITON_LABELS, ports=[9000],
                             from_namespace="ui", from_pod_labels=OPENWEBUI_LABELS, opts=opts)
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

# --- Pod Security Admission ------------------------------------------------------------------

PSA_LEVELS = ("restricted", "baseline", "privileged")
PSA_PREFIX = "pod-security.kubernetes.io"
# Annotation that records why a namespace is not `restricted` (read by reviewers and the README table).
PSA_REASON_ANNOTATION = "ai-platform/pod-security-reason"
# Label every namespace the project creates carries, so tests and operators can find them.
MANAGED_LABEL = {"app.kubernetes.io/part-of": "ai-platform"}


def pod_security_labels(level: str, version: str = "latest") -> dict[str, str]:
    """PSA labels for a namespace. `enforce` and `warn` use the level the workload can run at;
    `audit` is always `restricted`, so the audit log shows the gap to restricted without every
    deploy printing warnings for pods that knowingly need more (GPU drivers, node exporters)."""
    if level not in PSA_LEVELS:
        raise ValueError(f"pod security level must be one of {', '.join(PSA_LEVELS)} (got {level!r})")
    return {
        f"{PSA_PREFIX}/enforce": level,
        f"{PSA_PREFIX}/enforce-version": version,
        f"{PSA_PREFIX}/warn": level,
        f"{PSA_PREFIX}/warn-version": version,
        f"{PSA_PREFIX}/audit": "restricted",
        f"{PSA_PREFIX}/audit-version": version,
    }


def namespace(
    name: str,
    level: str,
    reason: str,
    parent: pulumi.Resource,
    labels: Optional[Mapping[str, str]] = None,
    version: str = "latest",
    opts: Optional[pulumi.ResourceOptions] = None,
) -> k8s.core.v1.Namespace:
    """A Namespace with Pod Security Admission labels. `reason` says why this level (required, and
    it must justify anything below `restricted`); it is kept as an annotation on the namespace."""
    if not reason.strip():
        raise ValueError(f"namespace {name}: give the reason for pod security level {level!r}")
    all_labels = {**MANAGED_LABEL, **(labels or {}), **pod_security_labels(level, version)}
    ns = k8s.core.v1.Namespace(
        f"ns-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            labels=all_labels,
            annotations={PSA_REASON_ANNOTATION: reason},
        ),
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts),
    )
    # Workload namespaces start closed: each component then opens exactly its paths. Privileged
    # namespaces hold host-network node agents (NetworkPolicies do not apply to them) and chart
    # webhooks the API server must reach; their component closes them itself where it knows every
    # path (monitoring does; gpu-operator is left to its chart).
    if level != "privileged":
        default_deny(name, pulumi.ResourceOptions(parent=parent, depends_on=[ns]))
    return ns


# --- security contexts -----------------------------------------------------------------------

# A uid/gid outside the range images commonly bake in (0-999 system, 1000 first user), so a
# container never maps onto a host or image account by accident.
DEFAULT_UID = 10001
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}


def secret_env(name: str, secret_name: str, key: str) -> k8s.core.v1.EnvVarArgs:
    """An environment variable read from a Secret key by reference (the value stays out of the pod spec)."""
    return k8s.core.v1.EnvVarArgs(name=name, value_from=k8s.core.v1.EnvVarSourceArgs(
        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=key)))


def restricted_pod_security_context(run_as_user: int = DEFAULT_UID, fs_group: Optional[int] = None) -> dict[str, Any]:
    """Pod-level context that satisfies PSA `restricted`. `fsGroup` makes mounted volumes writable
    by the non-root user (defaults to the uid)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "fsGroup": run_as_user if fs_group is None else fs_group,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


def restricted_security_context(read_only_root: bool = True, run_as_user: int = DEFAULT_UID) -> dict[str, Any]:
    """Container-level context: non-root, no privilege escalation, every capability dropped,
    seccomp RuntimeDefault. Pass `read_only_root=False` only for an image that writes outside the
    paths you can mount as emptyDirs (and say which in a comment)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


def writable_dirs(paths: Mapping[str, str], size_limit: str = "1Gi") -> tuple[list[dict], list[dict]]:
    """(volumes, volumeMounts) giving a read-only-root container writable emptyDirs at `paths`
    ({volume name: mount path})."""
    volumes = [{"name": name, "emptyDir": {"sizeLimit": size_limit}} for name in paths]
    mounts = [{"name": name, "mountPath": path} for name, path in paths.items()]
    return volumes, mounts


def checkov_skips(skips: Mapping[str, str]) -> dict[str, str]:
    """Checkov skip annotations for one object: {"CKV_K8S_43": "reason"} ->
    {"checkov.io/skip1": "CKV_K8S_43=reason"}. Every skip must also be listed in docs/security.md
    (tests/test_security.py keeps the two in sync)."""
    out = {}
    for index, (check, reason) in enumerate(sorted(skips.items()), start=1):
        if not reason.strip():
            raise ValueError(f"checkov skip {check} needs a reason")
        out[f"checkov.io/skip{index}"] = f"{check}={reason}"
    return out


# --- NetworkPolicies -------------------------------------------------------------------------

DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}  # CoreDNS as the EKS add-on labels it
# Link-local: the instance metadata service (node credentials) and the EKS Pod Identity agent.
# IMDSv2 with hop limit 1 already keeps pods off IMDS; this is the second lock on that door.
LINK_LOCAL = "169.254.0.0/16"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _name_selector(namespace: str) -> dict:
    # Set by the API server on every namespace since 1.22, so it cannot be forged by a label edit.
    return {"matchLabels": {"kubernetes.io/metadata.name": namespace}}


def _ports(ports: Iterable[int | str], protocol: str = "TCP") -> list[dict]:
    return [{"protocol": protocol, "port": port} for port in ports]


def _policy(namespace: str, name: str, spec: dict, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(MANAGED_LABEL)),
        spec=spec,
        opts=opts,
    )


def default_deny(namespace: str, opts: pulumi.ResourceOptions, egress: bool = False) -> k8s.networking.v1.NetworkPolicy:
    """Deny all ingress to every pod of the namespace (and all egress with `egress=True`); the
    allow-* policies below then open exactly the paths the platform needs."""
    types = ["Ingress", "Egress"] if egress else ["Ingress"]
    return _policy(namespace, "default-deny", {"podSelector": {}, "policyTypes": types}, opts)


def default_deny_ingress(namespace: str, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    return default_deny(namespace, opts, egress=False)


def allow_dns_egress(namespace: str, opts: pulumi.ResourceOptions, pod_labels: Optional[Mapping[str, str]] = None,
                     name: str = "allow-dns-egress") -> k8s.networking.v1.NetworkPolicy:
    """The selected pods (all of the namespace without `pod_labels`) may resolve names through
    CoreDNS. Note an Egress policy also isolates the egress of the pods it selects: use it with
    the other allow-*-egress policies of those pods."""
    return _policy(namespace, name, {
        "podSelector": {"matchLabels": dict(pod_labels)} if pod_labels else {},
        "policyTypes": ["Egress"],
        "egress": [{
            "to": [{"namespaceSelector": _name_selector(DNS_NAMESPACE), "podSelector": {"matchLabels": dict(DNS_POD_LABELS)}}],
            "ports": _ports([53], "UDP") + _ports([53], "TCP"),
        }],
    }, opts)


def allow_from_pods(
    namespace: str,
    name: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    from_namespace: str,
    from_pod_labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Ingress to `pod_labels` pods on `ports` from `from_pod_labels` pods of `from_namespace`
    (e.g. OpenWebUI -> Triton's OpenAI port 9000). Both selectors are required: an empty one would
    open the port to a whole namespace."""
    if not pod_labels or not from_pod_labels:
        raise ValueError(f"{namespace}/{name}: both pod selectors must name labels")
    return _policy(namespace, name, {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [{"namespaceSelector": _name_selector(from_namespace), "podSelector": {"matchLabels": dict(from_pod_labels)}}],
            "ports": _ports(ports),
        }],
    }, opts)


# kube-prometheus-stack labels its Prometheus pods with these (operator-managed StatefulSet).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


def allow_prometheus_scrape(
    namespace: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    opts: pulumi.ResourceOptions,
    prometheus_namespace: str = "monitoring",
    prometheus_pod_labels: Mapping[str, str] = PROMETHEUS_POD_LABELS,
    name: str = "allow-prometheus-scrape",
) -> k8s.networking.v1.NetworkPolicy:
    """Prometheus may scrape the metrics ports (only those) of `pod_labels` pods."""
    return allow_from_pods(namespace, name, pod_labels, ports, prometheus_namespace, prometheus_pod_labels, opts)


def allow_from_cidrs(
    namespace: str,
    name: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    cidrs: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Ingress from address ranges, for the ALB: with the AWS Load Balancer Controller in IP
    target mode the ALB connects straight to pod IPs from its own ENIs in its subnets, so the
    source is those subnets' CIDRs (components.exposure.alb_source), not a pod selector."""
    if not pod_labels:
        raise ValueError(f"{namespace}/{name}: the pod selector must name labels")
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=True)
        if net.prefixlen == 0:
            raise ValueError(f"{namespace}/{name}: {cidr} would open the port to everyone")
    return _policy(namespace, name, {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": c}} for c in cidrs], "ports": _ports(ports)}],
    }, opts)


def allow_alb_ingress(
    namespace: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    alb_subnet_cidrs: Sequence[str],
    opts: pulumi.ResourceOptions,
    name: str = "allow-alb-ingress",
) -> k8s.networking.v1.NetworkPolicy:
    """The ALB (IP targets) may reach the UI's ports. Pass the CIDRs of the subnets the ALB lives in
    (the public subnets for an internet-facing ALB: `components.network.subnet_cidrs(...)[0]`),
    never the VPC CIDR: with the VPC CNI every pod has a private-subnet IP, so the VPC CIDR would
    let every pod of the cluster in as well."""
    return allow_from_cidrs(namespace, name, pod_labels, ports, alb_subnet_cidrs, opts)


# On a policy that admits address ranges covering pod IPs (an internal NLB's subnets): why.
POD_NETWORK_ANNOTATION = "ai-platform/admits-pod-network"


def allow_from_vpc_clients(
    namespace: str,
    name: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    cidrs: Sequence[str],
    reason: str,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Ingress from clients inside the VPC through an internal NLB (IP targets): the NLB's ENIs,
    like pods, have private-subnet IPs, so this necessarily admits pods on `ports` too. The
    `reason` is kept on the policy and the security tests list such policies."""
    if not pod_labels or not reason.strip():
        raise ValueError(f"{namespace}/{name}: name the pod labels and the reason")
    policy = {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": c}} for c in cidrs], "ports": _ports(ports)}],
    }
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(MANAGED_LABEL),
                                            annotations={POD_NETWORK_ANNOTATION: reason}),
        spec=policy,
        opts=opts,
    )


def allow_https_egress(
    namespace: str,
    pod_labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    name: str = "allow-https-egress",
    extra_except: Sequence[str] = (),
) -> k8s.networking.v1.NetworkPolicy:
    """HTTPS (443 only) to public addresses, for S3 and, when configured, the model hub.

    Why 0.0.0.0/0 and not S3's ranges: NetworkPolicy matches IPs only. S3 traffic through the VPC
    gateway endpoint still goes to S3's public IPs (the endpoint's prefix list is a route-table
    construct a NetworkPolicy cannot name), and those ranges, like a model hub behind a CDN,
    change without notice. What is excluded: private ranges (no reaching other in-cluster or VPC
    services on 443) and the instance metadata endpoints (node credentials)."""
    if not pod_labels:
        raise ValueError(f"{namespace}/{name}: the pod selector must name labels")
    return _policy(namespace, name, {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Egress"],
        "egress": [{
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE_RANGES, LINK_LOCAL, *extra_except]}}],
            "ports": _ports([443]),
        }],
    }, opts)


# --- namespaces whose pods the chart makes (monitoring) -----------------------------------------
# Several peers and several port sets per destination: Prometheus is queried by Grafana and the
# prometheus-adapter and scrapes itself; Alertmanager gossips with its peers over TCP and UDP.


def pod_peer(namespace: str, pod_labels: Mapping[str, str]) -> dict:
    """A NetworkPolicy peer: the `pod_labels` pods of `namespace` (never a whole namespace)."""
    if not pod_labels:
        raise ValueError(f"a peer in {namespace} must name pod labels; an empty selector admits the whole namespace")
    return {"namespaceSelector": _name_selector(namespace), "podSelector": {"matchLabels": dict(pod_labels)}}


def ingress_rule(peers: Sequence[dict], ports: Sequence[int | str], protocol: str = "TCP") -> dict:
    """One ingress rule: these peers on these ports (both required: an empty list means 'all')."""
    if not peers or not ports:
        raise ValueError("an ingress rule needs peers and ports (an empty list would open it to everyone/every port)")
    return {"from": list(peers), "ports": _ports(ports, protocol)}


def allow_ingress(namespace: str, name: str, pod_labels: Mapping[str, str], rules: Sequence[dict],
                  opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """Ingress to the `pod_labels` pods by several rules (build each with `ingress_rule`)."""
    if not pod_labels or not rules:
        raise ValueError(f"{namespace}/{name}: name the pod labels and at least one rule")
    return _policy(namespace, name, {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Ingress"],
        "ingress": list(rules),
    }, opts)


API_SERVER_REASON = ("the EKS control plane calls webhooks and aggregated APIs from its ENIs in the cluster's "
                     "subnets; pods get IPs from the same VPC, so the VPC CIDR necessarily admits them on this port")


def allow_from_api_server(
    namespace: str,
    name: str,
    pod_labels: Mapping[str, str],
    ports: Sequence[int | str],
    vpc_cidr: str,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Ingress from the Kubernetes API server to an admission webhook or an aggregated API
    (APIService) served by `pod_labels` pods. On EKS the API server is not a pod: it connects from
    the control plane's cross-account ENIs, whose addresses are only known to be inside the VPC
    (and change when EKS replaces them), so the source is the VPC CIDR. Kept only to the serving
    port and annotated as admitting the pod network (tests list such policies)."""
    return allow_from_vpc_clients(namespace, name, pod_labels, ports, [vpc_cidr], API_SERVER_REASON, opts)


__all__ = [
    "PSA_LEVELS", "PSA_REASON_ANNOTATION", "MANAGED_LABEL", "DEFAULT_UID",
    "pod_security_labels", "namespace",
    "restricted_pod_security_context", "restricted_security_context", "writable_dirs", "checkov_skips",
    "default_deny", "default_deny_ingress", "allow_dns_egress", "allow_from_pods",
    "allow_prometheus_scrape", "allow_from_cidrs", "allow_alb_ingress", "allow_https_egress",
    "allow_from_vpc_clients", "POD_NETWORK_ANNOTATION",
    "pod_peer", "ingress_rule", "allow_ingress", "allow_from_api_server", "API_SERVER_REASON",
    "PROMETHEUS_POD_LABELS", "DNS_POD_LABELS", "LINK_LOCAL", "PRIVATE_RANGES",
]
