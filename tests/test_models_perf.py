"""`platformctl models perf` against a real KServe-v2 server: MLServer with ONNX Runtime
(build/venvs/mlserver, from tests/servers/requirements-mlserver.txt, which pins onnxruntime too) on 127.0.0.1 serving, on the CPU (runtimes.OnnxModel), a tiny transformer-like model
and the INT8 model `models optimize` made of it. Requests go only to 127.0.0.1 and every run is
bounded by a request count or a duration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from platformctl.cli import main
from platformctl.models import optvenv
from tests.optimize_models import mlp
from tests import venvs
from tests.test_smoke import SERVER_FILES, free_port, server_venv, stop

MODEL_SETTINGS = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
                  "outputs": [{"name": "embedding", "datatype": "FP32", "shape": [-1, 64]}]}


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory):
    binary = server_venv("mlserver", "mlserver")
    try:
        with venvs.lock():  # not created twice at once by parallel workers
            optvenv.ensure("optimize")
    except optvenv.VenvError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("perf")
    source = mlp(root / "mlp.onnx")
    code = main(["models", "optimize", str(source), "--name", "mlp_int8", "--out", str(root / "repo"), "--json", "--iterations", "3"])
    assert code == 0
    workdir = root / "server"
    workdir.mkdir()
    for name in ("runtimes.py", "settings.json"):
        shutil.copy(SERVER_FILES / name, workdir / name)
    for name, path in (("mlp_fp32", source), ("mlp_int8", root / "repo" / "mlp_int8" / "1" / "model.onnx")):
        (workdir / name).mkdir()
        settings = {"name": name, "implementation": "runtimes.OnnxModel", "parameters": {"uri": str(path)}, **MODEL_SETTINGS}
        (workdir / name / "model-settings.json").write_text(json.dumps(settings))
    port = free_port()
    env = {**os.environ, "MLSERVER_HOST": "127.0.0.1", "MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(free_port()),
           "MLSERVER_METRICS_PORT": str(free_port()), "PYTHONPATH": str(workdir)}
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen([str(binary), "start", str(workdir)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline, ready = time.monotonic() + 90, False
    while time.monotonic() < deadline and proc.poll() is None and not ready:
        try:
            for name in ("mlp_fp32", "mlp_int8"):
                with urllib.request.urlopen(f"{url}/v2/models/{name}/ready", timeout=2) as response:
                    ready = response.status == 200
        except OSError:
            ready = False
            time.sleep(0.5)
    try:
        if not ready:
            pytest.fail("MLServer did not become ready:\n" + (workdir / "server.log").read_text()[-3000:])
        yield url
    finally:
        stop(proc)
        log.close()


def perf(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["models", "perf", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_perf_measures_both_models_per_concurrency(capsys, onnx_server):
    code, out, err = perf(capsys, "--url", onnx_server, "--model", "mlp_fp32", "--model", "mlp_int8",
                          "--concurrency", "1,4", "--requests", "24", "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [(r["concurrency"], r["model"]) for r in results] == [(1, "mlp_fp32"), (1, "mlp_int8"), (4, "mlp_fp32"), (4, "mlp_int8")]
    for r in results:
        assert r["requests"] == 24 and r["errors"] == 0, r
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert r["throughput"] > 0


def test_perf_table_and_duration(capsys, onnx_server, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = perf(capsys, "--url", onnx_server, "--model", "mlp_fp32", "--model", "mlp_int8",
                          "--concurrency", "2", "--duration", "0.5")
    assert code == 0, err
    for text in ("p50 ms", "p95 ms", "p99 ms", "throughput /s", "vs mlp_fp32", "0.5 s per model and level"):
        assert text in out, out


def test_unknown_model_and_down_server_are_clean_errors(capsys, onnx_server):
    code, _, err = perf(capsys, "--url", onnx_server, "--model", "nope", "--requests", "1")
    assert code == 1 and "model 'nope'" in err and "Traceback" not in err, err
    code, _, err = perf(capsys, "--url", f"http://127.0.0.1:{free_port()}", "--model", "m", "--requests", "1")
    assert code == 1 and "cannot reach" in err and "Traceback" not in err, err


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "0"], "between 1 and"),
    (["--concurrency", "a,b"], "comma-separated"),
    (["--requests", "0"], "--requests must be"),
    (["--duration", "0"], "--duration must be"),
])
def test_bad_arguments_exit_2(capsys, args, message):
    code, _, err = perf(capsys, "--url", "http://127.0.0.1:1", "--model", "m", *args)
    assert code == 2 and message in err, err
