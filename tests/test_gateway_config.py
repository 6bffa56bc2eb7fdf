"""components/gateway_config.py: the LiteLLM proxy config (BerriAI/litellm 1.108.7) the gateway renders.
Pure: the pinned proxy loading it is tests/test_gateway_proxy.py."""

from __future__ import annotations

import pytest

from components import gateway_config as gc

QWEN = gc.TritonUpstream("qwen", "llm", "http://qwen.triton.svc.cluster.local:9000/v1", ("qwen2.5-0.5b-instruct",))
OPEN = gc.TritonUpstream("any-llm", "llm", "http://any-llm.triton.svc.cluster.local:9000/v1")
VISION = gc.TritonUpstream("vision", "standard", "http://vision.triton.svc.cluster.local:8000")
OCR = gc.TritonUpstream("ocr", "standard", "http://ocr.ml.svc.cluster.local:8000")


def settings(auth=None, upstreams=(QWEN, OPEN, VISION, OCR), prices=None, redis=None) -> gc.GatewaySettings:
    return gc.GatewaySettings(upstreams=upstreams, auth=auth or gc.StaticKeyAuth(),
                              prices=prices or {"qwen2.5-0.5b-instruct": gc.ModelPrice(1e-7, 3e-7)}, redis=redis)


def _strings(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("auth", [gc.StaticKeyAuth(), gc.DatabaseAuth()], ids=["static", "database"])
@pytest.mark.parametrize("redis", [None, gc.CoordinationRedis()], ids=["alone", "redis"])
def test_no_secret_literal_only_environment_references(auth, redis):
    """Secrets as `os.environ/<VAR>` (docs/my-website/docs/proxy/configs.md; resolved by
    litellm/proxy/proxy_server.py at load, coordination_redis by `_resolve_coordination_redis_env_refs`)."""
    secretish = ("key", "password", "database_url", "host", "port")
    for path, value in _strings(gc.render(settings(auth, redis=redis))):
        if path.rsplit(".", 1)[-1] in secretish or path.endswith(("api_key", "master_key")):
            assert isinstance(value, str) and value.startswith("os.environ/"), (path, value)


def test_static_mode_uses_custom_auth_and_still_sets_the_master_key():
    """`general_settings.custom_auth: <module>.<function>` (docs/my-website/docs/proxy/custom_auth.md); the
    master key too, since 1.108.7 refuses to start without one (litellm/proxy/auth/master_key_boot_check.py)."""
    general = gc.render(settings())["general_settings"]
    assert general["custom_auth"] == "custom_auth.user_api_key_auth"
    assert general["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert "database_url" not in general and "coordination_redis" not in general


def test_database_mode_has_the_database():
    """`database_url` (virtual keys, spend logs: litellm/proxy/_types.py ConfigGeneralSettings)."""
    general = gc.render(settings(gc.DatabaseAuth()))["general_settings"]
    assert general["database_url"] == "os.environ/DATABASE_URL"
    assert "custom_auth" not in general and "coordination_redis" not in general


def test_database_mode_refreshes_the_budget_gauges_on_a_schedule():
    """The budget alert (InferenceGatewayKeyBudgetNearlySpent) reads LiteLLM's budget gauges, which
    1.108.7 sets on a key's requests and, with `litellm.prometheus_initialize_budget_metrics` True, also
    from the database on a schedule (litellm/proxy/proxy_server.py adds
    PrometheusLogger.initialize_budget_metrics_cron_job); static mode has no budgets. The key is
    checked against the release's schema in tests/test_gateway_proxy.py."""
    assert gc.render(settings(gc.DatabaseAuth()))["litellm_settings"]["prometheus_initialize_budget_metrics"] is True
    assert "prometheus_initialize_budget_metrics" not in gc.render(settings(gc.StaticKeyAuth()))["litellm_settings"]


@pytest.mark.parametrize("auth", [gc.StaticKeyAuth(), gc.DatabaseAuth()], ids=["static", "database"])
def test_the_coordination_redis_shares_the_limits_across_replicas_in_either_mode(auth):
    """`general_settings.coordination_redis` (BerriAI/litellm v1.108.7 litellm/proxy/_types.py
    CoordinationRedisParams; proxy_server.py `_init_coordination_redis` builds it with no database and
    proxy/utils.py `update_values` makes it internal_usage_cache.dual_cache.redis_cache, the rate
    limiter's store). `router_settings.redis_*` would only cover the router's per-deployment limits.
    Static mode had no Redis, so a key's rpm was per replica (tests/test_gateway_proxy.py runs two)."""
    general = gc.render(settings(auth, redis=gc.CoordinationRedis()))["general_settings"]
    assert general["coordination_redis"] == {"host": "os.environ/REDIS_HOST", "port": "os.environ/REDIS_PORT",
                                             "password": "os.environ/REDIS_PASSWORD", "ssl": True}
    assert gc.render(settings(auth, redis=gc.CoordinationRedis(ssl=False)))["general_settings"]["coordination_redis"]["ssl"] is False


def test_every_llm_model_routes_to_its_deployments_openai_frontend_with_its_price():
    """`openai/<model>` + `api_base`; custom prices as `input_cost_per_token`/`output_cost_per_token`
    in litellm_params (docs/my-website/docs/proxy/custom_pricing.md). The wildcard entry comes last."""
    entries = gc.render(settings())["model_list"]
    assert [e["model_name"] for e in entries] == ["qwen2.5-0.5b-instruct", "*"]
    qwen, wildcard = (e["litellm_params"] for e in entries)
    assert qwen["model"] == "openai/qwen2.5-0.5b-instruct" and qwen["api_base"] == QWEN.base_url
    assert (qwen["input_cost_per_token"], qwen["output_cost_per_token"]) == (1e-7, 3e-7)
    assert wildcard["model"] == "openai/*" and wildcard["api_base"] == OPEN.base_url
    assert "input_cost_per_token" not in wildcard


def test_every_standard_deployment_gets_its_own_authenticated_pass_through():
    """`pass_through_endpoints` (docs/my-website/docs/proxy/pass_through.md): `auth: true` explicit,
    since `_register_pass_through_endpoint` reads the raw dict and skips auth when the key is absent;
    `include_subpath: true` so /triton/<name>/v2/models/<m>/infer reaches <target>/models/<m>/infer."""
    routes = gc.render(settings())["general_settings"]["pass_through_endpoints"]
    assert routes == [
        {"path": "/triton/vision/v2", "target": "http://vision.triton.svc.cluster.local:8000/v2",
         "include_subpath": True, "auth": True},
        {"path": "/triton/ocr/v2", "target": "http://ocr.ml.svc.cluster.local:8000/v2",
         "include_subpath": True, "auth": True},
    ]


def test_no_standard_deployment_no_pass_through_key():
    assert "pass_through_endpoints" not in gc.render(settings(upstreams=(QWEN,)))["general_settings"]


def test_metrics_are_prometheus_and_scrapable_without_a_key():
    """`callbacks: ["prometheus"]`, `require_auth_for_metrics_endpoint: false` (litellm_settings:
    litellm/proxy/middleware/prometheus_auth_middleware.py, 1.108.7)."""
    litellm_settings = gc.render(settings())["litellm_settings"]
    assert litellm_settings == {"callbacks": ["prometheus"], "require_auth_for_metrics_endpoint": False}


def test_the_offline_environment():
    """LITELLM_LOCAL_MODEL_COST_MAP=True: litellm/litellm_core_utils/get_model_cost_map.py otherwise
    fetches model_prices_and_context_window.json from GitHub at import."""
    assert gc.upstream_env()["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_bad_settings_name_every_problem():
    dup = gc.TritonUpstream("qwen", "llm", "http://other:9000/v1", ("qwen2.5-0.5b-instruct",))
    bad = (QWEN, dup, OPEN, gc.TritonUpstream("also-open", "llm", "http://x:9000/v1"),
           gc.TritonUpstream("Bad_Name", "standard", "http://x:8000/", ("m",)),
           gc.TritonUpstream("odd", "batch", "ftp://x"))
    with pytest.raises(ValueError) as error:
        gc.render(settings(upstreams=bad, prices={"qwen2.5-0.5b-instruct": gc.ModelPrice(-1, 0)}))
    message = str(error.value)
    for fragment in ("'qwen' is listed more than once", "served by both 'qwen' and 'qwen'",
                     "only one llm deployment may leave `models` empty", "'Bad_Name' is not a DNS label",
                     "without a trailing /", "`models` applies to llm deployments only",
                     "mode 'batch' is not standard or llm", "is negative"):
        assert fragment in message, message


def test_a_price_for_a_model_nobody_serves_is_an_error():
    with pytest.raises(ValueError, match="price for 'gpt-4', which no llm deployment serves"):
        gc.render(settings(upstreams=(QWEN, VISION), prices={"gpt-4": gc.ModelPrice(1e-7, 1e-7)}))


def test_the_test_proxy_is_pinned_exactly_and_never_to_a_malicious_release():
    """litellm 1.82.7 and 1.82.8 were published malicious; every package of the proxy's venv is pinned
    (from a `pip freeze` of a working install), so nothing newer slips in."""
    from pathlib import Path
    lines = [line for line in (Path(__file__).parent / "servers" / "requirements-litellm.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert "litellm==1.108.7" in lines and "prometheus_client==0.26.0" in lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    assert not {"litellm==1.82.7", "litellm==1.82.8"} & set(lines)
