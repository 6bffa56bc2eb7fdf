"""The UIs' ALB-ingress rule, decided once (components.exposure.alb_source) for OpenWebUI and Grafana.

With the AWS Load Balancer Controller's IP targets the ALB connects to pod IPs from its own ENIs, in
the subnets it is placed in (kubernetes-sigs/aws-load-balancer-controller
docs/guide/ingress/annotations.md, `target-type`: "`ip` mode will route traffic directly to the pod
IP", which needs native AWS VPC networking for pod IPs such as the Amazon VPC CNI), so every pod has
an IP of the VPC's (private) subnets. So an ALB-ingress NetworkPolicy must admit the ALB's subnets, never the VPC CIDR: that
would admit every pod of the cluster. The defect this holds: with a brought VPC and an
internet-facing ALB, OpenWebUI's policy admitted the whole VPC CIDR as if it were the public subnets."""

import ipaddress

import pytest

import stack_config
from components.exposure import AlbSource, AlbSourceError, alb_source
from components.network import subnet_cidrs
from components.security import POD_NETWORK_ANNOTATION
from tests.harness import inputs, plan_with, stack_values

VPC = "10.10.0.0/16"  # dev's network.vpcCidr
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
BROUGHT = {"vpcId": "vpc-0abc", "publicSubnetIds": ["subnet-0a1", "subnet-0b1"], "privateSubnetIds": ["subnet-0a2", "subnet-0b2"]}
PUBLIC_SUBNETS = ["10.10.250.0/24", "10.10.251.0/24"]  # the brought VPC's public subnets, as the user gives them


def overrides(scheme: str, **exposure) -> dict:
    values = stack_values("dev")
    return {
        "network": {**values["network"], "existingVpc": BROUGHT},
        "exposure": {**values["exposure"], "scheme": scheme, "certificateArn": CERT, "openWebUiHostname": "chat.example.com",
                     "grafanaHostname": "grafana.example.com", **exposure},
        "openWebUi": {**values["openWebUi"], "auth": {**values["openWebUi"]["auth"], "adminEmail": "admin@example.com"}},
    }


def problems(**changes) -> list[str]:
    values, secret = stack_config.read_stack_files("dev")
    for key, value in changes.items():
        values[f"ai-platform:{key}"] = stack_config.engine_value(value)
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    return caught.value.problems


def alb_policies(run) -> dict[str, dict]:
    """namespace -> the allow-alb-ingress NetworkPolicy."""
    found = {}
    for resource in run.kubernetes_objects():
        obj = inputs(resource)
        if obj.get("kind") == "NetworkPolicy" and obj["metadata"]["name"] == "allow-alb-ingress":
            found[obj["metadata"]["namespace"]] = obj
    return found


def admitted(policy: dict) -> set[str]:
    return {peer["ipBlock"]["cidr"] for rule in policy["spec"]["ingress"] for peer in rule["from"]}


def test_the_rule():
    public, private = subnet_cidrs(VPC, 2)
    assert alb_source("internet-facing", VPC, 2, brought_vpc=False) == AlbSource(tuple(public), internal=False)
    assert alb_source("internal", VPC, 2, brought_vpc=False) == AlbSource(tuple(private), internal=True)
    assert alb_source("internal", VPC, 2, brought_vpc=True) == AlbSource((VPC,), internal=True)
    assert alb_source("internet-facing", VPC, 2, True, tuple(PUBLIC_SUBNETS)) == AlbSource(tuple(PUBLIC_SUBNETS), False)
    with pytest.raises(AlbSourceError, match="exposure.albSourceCidrs"):
        alb_source("internet-facing", VPC, 2, brought_vpc=True)


def test_an_internet_facing_alb_in_a_brought_vpc_needs_its_subnets_in_config():
    found = problems(**overrides("internet-facing"))
    assert [p for p in found if p.startswith("ai-platform:exposure.albSourceCidrs:")] == [
        "ai-platform:exposure.albSourceCidrs: required for an internet-facing ALB in a brought VPC (network.existingVpc): "
        "the CIDRs of its publicSubnetIds, which the UIs' NetworkPolicies admit (not the VPC CIDR: it holds every pod)"]


@pytest.mark.parametrize("cidrs", [[VPC], ["10.99.0.0/24"]])
def test_alb_source_cidrs_are_inside_the_vpc_and_not_all_of_it(cidrs):
    found = problems(**overrides("internet-facing", albSourceCidrs=cidrs))
    assert any(p.startswith(f"ai-platform:exposure.albSourceCidrs: {cidrs[0]} must be a subnet of") for p in found)


def test_brought_vpc_internet_facing_both_uis_admit_only_the_public_subnets():
    run = plan_with("dev", **overrides("internet-facing", albSourceCidrs=PUBLIC_SUBNETS))
    policies = alb_policies(run)
    assert set(policies) == {"openwebui", "monitoring"}
    for namespace, policy in policies.items():
        assert admitted(policy) == set(PUBLIC_SUBNETS), namespace
        assert VPC not in admitted(policy)
        assert POD_NETWORK_ANNOTATION not in policy["metadata"].get("annotations", {})
        # no pod IP (private subnets of the VPC) is admitted
        pod_ip = ipaddress.ip_address("10.10.0.10")
        assert not any(pod_ip in ipaddress.ip_network(c) for c in admitted(policy)), namespace


def test_brought_vpc_internal_both_uis_admit_the_vpc_and_say_it_admits_pods():
    run = plan_with("dev", **overrides("internal"))
    policies = alb_policies(run)
    assert set(policies) == {"openwebui", "monitoring"}
    for namespace, policy in policies.items():
        assert admitted(policy) == {VPC}, namespace
        assert POD_NETWORK_ANNOTATION in policy["metadata"]["annotations"], namespace
