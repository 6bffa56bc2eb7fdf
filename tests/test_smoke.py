"""`platformctl smoke` and `models load|unload` against real KServe-v2 servers: MLServer, from
PyPI, in its own venv (build/venvs/mlserver, from tests/servers/requirements-mlserver.txt),
started on 127.0.0.1 serving two tiny models (tests/servers/mlserver); and KServe's own
ModelServer (build/venvs/kserve, tests/servers/requirements-kserve.txt, tests/servers/kserve),
which has no repository index. MLServer has no OpenAI API, so the `/v1/models` check runs against
a minimal stand-in served by this test."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from platformctl.cli import main
from tests import venvs

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "servers"
REQUIREMENTS = SERVERS / "requirements-mlserver.txt"
SERVER_FILES = SERVERS / "mlserver"
VENVS = ROOT / "build" / "venvs"
VENV = VENVS / "mlserver"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(message: str):
    # In CI a missing server is an error, so the suite never silently skips what it checks.
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def server_venv(name: str, binary: str) -> Path:
    """Create (once per requirements version) build/venvs/<name> from
    tests/servers/requirements-<name>.txt; the path of its bin/<binary>."""
    with venvs.lock():
        return _server_venv(name, binary)


def _server_venv(name: str, binary: str) -> Path:
    requirements = SERVERS / f"requirements-{name}.txt"
    venv = VENVS / name
    stamp = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker = venv / ".requirements-sha256"
    if (venv / "bin" / binary).exists() and marker.exists() and marker.read_text() == stamp:
        return venv / "bin" / binary
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True, capture_output=True, text=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"cannot install {name} into {venv}: {getattr(exc, 'stderr', '') or exc}"[-2000:])
    marker.write_text(stamp)
    return venv / "bin" / binary


def mlserver_venv() -> Path:
    """The mlserver binary of build/venvs/mlserver."""
    return server_venv("mlserver", "mlserver")


def answers_200(proc: subprocess.Popen, url: str, seconds: float) -> bool:
    """Poll `url` until it answers 200 (True), the process exits or time runs out (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def wait_ready(proc: subprocess.Popen, url: str, log: Path, what: str, seconds: float = 90) -> None:
    if answers_200(proc, f"{url}/v2/health/ready", seconds):
        return
    stop(proc)
    pytest.fail(f"{what} did not become ready:\n" + log.read_text()[-3000:])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory):
    binary = mlserver_venv()
    workdir = tmp_path_factory.mktemp("mlserver")
    shutil.copytree(SERVER_FILES, workdir, dirs_exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLSERVER_HOST": "127.0.0.1", "MLSERVER_HTTP_PORT": str(port),
           "MLSERVER_GRPC_PORT": str(free_port()), "MLSERVER_METRICS_PORT": str(free_port()),
           "PYTHONPATH": str(workdir)}
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen([str(binary), "start", str(workdir)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, workdir / "server.log", "MLServer")
    yield url
    stop(proc)
    log.close()


@pytest.fixture(scope="module")
def kserve(tmp_path_factory):
    """KServe's ModelServer serving add_sub (tests/servers/kserve/server.py) on 127.0.0.1."""
    python = server_venv("kserve", "python")
    workdir = tmp_path_factory.mktemp("kserve")
    port = free_port()
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen([str(python), str(SERVERS / "kserve" / "server.py"), "--http_port", str(port)],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, workdir / "server.log", "KServe ModelServer")
    yield url
    stop(proc)
    log.close()


@pytest.fixture
def openai_stub():
    """Minimal OpenAI `/v1/models` (MLServer does not implement the OpenAI API)."""
    models = {"data": [{"id": "qwen2.5-0.5b-instruct", "object": "model", "owned_by": "triton"}], "object": "list"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(models if self.path == "/v1/models" else {"error": "not found"}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", models
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def wide_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")  # rich wraps cells at 80 columns when not on a terminal


def smoke(capsys, *args: str) -> tuple[int, str]:
    code = main(["smoke", "--timeout", "10", *args])
    out, err = capsys.readouterr()
    return code, out + err


def rows(output: str) -> dict[tuple[str, str], str]:
    """(check, target) -> result, from the table (the result column is ok / FAIL / skip)."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 4 and cells[2] in ("ok", "FAIL", "skip"):
            found[(cells[0], cells[1])] = cells[2]
    return found


def test_smoke_passes_on_a_serving_server(capsys, mlserver):
    code, out = smoke(capsys, "--url", mlserver)
    table = rows(out)
    assert code == 0, out
    for check in ("model ready", "metadata", "infer"):
        assert table[(check, "add_sub")] == "ok" and table[(check, "greeter")] == "ok", out
    assert table[("server live", mlserver)] == "ok"
    # Inputs came from metadata: -1 became 1, so FP32[-1, 4] produced [1, 4] outputs.
    assert "OUTPUT0[1, 4], OUTPUT1[1, 4]" in out


def test_unloaded_model_fails_smoke_until_loaded_again(capsys, mlserver):
    assert main(["models", "unload", "add_sub", "--url", mlserver]) == 0
    assert "add_sub: unloaded" in capsys.readouterr().out
    try:
        code, out = smoke(capsys, "--url", mlserver)
        assert code == 1, out
        table = rows(out)
        assert table[("model ready", "add_sub")] == "FAIL"
        assert ("infer", "add_sub") not in table  # no inference on a model that is not ready
        assert table[("infer", "greeter")] == "ok"
        assert "1 of " in out and "check(s) failed" in out

        # Restricting the check to the models that matter makes it pass.
        code, out = smoke(capsys, "--url", mlserver, "--model", "greeter")
        assert code == 0, out
    finally:
        assert main(["models", "load", "add_sub", "--url", mlserver]) == 0
    assert "add_sub: loaded and ready" in capsys.readouterr().out
    code, out = smoke(capsys, "--url", mlserver)
    assert code == 0, out


def test_unknown_model_is_a_failure(capsys, mlserver):
    code, out = smoke(capsys, "--url", mlserver, "--model", "nope")
    assert code == 1
    assert rows(out)[("model ready", "nope")] == "FAIL" and "not in the repository index" in out
    assert main(["models", "load", "nope", "--url", mlserver]) == 1
    assert "Model nope not found" in capsys.readouterr().err


def test_server_down_fails_clearly(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, out = smoke(capsys, "--url", url)
    assert code == 1
    assert rows(out) == {("server live", url): "FAIL"}
    assert "connection refused" in out and "Traceback" not in out
    assert main(["models", "unload", "x", "--url", url]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_openai_models_listed_and_urls_from_stack_outputs(capsys, mlserver, openai_stub, tmp_path):
    openai_url, models = openai_stub
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"modelBucket": "b", "tritonDeployments": {
        "standard": {"modelPrefix": "standard", "httpUrl": "http://triton.standard.svc.cluster.local:8000"},
        "llm": {"modelPrefix": "llm", "httpUrl": "http://unused:8000", "externalHttpUrl": mlserver, "openaiUrl": openai_url}}}))
    code, out = smoke(capsys, "--outputs", str(outputs), "--deployment", "llm")
    assert code == 0, out
    assert rows(out)[("openai /v1/models", f"{openai_url}/models")] == "ok"
    assert "qwen2.5-0.5b-instruct" in out

    models["data"] = []  # an OpenAI endpoint that serves nothing fails the smoke test
    code, out = smoke(capsys, "--url", mlserver, "--openai-url", openai_url)
    assert code == 1 and "lists no models" in out


def test_outputs_without_the_deployment_is_a_clear_error(capsys, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"tritonDeployments": {"standard": {"httpUrl": "http://x:8000"}}}))
    code, out = smoke(capsys, "--outputs", str(outputs), "--deployment", "llm")
    assert code == 2
    assert "no Triton deployment 'llm' (there are: standard)" in out


def test_outputs_without_deployment_check_every_deployment(capsys, mlserver, openai_stub, tmp_path):
    openai_url, _ = openai_stub
    dead = f"http://127.0.0.1:{free_port()}"
    outputs = tmp_path / "outputs.json"
    deployments = {"standard": {"httpUrl": mlserver},
                   "llm": {"httpUrl": "http://unused:8000", "externalHttpUrl": mlserver, "openaiUrl": openai_url}}
    outputs.write_text(json.dumps({"tritonDeployments": deployments}))

    code, out = smoke(capsys, "--outputs", str(outputs))
    assert code == 0, out
    assert f"smoke: {mlserver} (deployment llm)" in out and f"smoke: {mlserver} (deployment standard)" in out
    # each deployment gets its own OpenAI endpoint: only llm has one
    assert out.count("openai /v1/models") == 1 and "all 2 deployments passed" in out

    # A deployment that fails does not stop the ones after it, and fails the run.
    deployments["llm"]["externalHttpUrl"] = dead
    outputs.write_text(json.dumps({"tritonDeployments": deployments}))
    code, out = smoke(capsys, "--outputs", str(outputs))
    assert code == 1, out
    assert out.index(f"smoke: {dead} (deployment llm)") < out.index(f"smoke: {mlserver} (deployment standard)")
    assert "1 of 2 deployment(s) failed: llm" in out and "Traceback" not in out


def test_every_deployment_is_resolved_before_any_is_checked(capsys, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"tritonDeployments": {
        "a": {"httpUrl": f"http://127.0.0.1:{free_port()}"}, "b": {"modelPrefix": "b"}}}))
    code, out = smoke(capsys, "--outputs", str(outputs))
    assert code == 2 and "tritonDeployments.b has no httpUrl output" in out
    assert "smoke:" not in out  # nothing was checked: a usage error, not a half-run


@pytest.mark.parametrize("flag", [["--model", "add_sub"], ["--openai-url", "http://127.0.0.1:9/v1"]], ids=["model", "openai-url"])
def test_per_deployment_flags_need_one_deployment(capsys, tmp_path, flag):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"tritonDeployments": {"llm": {"httpUrl": "http://x:8000"}, "standard": {"httpUrl": "http://y:8000"}}}))
    code, out = smoke(capsys, "--outputs", str(outputs), *flag)
    assert code == 2
    assert f"{flag[0]} applies to one deployment; add --deployment (this stack has llm, standard)" in out


def test_outputs_without_any_deployment_is_a_clear_error(capsys, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"tritonDeployments": {}}))
    code, out = smoke(capsys, "--outputs", str(outputs))
    assert code == 2 and f"{outputs}: no tritonDeployments output" in out


# --- a KServe-v2 server without Triton's repository extension --------------------------------------
# The KServe v2 protocol (kserve/kserve docs/predict-api/v2/required_api.md) requires health, server
# metadata (`GET v2`), model metadata, model ready and infer; `POST v2/repository/index` is Triton's
# model repository extension (triton-inference-server/server docs/protocol/extension_model_repository.md).
# KServe's ModelServer (kserve 0.21.0) answers it with 404, though it lists "model_repository_extension"
# among its server metadata extensions (it has load/unload only).

def test_kserve_server_has_no_repository_index(kserve):
    request = urllib.request.Request(f"{kserve}/v2/repository/index", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 404


def test_smoke_checks_named_models_through_the_core_protocol(capsys, kserve):
    code, out = smoke(capsys, "--url", kserve, "--model", "add_sub")
    table = rows(out)
    assert code == 0, out
    assert table[("repository index", kserve)] == "skip" and "kserve 0.21.0 has no repository index" in out
    for check in ("model ready", "metadata", "infer"):
        assert table[(check, "add_sub")] == "ok", out
    assert "OUTPUT0[1, 4], OUTPUT1[1, 4]" in out  # a real inference, inputs from the metadata


def test_smoke_without_model_on_a_server_without_index_says_to_pass_model(capsys, kserve):
    code, out = smoke(capsys, "--url", kserve)
    assert code == 1, out
    assert rows(out) == {("server live", kserve): "ok", ("server ready", kserve): "ok", ("repository index", kserve): "FAIL"}
    assert "--model NAME" in " ".join(out.split()) and "Traceback" not in out


def test_unknown_model_on_a_server_without_index_fails_with_the_servers_reason(capsys, kserve):
    code, out = smoke(capsys, "--url", kserve, "--model", "add_sub", "--model", "nope")
    table = rows(out)
    assert code == 1, out
    assert table[("infer", "add_sub")] == "ok" and table[("model ready", "nope")] == "FAIL"
    assert ("metadata", "nope") not in table
    assert "Model with name nope does not exist" in " ".join(out.split())
