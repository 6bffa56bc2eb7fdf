"""Exposure of the UIs: the AWS Load Balancer Controller with its scoped IRSA policy, one shared
HTTPS-only ALB for OpenWebUI and Grafana when a hostname and certificate are configured, and the
exact port-forward commands when they are not."""

import json

import kubernetes_validate
import pytest

import stack_config
from components.exposure import CHART_VERSION, ingress_annotations, load_balancer_controller_policy, port_forward_command
from tests.harness import COMPUTED, config_for, inputs, json_policy, plan, plan_with, stack_values

RELEASE = "kubernetes:helm.sh/v3:Release"
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
EXPOSED = {"scheme": "internal", "certificateArn": CERT, "openWebUiHostname": "chat.example.com",
           "grafanaHostname": "grafana.example.com"}


def ingresses(run) -> dict:
    return {inputs(r)["metadata"]["name"]: r for r in run.kubernetes_objects() if inputs(r).get("kind") == "Ingress"}


def exposure_problems(**exposure) -> list[str]:
    values, secret = stack_config.read_stack_files("dev")
    values["ai-platform:exposure"] = stack_config.engine_value({**stack_values("dev")["exposure"], **exposure})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    return caught.value.problems


@pytest.fixture(scope="module")
def exposed_run():
    return plan_with("dev", exposure={**stack_values("dev")["exposure"], **EXPOSED})


# --- the controller ----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_controller_is_a_pinned_release_running_as_its_own_irsa_role(stack):
    run, config = plan(stack), config_for(stack)
    release = run.named("aws-load-balancer-controller", RELEASE)
    args = inputs(release)
    assert args["chart"] == "aws-load-balancer-controller" and args["version"] == CHART_VERSION
    assert args["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert args["namespace"] == "kube-system"
    values = args["values"]
    assert values["clusterName"] == f"ai-platform-{stack}"
    assert values["region"] == config.region
    assert values["vpcId"] == COMPUTED  # the stack's VPC, known after deploy
    assert values["serviceAccount"]["name"] == "aws-load-balancer-controller"
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == COMPUTED
    role = run.named("aws-load-balancer-controller-irsa", "aws:iam/role:Role")
    assert role.parent_type == "ai-platform:iam:IrsaRole"
    assert run.by_urn(role.parent).parent_type == "ai-platform:exposure:LoadBalancerController"
    # The computed values come from the stack's VPC and the controller's own role, and the pods
    # start only once that role has its policy.
    policy = run.named("aws-load-balancer-controller-irsa", "aws:iam/rolePolicy:RolePolicy")
    assert set(release.dependencies) == {run.named("network-vpc", "aws:ec2/vpc:Vpc").urn, role.urn, policy.urn}
    assert role.dependencies == [run.named("cluster-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider").urn]


def test_controller_policy_is_upstreams_with_mutations_scoped_to_its_own_resources():
    run = plan("dev")
    policy = json_policy(run.named("aws-load-balancer-controller-irsa", "aws:iam/rolePolicy:RolePolicy"))
    statements = policy["Statement"]
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in statements)

    def statements_for(action):
        return [s for s in statements if action in s["Action"]]

    # Deleting or modifying load balancers, target groups and security groups only where the
    # controller's own cluster tag is present.
    for action in ("elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup",
                   "ec2:DeleteSecurityGroup", "elasticloadbalancing:ModifyLoadBalancerAttributes"):
        for statement in statements_for(action):
            assert statement["Condition"]["Null"]["aws:ResourceTag/elbv2.k8s.aws/cluster"] == "false", action
    for statement in statements_for("elasticloadbalancing:CreateLoadBalancer"):
        assert statement["Condition"]["Null"]["aws:RequestTag/elbv2.k8s.aws/cluster"] == "false"
    (slr,) = statements_for("iam:CreateServiceLinkedRole")
    assert slr["Condition"]["StringEquals"]["iam:AWSServiceName"] == "elasticloadbalancing.amazonaws.com"


def test_controller_policy_follows_the_partition():
    assert "arn:aws:" not in load_balancer_controller_policy("aws-cn")
    assert "arn:aws-cn:elasticloadbalancing:*:*:targetgroup/*/*" in load_balancer_controller_policy("aws-cn")
    assert json.loads(load_balancer_controller_policy("aws")) == json.loads(load_balancer_controller_policy("aws-us-gov").replace("aws-us-gov", "aws"))


def test_controller_can_be_left_out():
    run = plan_with("dev", exposure={**stack_values("dev")["exposure"], "loadBalancerController": False})
    assert not [r for r in run.of_type(RELEASE) if r.name == "aws-load-balancer-controller"]


# --- ALB ingresses ---------------------------------------------------------------------------------

def test_both_uis_share_one_https_only_alb(exposed_run):
    found = ingresses(exposed_run)
    assert set(found) == {"open-webui", "grafana"}
    groups = set()
    for name, host, backend, health in (("open-webui", "chat.example.com", "open-webui", "/health"),
                                        ("grafana", "grafana.example.com", "kube-prometheus-stack-grafana", "/api/health")):
        ingress = inputs(found[name])
        annotations = ingress["metadata"]["annotations"]
        assert ingress["spec"]["ingressClassName"] == "alb"
        assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
        assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
        assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERT
        assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == health
        groups.add(annotations["alb.ingress.kubernetes.io/group.name"])
        rule = ingress["spec"]["rules"][0]
        assert rule["host"] == host and ingress["spec"]["tls"] == [{"hosts": [host]}]
        assert rule["http"]["paths"][0]["backend"]["service"] == {"name": backend, "port": {"number": 80}}
    assert groups == {"ai-platform"}


def test_ingresses_wait_for_the_controller(exposed_run):
    release = exposed_run.named("aws-load-balancer-controller", RELEASE)
    for ingress in ingresses(exposed_run).values():
        assert release.urn in ingress.dependencies


def test_exposed_exports_are_https_urls_and_no_port_forward(exposed_run):
    outputs = exposed_run.outputs
    assert outputs["openWebUiUrl"].value == "https://chat.example.com"
    assert outputs["grafanaUrl"].value == "https://grafana.example.com"
    assert "openWebUiPortForward" not in outputs


def test_ingress_manifests_are_valid_for_the_cluster_version(exposed_run):
    version = config_for("dev").cluster.kubernetesVersion + ".0"
    for ingress in ingresses(exposed_run).values():
        kubernetes_validate.validate(inputs(ingress), version, strict=True)


def test_internet_facing_scheme_and_source_ranges_from_config():
    run = plan_with("prod", exposure={**stack_values("prod")["exposure"], "scheme": "internet-facing",
                                      "certificateArn": CERT.replace("us-west-2", "us-east-1"),
                                      "grafanaHostname": "grafana.example.com", "inboundCidrs": ["203.0.113.0/24"]})
    annotations = inputs(ingresses(run)["grafana"])["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24"
    assert "open-webui" not in ingresses(run)  # only the UI with a hostname is exposed


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_without_hostname_and_certificate_uis_stay_clusterip_with_exact_port_forward(stack):
    run = plan(stack)
    assert ingresses(run) == {}
    outputs = run.outputs
    assert outputs["openWebUiPortForward"].value == "kubectl -n openwebui port-forward svc/open-webui 8080:80"
    assert outputs["openWebUiUrl"].value == "http://localhost:8080"
    assert "port-forward svc/kube-prometheus-stack-grafana" in outputs["grafanaUrl"].value
    service = next(r for r in run.kubernetes_objects() if inputs(r).get("kind") == "Service" and inputs(r)["metadata"]["name"] == "open-webui")
    assert inputs(service)["spec"]["type"] == "ClusterIP"


def test_port_forward_command_format():
    assert port_forward_command("openwebui", "open-webui") == "kubectl -n openwebui port-forward svc/open-webui 8080:80"


def test_annotations_add_source_ranges_only_when_set():
    assert "alb.ingress.kubernetes.io/inbound-cidrs" not in ingress_annotations("internal", CERT, "g", "/health")


# --- configuration errors ------------------------------------------------------------------------

@pytest.mark.parametrize("exposure, expected", [
    ({"openWebUiHostname": "chat.example.com"},
     "ai-platform:exposure.certificateArn: required when a hostname is set (the ALB serves HTTPS only)"),
    ({"certificateArn": CERT},
     "ai-platform:exposure.certificateArn: set, but no openWebUiHostname, grafanaHostname or gatewayHostname uses it"),
    ({"certificateArn": CERT.replace("us-west-2", "eu-west-1"), "grafanaHostname": "grafana.example.com"},
     "ai-platform:exposure.certificateArn: is in eu-west-1, but an ALB can only use certificates of its own region (us-west-2)"),
    ({**EXPOSED, "loadBalancerController": False},
     "ai-platform:exposure.loadBalancerController: must be true when a hostname is set (nothing else serves ingressClassName alb on this cluster)"),
    ({**EXPOSED, "grafanaHostname": "chat.example.com"},
     "ai-platform:exposure.grafanaHostname: must differ from openWebUiHostname (both share one ALB, routed by host)"),
    ({"scheme": "public"}, "ai-platform:exposure.scheme: input should be 'internet-facing' or 'internal'"),
    ({"certificateArn": "arn:aws:iam::123456789012:server-certificate/x", "grafanaHostname": "grafana.example.com"},
     "ai-platform:exposure.certificateArn: string should match pattern"),
])
def test_each_bad_exposure_is_reported_by_key(exposure, expected):
    found = exposure_problems(**exposure)
    assert any(p.startswith(expected) for p in found), found
