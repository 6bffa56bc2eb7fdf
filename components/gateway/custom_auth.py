"""Static API keys for the LiteLLM proxy (`general_settings.custom_auth: custom_auth.user_api_key_auth`),
the gateway's auth in stacks without a key database. Loaded by the proxy from beside its config.yaml.

The keys come from the environment variable GATEWAY_STATIC_KEYS (a Kubernetes Secret), JSON:
    {"<app or team>": {"key": "sk-...", "rpm": 60, "tpm": 100000}, ...}
`rpm` is required, `tpm` optional. A request with a listed key is authorised as that key, with its
limits enforced by the proxy's rate limiter (across replicas with `general_settings.coordination_redis`,
else in memory per replica) and its name as `key_alias` on the Prometheus metrics; any other key, or none, is refused (401). Keys reach
only the inference routes (403 elsewhere).

Interface (LiteLLM 1.108.7, litellm/proxy/auth/user_api_key_auth.py): `async (request, api_key) ->
UserAPIKeyAuth`; `api_key` is the bearer token without "Bearer ".
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Optional

from fastapi import Request
from litellm.proxy._types import ProxyErrorTypes, ProxyException, UserAPIKeyAuth

KEYS_ENV = "GATEWAY_STATIC_KEYS"
# What a static key may call: the OpenAI inference routes (LiteLLM serves them with and without /v1)
# and the KServe-v2 pass-through (components/gateway_config.py PASS_THROUGH_PREFIX). Custom auth
# replaces LiteLLM's key checks, role checks included, so without this a key would also reach the
# management routes (/model/info shows upstream URLs, /health calls every model, /model/new...).
ALLOWED_ROUTES = ("/chat/completions", "/completions", "/embeddings", "/models")
ALLOWED_PREFIXES = ("/models/", "/triton/")


def parse_keys(raw: str) -> dict[str, dict]:
    """name -> {"key", "rpm", "tpm"}; raises ValueError naming every bad entry."""
    data = json.loads(raw)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{KEYS_ENV} must be a non-empty JSON object of name -> {{key, rpm}}")
    errors, keys, seen = [], {}, set()
    for name, entry in data.items():
        key = entry.get("key") if isinstance(entry, dict) else None
        rpm = entry.get("rpm") if isinstance(entry, dict) else None
        tpm = entry.get("tpm") if isinstance(entry, dict) else None
        if not isinstance(key, str) or len(key) < 16:
            errors.append(f"{name}: `key` must be a string of at least 16 characters")
        elif key in seen:
            errors.append(f"{name}: `key` is also another entry's key")
        if not isinstance(rpm, int) or isinstance(rpm, bool) or rpm <= 0:
            errors.append(f"{name}: `rpm` must be a positive integer")
        if tpm is not None and (not isinstance(tpm, int) or isinstance(tpm, bool) or tpm <= 0):
            errors.append(f"{name}: `tpm` must be a positive integer")
        seen.add(key)
        keys[name] = {"key": key, "rpm": rpm, "tpm": tpm}
    if errors:
        raise ValueError(f"{KEYS_ENV}: " + "; ".join(errors))
    return keys


_KEYS: Optional[dict[str, dict]] = None


def _keys() -> dict[str, dict]:
    global _KEYS
    if _KEYS is None:
        _KEYS = parse_keys(os.environ.get(KEYS_ENV, ""))
    return _KEYS


def lookup(api_key: str) -> Optional[tuple[str, dict]]:
    """(name, entry) of the key, compared in constant time; None when unknown."""
    found = None
    for name, entry in _keys().items():
        if hmac.compare_digest(entry["key"].encode(), (api_key or "").encode()):
            found = (name, entry)
    return found


def allowed(path: str) -> bool:
    route = path[len("/v1"):] if path.startswith("/v1/") else path
    return route in ALLOWED_ROUTES or route.startswith(ALLOWED_PREFIXES)


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    found = lookup(api_key)
    if found is not None and not allowed(request.url.path):
        raise ProxyException(message=f"Authentication Error: route {request.url.path} is not open to API keys",
                             type=ProxyErrorTypes.auth_error, param="route", code=403)
    if found is None:
        # A ProxyException keeps its code. Any other exception goes through LiteLLM's database-error
        # probe first (auth_exception_handler._as_proxy_exception), which needs the prisma package.
        raise ProxyException(message="Authentication Error: invalid or missing API key",
                             type=ProxyErrorTypes.auth_error, param="api_key", code=401)
    name, entry = found
    return UserAPIKeyAuth(api_key=entry["key"], key_alias=name, rpm_limit=entry["rpm"], tpm_limit=entry["tpm"])
