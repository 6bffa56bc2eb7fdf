"""Make the gateway's configured keys LiteLLM virtual keys (database mode): run once per key set by a
Job with the LiteLLM image's python, after the proxy is ready. Standard library only.

Environment: GATEWAY_URL (the proxy, e.g. http://inference-gateway.inference-gateway.svc.cluster.local),
LITELLM_MASTER_KEY, GATEWAY_KEYS (a Secret), JSON:
    {"<app or team>": {"key": "sk-...", "rpm": 60, "tpm": 100000, "maxBudget": 50.0, "budgetDuration": "30d"}}
For each entry: GET /key/info?key=<sha256 of the key> (the hash keeps the key out of URLs and logs);
found -> POST /key/update, not found (404) -> POST /key/generate with the key as `key`. The body names
are LiteLLM 1.108.7's (litellm/types/proxy/management_endpoints/key_requests.py GenerateKeyRequest,
UpdateKeyRequest; request_base.py GenerateRequestBase: key_alias, rpm_limit, tpm_limit, max_budget,
budget_duration). Exits non-zero naming every key that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

KEYS_ENV = "GATEWAY_KEYS"


def body(name: str, entry: dict) -> dict:
    """The request body of one key: the same for /key/generate and /key/update (a merge patch, so
    null clears a limit or budget the config no longer sets)."""
    return {"key": entry["key"], "key_alias": name, "rpm_limit": entry["rpm"], "tpm_limit": entry.get("tpm"),
            "max_budget": entry.get("maxBudget"), "budget_duration": entry.get("budgetDuration")}


def call(base: str, master_key: str, method: str, path: str, payload: dict | None = None) -> int:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {master_key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def sync(base: str, master_key: str, keys: dict[str, dict]) -> list[str]:
    """Every key generated or updated; the names that failed, with the status."""
    failed = []
    for name, entry in keys.items():
        digest = hashlib.sha256(entry["key"].encode()).hexdigest()
        found = call(base, master_key, "GET", "/key/info?" + urllib.parse.urlencode({"key": digest}))
        if found == 200:
            status, action = call(base, master_key, "POST", "/key/update", body(name, entry)), "update"
        elif found == 404:
            status, action = call(base, master_key, "POST", "/key/generate", body(name, entry)), "generate"
        else:
            status, action = found, "info"
        print(f"{name}: {action} -> {status}", flush=True)
        if status != 200:
            failed.append(f"{name} ({action}: HTTP {status})")
    return failed


def main() -> int:
    keys = json.loads(os.environ[KEYS_ENV])
    failed = sync(os.environ["GATEWAY_URL"].rstrip("/"), os.environ["LITELLM_MASTER_KEY"], keys)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
