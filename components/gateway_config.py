"""LiteLLM proxy `config.yaml` (as a dict) for the inference gateway, from plain typed inputs.

Pure functions, no Pulumi: the gateway component renders this into a ConfigMap (beside
`components/gateway/custom_auth.py` in static-key mode). Every key is checked against LiteLLM
1.108.7 (BerriAI/litellm, the `litellm[proxy]==1.108.7` release tests/servers/requirements-litellm.txt
pins); tests/test_gateway_config.py and tests/test_gateway_proxy.py name the source of each.

Routing:
- OpenAI API (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`): one
  `model_list` entry per served model of every `llm` deployment, `openai/<model>` at the
  deployment's OpenAI frontend (`http://<svc>.<ns>.svc.cluster.local:9000/v1`). An `llm`
  deployment that lists no models gets LiteLLM's wildcard route (`model_name: "*"` ->
  `openai/*`): any model name goes to it, so at most one deployment may do that.
- KServe-v2 API of every `standard` deployment: an authenticated pass-through route
  `/triton/<deployment>/v2` -> `http://<svc>.<ns>.svc.cluster.local:8000/v2` with its subpaths,
  so `POST /triton/<deployment>/v2/models/<model>/infer` reaches that deployment (a client's
  base URL is `https://<gateway>/triton/<deployment>`; tritonclient.http accepts a base path).
  A per-deployment prefix because several deployments can serve a model of the same name.

Secrets only as `os.environ/<VAR>` references, resolved by the proxy at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

# Environment variables the gateway Deployment sets (from Kubernetes Secrets).
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
DATABASE_URL_ENV = "DATABASE_URL"
REDIS_HOST_ENV = "REDIS_HOST"
REDIS_PORT_ENV = "REDIS_PORT"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
# JSON of the static keys (see components/gateway/custom_auth.py), static-key mode only.
STATIC_KEYS_ENV = "GATEWAY_STATIC_KEYS"
# Triton's OpenAI frontend ignores the key; the OpenAI client LiteLLM uses refuses to start without one.
UPSTREAM_KEY_ENV = "TRITON_OPENAI_API_KEY"
# Module (a file beside config.yaml) and function LiteLLM loads for `general_settings.custom_auth`.
CUSTOM_AUTH_MODULE = "custom_auth"
CUSTOM_AUTH = f"{CUSTOM_AUTH_MODULE}.user_api_key_auth"
PASS_THROUGH_PREFIX = "/triton"
WILDCARD = "*"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def env_ref(var: str) -> str:
    """LiteLLM's reference to an environment variable, resolved when the proxy loads its config."""
    return f"os.environ/{var}"


@dataclass(frozen=True)
class TritonUpstream:
    """One Triton deployment behind the gateway. `base_url`: for `llm`, its OpenAI frontend
    (`http://<svc>.<ns>.svc.cluster.local:9000/v1`); for `standard`, its KServe-v2 HTTP root
    (`http://<svc>.<ns>.svc.cluster.local:8000`). `models`: the names an `llm` deployment serves
    (empty: route every model name to it)."""
    name: str
    mode: Literal["standard", "llm"]
    base_url: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelPrice:
    """USD per token, counted into spend (database mode) and the spend metrics."""
    input_cost_per_token: float
    output_cost_per_token: float


@dataclass(frozen=True)
class DatabaseAuth:
    """Master key + virtual keys (per team/app RPM/TPM limits, budgets, spend) in PostgreSQL."""


@dataclass(frozen=True)
class StaticKeyAuth:
    """Keys and their RPM/TPM limits from a Secret (env `GATEWAY_STATIC_KEYS`), checked by
    components/gateway/custom_auth.py; no database. The proxy's rate limiter counts in memory, per
    replica, unless the settings have a `CoordinationRedis`."""


@dataclass(frozen=True)
class CoordinationRedis:
    """LiteLLM's `general_settings.coordination_redis` (1.108.7: litellm/proxy/_types.py
    CoordinationRedisParams, built by proxy_server.py `_init_coordination_redis` and handed to
    proxy/utils.py `update_values` as internal_usage_cache.dual_cache.redis_cache): the rate limiter's
    counters (proxy/hooks/parallel_request_limiter_v3.py), spend counters and cross-pod locks in one
    Redis, so limits hold across replicas in either auth mode; no database needed. Host, port and
    password from the environment; `ssl` for ElastiCache's required in-transit encryption."""
    ssl: bool = True


AuthMode = Union[DatabaseAuth, StaticKeyAuth]


@dataclass(frozen=True)
class GatewaySettings:
    upstreams: tuple[TritonUpstream, ...]
    auth: AuthMode
    prices: dict[str, ModelPrice] = field(default_factory=dict)
    # None: every replica counts alone (fine for one replica).
    redis: Optional[CoordinationRedis] = None
    request_timeout_seconds: Optional[int] = 600


def validate(settings: GatewaySettings) -> list[str]:
    """Every problem with the settings (empty when they render)."""
    errors: list[str] = []
    names = [u.name for u in settings.upstreams]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"upstream {name!r} is listed more than once")
    served: dict[str, str] = {}
    wildcards = []
    for upstream in settings.upstreams:
        errors += _upstream_errors(upstream)
        if upstream.mode == "llm" and not upstream.models:
            wildcards.append(upstream.name)
        for model in upstream.models if upstream.mode == "llm" else ():
            if model in served:
                errors.append(f"model {model!r} is served by both {served[model]!r} and {upstream.name!r}")
            served.setdefault(model, upstream.name)
    if len(wildcards) > 1:
        errors.append(f"only one llm deployment may leave `models` empty (route every model name), not {wildcards}")
    for model, price in settings.prices.items():
        if model not in served and not wildcards:
            errors.append(f"price for {model!r}, which no llm deployment serves")
        if price.input_cost_per_token < 0 or price.output_cost_per_token < 0:
            errors.append(f"price for {model!r} is negative")
    return errors


def _upstream_errors(upstream: TritonUpstream) -> list[str]:
    errors = []
    if not _NAME.match(upstream.name):
        errors.append(f"upstream name {upstream.name!r} is not a DNS label")
    if upstream.mode not in ("standard", "llm"):
        errors.append(f"upstream {upstream.name!r}: mode {upstream.mode!r} is not standard or llm")
    if not upstream.base_url.startswith(("http://", "https://")) or upstream.base_url.endswith("/"):
        errors.append(f"upstream {upstream.name!r}: base_url {upstream.base_url!r} must be http(s) without a trailing /")
    if upstream.mode == "standard" and upstream.models:
        errors.append(f"upstream {upstream.name!r}: `models` applies to llm deployments only")
    if WILDCARD in upstream.models:
        errors.append(f"upstream {upstream.name!r}: leave `models` empty rather than listing {WILDCARD!r}")
    return errors


def model_list(settings: GatewaySettings) -> list[dict]:
    """One entry per served model of every llm deployment (a wildcard entry last: LiteLLM
    prefers an exact model name over a pattern)."""
    entries, wildcard = [], []
    for upstream in settings.upstreams:
        if upstream.mode != "llm":
            continue
        names = upstream.models or (WILDCARD,)
        for name in names:
            params = {"model": f"openai/{name}", "api_base": upstream.base_url, "api_key": env_ref(UPSTREAM_KEY_ENV)}
            price = settings.prices.get(name)
            if price is not None:
                params["input_cost_per_token"] = price.input_cost_per_token
                params["output_cost_per_token"] = price.output_cost_per_token
            if settings.request_timeout_seconds:
                params["timeout"] = settings.request_timeout_seconds
            entry = {"model_name": name, "litellm_params": params, "model_info": {"triton_deployment": upstream.name}}
            (wildcard if name == WILDCARD else entries).append(entry)
    return entries + wildcard


def pass_through_path(deployment: str) -> str:
    """Gateway path of a standard deployment's KServe-v2 API (`<path>/models/<m>/infer`...)."""
    return f"{PASS_THROUGH_PREFIX}/{deployment}/v2"


def pass_through_endpoints(settings: GatewaySettings) -> list[dict]:
    """Authenticated pass-through per standard deployment. `auth: true` must be explicit: LiteLLM
    reads the raw dict and enforces auth only when the key is present and true."""
    return [{"path": pass_through_path(u.name), "target": f"{u.base_url}/v2", "include_subpath": True, "auth": True}
            for u in settings.upstreams if u.mode == "standard"]


def coordination_redis(redis: CoordinationRedis) -> dict:
    """Resolved by proxy_server.py `_resolve_coordination_redis_env_refs` (os.environ/ references)."""
    return {"host": env_ref(REDIS_HOST_ENV), "port": env_ref(REDIS_PORT_ENV),
            "password": env_ref(REDIS_PASSWORD_ENV), "ssl": redis.ssl}


def auth_settings(auth: AuthMode) -> dict:
    """general_settings entries of the auth mode. The master key is set in both: LiteLLM 1.108.7
    refuses to start without one (litellm/proxy/auth/master_key_boot_check.py)."""
    general: dict = {"master_key": env_ref(MASTER_KEY_ENV)}
    if isinstance(auth, DatabaseAuth):
        general["database_url"] = env_ref(DATABASE_URL_ENV)
    elif isinstance(auth, StaticKeyAuth):
        general["custom_auth"] = CUSTOM_AUTH
    else:
        raise TypeError(f"unknown auth mode {auth!r}")
    return general


def render(settings: GatewaySettings) -> dict:
    """The proxy's config.yaml as a dict. Raises ValueError naming every problem."""
    errors = validate(settings)
    if errors:
        raise ValueError("invalid gateway settings:\n  " + "\n  ".join(errors))
    general = auth_settings(settings.auth)
    if settings.redis is not None:
        general["coordination_redis"] = coordination_redis(settings.redis)
    passthrough = pass_through_endpoints(settings)
    if passthrough:
        general["pass_through_endpoints"] = passthrough
    litellm_settings: dict = {
        "callbacks": ["prometheus"],
        # Prometheus scrapes /metrics without a key (NetworkPolicy admits only Prometheus there).
        "require_auth_for_metrics_endpoint": False,
    }
    if isinstance(settings.auth, DatabaseAuth):
        # The budget gauges (InferenceGatewayKeyBudgetNearlySpent) refreshed from the database on a
        # schedule, not only when the key makes a request (LiteLLM 1.108.7 proxy_server.py: the
        # scheduler adds PrometheusLogger.initialize_budget_metrics_cron_job when this is True).
        litellm_settings["prometheus_initialize_budget_metrics"] = True
    return {"model_list": model_list(settings), "litellm_settings": litellm_settings, "general_settings": general}


def upstream_env() -> dict[str, str]:
    """Non-secret environment the gateway container needs besides its Secrets."""
    return {
        UPSTREAM_KEY_ENV: "unused",  # not a credential: Triton's OpenAI frontend has no auth
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # never fetch the price list from the internet
    }
