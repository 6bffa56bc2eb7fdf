"""The inference gateway for real: the pinned LiteLLM proxy (`litellm[proxy]==1.108.7`, build/venvs/litellm
from tests/servers/requirements-litellm.txt, created like MLServer's by tests/test_smoke.py's server_venv)
started on 127.0.0.1 with the config components/gateway_config.py renders in static-key mode
(components/gateway/custom_auth.py beside it), upstreams pointed at local stand-ins: an OpenAI-compatible
stub for two `llm` deployments (one listing its model, one taking every other name through the wildcard
route) and MLServer (a real KServe-v2 server, tests/test_smoke.py's fixture) for a `standard` one.
`gateway` is two replicas of that proxy sharing a local redis-server through `coordination_redis` (as
prod's replicas share ElastiCache; TLS off locally); the single-replica tests run on the first.

Database mode (virtual keys in PostgreSQL) is not run: it needs Prisma's query engine, downloaded at run time.
Offline: LITELLM_LOCAL_MODEL_COST_MAP=True (litellm/litellm_core_utils/get_model_cost_map.py reads the
bundled price list instead of fetching it); telemetry stays off without LITELLM_TELEMETRY_DESTINATION
(litellm/proxy/telemetry/endpoints.py)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from components import gateway_config as gc
from tests import gateway_support as gs
from tests import system_tools
from tests.test_smoke import free_port, mlserver, server_venv  # noqa: F401  (mlserver: fixture)

MASTER_KEY = "sk-test-master-" + "0" * 32
KEYS = {
    "team-a": {"key": "sk-test-team-a-" + "a" * 24, "rpm": 1000},
    "team-limited": {"key": "sk-test-limited-" + "b" * 24, "rpm": 2},
}
CHAT = {"model": gs.STUB_MODEL, "messages": [{"role": "user", "content": "ping"}]}
ADD_SUB = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
                      {"name": "INPUT1", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def litellm_binary() -> Path:
    return server_venv("litellm", "litellm")


def litellm_site() -> Path:
    """The site-packages of the pinned release's venv (read, not imported)."""
    [site] = (litellm_binary().parent.parent / "lib").glob("python3*/site-packages")
    return site


@pytest.fixture(scope="module")
def stub():
    with gs.stub_server() as url:
        yield url


REDIS_PASSWORD = "test-redis-" + "f" * 24
# Both proxies know this key (rpm 2): the pair counts it in Redis, the planned gateway (no Redis) alone.
SHARED = {"key": "sk-test-shared-" + "s" * 24, "rpm": 2}


def redis_server_binary() -> str:
    """Installed by scripts/ensure-tools.sh (Debian's redis-server) like promtool; skipped only outside CI."""
    return system_tools.require("redis-server", "redis-server", "the limits-across-replicas test")


@pytest.fixture(scope="module")
def redis():
    """redis-server on 127.0.0.1 (AUTH, no persistence): (host, port)."""
    binary, port = redis_server_binary(), free_port()
    with gs.redis_server(binary, port, REDIS_PASSWORD):
        yield "127.0.0.1", port


@pytest.fixture(scope="module")
def gateway_pair(tmp_path_factory, stub, mlserver, redis):  # noqa: F811
    """Two replicas of the rendered config with `coordination_redis` on the local Redis (ssl false:
    ElastiCache's TLS is not reproduced here); both started before waiting for either."""
    settings = gc.GatewaySettings(
        upstreams=(gc.TritonUpstream("qwen", "llm", f"{stub}/v1", (gs.STUB_MODEL,)),
                   gc.TritonUpstream("any-llm", "llm", f"{stub}/v1"),
                   gc.TritonUpstream("vision", "standard", mlserver)),
        auth=gc.StaticKeyAuth(),
        prices={gs.STUB_MODEL: gc.ModelPrice(input_cost_per_token=1e-6, output_cost_per_token=2e-6)},
        redis=gc.CoordinationRedis(ssl=False))
    env = {gc.REDIS_HOST_ENV: redis[0], gc.REDIS_PORT_ENV: str(redis[1]), gc.REDIS_PASSWORD_ENV: REDIS_PASSWORD}
    yield from running_proxies(tmp_path_factory, gc.render(settings), {**KEYS, "shared": SHARED}, "litellm", 2, env)


@pytest.fixture(scope="module")
def gateway(gateway_pair):
    return gateway_pair[0]


def running_proxy(tmp_path_factory, config: dict, keys: dict, workdir: Path, preamble: str | None = None):
    """The pinned proxy on 127.0.0.1 with `config` and static `keys`, run from `workdir`, for a
    module-scoped fixture."""
    for urls in running_proxies(tmp_path_factory, config, keys, workdir.name, 1, places=[(workdir, free_port())],
                                preamble=preamble):
        yield urls[0]


def running_proxies(tmp_path_factory, config: dict, keys: dict, name: str, count: int, extra_env: dict | None = None,
                    places: list | None = None, preamble: str | None = None):
    env = {**gs.proxy_env(keys, MASTER_KEY), **(extra_env or {})}
    places = places or [(tmp_path_factory.mktemp(f"{name}-{n}"), free_port()) for n in range(count)]
    try:
        with gs.litellm_proxies(litellm_binary(), config, env, places, preamble) as urls:
            yield urls
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_requests_without_a_valid_key_are_refused(gateway):
    """custom_auth's ProxyException(code=401) reaches the client as 401 (litellm/proxy/auth/
    auth_exception_handler.py `_as_proxy_exception`, 1.108.7) on the OpenAI routes and on the
    pass-through, which enforces auth only because the config says `auth: true`
    (litellm/proxy/pass_through_endpoints/pass_through_endpoints.py `_register_pass_through_endpoint`)."""
    for key in (None, "sk-unknown-" + "c" * 24, MASTER_KEY):
        assert gs.request(f"{gateway}/v1/chat/completions", key, CHAT)[0] == 401, key
        assert gs.request(f"{gateway}/v1/models", key)[0] == 401, key
        assert gs.request(f"{gateway}{gc.pass_through_path('vision')}/models/add_sub", key)[0] == 401, key


def test_a_valid_key_reaches_only_the_inference_routes(gateway):
    """Custom auth replaces LiteLLM's checks, role checks included (1.108.7 warns that it skips the
    common checks: litellm/proxy/proxy_server.py `warn_once_if_custom_auth_skips_common_checks`), so a
    static key reached /model/info (upstream URLs), /health (calls every model), /model/new...; the hook
    refuses those with 403. Liveness stays open for the kubelet."""
    key = KEYS["team-a"]["key"]
    for path, body in (("/model/info", None), ("/health", None), ("/get/config/callbacks", None),
                       ("/key/generate", {}), ("/model/new", {"model_name": "x", "litellm_params": {"model": "openai/x"}})):
        assert gs.request(f"{gateway}{path}", key, body)[0] == 403, path
    assert gs.request(f"{gateway}/health/liveliness")[0] == 200
    assert gs.request(f"{gateway}/chat/completions", key, CHAT)[0] == 200  # LiteLLM's alias without /v1


def test_a_valid_key_reaches_the_openai_api(gateway):
    """`openai/<model>` with `api_base` (docs/my-website/docs/providers/openai_compatible.md) for chat,
    completions and embeddings; /v1/models lists the explicit model and the wildcard route."""
    key = KEYS["team-a"]["key"]
    status, body = gs.request(f"{gateway}/v1/chat/completions", key, CHAT)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "pong" and body["usage"]["total_tokens"] == 10
    status, body = gs.request(f"{gateway}/v1/completions", key, {"model": gs.STUB_MODEL, "prompt": "ping"})
    assert status == 200 and body["choices"][0]["text"] == "pong", body
    status, body = gs.request(f"{gateway}/v1/embeddings", key, {"model": gs.STUB_MODEL, "input": "ping"})
    assert status == 200 and body["data"][0]["embedding"] == [0.1, 0.2, 0.3], body
    status, body = gs.request(f"{gateway}/v1/models", key)
    assert status == 200 and gs.STUB_MODEL in {m["id"] for m in body["data"]}, body


def test_the_wildcard_route_takes_any_other_model_name(gateway):
    """`model_name: "*"` -> `openai/*` (docs/my-website/docs/wildcard_routing.md): a model name no
    deployment lists goes to the deployment that left `models` empty, under that name."""
    status, body = gs.request(f"{gateway}/v1/chat/completions", KEYS["team-a"]["key"],
                              {**CHAT, "model": "some-other-model"})
    assert status == 200, body
    assert body["model"].endswith("some-other-model")


def test_a_valid_key_reaches_the_kserve_v2_api_through_the_pass_through(gateway):
    """`pass_through_endpoints` with `include_subpath: true` (docs/my-website/docs/proxy/pass_through.md):
    /triton/<deployment>/v2/<subpath> -> <deployment>:8000/v2/<subpath>, here MLServer's add_sub."""
    key = KEYS["team-a"]["key"]
    base = f"{gateway}{gc.pass_through_path('vision')}"
    status, body = gs.request(f"{base}/models/add_sub", key)
    assert status == 200 and body["name"] == "add_sub", body
    status, body = gs.request(f"{base}/models/add_sub/infer", key, ADD_SUB)
    assert status == 200, body
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["OUTPUT0"] == [2, 3, 4, 5] and outputs["OUTPUT1"] == [0, 1, 2, 3]


def alternate(urls: list[str], key: str, tries: int) -> list[tuple[int, int]]:
    """(replica, status) of chat requests sent to the replicas in turn, until the first 429."""
    sent = []
    for n in range(tries):
        sent.append((n % len(urls), gs.request(f"{urls[n % len(urls)]}/v1/chat/completions", key, CHAT)[0]))
        if sent[-1][1] == 429:
            break
    return sent


def test_past_the_keys_rpm_limit_requests_get_429_on_every_replica(gateway_pair):
    """`rpm_limit` on the UserAPIKeyAuth custom auth returns is enforced by the proxy's rate limiter
    (BerriAI/litellm v1.108.7 litellm/proxy/hooks/parallel_request_limiter_v3.py) on the OpenAI routes
    and the pass-through alike, counted in the coordination Redis (proxy/utils.py `update_values`:
    internal_usage_cache.dual_cache.redis_cache), so rpm 2 across two replicas means the third request
    is refused whichever replica it reaches. Without Redis (no block and no REDIS_* variables: 1.108.7
    also builds the coordination Redis from REDIS_HOST alone, proxy_server.py
    `_init_coordination_redis_env_fallback`) this sees 200, 200, 200, 200, 429. The window starts at a key's first request (the limiter's
    Lua script), so only a test slower than 60 s could see it reset: 2 * rpm + 2 tries bound it."""
    limited = KEYS["team-limited"]
    sent = alternate(gateway_pair, limited["key"], 2 * limited["rpm"] + 2)
    assert sent[:2] == [(0, 200), (1, 200)] and sent[-1][1] == 429, sent
    assert len(sent) == limited["rpm"] + 1, f"a replica counted alone: {sent}"
    for url in gateway_pair:
        assert gs.request(f"{url}/v1/chat/completions", limited["key"], CHAT)[0] == 429
        assert gs.request(f"{url}{gc.pass_through_path('vision')}/models/add_sub", limited["key"])[0] == 429
    # Another key is not affected.
    assert gs.request(f"{gateway_pair[1]}/v1/chat/completions", KEYS["team-a"]["key"], CHAT)[0] == 200


def test_without_a_shared_redis_each_replica_counts_alone(gateway_pair, planned_gateway):
    """What the test above catches: the dev plan's config (one replica, no `coordination_redis`) keeps
    its counters in its own memory, so the same alternating sequence over it and a replica of the pair
    (not sharing a counter) passes a key with rpm 2 three and four times: static keys on two replicas
    without Redis allowed rpm x replicas (the defect gateway.redis fixes)."""
    sent = alternate([planned_gateway, gateway_pair[0]], SHARED["key"], 2 * SHARED["rpm"])
    assert [status for _, status in sent] == [200] * (2 * SHARED["rpm"]), sent


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_are_exposed_without_a_key(gateway):
    """`litellm_settings.callbacks: ["prometheus"]` and `require_auth_for_metrics_endpoint: false`
    (litellm/proxy/middleware/prometheus_auth_middleware.py; metric names: docs/my-website/docs/proxy/
    prometheus.md): requests and tokens per key alias, spend at the configured prices, 429s."""
    key = KEYS["team-a"]["key"]
    assert gs.request(f"{gateway}/v1/chat/completions", key, CHAT)[0] == 200
    # The Prometheus callback runs after the response is sent (Logging.async_success_handler): wait
    # for it rather than race it.
    deadline = time.monotonic() + 10
    while True:
        status, text = gs.request(f"{gateway}/metrics")
        assert status == 200 and isinstance(text, str), text
        if _metric(text, "litellm_spend_metric_total", api_key_alias="team-a") > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert _metric(text, "litellm_proxy_total_requests_metric_total", api_key_alias="team-a", status_code="200") >= 1
    assert _metric(text, "litellm_input_tokens_metric_total", api_key_alias="team-a") >= 7
    assert _metric(text, "litellm_output_tokens_metric_total", api_key_alias="team-a") >= 3
    # 7 prompt tokens at 1e-6 + 3 completion tokens at 2e-6 per chat call.
    assert _metric(text, "litellm_spend_metric_total", api_key_alias="team-a") >= 1.3e-5 - 1e-12
    assert re.search(r'litellm_proxy_total_requests_metric_total\{[^}]*status_code="429"', text)


SCHEMA_CHECK = """
import json, sys
import litellm
from litellm.proxy._types import ConfigGeneralSettings, ConfigYAML, CoordinationRedisParams, PassThroughGenericEndpoint
from litellm.types.router import LiteLLM_Params

def unknown_keys(config):
    unknown = [k for k in config if k not in ConfigYAML.model_fields]
    unknown += [f"general_settings.{k}" for k in config["general_settings"] if k not in ConfigGeneralSettings.model_fields]
    unknown += [f"litellm_settings.{k}" for k in config["litellm_settings"] if not hasattr(litellm, k)]
    for e in config["model_list"]:
        unknown += [f"litellm_params.{k}" for k in e["litellm_params"] if k not in LiteLLM_Params.model_fields]
    for p in config["general_settings"].get("pass_through_endpoints", []):
        unknown += [f"pass_through.{k}" for k in p if k not in PassThroughGenericEndpoint.model_fields]
        PassThroughGenericEndpoint(**p)
    redis = config["general_settings"].get("coordination_redis", {})
    unknown += [f"coordination_redis.{k}" for k in redis if k not in CoordinationRedisParams.model_fields]
    return unknown

def bad_keys_message(entries):
    from custom_auth import parse_keys
    try:
        parse_keys(json.dumps(entries))
    except ValueError as e:
        return str(e)
    return ""

job = json.load(open("checks-job.json"))
with open("checks.json", "w") as out:
    json.dump({"unknown": {mode: unknown_keys(c) for mode, c in job["configs"].items()},
               "bad_keys": bad_keys_message(job["bad_keys"])}, out)
"""

BAD_KEYS = {"short": {"key": "sk-1", "rpm": 5}, "zero": {"key": "sk-" + "z" * 20, "rpm": 0},
            "dup": {"key": "sk-" + "z" * 20, "rpm": 1, "tpm": -1}}


def checks_job() -> dict:
    configs = {}
    for mode, auth in (("static", gc.StaticKeyAuth()), ("database", gc.DatabaseAuth())):
        settings = gc.GatewaySettings(
            upstreams=(gc.TritonUpstream("qwen", "llm", "http://qwen.triton.svc.cluster.local:9000/v1", ("qwen",)),
                       gc.TritonUpstream("vision", "standard", "http://vision.triton.svc.cluster.local:8000")),
            auth=auth, prices={"qwen": gc.ModelPrice(1e-7, 2e-7)}, redis=gc.CoordinationRedis())
        configs[mode] = gc.render(settings)
    configs["prod plan"] = yaml.safe_load(planned_config_map("prod")["config.yaml"])
    return {"configs": configs, "bad_keys": BAD_KEYS}


def planned_config_map(stack: str) -> dict[str, str]:
    """The gateway ConfigMap's data (config.yaml, and custom_auth.py in static mode) in the stack's plan."""
    from components import inference_gateway as ig
    from tests.harness import inputs, plan
    [config_map] = [inputs(r) for r in plan(stack).kubernetes_objects()
                    if inputs(r).get("kind") == "ConfigMap" and inputs(r)["metadata"]["name"] == ig.NAME]
    return config_map["data"]


@pytest.fixture(scope="module")
def planned_workdir(tmp_path_factory) -> Path:
    """The planned proxy's directory, holding the job of SCHEMA_CHECK (run first in that proxy's
    interpreter: importing litellm takes seconds, so the check shares the import)."""
    workdir = tmp_path_factory.mktemp("litellm-plan")
    (workdir / "checks-job.json").write_text(json.dumps(checks_job()))
    return workdir


@pytest.fixture(scope="module")
def litellm_checks(planned_gateway, planned_workdir) -> dict:
    """Both modes' schema check and the custom-auth parse of bad entries, as the pinned release
    answered them (written before the proxy started, so present once it answers)."""
    return json.loads((planned_workdir / "checks.json").read_text())


@pytest.mark.parametrize("mode", ["static", "database", "prod plan"])
def test_every_rendered_key_is_one_litellm_knows(litellm_checks, mode):
    """Both modes' keys, and the prod plan's config.yaml as its ConfigMap holds it, against the pinned
    release's own schema (litellm/proxy/_types.py ConfigYAML, ConfigGeneralSettings,
    CoordinationRedisParams, PassThroughGenericEndpoint; litellm/types/router.py LiteLLM_Params;
    `litellm_settings` keys are `litellm` module attributes). Database mode (prod) cannot start here
    (Prisma), so this is what holds its `database_url`, `coordination_redis` and price keys."""
    assert litellm_checks["unknown"][mode] == []


def test_custom_auth_names_every_bad_static_key_entry(litellm_checks):
    """The static-key Secret is checked when the first request arrives; every bad entry is named."""
    for fragment in ("short: `key`", "zero: `rpm`", "dup: `key` is also", "dup: `tpm`"):
        assert fragment in litellm_checks["bad_keys"], litellm_checks["bad_keys"]


# --- the config the dev plan renders -----------------------------------------------------------

PLANNED_KEYS = {"openwebui": {"key": "sk-test-openwebui-" + "d" * 24, "rpm": 1000},
                "dev-team": {"key": "sk-test-dev-team-" + "e" * 24, "rpm": 1000},
                "shared": SHARED}


def planned_config(stub_url: str, kserve_url: str) -> tuple[dict, str]:
    """config.yaml and custom_auth.py exactly as the dev plan's ConfigMap holds them, the in-cluster
    upstream URLs rewritten to the local stand-ins (nothing else changes)."""
    data = planned_config_map("dev")
    config = yaml.safe_load(data["config.yaml"])
    for entry in config["model_list"]:
        assert entry["litellm_params"]["api_base"].endswith(":9000/v1")
        entry["litellm_params"]["api_base"] = f"{stub_url}/v1"
    for route in config["general_settings"].get("pass_through_endpoints", []):
        assert route["target"].endswith(":8000/v2")
        route["target"] = f"{kserve_url}/v2"
    return config, data["custom_auth.py"]


@pytest.fixture(scope="module")
def planned_gateway(tmp_path_factory, stub, mlserver, planned_workdir):  # noqa: F811
    config, custom_auth = planned_config(stub, mlserver)
    assert custom_auth == gs.CUSTOM_AUTH.read_text(), "the ConfigMap ships the tested custom_auth.py"
    yield from running_proxy(tmp_path_factory, config, PLANNED_KEYS, planned_workdir, SCHEMA_CHECK)


def test_the_planned_config_refuses_without_a_key_and_routes_both_api_families_with_one(planned_gateway):
    """The dev plan's ConfigMap (components/inference_gateway.py, rendered by gateway_config) loaded by
    the pinned proxy: 401 without a key on /v1 and on the standard deployment's pass-through; with
    OpenWebUI's key, /v1/models lists exactly the model gateway.models names, 200 on chat and on
    KServe-v2 infer;
    the probe paths of the Deployment answer without a key (/health/readiness too: the kubelet
    sends none)."""
    assert gs.request(f"{planned_gateway}/v1/chat/completions", None, CHAT)[0] == 401
    base = f"{planned_gateway}{gc.pass_through_path('standard')}"
    assert gs.request(f"{base}/models/add_sub", None)[0] == 401
    key = PLANNED_KEYS["openwebui"]["key"]
    # The model dev's gateway.models names for its llm deployment, as OpenWebUI sees it on /v1/models.
    status, body = gs.request(f"{planned_gateway}/v1/models", key)
    models = [m["id"] for m in body["data"]]
    assert status == 200 and models == ["qwen2.5-0.5b-instruct"], body
    status, body = gs.request(f"{planned_gateway}/v1/chat/completions", key, {**CHAT, "model": models[0]})
    assert status == 200 and body["choices"][0]["message"]["content"] == "pong", body
    status, body = gs.request(f"{base}/models/add_sub/infer", PLANNED_KEYS["dev-team"]["key"], ADD_SUB)
    assert status == 200, body
    for path in ("/health/liveliness", "/health/readiness"):
        assert gs.request(f"{planned_gateway}{path}")[0] == 200, path
    status, text = gs.request(f"{planned_gateway}/metrics")
    assert status == 200 and "litellm_proxy_total_requests_metric_total" in text


def test_the_pinned_release_has_what_the_database_mode_jobs_rely_on():
    """Read in the pinned release itself (build/venvs/litellm, BerriAI/litellm v1.108.7; no import):
    the migration Job's script (components/inference_gateway.py MIGRATION_COMMAND, run from the image's
    source tree as LiteLLM's chart runs it) runs the CLI with --skip_server_startup; the CLI migrates
    unless DISABLE_SCHEMA_UPDATE (litellm/proxy/db/prisma_client.py should_update_prisma_schema, called
    by litellm/proxy/proxy_cli.py), which the serving pods set; a read-only root needs
    LITELLM_MIGRATION_DIR (litellm_proxy_extras/utils.py)."""
    from components import inference_gateway as ig

    site = litellm_site()
    script = (site / ig.MIGRATION_COMMAND[1]).read_text()
    assert ig.MIGRATION_COMMAND[0] == "python" and '"--skip_server_startup"' in script
    assert f'os.getenv("{ig.DISABLE_SCHEMA_UPDATE_ENV}"' in (site / "litellm/proxy/db/prisma_client.py").read_text()
    assert "should_update_prisma_schema(" in (site / "litellm/proxy/proxy_cli.py").read_text()
    assert f'os.getenv("{ig.MIGRATION_DIR_ENV}")' in (site / "litellm_proxy_extras/utils.py").read_text()
    # Database mode's budget gauges refreshed on a schedule (components/gateway_config.py render).
    assert "if litellm.prometheus_initialize_budget_metrics is True:" in (site / "litellm/proxy/proxy_server.py").read_text()


def test_the_proxy_venv_has_the_opentelemetry_sdk_the_release_runs_with():
    """LiteLLM 1.108.7's own metadata (litellm-1.108.7.dist-info/METADATA, extra `proxy-runtime`, the
    proxy's runtime dependencies) pins opentelemetry-api/-sdk; its auth path imports
    litellm/integrations/otel/logger.py, which needs the SDK, on every request
    (litellm/proxy/auth/user_api_key_auth.py `_seed_request_destinations`). Without the SDK that import
    fails and is retried per request: the proxy tests and `make bench` would run a slower proxy than
    the image. tests/servers/requirements-litellm.txt pins what the release pins."""
    from importlib.metadata import PathDistribution

    site = litellm_site()
    [dist_info] = site.glob("litellm-*.dist-info")
    runtime = {}
    for requirement in PathDistribution(dist_info).requires or []:
        match = re.match(r"(opentelemetry-(?:api|sdk))==([\w.]+)\s*;\s*extra == .proxy-runtime.", requirement)
        if match:
            runtime[match[1]] = match[2]
    assert set(runtime) == {"opentelemetry-api", "opentelemetry-sdk"}, runtime
    pinned = dict(line.split("==") for line in (gs.ROOT / "tests/servers/requirements-litellm.txt").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert {name: pinned.get(name) for name in runtime} == runtime
    assert (site / "opentelemetry" / "sdk").is_dir()
