"""The pinned LiteLLM proxy (build/venvs/litellm, from tests/servers/requirements-litellm.txt) started
on 127.0.0.1 with a config rendered by components/gateway_config.py, and local stand-ins for Triton:
an OpenAI-compatible stub and a KServe-v2 stub. Used by tests/test_gateway_proxy.py and bench/gateway.py."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import yaml

from tests.test_smoke import answers_200, stop

ROOT = Path(__file__).resolve().parent.parent
CUSTOM_AUTH = ROOT / "components" / "gateway" / "custom_auth.py"
STUB_MODEL = "qwen2.5-0.5b-instruct"


class _StubHandler(http.server.BaseHTTPRequestHandler):
    """OpenAI (/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings) and KServe-v2
    (/v2/health/ready, /v2/models/<m>, /v2/models/<m>/infer) answers, fixed and instant."""
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the peer's delayed
    # ACK holds every keep-alive response back ~40 ms.
    disable_nagle_algorithm = True

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": STUB_MODEL, "object": "model", "owned_by": "triton"}]})
        if self.path == "/v2/health/ready":
            return self._send(200, {})
        if self.path.startswith("/v2/models/"):
            name = self.path.split("/")[3]
            return self._send(200, {"name": name, "platform": "stub", "inputs": [], "outputs": []})
        self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self):
        body = self._body()
        model = body.get("model", STUB_MODEL)
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if self.path == "/v1/chat/completions":
            return self._send(200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
                                    "model": model, "usage": usage, "choices": [
                                        {"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": "pong"}}]})
        if self.path == "/v1/completions":
            return self._send(200, {"id": "cmpl-stub", "object": "text_completion", "created": int(time.time()),
                                    "model": model, "usage": usage,
                                    "choices": [{"index": 0, "text": "pong", "finish_reason": "stop"}]})
        if self.path == "/v1/embeddings":
            return self._send(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 2, "total_tokens": 2},
                                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]})
        if self.path.startswith("/v2/models/") and self.path.endswith("/infer"):
            outputs = [{**i, "name": f"OUTPUT{n}"} for n, i in enumerate(body.get("inputs", []))]
            return self._send(200, {"model_name": self.path.split("/")[3], "outputs": outputs})
        self._send(404, {"error": f"no route {self.path}"})

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def stub_server() -> Iterator[str]:
    """The stand-in upstream, `http://127.0.0.1:<port>` (no path)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def proxy_env(keys: dict, master_key: str) -> dict[str, str]:
    """The proxy's environment: offline (local price list, no telemetry destination), the secrets the
    config references, nothing inherited that LiteLLM reads (LITELLM_*, OPENAI_*, REDIS_*, DATABASE_*)."""
    from components import gateway_config as gc
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "OPENAI_", "REDIS_", "DATABASE_"))}
    env.update(gc.upstream_env())
    # Telemetry is off unless LITELLM_TELEMETRY_DESTINATION is set (litellm/proxy/telemetry/endpoints.py,
    # 1.108.7); the LITELLM_* filter above keeps it unset.
    env.update({gc.MASTER_KEY_ENV: master_key, gc.STATIC_KEYS_ENV: json.dumps(keys),
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1"})
    return env


def wait_proxy_ready(proc: subprocess.Popen, url: str, log: Path, seconds: float = 120) -> None:
    if answers_200(proc, f"{url}/health/liveliness", seconds):
        return
    stop(proc)
    raise RuntimeError("LiteLLM proxy did not become ready:\n" + log.read_text()[-4000:])


@contextlib.contextmanager
def litellm_proxy(binary: Path, config: dict, env: dict[str, str], workdir: Path, port: int) -> Iterator[str]:
    """Run `litellm --config` on 127.0.0.1:<port> from `workdir` (config.yaml + custom_auth.py)."""
    with litellm_proxies(binary, config, env, [(workdir, port)]) as urls:
        yield urls[0]


# What the `litellm` console script of the release runs (its build/venvs/litellm/bin/litellm:
# `from litellm import run_server; sys.exit(run_server())`), after an optional preamble.
LAUNCH = """
import sys
from litellm import run_server
sys.argv[0] = "litellm"
sys.exit(run_server())
"""


def proxy_command(binary: Path, preamble: str | None) -> list[str]:
    """The `litellm` command, or, with a preamble (Python run first in the proxy's own interpreter,
    e.g. a check that imports litellm, which takes seconds), the same entry point after it."""
    if preamble is None:
        return [str(binary)]
    return [str(binary.parent / "python"), "-c", preamble + LAUNCH]


@contextlib.contextmanager
def litellm_proxies(binary: Path, config: dict, env: dict[str, str], places: list[tuple[Path, int]],
                    preamble: str | None = None) -> Iterator[list[str]]:
    """Replicas of one proxy config, one per (workdir, port): all started before waiting for any,
    so their start-ups overlap."""
    procs: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for workdir, port in places:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            shutil.copy(CUSTOM_AUTH, workdir / "custom_auth.py")
            log_path = workdir / "proxy.log"
            with log_path.open("w") as log:
                proc = subprocess.Popen([*proxy_command(binary, preamble), "--config", str(workdir / "config.yaml"),
                                         "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                                        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            procs.append((proc, f"http://127.0.0.1:{port}", log_path))
        for proc, url, log_path in procs:
            wait_proxy_ready(proc, url, log_path)
        yield [url for _, url, _ in procs]
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                stop(proc)


@contextlib.contextmanager
def redis_server(binary: str, port: int, password: str) -> Iterator[None]:
    """A throwaway redis-server on 127.0.0.1:<port> with AUTH, nothing persisted."""
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--requirepass", password], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _redis_answers(port, password):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield
    finally:
        stop(proc)


def _redis_answers(port: int, password: str) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"\r\n" not in reply.partition(b"\r\n")[2]:  # both replies (AUTH's, PING's)
                chunk = conn.recv(256)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


def request(url: str, key: str | None = None, body: dict | None = None, timeout: float = 30) -> tuple[int, dict | str]:
    """(status, parsed JSON or text) of a GET (no body) or POST."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
