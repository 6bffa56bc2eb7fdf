"""Inference gateway: latency the LiteLLM proxy adds (p50/p95, concurrency 1 and 8) over a direct call.

The pinned proxy (build/venvs/litellm, tests/servers/requirements-litellm.txt) with the static-key config
components/gateway_config.py renders, in front of the OpenAI-compatible stub of tests/gateway_support.py
(instant answers, so the difference is the gateway's own cost: auth, rate limiter, routing, metrics).
Both paths: chat completions over keep-alive connections, after a warm-up. Target: <= 10 ms added at p50.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from components import gateway_config as gc
from tests import gateway_support as gs
from tests.test_smoke import free_port, server_venv

KEY = "sk-bench-" + "0" * 32
REQUESTS = {1: 200, 8: 400}
WARMUP = 20


def _timed_calls(url: str, key: str | None, count: int) -> list[float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    body = json.dumps({"model": gs.STUB_MODEL, "messages": [{"role": "user", "content": "ping"}]}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    path = f"{parts.path}/chat/completions"
    times = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    conn.close()
    return times


def _latencies(url: str, key: str | None, concurrency: int) -> tuple[list[float], float]:
    """Per-request milliseconds, and requests per second over the run."""
    _timed_calls(url, key, WARMUP)
    results: list[list[float]] = [[] for _ in range(concurrency)]
    per_worker = REQUESTS[concurrency] // concurrency

    def worker(i: int) -> None:
        results[i] = _timed_calls(url, key, per_worker)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [t for r in results for t in r], per_worker * concurrency / (time.perf_counter() - start)


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def run() -> list[tuple[str, str]]:
    try:
        binary = server_venv("litellm", "litellm")
    except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
        return [("gateway latency", f"not run ({exc})")]
    # One uvicorn worker shares the host with the stub and this client: read the figures with the load.
    rows = [("host: CPUs / load average (1 min) at start", f"{os.cpu_count()} / {os.getloadavg()[0]:.1f}")]
    with gs.stub_server() as stub, tempfile.TemporaryDirectory() as tmp:
        settings = gc.GatewaySettings(upstreams=(gc.TritonUpstream("qwen", "llm", f"{stub}/v1", (gs.STUB_MODEL,)),),
                                      auth=gc.StaticKeyAuth())
        env = gs.proxy_env({"bench": {"key": KEY, "rpm": 1_000_000}}, "sk-bench-master-" + "0" * 32)
        with gs.litellm_proxy(binary, gc.render(settings), env, Path(tmp), free_port()) as proxy:
            for concurrency in (1, 8):
                direct, _ = _latencies(f"{stub}/v1", None, concurrency)
                gateway, rate = _latencies(f"{proxy}/v1", KEY, concurrency)
                for q in (50, 95):
                    d, g = _p(direct, q), _p(gateway, q)
                    rows.append((f"concurrency {concurrency}, p{q}: direct / via gateway / added",
                                 f"{d:.1f} / {g:.1f} / {g - d:.1f} ms"))
                rows.append((f"concurrency {concurrency}: requests/s through one proxy worker", f"{rate:.0f}"))
    return rows
