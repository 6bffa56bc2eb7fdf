"""components/gateway/sync_keys.py (database mode's key sync, run by the stack as a Job after the gateway Deployment) for real:
run by the pinned LiteLLM release's python (as the image's python would run it) against a stub of the
proxy's key management API whose handlers validate every request body with that release's own models
(BerriAI/litellm v1.108.7 litellm/types/proxy/management_endpoints/key_requests.py GenerateKeyRequest,
UpdateKeyRequest; routes in litellm/proxy/management_endpoints/key_management_endpoints.py:
GET /key/info?key=<key or its sha256>, 404 when unknown; POST /key/generate; POST /key/update).
One stub process (importing litellm takes seconds) serves both sync runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_smoke import server_venv, stop

ROOT = Path(__file__).resolve().parent.parent
SYNC = ROOT / "components" / "gateway" / "sync_keys.py"
MASTER_KEY = "sk-test-master-" + "0" * 32

STUB = r'''
import hashlib, http.server, json, sys, urllib.parse
from litellm.types.proxy.management_endpoints.key_requests import GenerateKeyRequest, UpdateKeyRequest

MASTER = sys.argv[1]
stored, calls = {}, []

def problems(model, body):
    unknown = [k for k in body if k not in model.model_fields]
    try:
        model.model_validate(body)
    except Exception as exc:
        return unknown + [str(exc)]
    return unknown

class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self):
        if self.headers.get("Authorization") != f"Bearer {MASTER}":
            self._send(401, {"error": "not the master key"})
            return False
        return True

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/state":
            return self._send(200, {"stored": stored, "calls": calls})
        if not self._authorised():
            return
        if url.path == "/key/info":
            token = urllib.parse.parse_qs(url.query)["key"][0]
            calls.append(["info", token])
            return self._send(200, {"key": token}) if token in stored else self._send(404, {"error": "Key not found"})
        self._send(404, {"error": self.path})

    def do_POST(self):
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = {"/key/generate": GenerateKeyRequest, "/key/update": UpdateKeyRequest}.get(self.path)
        if model is None:
            return self._send(404, {"error": self.path})
        found = problems(model, body)
        calls.append([self.path, body.get("key_alias"), found])
        if found:
            return self._send(422, {"error": found})
        token = hashlib.sha256(body["key"].encode()).hexdigest()
        if (self.path == "/key/generate") == (token in stored):
            return self._send(400, {"error": "exists" if token in stored else "unknown key"})
        stored[token] = {k: v for k, v in body.items() if k != "key"}
        self._send(200, {"key": body["key"]})

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
'''


@pytest.fixture(scope="module")
def stub():
    python = server_venv("litellm", "python")
    proc = subprocess.Popen([str(python), "-c", STUB, MASTER_KEY], stdout=subprocess.PIPE, text=True,
                            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": ""})
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), "the key API stub did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def run_sync(url: str, keys: dict) -> subprocess.CompletedProcess:
    python = server_venv("litellm", "python")
    env = {"GATEWAY_URL": url, "LITELLM_MASTER_KEY": MASTER_KEY, "GATEWAY_KEYS": json.dumps(keys),
           "PATH": os.environ.get("PATH", ""), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    return subprocess.run([str(python), str(SYNC)], env=env, capture_output=True, text=True, timeout=60)


def test_the_key_set_is_generated_then_updated_with_bodies_the_release_accepts(stub):
    import hashlib
    from tests.gateway_support import request

    keys = {"openwebui": {"key": "sk-test-openwebui-" + "d" * 24, "rpm": 120, "tpm": 200000},
            "apps": {"key": "sk-test-apps-" + "e" * 24, "rpm": 60, "maxBudget": 50.0, "budgetDuration": "30d"}}
    first = run_sync(stub, keys)
    assert first.returncode == 0, first.stdout + first.stderr
    changed = {**keys, "apps": {**keys["apps"], "rpm": 30}}
    second = run_sync(stub, changed)
    assert second.returncode == 0, second.stdout + second.stderr
    state = request(f"{stub}/state")[1]
    posts = [c for c in state["calls"] if c[0] != "info"]
    assert [c[:2] for c in posts] == [["/key/generate", "openwebui"], ["/key/generate", "apps"],
                                      ["/key/update", "openwebui"], ["/key/update", "apps"]], posts
    assert all(not c[2] for c in posts), posts
    # /key/info was asked by hash: the raw key never went into a URL.
    assert all(len(c[1]) == 64 and not c[1].startswith("sk-") for c in state["calls"] if c[0] == "info")
    apps = state["stored"][hashlib.sha256(keys["apps"]["key"].encode()).hexdigest()]
    assert apps == {"key_alias": "apps", "rpm_limit": 30, "tpm_limit": None, "max_budget": 50.0, "budget_duration": "30d"}


def test_a_refused_key_fails_the_job_naming_it(stub):
    """A body the release refuses (here a limit its model rejects) or any non-200 exits non-zero."""
    result = run_sync(stub, {"broken": {"key": "sk-test-broken-" + "b" * 24, "rpm": "many"}})
    assert result.returncode == 1 and "broken (generate: HTTP 422)" in result.stderr, result.stdout + result.stderr
