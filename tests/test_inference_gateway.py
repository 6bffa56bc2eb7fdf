"""The inference gateway as the dev and prod plans hold it (components/inference_gateway.py,
stack_config/gateway.py): what the ConfigMap routes, that no secret is a literal, which paths the
NetworkPolicies admit, that the stack's Prometheus selects its ServiceMonitor, the usage dashboard's
metrics, the pinned image, and the config errors. The rendered config runs for real in
tests/test_gateway_proxy.py (`planned_gateway`)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
import yaml

import stack_config
from components import gateway_config as gc
from components import inference_gateway as ig
from components.dashboards import metric_names
from components.network import subnet_cidrs
from components.triton import endpoints
from platformctl import security_scan as scan
from tests.harness import COMPUTED, SECRET, STACKS, config_for, inputs, plan, plan_with, stack_values

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tests" / "servers" / "requirements-litellm.txt"


def litellm_package() -> Path:
    """The pinned litellm package's source, in build/venvs/litellm (built, under the venv lock, by
    whichever test needs it first)."""
    from tests.test_smoke import server_venv
    venv = server_venv("litellm", "python").parent.parent
    return next((venv / "lib").glob("python3*/site-packages/litellm"))
PROMETHEUS = scan.Pod("monitoring", (("app.kubernetes.io/name", "prometheus"),))


def k8s(run, kind: str, name: str, namespace: str | None = None) -> dict:
    found = [inputs(r) for r in run.kubernetes_objects() if inputs(r).get("kind") == kind
             and inputs(r)["metadata"]["name"] == name and namespace in (None, inputs(r)["metadata"].get("namespace"))]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def rendered_config(run) -> dict:
    return yaml.safe_load(k8s(run, "ConfigMap", ig.NAME, "inference-gateway")["data"]["config.yaml"])


def gateway_pod(run) -> scan.Pod:
    return scan.pod_of(k8s(run, "Deployment", ig.NAME))


@pytest.mark.parametrize("stack", STACKS)
def test_the_configmap_routes_every_deployment(stack):
    """Every llm deployment's OpenAI frontend is a model_list api_base, every standard deployment's
    KServe-v2 root an authenticated pass-through (`auth: true`), at the URLs Triton exports."""
    run, config = plan(stack), config_for(stack)
    rendered = rendered_config(run)
    exported = run.outputs["tritonDeployments"].value
    bases = {e["litellm_params"]["api_base"] for e in rendered["model_list"]}
    routes = {p["path"]: p for p in rendered["general_settings"].get("pass_through_endpoints", [])}
    for d in config.tritonDeployments:
        if d.mode == "llm":
            assert exported[d.name]["openaiUrl"] in bases, d.name
        else:
            route = routes[gc.pass_through_path(d.name)]
            assert route["target"] == f"{exported[d.name]['httpUrl']}/v2" and route["auth"] is True
    assert len(bases) == sum(d.mode == "llm" for d in config.tritonDeployments)
    assert len(routes) == sum(d.mode == "standard" for d in config.tritonDeployments)
    data = k8s(run, "ConfigMap", ig.NAME, "inference-gateway")["data"]
    if config.gateway.authMode == "static":  # dev: the auth hook beside config.yaml
        assert rendered["general_settings"]["custom_auth"] == gc.CUSTOM_AUTH
        assert data["custom_auth.py"] == ig.CUSTOM_AUTH_SOURCE.read_text()
    else:  # prod: LiteLLM's own key check on its database
        assert "custom_auth" not in rendered["general_settings"] and "custom_auth.py" not in data


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_literal_anywhere(stack):
    """The config holds secrets only as os.environ/ references; the Deployment reads every secret by
    secretKeyRef; the Secret's values are Pulumi secrets; no `sk-` key appears in any manifest or
    Helm value of the plan; the exported master key is a secret."""
    run = plan(stack)
    general = rendered_config(run)["general_settings"]
    assert general["master_key"] == gc.env_ref(gc.MASTER_KEY_ENV)
    assert all(e["litellm_params"]["api_key"] == gc.env_ref(gc.UPSTREAM_KEY_ENV) for e in rendered_config(run)["model_list"])
    container = k8s(run, "Deployment", ig.NAME)["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:
        if re.search(r"KEY|SECRET|PASSWORD|TOKEN", env["name"]):
            assert "valueFrom" in env and env["valueFrom"]["secretKeyRef"]["name"] == ig.SECRET_NAME, env
    secret = k8s(run, "Secret", ig.SECRET_NAME)
    data = secret["stringData"]  # the whole map is a secret when its values are (mockrun.public_value)
    assert data == SECRET or all(v in (SECRET, COMPUTED) for v in data.values()), data
    for resource in run.resources:
        for text in _strings(inputs(resource)):
            assert not re.search(r"\bsk-[A-Za-z0-9]{16,}", text), resource.name
    assert run.outputs["gatewayMasterKey"].secret


@pytest.mark.parametrize("stack", STACKS)
def test_policies_admit_exactly_openwebui_the_clients_and_prometheus(stack):
    """The gateway namespace denies ingress; its port admits OpenWebUI's pods (viaGateway), the
    configured clients' pods and Prometheus (/metrics), and nobody else: not another pod of the
    clients' namespace, not OpenWebUI's namespace's other pods, not a pod IP, not the internet.
    Triton admits the gateway on 9000 (llm) and 8000 (standard) and no longer OpenWebUI."""
    run, config = plan(stack), config_for(stack)
    objs = [inputs(r) for r in run.kubernetes_objects()]
    model = scan.NetworkModel.from_objects(objs, subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[1])
    gateway = gateway_pod(run)
    ui = scan.pod_of(k8s(run, "Deployment", "open-webui"))
    admitted = [ui, PROMETHEUS] + [scan.Pod(c.namespace, tuple(c.podLabels.items())) for c in config.gateway.clients]
    for pod in admitted:
        assert model.allowed(pod, gateway, ig.PORT), pod
    refused = [scan.Pod(ui.namespace, (("app", "other"),)), scan.Pod("intruder", (("app", "x"),))]
    refused += [scan.Pod(c.namespace, (("app", "other"),)) for c in config.gateway.clients]
    for pod in refused:
        assert not model.allowed(pod, gateway, ig.PORT), pod
    pod_ip = str(next(ipaddress.ip_network(config.network.vpcCidr).hosts()) + 1000)
    assert not model.ingress_allowed(gateway, pod_ip, ig.PORT) and not model.ingress_allowed(gateway, "203.0.113.7", ig.PORT)
    # An internal NLB's policy admits pod addresses by necessity (docs/security.md): judge without it.
    strict = scan.NetworkModel([p for p in model.policies if not scan.admits_pod_network(p)],
                               model.pod_cidrs, model.namespace_labels)
    for d in config.tritonDeployments:
        triton = scan.pod_of(k8s(run, "Deployment", d.name, d.namespace))
        port = 9000 if d.mode == "llm" else 8000
        assert strict.allowed(gateway, triton, port), d.name
        assert not strict.allowed(ui, triton, port), f"{d.name}: OpenWebUI still reaches Triton directly"
        assert not strict.allowed(gateway, triton, 8001), "gRPC is not the gateway's"


def test_exposed_the_gateway_admits_the_alb_and_gets_an_ingress():
    values = stack_values("dev")
    exposure = {**values["exposure"], "certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/"
                + "0" * 8 + "-0000-0000-0000-" + "0" * 12, "gatewayHostname": "api.dev.example.com"}
    run, config = plan_with("dev", exposure=exposure), config_for("dev")
    ingress = k8s(run, "Ingress", ig.NAME)
    assert ingress["spec"]["rules"][0]["host"] == "api.dev.example.com"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] == ig.LIVENESS_PATH
    # /metrics answers without a key: the ALB answers it with a fixed 404 (aws-load-balancer-controller
    # docs/guide/ingress/annotations.md `actions.<service name>` + port `use-annotation`), listed first.
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert paths[0]["path"] == "/metrics" and paths[0]["backend"]["service"]["port"] == {"name": "use-annotation"}
    action = json.loads(ingress["metadata"]["annotations"][f"alb.ingress.kubernetes.io/actions.{paths[0]['backend']['service']['name']}"])
    assert action["type"] == "fixed-response" and action["fixedResponseConfig"]["statusCode"] == "404"
    assert paths[1]["path"] == "/" and paths[1]["backend"]["service"]["name"] == ig.NAME
    objs = [inputs(r) for r in run.kubernetes_objects()]
    private = subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[1]
    model = scan.NetworkModel.from_objects(objs, private)
    alb_ip = str(next(ipaddress.ip_network(private[0]).hosts()) + 10)
    assert model.ingress_allowed(gateway_pod(run), alb_ip, ig.PORT)
    assert run.outputs["gatewayUrl"].value == "https://api.dev.example.com"


@pytest.mark.parametrize("stack", STACKS)
def test_the_service_monitor_is_selected_by_the_stacks_prometheus(stack):
    """release=<the kube-prometheus-stack release> (as Triton's), selecting the gateway Service's
    `http` port at /metrics, which the proxy serves without a key (tests/test_gateway_proxy.py)."""
    run = plan(stack)
    monitor = k8s(run, "ServiceMonitor", ig.NAME)
    release = next(inputs(r)["metadata"]["labels"]["release"] for r in run.kubernetes_objects()
                   if inputs(r).get("kind") == "ServiceMonitor" and inputs(r)["metadata"]["name"] != ig.NAME)
    assert monitor["metadata"]["labels"]["release"] == release
    service = k8s(run, "Service", ig.NAME)
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_the_image_is_the_tested_release():
    """ghcr.io/berriai/litellm:v<the litellm version tests/servers/requirements-litellm.txt pins>
    (BerriAI/litellm release v1.108.7: `cosign verify ... ghcr.io/berriai/litellm:v1.108.7`)."""
    pinned = re.search(r"^litellm==(\S+)$", REQUIREMENTS.read_text(), re.M).group(1)
    for stack in STACKS:
        container = k8s(plan(stack), "Deployment", ig.NAME)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"ghcr.io/berriai/litellm:v{pinned}"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {env["LITELLM_UI_PATH"], "/tmp", ig.CONFIG_DIR} <= mounts


def test_probe_paths_and_the_ui_path_exist_in_the_pinned_release():
    """Probe routes in litellm/proxy/health_endpoints/_health_endpoints.py; the UI path is the one
    proxy_server.py copies its UI to when LITELLM_UI_PATH is set. (The dashboard's metric names, as
    exposed, are checked in the release by tests/test_alerts.py for all of dashboards.LITELLM_METRICS.)"""
    litellm = litellm_package()
    health = (litellm / "proxy" / "health_endpoints" / "_health_endpoints.py").read_text()
    assert f'"{ig.LIVENESS_PATH}"' in health and f'"{ig.READINESS_PATH}"' in health
    assert 'os.getenv("LITELLM_UI_PATH"' in (litellm / "proxy" / "proxy_server.py").read_text()


def test_the_usage_dashboard():
    board = ig.usage_dashboard()
    assert board["title"] == "Inference API usage"
    used = {n for p in board["panels"] for t in p.get("targets", []) for n in metric_names(t["expr"])}
    assert used == set(ig.GATEWAY_METRICS)
    cm = k8s(plan("dev"), "ConfigMap", ig.DASHBOARD_NAME, "monitoring")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["inference-api-usage.json"])["title"] == "Inference API usage"


def test_replicated_the_gateway_has_a_pdb_and_spreads():
    run = plan("prod")
    assert config_for("prod").gateway.replicas > 1
    spec = k8s(run, "Deployment", ig.NAME)["spec"]
    keys = {c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert k8s(run, "PodDisruptionBudget", ig.NAME)["spec"]["maxUnavailable"] == 1
    assert not [r for r in plan("dev").kubernetes_objects() if inputs(r).get("kind") == "PodDisruptionBudget"
                and inputs(r)["metadata"]["name"] == ig.NAME]


def problems_of(**overrides) -> list[str]:
    values, secret = stack_config.read_stack_files("dev")
    values.update({f"ai-platform:{k}": json.dumps(v) for k, v in overrides.items()})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    return caught.value.problems


@pytest.mark.parametrize("change, expected", [
    ({"models": {"nope": ["m"]}}, "ai-platform:gateway.models.nope: unknown deployment"),
    ({"models": {"standard": ["m"]}}, "ai-platform:gateway.models.standard: only llm deployments"),
    ({"staticKeys": {"openwebui": {"rpm": 0}}}, "ai-platform:gateway.staticKeys.openwebui.rpm"),
    ({"staticKeys": {"openwebui": {"rpm": 5, "tpm": -1}}}, "ai-platform:gateway.staticKeys.openwebui.tpm"),
    ({"staticKeys": {"dev-team": {"rpm": 5}}}, "ai-platform:gateway.staticKeys: needs an entry 'openwebui'"),
    ({"staticKeys": {"openwebui": {"rpm": 5, "maxBudget": 10}}}, "ai-platform:gateway.staticKeys.openwebui.maxBudget: budgets need authMode: database"),
    ({"staticKeys": {"openwebui": {"rpm": 5, "budgetDuration": "monthly"}}}, "ai-platform:gateway.staticKeys.openwebui.budgetDuration"),
    ({"replicas": 2}, "ai-platform:gateway.replicas: 2 needs gateway.redis.enabled: true"),
    ({"redis": {"enabled": True, "nodes": 0}}, "ai-platform:gateway.redis.nodes"),
    ({"imageTag": "main-latest"}, "ai-platform:gateway.imageTag"),
    ({"imageTag": "v1.82.7"}, "published malicious"),
    ({"prices": {"x": {"inputCostPerToken": -1, "outputCostPerToken": 0}}}, "ai-platform:gateway.prices.x.inputCostPerToken"),
    ({"clients": [{"namespace": "apps", "podLabels": {}}]}, "ai-platform:gateway.clients[0].podLabels"),
])
def test_bad_gateway_settings_are_reported_by_key(change, expected):
    found = problems_of(gateway={**stack_values("dev")["gateway"], **change})
    assert any(expected in p for p in found), found


def test_via_gateway_and_hostname_need_the_gateway():
    found = problems_of(gateway={**stack_values("dev")["gateway"], "enabled": False},
                        exposure={**stack_values("dev")["exposure"], "gatewayHostname": "api.example.com",
                                  "certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/"
                                  + "0" * 8 + "-0000-0000-0000-" + "0" * 12})
    assert any(p.startswith("ai-platform:openWebUi.viaGateway: needs gateway.enabled") for p in found), found
    assert any(p.startswith("ai-platform:exposure.gatewayHostname") for p in found), found


def test_upstreams_follow_triton_endpoints():
    config = config_for("dev")
    for upstream, d in zip(ig.upstreams(config.tritonDeployments, {}), config.tritonDeployments):
        assert upstream.base_url == endpoints(d)["openaiUrl" if d.mode == "llm" else "httpUrl"]


def test_a_new_key_or_limit_rolls_the_pods():
    """custom_auth.py reads GATEWAY_STATIC_KEYS once (a Secret env var: a changed Secret alone restarts
    nothing), so the pod template carries a hash of the config and of the keys' names and limits."""
    def template_hash(run):
        return k8s(run, "Deployment", ig.NAME)["spec"]["template"]["metadata"]["annotations"]["ai-platform/config-hash"]
    gateway = stack_values("dev")["gateway"]
    before = template_hash(plan("dev"))
    assert before == template_hash(plan_with("dev", gateway=gateway))
    more = {**gateway, "staticKeys": {**gateway["staticKeys"], "new-app": {"rpm": 10}}}
    assert template_hash(plan_with("dev", gateway=more)) != before


# --- limits across replicas: gateway.redis ------------------------------------------------------

def aws_resource(run, type_: str, name: str):
    found = [r for r in run.resources if r.type == type_ and r.name == name]
    assert len(found) == 1, f"expected one {type_} {name}, found {len(found)}"
    return found[0]


def test_prod_shares_the_limits_of_its_replicas_through_an_elasticache_it_alone_reaches():
    """Prod's two replicas count every key in one Valkey (LiteLLM 1.108.7 `general_settings.
    coordination_redis`; tests/test_gateway_proxy.py shows two proxies without it each allow the full
    rpm): a replication group built by OpenWebUI's builder (components/managed_data.py) with TLS
    required, encryption at rest, a generated AUTH token (a Pulumi secret, in the gateway's Secret as
    REDIS_PASSWORD), failover across zones, in the private subnets, admitting 6379 only from the
    cluster security group; REDIS_HOST is its primary endpoint and the pods wait for it."""
    run, config = plan("prod"), config_for("prod")
    assert config.gateway.replicas > 1 and config.gateway.redis.enabled
    group = aws_resource(run, "aws:elasticache/replicationGroup:ReplicationGroup", "inference-gateway-redis")
    spec = inputs(group)
    assert spec["transitEncryptionEnabled"] is True and spec["transitEncryptionMode"] == "required"
    assert spec["atRestEncryptionEnabled"] is True and spec["authToken"] == SECRET
    assert spec["numCacheClusters"] == 2 and spec["automaticFailoverEnabled"] and spec["multiAzEnabled"]
    assert group.parent_type == "ai-platform:inference:InferenceGateway"
    subnets = aws_resource(run, "aws:elasticache/subnetGroup:SubnetGroup", "inference-gateway-redis")
    assert subnets.dependencies and all("network-private-" in d for d in subnets.dependencies)
    rules = [r for r in run.resources if r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
             and r.name.startswith("inference-gateway-redis")]
    assert len(rules) == 1 and inputs(rules[0])["fromPort"] == inputs(rules[0])["toPort"] == 6379
    assert "cidrIpv4" not in inputs(rules[0]) and any(d.endswith("::cluster-eks") for d in rules[0].dependencies)
    general = rendered_config(run)["general_settings"]
    assert general["coordination_redis"] == {"host": gc.env_ref(gc.REDIS_HOST_ENV), "port": gc.env_ref(gc.REDIS_PORT_ENV),
                                             "password": gc.env_ref(gc.REDIS_PASSWORD_ENV), "ssl": True}
    deployment = next(r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment" and r.name == "inference-gateway-deployment")
    env = {e["name"]: e for e in inputs(deployment)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[gc.REDIS_HOST_ENV]["value"] == COMPUTED and env[gc.REDIS_PORT_ENV]["value"] == "6379"
    assert env[gc.REDIS_PASSWORD_ENV]["valueFrom"]["secretKeyRef"] == {"name": ig.SECRET_NAME, "key": gc.REDIS_PASSWORD_ENV}
    assert group.urn in deployment.dependencies
    secret = next(r for r in run.resources if r.type == "kubernetes:core/v1:Secret" and r.name == "inference-gateway-secret")
    assert any(d.endswith("::inference-gateway-redis-token") for d in secret.dependencies)


def test_dev_runs_one_replica_without_redis():
    run, config = plan("dev"), config_for("dev")
    assert config.gateway.replicas == 1 and not config.gateway.redis.enabled
    assert "coordination_redis" not in rendered_config(run)["general_settings"]
    assert not [r for r in run.resources if r.type.startswith("aws:elasticache/") and "gateway" in r.name]
    env = {e["name"] for e in k8s(run, "Deployment", ig.NAME)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not env & {gc.REDIS_HOST_ENV, gc.REDIS_PORT_ENV, gc.REDIS_PASSWORD_ENV}


@pytest.mark.parametrize("stack", STACKS)
def test_no_policy_restricts_the_gateways_egress(stack):
    """The proxy reaches Triton, Redis (6379) and, in database mode, PostgreSQL: its namespace denies
    ingress only (components/security.py `namespace`), so nothing needs an egress rule. A policy with
    an Egress type here would cut those paths and must open them."""
    for obj in (inputs(r) for r in plan(stack).kubernetes_objects()):
        if obj.get("kind") == "NetworkPolicy" and obj["metadata"].get("namespace") == "inference-gateway":
            assert "Egress" not in obj["spec"].get("policyTypes", []), obj["metadata"]["name"]


def test_the_pod_template_follows_the_secret():
    """Secret env vars are read at start (a changed Secret alone restarts nothing): the template
    carries a digest of the Secret's values, not a Pulumi secret (it reveals none of them), so a new
    Redis token or key rolls the pods."""
    import pulumi
    from pulumi.runtime.sync_await import _sync_await
    digest = ig.secret_hash({"A": "x", "B": pulumi.Output.secret("y")})
    value = _sync_await(digest.future())
    assert re.fullmatch(r"[0-9a-f]{16}", value) and not _sync_await(digest.is_secret())
    assert _sync_await(ig.secret_hash({"A": "x", "B": "z"}).future()) != value
    for stack in STACKS:
        annotations = k8s(plan(stack), "Deployment", ig.NAME)["spec"]["template"]["metadata"]["annotations"]
        assert ig.SECRET_HASH_ANNOTATION in annotations and ig.CONFIG_HASH_ANNOTATION in annotations


# --- database mode -------------------------------------------------------------------------------

def database_mode_run(stack: str, **key_changes):
    gateway = stack_values(stack)["gateway"]
    keys = {**gateway["staticKeys"], **key_changes}
    return plan_with(stack, gateway={**gateway, "authMode": "database", "staticKeys": keys})


def test_database_mode_wires_rds_the_database_url_and_a_key_sync_job():
    """authMode database: LiteLLM's own key check (no custom_auth) on an RDS PostgreSQL built by
    OpenWebUI's builder (private, encrypted, deletion protection, final snapshot, 5432 only from the
    cluster security group); DATABASE_URL (with the generated password, a Pulumi secret) only in the
    Secret; the configured keys made virtual keys by a Job (components/gateway/sync_keys.py, tested in
    tests/test_gateway_key_sync.py) that runs after the Deployment, whose name follows the key set."""
    budget = {"rpm": 60, "maxBudget": 10.0, "budgetDuration": "30d"}
    run = database_mode_run("dev", **{"dev-team": budget})
    db = aws_resource(run, "aws:rds/instance:Instance", "inference-gateway-db")
    spec = inputs(db)
    assert spec["deletionProtection"] and not spec["skipFinalSnapshot"] and not spec["publiclyAccessible"]
    assert spec["storageEncrypted"] and spec["password"] == SECRET and spec["dbName"] == ig.POSTGRES_DB
    rule = aws_resource(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "inference-gateway-db-from-cluster")
    assert inputs(rule)["fromPort"] == 5432 and "cidrIpv4" not in inputs(rule)
    general = rendered_config(run)["general_settings"]
    assert general["database_url"] == gc.env_ref(gc.DATABASE_URL_ENV) and "custom_auth" not in general
    deployment = k8s(run, "Deployment", ig.NAME)
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[gc.DATABASE_URL_ENV]["valueFrom"]["secretKeyRef"]["name"] == ig.SECRET_NAME
    assert gc.STATIC_KEYS_ENV not in env
    secret = next(r for r in run.resources if r.type == "kubernetes:core/v1:Secret" and r.name == "inference-gateway-secret")
    assert any(d.endswith("::inference-gateway-db") for d in secret.dependencies)
    [job] = [r for r in run.resources if r.type == "kubernetes:batch/v1:Job" and r.name == "inference-gateway-key-sync"]
    assert any(d.endswith("::inference-gateway-deployment") for d in job.dependencies)
    container = inputs(job)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"] == ["python", f"{ig.CONFIG_DIR}/sync_keys.py"]
    data = k8s(run, "ConfigMap", ig.NAME, "inference-gateway")["data"]
    assert data["sync_keys.py"] == ig.SYNC_KEYS_SOURCE.read_text()
    name = inputs(job)["metadata"]["name"]
    changed = database_mode_run("dev", **{"dev-team": {**budget, "rpm": 30}})
    assert not [r for r in changed.kubernetes_objects() if inputs(r)["metadata"].get("name") == name]
    # The Job's pod reaches the proxy's port; other pods of the namespace do not.
    objs = [inputs(r) for r in run.kubernetes_objects()]
    config = config_for("dev")
    model = scan.NetworkModel.from_objects(objs, subnet_cidrs(config.network.vpcCidr, len(config.network.availabilityZones))[1])
    assert model.allowed(scan.Pod("inference-gateway", tuple(ig.SYNC_JOB_LABELS.items())), gateway_pod(run), ig.PORT)
    assert not model.allowed(scan.Pod("inference-gateway", (("app", "other"),)), gateway_pod(run), ig.PORT)


def test_prod_keeps_its_keys_in_a_protected_multi_az_database_and_dev_uses_static_keys():
    """The committed choice (README "Inference gateway"): prod's keys are LiteLLM virtual keys with
    budgets in RDS, `protect`ed (protectData) with Multi-AZ and 14 days of backups, spend priced per
    model; dev's are static keys (no database to pay for and wait on)."""
    run, config = plan("prod"), config_for("prod")
    assert config.gateway.authMode == "database"
    db = aws_resource(run, "aws:rds/instance:Instance", "inference-gateway-db")
    assert db.protect and inputs(db)["multiAz"] is True and inputs(db)["backupRetentionPeriod"] == 14
    assert any(k.maxBudget for k in config.gateway.staticKeys.values())
    priced = {m["model_name"] for m in rendered_config(run)["model_list"] if "input_cost_per_token" in m["litellm_params"]}
    assert priced == set(config.gateway.prices) and priced
    dev = plan("dev")
    assert config_for("dev").gateway.authMode == "static"
    assert not [r for r in dev.resources if r.type == "aws:rds/instance:Instance" and r.name == "inference-gateway-db"]


def test_database_mode_migrates_the_schema_once_per_release_before_the_pods_start():
    """LiteLLM 1.108.7 runs `prisma migrate deploy` at every proxy start unless DISABLE_SCHEMA_UPDATE
    is true (BerriAI/litellm v1.108.7 litellm/proxy/proxy_cli.py `run_server`, litellm/proxy/db/
    prisma_client.py `should_update_prisma_schema`), so two replicas would race on each rollout.
    As LiteLLM's chart does (deploy/charts/litellm-helm/templates/migrations-job.yaml: `python
    litellm/proxy/prisma_migration.py` in /app; the proxy pods get DISABLE_SCHEMA_UPDATE=true), one Job
    per release migrates first: prisma_migration.py runs the CLI with --skip_server_startup, and on a
    read-only root its baseline goes to LITELLM_MIGRATION_DIR (litellm_proxy_extras/utils.py)."""
    run = plan("prod")
    [job] = [r for r in run.resources if r.type == "kubernetes:batch/v1:Job" and r.name == "inference-gateway-migrations"]
    pod = inputs(job)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert container["command"] == ["python", "litellm/proxy/prisma_migration.py"] and container["workingDir"] == "/app"
    assert env["DISABLE_SCHEMA_UPDATE"]["value"] == "false"
    assert env[gc.DATABASE_URL_ENV]["valueFrom"]["secretKeyRef"]["name"] == ig.SECRET_NAME
    assert env["LITELLM_MIGRATION_DIR"]["value"].startswith("/tmp/")
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    deployment = next(r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment" and r.name == "inference-gateway-deployment")
    assert any(d.endswith("::inference-gateway-migrations") for d in deployment.dependencies)
    serving = {e["name"]: e for e in inputs(deployment)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert serving["DISABLE_SCHEMA_UPDATE"]["value"] == "true"
    # Our non-root uid on a read-only root: the release image's Prisma is baked under /opt/prisma, "a
    # fixed path every runtime uid can read" (LiteLLM release notes v1.90.6, BerriAI/litellm PR #33853), so no PRISMA_*
    # override; HOME is the /tmp emptyDir, the one writable place, in the Job and the pods.
    for name, pod_spec in (("migrations", pod), ("proxy", inputs(deployment)["spec"]["template"]["spec"])):
        [c] = pod_spec["containers"]
        env_of = {e["name"]: e.get("value") for e in c["env"]}
        assert env_of["HOME"] == "/tmp" and "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, name
        assert not [k for k in env_of if k.startswith("PRISMA_")], name
        assert c["securityContext"]["readOnlyRootFilesystem"] and pod_spec["securityContext"]["runAsNonRoot"], name
    assert container["image"] == inputs(deployment)["spec"]["template"]["spec"]["containers"][0]["image"]
    # A new release is a new Job (its pod template cannot change in place); the same one is not.
    gateway = stack_values("prod")["gateway"]
    newer = plan_with("prod", gateway={**gateway, "authMode": "database", "imageTag": "v1.108.8"})
    names = {inputs(r)["metadata"]["name"] for r in newer.kubernetes_objects() if inputs(r)["kind"] == "Job"}
    assert inputs(job)["metadata"]["name"] not in names
    # Static mode (dev) has no database and so no migration.
    assert not [r for r in plan("dev").resources if r.name == "inference-gateway-migrations"]
