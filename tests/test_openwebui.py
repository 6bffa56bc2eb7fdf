"""OpenWebUI as an operator would check it in a preview: connected to every `llm` Triton deployment,
secrets only by reference, data that survives, each authentication mode's settings, and the unsafe
configurations refused with a message naming the key."""

import fnmatch
import functools
import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from pulumi.runtime import rpc

import stack_config
from components.monitoring import selector_matches
from components.openwebui import (
    LABELS, SECRET_NAME, SERVICE_ACCOUNT, VERIFIED_ENV_NAMES, database_url, join_base_urls, redis_url, uploads_policy,
)
from components.triton import endpoints
from platformctl import mockrun, security_scan
from platformctl.mockrun import run_program
from platformctl.plan import write_outputs
from tests.harness import SECRET, config_for, inputs, json_policy, plan, plan_with, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET_ENV = {"WEBUI_SECRET_KEY", "OPENAI_API_KEYS", "OAUTH_CLIENT_SECRET", "DATABASE_URL", "WEBUI_ADMIN_PASSWORD",
              "PGVECTOR_DB_URL", "REDIS_URL", "WEBSOCKET_REDIS_URL"}
OIDC = {"providerUrl": "https://login.example.com/realms/ai/.well-known/openid-configuration", "clientId": "openwebui"}
CERT = {"dev": "arn:aws:acm:us-west-2:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"}


def k8s_object(run, kind, name):
    found = [r for r in run.kubernetes_objects() if inputs(r).get("kind") == kind and inputs(r)["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(run):
    spec = inputs(k8s_object(run, "Deployment", "open-webui"))["spec"]
    return spec, spec["template"]["spec"]["containers"][0]


def env_of(run) -> dict:
    return {e["name"]: e for e in container(run)[1]["env"]}


def run_with_secret(stack, secret_value="s3cr3t-client", **overrides):
    """A real stack file with `ai-platform:` overrides and the OIDC client secret set as a secret."""
    values, secret = stack_config.read_stack_files(stack)
    for key, value in overrides.items():
        values[f"ai-platform:{key}"] = stack_config.engine_value(value)
    values["ai-platform:openWebUiOidcClientSecret"] = secret_value
    secret.add("ai-platform:openWebUiOidcClientSecret")
    stack_config.parse(values, secret, stack)
    return run_program(stack, values, secret)


def config_problems(stack="dev", secret=None, **overrides) -> list[str]:
    values, secret_keys = stack_config.read_stack_files(stack)
    for key, value in overrides.items():
        values[f"ai-platform:{key}"] = stack_config.engine_value(value)
    if secret is not None:
        values["ai-platform:openWebUiOidcClientSecret"] = secret
        secret_keys.add("ai-platform:openWebUiOidcClientSecret")
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret_keys, stack)
    return caught.value.problems


def openwebui_with(stack="dev", **changes):
    values = stack_values(stack)["openWebUi"]
    for key, value in changes.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def llm_urls(config):
    return [endpoints(d)["openaiUrl"] for d in config.tritonDeployments if d.mode == "llm"]


# --- connection to the platform's LLMs --------------------------------------------------------

def test_via_gateway_openwebui_calls_the_gateway_with_its_own_key():
    """openWebUi.viaGateway (on in dev and prod): one base URL, the gateway's /v1, and OPENAI_API_KEYS
    (by secretKeyRef from OpenWebUI's Secret: a secretKeyRef cannot cross namespaces) holding the key
    the gateway generated for its `openwebui` entry, so chat is authenticated, limited and metered."""
    for stack in ("dev", "prod"):
        run = plan(stack)
        env = env_of(run)
        assert env["OPENAI_API_BASE_URLS"]["value"] == f"{run.outputs['gatewayUrl'].value}/v1"
        assert env["OPENAI_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "open-webui"
        key = next(r for r in run.resources if r.name == "inference-gateway-key-openwebui")
        secret = k8s_object(run, "Secret", "open-webui")
        assert key.urn in secret.dependencies, "OpenWebUI's key is not the gateway's generated openwebui key"


def triton_llm_exports(run):
    return [d["openaiUrl"] for d in run.outputs["tritonDeployments"].value.values() if d["mode"] == "llm"]


def test_base_urls_are_the_llm_deployments_openai_endpoints_without_trailing_slash():
    """Without openWebUi.viaGateway (the committed stacks set it): straight to Triton's frontends."""
    run, config = plan_with("dev", openWebUi=openwebui_with(viaGateway=False)), config_for("dev")
    expected = triton_llm_exports(run)
    assert expected and expected == llm_urls(config), "the dev stack has an llm deployment"
    env = env_of(run)
    assert env["OPENAI_API_BASE_URLS"]["value"] == ";".join(expected)
    assert not any(url.endswith("/") for url in env["OPENAI_API_BASE_URLS"]["value"].split(";"))
    assert env["ENABLE_OPENAI_API"]["value"] == "true"
    assert env["ENABLE_OLLAMA_API"]["value"] == "false"
    # Env stays authoritative, so a deployment added later reaches a running OpenWebUI.
    assert env["ENABLE_PERSISTENT_CONFIG"]["value"] == "false"


def test_a_second_llm_deployment_adds_a_second_url_with_no_other_change():
    deployments = stack_values("dev")["tritonDeployments"]
    llm = next(d for d in deployments if d["mode"] == "llm")
    values = stack_values("dev")
    pools = [{**pool, "maxSize": pool["maxSize"] + 1} for pool in values["gpuNodeGroups"]]
    gpu_stack = values["gpuStack"]
    gpu_stack["scheduling"]["gpuQuotas"] = {ns: quota + 1 for ns, quota in gpu_stack["scheduling"]["gpuQuotas"].items()}
    run = plan_with("dev", gpuNodeGroups=pools, gpuStack=gpu_stack, openWebUi=openwebui_with(viaGateway=False),
                    gateway={**values["gateway"], "models": {"llm-large": ["large"]}},
                    tritonDeployments=[*deployments, {**llm, "name": "llm-large", "modelPrefix": "llm-large"}])
    urls = env_of(run)["OPENAI_API_BASE_URLS"]["value"].split(";")
    assert len(urls) == 2 and urls[1].startswith("http://") and urls[1].endswith(":9000/v1") and "llm-large" in urls[1]
    assert urls == triton_llm_exports(run)


def test_without_llm_deployments_openwebui_does_not_fall_back_to_api_openai_com():
    run = plan_with("dev", tritonDeployments=[d for d in stack_values("dev")["tritonDeployments"] if d["mode"] != "llm"],
                    gateway={**stack_values("dev")["gateway"], "models": {}})
    env = env_of(run)
    assert env["ENABLE_OPENAI_API"]["value"] == "false"
    assert "OPENAI_API_BASE_URLS" not in env


def test_join_strips_trailing_slashes():
    assert join_base_urls(["http://a:9000/v1/", "http://b:9000/v1"]) == "http://a:9000/v1;http://b:9000/v1"


def test_joined_urls_reach_models_on_an_openai_style_server():
    """The real request path: OpenWebUI appends `/models` to each base URL. A local server that
    only knows `/v1/models` answers the joined URLs; a trailing slash would make it `//models`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/v1/models"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"object": "list", "data": [{"id": "llm", "object": "model"}]}' if ok else b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/v1"
        for url in join_base_urls([base + "/", base]).split(";"):
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                assert response.status == 200
        with pytest.raises(urllib.error.HTTPError):  # what an unstripped URL would do
            urllib.request.urlopen(f"{base}//models", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- secrets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_secrets_come_from_the_secret_by_reference_never_as_literal_values(stack):
    run = plan(stack)
    env = env_of(run)
    secret_env = {name: e for name, e in env.items() if name in SECRET_ENV}
    assert {"WEBUI_SECRET_KEY", "OPENAI_API_KEYS"} <= set(secret_env)
    for name, entry in secret_env.items():
        assert "value" not in entry, f"{name} is a literal"
        assert entry["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": name}
    # The whole Secret payload is a Pulumi secret: the plan (and state) show it only as [secret].
    assert inputs(k8s_object(run, "Secret", SECRET_NAME))["stringData"] == SECRET
    # The secret key is generated by the stack, not typed into config.
    assert any(r.name == "openwebui-secret-key" for r in run.of_type("random:index/randomPassword:RandomPassword"))


def test_every_variable_set_is_one_openwebui_reads():
    names = set()
    for stack_run in (plan("dev"), plan("prod")):
        names |= set(env_of(stack_run))
    assert names <= VERIFIED_ENV_NAMES, f"not OpenWebUI variables: {sorted(names - VERIFIED_ENV_NAMES)}"


# --- persistence ----------------------------------------------------------------------------------

def test_sqlite_keeps_its_volume_and_never_has_two_writers():
    run = plan("dev")
    claim = k8s_object(run, "PersistentVolumeClaim", "open-webui-data")
    assert claim.retain_on_delete is True
    assert inputs(claim)["spec"]["storageClassName"] == "gp3-retain"
    assert inputs(claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    spec, main = container(run)
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert {"mountPath": "/app/backend/data", "name": "data"} in main["volumeMounts"]
    assert spec["template"]["spec"]["volumes"][0] == {"name": "data", "persistentVolumeClaim": {"claimName": "open-webui-data"}}
    assert "DATABASE_URL" not in env_of(run)
    assert not run.of_type("aws:rds/instance:Instance")


def test_gp3_retain_is_a_retain_class():
    classes = {inputs(r)["metadata"]["name"]: inputs(r) for r in plan("dev").of_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert classes["gp3-retain"]["reclaimPolicy"] == "Retain"


def test_postgres_is_an_encrypted_backed_up_protected_rds_reachable_only_from_the_cluster():
    run = plan("prod")
    assert config_for("prod").openWebUi.persistence.database == "postgres"
    (instance,) = [r for r in run.of_type("aws:rds/instance:Instance") if r.name == "openwebui-db"]
    db = inputs(instance)
    pg = config_for("prod").openWebUi.persistence.postgres
    assert db["engine"] == "postgres"
    assert db["storageEncrypted"] is True
    assert db["backupRetentionPeriod"] == pg.backupRetentionDays >= 1
    assert db["multiAz"] is pg.multiAz
    assert db["deletionProtection"] is True and db["skipFinalSnapshot"] is False
    assert db["publiclyAccessible"] is False
    assert db["password"] == SECRET
    assert instance.protect is True  # prod protects data
    (rule,) = [r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.name.startswith("openwebui")]
    rule_inputs = inputs(rule)
    assert (rule_inputs["fromPort"], rule_inputs["toPort"], rule_inputs["ipProtocol"]) == (5432, 5432, "tcp")
    assert "referencedSecurityGroupId" in rule_inputs and "cidrIpv4" not in rule_inputs
    # IDs are known only after deploy: where they come from shows in the dependencies.
    (db_group,) = [r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "openwebui-db"]
    assert set(rule.dependencies) == {db_group.urn, run.named("cluster-eks", "aws:eks/cluster:Cluster").urn}
    assert db_group.urn in instance.dependencies
    (subnets,) = [r for r in run.of_type("aws:rds/subnetGroup:SubnetGroup") if r.name.startswith("openwebui")]
    subnet_names = sorted(urn.rsplit("::", 1)[1] for urn in subnets.dependencies)
    assert subnet_names == sorted(f"network-private-{zone}" for zone in config_for("prod").network.availabilityZones)
    env = env_of(run)
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": "DATABASE_URL"}


def test_database_url_format():
    assert database_url("db.example", 5432, "pw") == "postgresql://openwebui:pw@db.example:5432/openwebui?sslmode=require"


def test_postgres_allows_more_replicas_with_a_rolling_update():
    run = plan_with("prod", openWebUi=openwebui_with("prod", replicas=2))
    spec, _ = container(run)
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert not [r for r in run.kubernetes_objects() if inputs(r).get("kind") == "PersistentVolumeClaim"
                and inputs(r)["metadata"]["namespace"] == "openwebui"]


# --- more than one replica: nothing durable in the pods -------------------------------------------

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
# What the mocked cloud "returns" for outputs that are unknown at preview, so the Secret's real
# content and the IRSA trust can be checked instead of "<computed>".
DB_HOST, DB_PASSWORD = "openwebui.abc123.us-east-1.rds.amazonaws.com", "DbCanaryPassw0rd"
REDIS_HOST, REDIS_TOKEN = "master.ai-platform-prod-openwebui.abc123.use1.cache.amazonaws.com", "RedisCanaryT0ken"
OIDC_URL = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"


def with_cloud_outputs(self, args):
    resource_id, state = with_cloud_outputs.preview(self, args)
    extra = {
        ("random:index/randomPassword:RandomPassword", "openwebui-db-password"): {"result": DB_PASSWORD},
        ("random:index/randomPassword:RandomPassword", "openwebui-redis-token"): {"result": REDIS_TOKEN},
        ("aws:rds/instance:Instance", "openwebui-db"): {"address": DB_HOST, "port": 5432},
        (REPLICATION_GROUP, "openwebui-redis"): {"primaryEndpointAddress": REDIS_HOST},
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "cluster-oidc"): {"arn": OIDC_ARN, "url": OIDC_URL},
    }.get((args.typ, args.name), {})
    if args.typ == "random:index/randomPassword:RandomPassword" and not extra:
        extra = {"result": f"Generated{args.name.replace('-', '')}"}
    return resource_id, {**state, **extra}


with_cloud_outputs.preview = mockrun.PreviewMocks.new_resource


@functools.lru_cache(maxsize=None)
def multi_replica_run():
    """prod (postgres) with two replicas, outputs resolved as after a deploy. Read-only."""
    original = mockrun.PreviewMocks.new_resource
    mockrun.PreviewMocks.new_resource = with_cloud_outputs
    try:
        return plan_with("prod", openWebUi=openwebui_with("prod", replicas=2))
    finally:
        mockrun.PreviewMocks.new_resource = original


def reveal(value):
    """A raw input with Pulumi's secret wrappers removed (only for checking what a Secret holds)."""
    if rpc.is_rpc_secret(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    return value


def test_multi_replica_env_moves_uploads_vectors_and_websockets_out_of_the_pod():
    run, config = multi_replica_run(), config_for("prod")
    env = env_of(run)
    bucket = config.openWebUi.persistence.uploads.bucket_name("prod", config.region)
    assert bucket == "ai-platform-prod-openwebui-us-east-1"
    assert {name: env[name]["value"] for name in (
        "STORAGE_PROVIDER", "S3_BUCKET_NAME", "S3_REGION_NAME", "S3_KEY_PREFIX",
        "VECTOR_DB", "ENABLE_WEBSOCKET_SUPPORT", "WEBSOCKET_MANAGER")} == {
        "STORAGE_PROVIDER": "s3", "S3_BUCKET_NAME": bucket, "S3_REGION_NAME": "us-east-1", "S3_KEY_PREFIX": "uploads",
        "VECTOR_DB": "pgvector", "ENABLE_WEBSOCKET_SUPPORT": "true", "WEBSOCKET_MANAGER": "redis"}
    # Connection strings carry credentials: only by reference to the Secret.
    for name in ("DATABASE_URL", "PGVECTOR_DB_URL", "REDIS_URL", "WEBSOCKET_REDIS_URL"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": name}}}
    # No static AWS keys: the S3 client falls back to the IRSA web identity.
    assert not {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"} & set(env)
    assert set(env) <= VERIFIED_ENV_NAMES, sorted(set(env) - VERIFIED_ENV_NAMES)


def test_multi_replica_secret_holds_the_connection_strings_and_nothing_leaks():
    run = multi_replica_run()
    secret = run.named("openwebui-secret")
    data = reveal(secret.inputs["stringData"])
    assert data["DATABASE_URL"] == data["PGVECTOR_DB_URL"] == database_url(DB_HOST, 5432, DB_PASSWORD)
    assert data["REDIS_URL"] == data["WEBSOCKET_REDIS_URL"] == f"rediss://:{REDIS_TOKEN}@{REDIS_HOST}:6379/0"
    # Every key the pod references exists in the Secret (a missing key keeps the pod from starting).
    refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in env_of(run).values() if "valueFrom" in e}
    assert refs == set(data)
    # The same generated token is the one ElastiCache enforces.
    assert reveal(run.named("openwebui-redis", REPLICATION_GROUP).inputs["authToken"]) == REDIS_TOKEN
    # ...and the plan shows none of them.
    assert inputs(secret)["stringData"] == {key: SECRET for key in data}


def test_multi_replica_plan_output_has_no_plaintext_credentials(tmp_path):
    run = multi_replica_run()
    plan_doc = write_outputs(run, tmp_path)
    leaks = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
             if p.is_file() and (DB_PASSWORD in p.read_text() or REDIS_TOKEN in p.read_text())]
    assert leaks == []
    findings = security_scan.plan_secret_findings(plan_doc)
    for name, obj in security_scan.load_manifests(tmp_path):
        findings += security_scan.manifest_secret_findings(name, obj)
        if security_scan.pod_template(obj) is not None:
            findings += security_scan.pod_security_findings(name, obj)
    assert findings == []


def test_redis_url_is_tls_with_the_token_as_auth_password():
    parsed = urllib.parse.urlsplit(redis_url("cache.example", 6379, "tok3n"))
    assert (parsed.scheme, parsed.username, parsed.password, parsed.hostname, parsed.port, parsed.path) == (
        "rediss", "", "tok3n", "cache.example", 6379, "/0")


def test_multi_replica_uploads_role_is_pinned_to_the_service_account_and_the_prefix():
    run = multi_replica_run()
    role = run.named("openwebui-uploads", "aws:iam/role:Role")
    trust = json.loads(inputs(role)["assumeRolePolicy"])  # known: OIDC outputs resolved by the mock
    issuer = OIDC_URL.removeprefix("https://")
    assert trust["Statement"] == [{
        "Effect": "Allow", "Principal": {"Federated": OIDC_ARN}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{issuer}:sub": f"system:serviceaccount:openwebui:{SERVICE_ACCOUNT}",
                                       f"{issuer}:aud": "sts.amazonaws.com"}},
    }]
    bucket = "arn:aws:s3:::ai-platform-prod-openwebui-us-east-1"
    document = json_policy(run.named("openwebui-uploads", "aws:iam/rolePolicy:RolePolicy"))
    assert document["Statement"] == [
        {"Sid": "ListUploads", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket,
         "Condition": {"StringLike": {"s3:prefix": ["uploads/", "uploads/*"]}}},
        {"Sid": "ReadWriteUploads", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{bucket}/uploads/*"},
    ]
    # The pods run as exactly the ServiceAccount the trust names, annotated with this role, and
    # start only once the role's policy exists.
    account = run.named("openwebui-sa")
    metadata = inputs(account)["metadata"]
    assert (metadata["namespace"], metadata["name"]) == ("openwebui", SERVICE_ACCOUNT)
    assert metadata["annotations"]["eks.amazonaws.com/role-arn"] == "<computed>"  # the role's ARN
    assert {role.urn, run.named("openwebui-uploads", "aws:iam/rolePolicy:RolePolicy").urn} <= set(account.dependencies)
    spec, _ = container(run)
    assert spec["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert inputs(account)["automountServiceAccountToken"] is False


def test_uploads_policy_covers_openwebui_keys_and_nothing_beside_them():
    """OpenWebUI stores an upload at `<S3_KEY_PREFIX>/<file>`; the grant must match those keys
    (IAM wildcards behave like fnmatch here: no `?`/`[` in the ARNs) and no sibling prefix."""
    [_, objects] = json.loads(uploads_policy("aws", "ui-data", "team/uploads"))["Statement"]
    pattern = objects["Resource"]
    assert fnmatch.fnmatchcase("arn:aws:s3:::ui-data/team/uploads/3f2a_report.pdf", pattern)
    for other in ("arn:aws:s3:::ui-data/team/uploads-old/x", "arn:aws:s3:::ui-data/models/x", "arn:aws:s3:::other/team/uploads/x"):
        assert not fnmatch.fnmatchcase(other, pattern), other
    assert "*" not in json.dumps(objects["Action"])


def test_multi_replica_uploads_bucket_is_private_encrypted_versioned_and_kept_in_prod():
    run = multi_replica_run()
    bucket = run.named("openwebui-uploads", "aws:s3/bucket:Bucket")
    assert inputs(bucket)["bucket"] == "ai-platform-prod-openwebui-us-east-1"
    assert bucket.protect and bucket.retain_on_delete and not inputs(bucket).get("forceDestroy")

    def sub(suffix):
        return inputs(run.named(f"openwebui-uploads-{suffix}"))

    assert sub("public-access") == {"bucket": "ai-platform-prod-openwebui-us-east-1", "blockPublicAcls": True,
                                    "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}
    assert sub("versioning")["versioningConfiguration"] == {"status": "Enabled"}
    [rule] = sub("encryption")["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    tls = json.loads(sub("tls-only")["policy"])["Statement"][0]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lifecycle = {r["id"]: r for r in sub("lifecycle")["rules"]}
    assert lifecycle["expire-deleted-uploads"]["noncurrentVersionExpiration"]["noncurrentDays"] == 30


def test_multi_replica_valkey_is_encrypted_authenticated_and_reachable_only_from_the_cluster():
    run = multi_replica_run()
    group = run.named("openwebui-redis", REPLICATION_GROUP)
    settings = inputs(group)
    assert settings["engine"] == "valkey" and settings["engineVersion"] == "8.0"
    assert settings["transitEncryptionEnabled"] is True and settings["transitEncryptionMode"] == "required"
    assert settings["atRestEncryptionEnabled"] is True
    assert settings["authToken"] == SECRET
    assert settings["port"] == 6379 and settings["numCacheClusters"] == 1
    assert settings["automaticFailoverEnabled"] is False and settings["multiAzEnabled"] is False
    (rule,) = [r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.name == "openwebui-redis-from-cluster"]
    rule_inputs = inputs(rule)
    assert (rule_inputs["fromPort"], rule_inputs["toPort"], rule_inputs["ipProtocol"]) == (6379, 6379, "tcp")
    assert "referencedSecurityGroupId" in rule_inputs and "cidrIpv4" not in rule_inputs
    redis_group = run.named("openwebui-redis", "aws:ec2/securityGroup:SecurityGroup")
    assert set(rule.dependencies) == {redis_group.urn, run.named("cluster-eks", "aws:eks/cluster:Cluster").urn}
    assert redis_group.urn in group.dependencies
    subnets = run.named("openwebui-redis", "aws:elasticache/subnetGroup:SubnetGroup")
    assert sorted(urn.rsplit("::", 1)[1] for urn in subnets.dependencies) == sorted(
        f"network-private-{zone}" for zone in config_for("prod").network.availabilityZones)


def test_valkey_with_two_nodes_fails_over_across_zones():
    values = openwebui_with("prod", replicas=3)
    values["persistence"]["redis"] = {"nodes": 2, "nodeType": "cache.t4g.small"}
    settings = inputs(plan_with("prod", openWebUi=values).named("openwebui-redis", REPLICATION_GROUP))
    assert (settings["numCacheClusters"], settings["automaticFailoverEnabled"], settings["multiAzEnabled"],
            settings["nodeType"]) == (2, True, True, "cache.t4g.small")


def test_multi_replica_data_dir_is_scratch_and_the_bucket_is_exported():
    run = multi_replica_run()
    spec, main = container(run)
    assert spec["template"]["spec"]["volumes"][0] == {"name": "data", "emptyDir": {"sizeLimit": "10Gi"}}
    assert {"mountPath": "/app/backend/data", "name": "data"} in main["volumeMounts"]
    assert run.outputs["openWebUiUploadsBucket"].value == "ai-platform-prod-openwebui-us-east-1"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_single_replica_creates_no_shared_state(stack):
    run = plan(stack)
    # (prod's inference gateway has its own, gateway.redis: tests/test_inference_gateway.py)
    assert not [r for r in run.of_type(REPLICATION_GROUP) if r.parent_type == "ai-platform:apps:OpenWebUi"]
    assert not [r for r in run.of_type("aws:s3/bucket:Bucket") if r.name == "openwebui-uploads"]
    assert "openWebUiUploadsBucket" not in run.outputs
    env = env_of(run)
    assert not {"STORAGE_PROVIDER", "VECTOR_DB", "WEBSOCKET_MANAGER", "REDIS_URL"} & set(env)
    assert "serviceAccountName" not in container(run)[0]["template"]["spec"]


def test_more_than_one_replica_with_sqlite_is_a_config_error():
    found = config_problems("dev", openWebUi=openwebui_with("dev", replicas=2))
    assert found == ["ai-platform:openWebUi.replicas: must be 1 with persistence.database sqlite "
                     "(SQLite allows one writer; use postgres for 2 replicas)"]


# --- pod -------------------------------------------------------------------------------------------

def test_pinned_image_probes_and_resources():
    spec, main = container(plan("dev"))
    assert main["image"] == "ghcr.io/open-webui/open-webui:v0.11.0"
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert inputs(k8s_object(plan("dev"), "Namespace", "openwebui"))


# What OpenWebUI 0.11.0 writes, as observed by running it non-root on a read-only root under strace
# (docs/security.md, "OpenWebUI's writable paths"); written from that observation, not from the component.
OPENWEBUI_WRITES = {
    # DATA_DIR, backend/open_webui/env.py; the Dockerfile's HF_HOME, SENTENCE_TRANSFORMERS_HOME,
    # WHISPER_MODEL_DIR and TIKTOKEN_CACHE_DIR all point under its cache/.
    "/app/backend/data",
    # STATIC_DIR, env.py; config.py deletes and re-copies its files at every start.
    "/app/backend/open_webui/static",
    # tempfile, SQLite temp files, torch's inductor cache.
    "/tmp",
}
# Pod Security Standards, restricted profile: the volume types it allows.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}


def openwebui_pods():
    return {"dev": plan("dev"), "prod": plan("prod"), "prod, 2 replicas": multi_replica_run()}


@pytest.mark.parametrize("variant", ["dev", "prod", "prod, 2 replicas"])
def test_the_pod_runs_non_root_on_a_read_only_root_with_exactly_the_writable_paths_openwebui_needs(variant):
    """open-webui/open-webui v0.11.0 (PyPI sdist open-webui==0.11.0): the Dockerfile builds with
    `ARG UID=0`/`GID=0`, so the image runs as root unless the pod says otherwise, and its files are
    root's; `backend/open_webui/env.py` puts DATA_DIR at `backend/data` and STATIC_DIR at
    `open_webui/static`, which `config.py` rewrites at every start. The pod used to run as root in a
    `baseline` namespace with a writable root filesystem. Now: non-root uid/gid and fsGroup, read-only
    root, and each path OpenWebUI writes on a volume, nothing else writable."""
    run = openwebui_pods()[variant]
    spec, main = container(run)
    pod = spec["template"]["spec"]
    uid = 10001
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    for c in [main, *pod["initContainers"]]:
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == uid and ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(set(v) - {"name"} <= RESTRICTED_VOLUME_TYPES for v in volumes.values()), volumes
    mounted = {m["mountPath"]: volumes[m["name"]] for m in main["volumeMounts"]}
    assert set(mounted) == OPENWEBUI_WRITES
    assert all(not m.get("readOnly") for m in main["volumeMounts"])
    data = mounted["/app/backend/data"]
    assert ("persistentVolumeClaim" in data) == (variant != "prod, 2 replicas")
    assert "emptyDir" in mounted["/tmp"] and "emptyDir" in mounted["/app/backend/open_webui/static"]
    # Variables that would move a written path elsewhere keep the Dockerfile's values.
    assert not {"DATA_DIR", "STATIC_DIR", "HF_HOME", "SENTENCE_TRANSFORMERS_HOME", "WHISPER_MODEL_DIR",
                "TIKTOKEN_CACHE_DIR", "TMPDIR"} & set(env_of(run))
    # backend/start.sh writes .webui_secret_key next to itself when WEBUI_SECRET_KEY is unset.
    assert "secretKeyRef" in env_of(run)["WEBUI_SECRET_KEY"]["valueFrom"]
    namespace = inputs(k8s_object(run, "Namespace", "openwebui"))["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_static_volume_starts_with_the_images_static_files():
    """STATIC_DIR holds fonts/, assets/pdf-style.css and swagger-ui/ that only the image has
    (open-webui v0.11.0 `backend/open_webui/static`; `config.py` copies only the frontend's
    `build/static` in), so an empty volume there would lose them: an init container of the same image
    copies them in, as the same uid, before OpenWebUI starts."""
    spec, main = container(plan("dev"))
    (seed,) = spec["template"]["spec"]["initContainers"]
    assert seed["image"] == main["image"]
    (mount,) = seed["volumeMounts"]
    assert seed["command"] == ["cp", "-R", "/app/backend/open_webui/static/.", mount["mountPath"] + "/"]
    assert {"name": mount["name"], "mountPath": "/app/backend/open_webui/static"} in main["volumeMounts"]
    assert seed["resources"]["requests"] and seed["resources"]["limits"]


def test_run_as_user_sets_uid_gid_and_fs_group_and_root_is_refused():
    run = plan_with("dev", openWebUi=openwebui_with("dev", runAsUser=1000))
    spec, main = container(run)
    assert spec["template"]["spec"]["securityContext"]["fsGroup"] == 1000
    assert main["securityContext"]["runAsUser"] == 1000 and main["securityContext"]["runAsGroup"] == 1000
    annotations = inputs(k8s_object(run, "Deployment", "open-webui"))["metadata"]["annotations"]
    assert any(v.startswith("CKV_K8S_40=openWebUi.runAsUser is set below 10000") for v in annotations.values())
    found = config_problems("dev", openWebUi=openwebui_with("dev", runAsUser=0))
    assert len(found) == 1 and found[0].startswith("ai-platform:openWebUi.runAsUser: ")


@pytest.mark.parametrize("tag", ["main", "latest", "dev"])
def test_a_moving_image_tag_is_refused(tag):
    found = config_problems("dev", openWebUi=openwebui_with("dev", imageTag=tag))
    assert len(found) == 1 and found[0].startswith("ai-platform:openWebUi.imageTag: string should match pattern")


# --- authentication modes -------------------------------------------------------------------------

def test_builtin_mode_signup_on_in_dev_off_in_prod_with_pending_role():
    dev, prod = env_of(plan("dev")), env_of(plan("prod"))
    for env in (dev, prod):
        assert env["WEBUI_AUTH"]["value"] == "true"
        assert env["DEFAULT_USER_ROLE"]["value"] == "pending"
    assert dev["ENABLE_SIGNUP"]["value"] == "true"
    assert prod["ENABLE_SIGNUP"]["value"] == "false"
    assert prod["WEBUI_ADMIN_EMAIL"]["value"] == config_for("prod").openWebUi.auth.adminEmail
    assert "value" not in prod["WEBUI_ADMIN_PASSWORD"]


def test_oidc_mode_settings_and_client_secret_from_the_secret():
    run = run_with_secret("dev", openWebUi=openwebui_with("dev", auth={"mode": "oidc", "enableSignup": False, "oidc": OIDC}))
    env = env_of(run)
    assert env["OPENID_PROVIDER_URL"]["value"] == OIDC["providerUrl"]
    assert env["OAUTH_CLIENT_ID"]["value"] == "openwebui"
    assert env["OAUTH_SCOPES"]["value"] == "openid email profile"
    assert env["OAUTH_PROVIDER_NAME"]["value"] == "SSO"
    assert env["ENABLE_OAUTH_SIGNUP"]["value"] == "true"
    assert env["ENABLE_SIGNUP"]["value"] == "false"
    assert env["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "OAUTH_CLIENT_SECRET"
    assert "s3cr3t-client" not in str(run.to_json())
    assert not any(name.startswith("WEBUI_AUTH_TRUSTED") for name in env)
    assert set(env) <= VERIFIED_ENV_NAMES


def test_oidc_mode_without_the_client_secret_names_the_secret_key():
    found = config_problems("dev", openWebUi=openwebui_with("dev", auth={"mode": "oidc", "enableSignup": False, "oidc": OIDC}))
    assert found == ["ai-platform:openWebUiOidcClientSecret: required when openWebUi.auth.mode is oidc "
                     "(pulumi config set --secret openWebUiOidcClientSecret ...)"]


def test_client_secret_in_plain_text_is_refused():
    values, secret = stack_config.read_stack_files("dev")
    values["ai-platform:openWebUiOidcClientSecret"] = "plain"
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, secret, "dev")
    assert "ai-platform:openWebUiOidcClientSecret: must be a secret (pulumi config set --secret openWebUiOidcClientSecret ...)" in caught.value.problems


def test_trusted_header_without_the_proxy_is_refused_with_the_reason():
    found = config_problems("dev", secret="x", openWebUi=openwebui_with("dev", auth={"mode": "trusted-header", "enableSignup": False, "oidc": OIDC}),
                            exposure={"certificateArn": CERT["dev"], "openWebUiHostname": "chat.example.com"})
    assert len(found) == 1
    assert found[0].startswith("ai-platform:openWebUi.auth.proxy: mode trusted-header needs proxy: oauth2-proxy;")
    assert "anyone reaching OpenWebUI could log in as any user by sending the X-Forwarded-Email header" in found[0]


def test_trusted_header_without_the_https_hostname_is_refused():
    found = config_problems("dev", secret="x", openWebUi=openwebui_with(
        "dev", auth={"mode": "trusted-header", "enableSignup": False, "proxy": "oauth2-proxy", "oidc": OIDC}))
    assert found == ["ai-platform:openWebUi.auth.mode: trusted-header needs exposure.openWebUiHostname and certificateArn: "
                     "oauth2-proxy's login callback and secure cookie need the HTTPS hostname"]


def test_trusted_header_is_reachable_only_through_oauth2_proxy():
    run = run_with_secret(
        "dev",
        openWebUi=openwebui_with("dev", auth={"mode": "trusted-header", "enableSignup": False, "proxy": "oauth2-proxy", "oidc": OIDC}),
        exposure={"certificateArn": CERT["dev"], "openWebUiHostname": "chat.example.com"},
    )
    env = env_of(run)
    assert env["WEBUI_AUTH_TRUSTED_EMAIL_HEADER"]["value"] == "X-Forwarded-Email"
    assert env["WEBUI_AUTH_TRUSTED_NAME_HEADER"]["value"] == "X-Forwarded-Preferred-Username"
    assert set(env) <= VERIFIED_ENV_NAMES
    # The ALB sends users to the proxy, never to OpenWebUI.
    ingress = inputs(k8s_object(run, "Ingress", "open-webui"))
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "oauth2-proxy", "port": {"number": 80}}
    # The proxy signs in against the same issuer and strips forged identity headers.
    proxy = inputs(k8s_object(run, "Deployment", "oauth2-proxy"))["spec"]["template"]["spec"]["containers"][0]
    assert "--oidc-issuer-url=https://login.example.com/realms/ai" in proxy["args"]
    assert "--skip-auth-strip-headers=true" in proxy["args"] and "--pass-user-headers=true" in proxy["args"]
    assert "--redirect-url=https://chat.example.com/oauth2/callback" in proxy["args"]
    assert "--upstream=http://open-webui.openwebui.svc.cluster.local:80/" in proxy["args"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in proxy["env"]} == {
        "OAUTH2_PROXY_CLIENT_SECRET": "client-secret", "OAUTH2_PROXY_COOKIE_SECRET": "cookie-secret"}
    # Inside the cluster, only the proxy's pods may reach OpenWebUI's port.
    policy = inputs(k8s_object(run, "NetworkPolicy", "open-webui-from-oauth2-proxy-only"))["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "open-webui"
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "oauth2-proxy", "app.kubernetes.io/part-of": "ai-platform"}}}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}]
    # Policies add up: no other one may admit anything else to OpenWebUI's pods.
    policies = [inputs(r) for r in run.kubernetes_objects()
                if inputs(r).get("kind") == "NetworkPolicy" and inputs(r)["metadata"]["namespace"] == "openwebui"]
    admitting = [p["metadata"]["name"] for p in policies
                 if p["spec"].get("ingress") and selector_matches(p["spec"]["podSelector"], LABELS)]
    assert admitting == ["open-webui-from-oauth2-proxy-only"]
    assert "s3cr3t-client" not in str(run.to_json())
    assert run.outputs["openWebUiUrl"].value == "https://chat.example.com"


def test_an_internet_facing_ui_must_not_leave_the_first_signup_open():
    found = config_problems("dev", openWebUi=openwebui_with("dev", auth={"enableSignup": False}),
                            exposure={"scheme": "internet-facing", "certificateArn": CERT["dev"], "openWebUiHostname": "chat.example.com"})
    assert found == ["ai-platform:openWebUi.auth.adminEmail: required for an internet-facing OpenWebUI: otherwise "
                     "whoever signs up first on the public login page becomes the admin"]


def test_disabled_openwebui_creates_nothing():
    run = plan_with("dev", openWebUi=openwebui_with("dev", enabled=False))
    assert not [r for r in run.resources if r.type == "ai-platform:apps:OpenWebUi"]
    assert "openWebUiUrl" not in run.outputs
