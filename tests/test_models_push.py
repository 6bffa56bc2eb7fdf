"""`platformctl models push` against a real S3 API (moto's server on 127.0.0.1): content-based
sync, config.pbtxt after each model's data, --prune, --dry-run, validation first, clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from platformctl.cli import main
from platformctl.models import push as sync
from platformctl.models.validate import validate_repository

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "models-test"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # each test starts with no digest cache
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"{BUCKET}-{abs(hash(request.node.name)) % 10**8}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    client.endpoint = s3_endpoint
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def repo(tmp_path) -> Path:
    """Two models: the example add_sub (plus a 9 MiB file, uploaded multipart) and a python model."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "models" / "standard" / "add_sub", root / "add_sub")
    (root / "add_sub" / "1" / "weights.bin").write_bytes(bytes(range(256)) * (9 * MiB // 256))
    (root / "postprocess" / "1").mkdir(parents=True)
    (root / "postprocess" / "config.pbtxt").write_text('backend: "python"\nmax_batch_size: 0\n')
    (root / "postprocess" / "1" / "model.py").write_text("# v1\n")
    (root / "postprocess" / "labels.txt").write_text("a\nb\n")
    (root / "add_sub" / ".DS_Store").write_text("not part of the model")
    return root


def keys(client, prefix="") -> dict[str, dict]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=client.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj
    return found


def push(capsys, client, directory: Path, *extra: str, prefix: str = "standard") -> tuple[int, str, str]:
    code = main(["models", "push", str(directory), "--bucket", client.bucket, "--prefix", prefix,
                 "--endpoint-url", client.endpoint, *extra])
    out, err = capsys.readouterr()
    return code, out, err


EXPECTED_KEYS = {
    "standard/add_sub/config.pbtxt", "standard/add_sub/1/model.onnx", "standard/add_sub/1/weights.bin",
    "standard/postprocess/config.pbtxt", "standard/postprocess/1/model.py", "standard/postprocess/labels.txt",
}


def test_first_push_uploads_all_second_nothing_and_a_change_only_that_file(capsys, s3, repo):
    code, out, err = push(capsys, s3, repo)
    assert code == 0, err
    assert set(keys(s3)) == EXPECTED_KEYS  # hidden files stay home
    assert "uploaded 6 " in out and "skipped 0 unchanged" in out
    weights = s3.head_object(Bucket=s3.bucket, Key="standard/add_sub/1/weights.bin")
    assert "-" in weights["ETag"], "9 MiB should have gone up multipart"
    assert weights["Metadata"]["sha256"] == hashlib.sha256((repo / "add_sub/1/weights.bin").read_bytes()).hexdigest()

    before = {k: v["LastModified"] for k, v in keys(s3).items()}
    code, out, _ = push(capsys, s3, repo)
    assert code == 0
    assert "uploaded 0 (0 B), skipped 6 unchanged" in out  # the multipart object too: sha256 is compared, not ETag

    (repo / "postprocess" / "1" / "model.py").write_text("# v2\n")  # same size, new content
    code, out, _ = push(capsys, s3, repo)
    assert code == 0
    assert "uploaded 1 (5 B), skipped 5 unchanged" in out
    body = s3.get_object(Bucket=s3.bucket, Key="standard/postprocess/1/model.py")["Body"].read()
    assert body == b"# v2\n"
    assert keys(s3)["standard/add_sub/1/weights.bin"]["LastModified"] == before["standard/add_sub/1/weights.bin"]


def test_objects_uploaded_by_another_tool_are_compared_by_md5_etag(capsys, s3, repo):
    same = (repo / "postprocess" / "labels.txt").read_bytes()
    s3.put_object(Bucket=s3.bucket, Key="standard/postprocess/labels.txt", Body=same)
    s3.put_object(Bucket=s3.bucket, Key="standard/postprocess/1/model.py", Body=b"# vX\n")  # same size, other bytes
    code, out, _ = push(capsys, s3, repo)
    assert code == 0
    assert "uploaded 5 " in out and "skipped 1 unchanged" in out
    assert s3.get_object(Bucket=s3.bucket, Key="standard/postprocess/1/model.py")["Body"].read() == b"# v1\n"


def test_each_config_is_uploaded_after_all_data_files_of_its_model(s3, repo):
    """A polling Triton must never see a new config.pbtxt before the files it describes."""
    client = sync.make_client(s3.endpoint, concurrency=8)
    log: list[tuple[str, str]] = []  # ("start" | "done", key), in the order S3 calls happened
    lock = threading.Lock()

    def before(params, context, model, **_):
        if model.name in ("PutObject", "CreateMultipartUpload", "CompleteMultipartUpload"):
            context["key"] = params["Key"]
        if model.name in ("PutObject", "CreateMultipartUpload"):
            with lock:
                log.append(("start", params["Key"]))

    def after(context, model, **_):
        if model.name in ("PutObject", "CompleteMultipartUpload"):
            with lock:
                log.append(("done", context["key"]))

    client.meta.events.register("before-parameter-build.s3.*", before)
    client.meta.events.register("after-call.s3.*", after)

    models, problems = validate_repository(repo)
    assert not problems
    plan = sync.plan_sync(client, repo, models, s3.bucket, "standard", prune=False)
    result = sync.execute(client, plan, concurrency=8)
    assert not result.failed and len(result.uploaded) == 6
    for model in ("add_sub", "postprocess"):
        config_start = log.index(("start", f"standard/{model}/config.pbtxt"))
        data = [k for k in EXPECTED_KEYS if k.startswith(f"standard/{model}/") and not k.endswith("config.pbtxt")]
        for key in data:
            assert log.index(("done", key)) < config_start, (key, log)


def test_a_model_whose_data_fails_keeps_its_old_config(capsys, s3, repo):
    code, _, _ = push(capsys, s3, repo)
    assert code == 0
    old_config = s3.get_object(Bucket=s3.bucket, Key="standard/postprocess/config.pbtxt")["Body"].read()
    (repo / "postprocess" / "config.pbtxt").write_text('backend: "python"\nmax_batch_size: 0\n# v2\n')
    (repo / "postprocess" / "1" / "model.py").write_text("# v2, longer\n")

    client = sync.make_client(s3.endpoint, concurrency=4)

    def deny(params, model, **_):
        if model.name == "PutObject" and params["Key"].endswith("postprocess/1/model.py"):
            raise PermissionError("simulated: upload refused")

    client.meta.events.register("before-parameter-build.s3.PutObject", deny)
    models, _ = validate_repository(repo)
    plan = sync.plan_sync(client, repo, models, s3.bucket, "standard", prune=False)
    result = sync.execute(client, plan, concurrency=4)
    assert [k for k, _ in result.failed] == ["standard/postprocess/1/model.py"]
    assert result.held_back == ["standard/postprocess/config.pbtxt"]
    assert s3.get_object(Bucket=s3.bucket, Key="standard/postprocess/config.pbtxt")["Body"].read() == old_config


def test_nothing_is_deleted_without_prune_and_prune_deletes_configs_first(capsys, s3, repo):
    assert push(capsys, s3, repo)[0] == 0
    shutil.rmtree(repo / "postprocess")
    (repo / "add_sub" / "1" / "weights.bin").unlink()

    code, out, _ = push(capsys, s3, repo)
    assert code == 0
    assert set(keys(s3)) == EXPECTED_KEYS
    assert "note: 4 remote object(s) under the prefix are not in" in out

    deletes: list[list[str]] = []
    real_delete = sync._delete

    def spy(client, bucket, batch, result):
        deletes.append(list(batch))
        real_delete(client, bucket, batch, result)

    sync._delete = spy
    try:
        code, out, _ = push(capsys, s3, repo, "--prune")
    finally:
        sync._delete = real_delete
    assert code == 0
    assert "deleted 4" in out
    assert set(keys(s3)) == {"standard/add_sub/config.pbtxt", "standard/add_sub/1/model.onnx"}
    # The removed model's config goes first, alone, so a polling Triton unloads it before its files vanish.
    assert deletes[0] == ["standard/postprocess/config.pbtxt"]


def test_prune_stays_inside_the_prefix(capsys, s3, repo):
    s3.put_object(Bucket=s3.bucket, Key="llm/qwen/config.pbtxt", Body=b"other deployment")
    s3.put_object(Bucket=s3.bucket, Key="standard-old/x", Body=b"prefix lookalike")
    code, _, _ = push(capsys, s3, repo, "--prune")
    assert code == 0
    assert {"llm/qwen/config.pbtxt", "standard-old/x"} <= set(keys(s3))


def test_hidden_remote_keys_are_neither_pruned_nor_reported(capsys, s3, repo):
    """The stack keeps a hidden marker under each prefix so Triton starts on an empty one;
    hidden files are never pushed, so they are never pruned either."""
    from components.model_repository import PREFIX_MARKER

    s3.put_object(Bucket=s3.bucket, Key=f"standard/{PREFIX_MARKER}", Body=b"marker")
    s3.put_object(Bucket=s3.bucket, Key="standard/gone/config.pbtxt", Body=b"stale")
    code, out, _ = push(capsys, s3, repo)
    assert code == 0 and "note: 1 remote object(s)" in out
    code, out, _ = push(capsys, s3, repo, "--prune")
    assert code == 0 and "deleted 1" in out
    assert set(keys(s3)) == EXPECTED_KEYS | {f"standard/{PREFIX_MARKER}"}


def test_dry_run_changes_nothing(capsys, s3, repo):
    code, out, _ = push(capsys, s3, repo, "--dry-run")
    assert code == 0
    assert keys(s3) == {}
    assert "would upload 6" in out and "nothing changed (dry run)" in out


def test_invalid_repository_uploads_nothing(capsys, s3, repo):
    (repo / "add_sub" / "config.pbtxt").write_text('name: "add_sub"\nbackend: "onnxruntime"\nmax_batch_size: -\n')
    code, out, err = push(capsys, s3, repo)
    assert code == 1
    assert keys(s3) == {}
    assert f"{repo / 'add_sub' / 'config.pbtxt'}:3:" in err
    assert "nothing uploaded" in err


def test_endpoint_from_environment_and_target_from_stack_outputs(capsys, s3, repo, tmp_path, monkeypatch):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"modelBucket": s3.bucket, "tritonDeployments": {
        "standard": {"modelPrefix": "triton/standard"}, "llm": {"modelPrefix": "triton/llm"}}}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    code = main(["models", "push", str(repo), "--outputs", str(outputs), "--deployment", "standard"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(keys(s3, "triton/standard/")) == 6 and not keys(s3, "triton/llm/")

    code = main(["models", "push", str(repo), "--outputs", str(outputs)])
    assert code == 2
    assert "several Triton deployments (llm, standard); choose one with --deployment" in capsys.readouterr().err


def test_missing_bucket_is_a_clear_error(capsys, s3, repo):
    code = main(["models", "push", str(repo), "--bucket", "no-such-bucket", "--prefix", "p", "--endpoint-url", s3.endpoint])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: S3 refused ListObjectsV2 on s3://no-such-bucket/p/: NoSuchBucket")
    assert "Traceback" not in err


def test_unreachable_endpoint_and_missing_credentials_are_clear_errors(capsys, s3, repo, monkeypatch):
    code = main(["models", "push", str(repo), "--bucket", "b", "--prefix", "p", "--endpoint-url", "http://127.0.0.1:9"])
    _, err = capsys.readouterr()
    assert code == 1 and "cannot reach S3 at http://127.0.0.1:9" in err

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code = main(["models", "push", str(repo), "--bucket", s3.bucket, "--prefix", "p", "--endpoint-url", s3.endpoint])
    _, err = capsys.readouterr()
    assert code == 1 and "no AWS credentials found" in err


def test_malformed_endpoint_is_a_clear_error(capsys, repo):
    assert main(["models", "push", str(repo), "--bucket", "b", "--prefix", "p", "--endpoint-url", "localhost:9000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid endpoint: localhost:9000 (expected e.g. http://") and "Traceback" not in err


def test_bucket_needs_prefix(capsys, repo):
    assert main(["models", "push", str(repo), "--bucket", "b"]) == 2
    assert "--bucket needs --prefix" in capsys.readouterr().err


def test_no_op_repush_uses_the_digest_cache_and_still_sees_foreign_changes(capsys, s3, repo):
    assert push(capsys, s3, repo)[0] == 0
    cache_file = sync.DigestCache.default_path()
    assert cache_file.exists()

    client = sync.make_client(s3.endpoint, concurrency=4)
    calls: list[str] = []
    client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    models, _ = validate_repository(repo)
    plan = sync.plan_sync(client, repo, models, s3.bucket, "standard", prune=False, cache=sync.DigestCache(cache_file))
    assert plan.uploads == [] and len(plan.skipped) == 6
    assert calls == ["ListObjectsV2"]  # no HEAD per object

    # Someone else rewrites an object with other bytes of the same size: its ETag changes, so the
    # cached digest no longer vouches for it and the push restores our file.
    s3.put_object(Bucket=s3.bucket, Key="standard/postprocess/1/model.py", Body=b"# vX\n")
    code, out, _ = push(capsys, s3, repo)
    assert code == 0 and "uploaded 1 (5 B)" in out
    assert s3.get_object(Bucket=s3.bucket, Key="standard/postprocess/1/model.py")["Body"].read() == b"# v1\n"


def test_a_corrupt_digest_cache_is_ignored(capsys, s3, repo):
    cache_file = sync.DigestCache.default_path()
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("{not json")
    code, out, _ = push(capsys, s3, repo)
    assert code == 0 and "uploaded 6 " in out


def test_a_plan_json_serves_as_the_outputs_file(tmp_path):
    """`platformctl plan` already knows the bucket and prefixes: its plan.json can stand in for
    `pulumi stack output --json` before the first deploy."""
    from platformctl.models.outputs import load_outputs, model_location
    from platformctl.mockrun import run_stack

    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(run_stack("dev").to_json()))
    outputs = load_outputs(None, plan_file)
    assert model_location(outputs, "standard") == ("ai-platform-dev-models-us-west-2", "triton/standard")


# --- after the push: deployments that read their models only at start ------------------------------

class KubeStub:
    """A Kubernetes API server on 127.0.0.1 holding one Deployment, rolling it out one step per GET
    after a restart, and the OpenAI frontend's /v1/models of its pods (listing what the repository
    held when they started)."""

    def __init__(self, namespace="llm", name="llm", strategy="RollingUpdate", fail=False):
        import http.server

        self.namespace, self.name, self.fail = namespace, name, fail
        self.requests: list[tuple[str, str, dict, dict | None]] = []
        self.listed = ["old-model"]
        self.serving_after_restart: list[str] = []
        self.steps = []
        self.deployment = {
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 2700, "strategy": {"type": strategy},
                     "template": {"metadata": {"annotations": {}}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
        }
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                stub.requests.append(("GET", self.path, dict(self.headers), None))
                if self.path == "/v1/models":
                    return self.reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in stub.listed]})
                if self.path != f"/apis/apps/v1/namespaces/{stub.namespace}/deployments/{stub.name}":
                    return self.reply(404, {"kind": "Status", "message": f'deployments.apps "{self.path}" not found'})
                if stub.steps:
                    stub.deployment["status"] = stub.steps.pop(0)
                    if not stub.steps and not stub.fail:
                        stub.listed = stub.serving_after_restart
                self.reply(200, stub.deployment)

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(("PATCH", self.path, dict(self.headers), body))
                meta = stub.deployment["metadata"]
                meta["generation"] += 1
                stub.deployment["spec"]["template"]["metadata"]["annotations"].update(
                    body["spec"]["template"]["metadata"]["annotations"])
                g = meta["generation"]
                stub.steps = [
                    {"observedGeneration": g, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1},
                    {"observedGeneration": g, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1},
                    {"observedGeneration": g, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
                ]
                if stub.fail:
                    stub.steps = [{"observedGeneration": g, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                                   "conditions": [{"type": "Progressing", "status": "False",
                                                   "reason": "ProgressDeadlineExceeded"}]}]
                self.reply(200, stub.deployment)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def patches(self):
        return [r for r in self.requests if r[0] == "PATCH"]

    def kubeconfig(self, directory: Path) -> Path:
        """A kubeconfig whose user authenticates like the stack's (`aws eks get-token`): an exec
        credential plugin printing an ExecCredential, here a Python one-liner."""
        import sys

        credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                                 "status": {"token": "token-from-plugin"}})
        path = directory / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stack",
            "clusters": [{"name": "c", "cluster": {"server": self.url}}],
            "contexts": [{"name": "stack", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                      "command": sys.executable, "args": ["-c", f"print({credential!r})"]}}}],
        }))
        return path

    def close(self):
        self.server.shutdown()


@pytest.fixture
def kube(monkeypatch):
    from platformctl.models import rollout

    monkeypatch.setattr(rollout, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(rollout, "LIST_TIMEOUT_SECONDS", 0.5)
    stubs = []

    def make(**kwargs) -> KubeStub:
        stubs.append(KubeStub(**kwargs))
        return stubs[-1]
    yield make
    for stub in stubs:
        stub.close()


@pytest.fixture
def llm_repo(tmp_path) -> Path:
    root = tmp_path / "llm-repo"
    shutil.copytree(ROOT / "models" / "llm", root)
    return root


def llm_outputs(tmp_path: Path, s3, stub: KubeStub, **changes) -> Path:
    """Outputs as the stack exports them for an `llm` deployment (components/triton.py)."""
    values = {"mode": "llm", "modelControl": "none", "namespace": stub.namespace, "service": stub.name,
              "deployment": stub.name, "modelPrefix": "triton/llm", "gpusPerReplica": 1,
              "openaiUrl": f"{stub.url}/v1", **changes}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"modelBucket": s3.bucket, "tritonDeployments": {stub.name: values}}))
    return path


def push_llm(capsys, s3, repo: Path, outputs: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["models", "push", str(repo), "--outputs", str(outputs), "--endpoint-url", s3.endpoint, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_pushing_an_llm_model_restarts_the_deployment_and_waits_until_v1_models_lists_it(capsys, s3, kube, llm_repo, tmp_path):
    """Triton's OpenAI frontend reads its model list once, at start
    (triton-inference-server/server r25.06 python/openai/openai_frontend/engine/triton_engine.py:
    "model metadata will be static at startup", `self.model_metadata = self._get_model_metadata()`
    in __init__; main.py starts tritonserver with the default model control mode, none). So a push
    alone changed nothing OpenWebUI could see (issue 12, #6). Push now ends like `kubectl rollout
    restart` (pod-template annotation kubectl.kubernetes.io/restartedAt, a strategic merge patch:
    kubectl pkg/polymorphichelpers/objectrestarter.go), waits like `kubectl rollout status`
    (rollout_status.go) and checks /v1/models; the API is reached with the token of the kubeconfig's
    exec credential plugin, as with the stack's `aws eks get-token` kubeconfig."""
    stub = kube()
    stub.serving_after_restart = ["old-model", "qwen2.5-0.5b-instruct"]
    code, out, err = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub),
                              "--kubeconfig", str(stub.kubeconfig(tmp_path)))
    assert code == 0, out + err
    [(_, path, headers, body)] = stub.patches()
    assert path == "/apis/apps/v1/namespaces/llm/deployments/llm"
    assert headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert headers["Authorization"] == "Bearer token-from-plugin"
    [stamp] = body["spec"]["template"]["metadata"]["annotations"].values()
    assert list(body["spec"]["template"]["metadata"]["annotations"]) == ["kubectl.kubernetes.io/restartedAt"]
    assert stamp.endswith("Z") and "T" in stamp
    assert "uploaded 2" in out and "restarting deployment llm/llm" in out
    assert "1 old replicas are pending termination" in out
    assert "deployment 'llm' successfully rolled out" in out
    assert f"{stub.url}/v1/models lists qwen2.5-0.5b-instruct" in out
    # The objects were in S3 before the restart, so the new pods loaded them.
    assert "triton/llm/qwen2.5-0.5b-instruct/1/model.json" in keys(s3, "triton/llm/")


def test_a_rollout_that_stalls_fails_the_push_and_says_the_old_pods_still_serve(capsys, s3, kube, llm_repo, tmp_path):
    stub = kube(fail=True)
    code, out, err = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub),
                              "--kubeconfig", str(stub.kubeconfig(tmp_path)))
    assert code == 1
    assert "deployment 'llm' exceeded its progress deadline" in err
    assert "the old ones keep serving" in err and "kubectl -n llm describe deployment/llm" in err


def test_a_listing_without_the_model_fails_and_an_unreachable_frontend_is_a_note(capsys, s3, kube, llm_repo, tmp_path):
    stub = kube()
    stub.serving_after_restart = ["old-model"]
    code, _, err = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub),
                            "--kubeconfig", str(stub.kubeconfig(tmp_path)))
    assert code == 1 and "/v1/models does not list qwen2.5-0.5b-instruct (lists: old-model)" in err

    (llm_repo / "qwen2.5-0.5b-instruct" / "1" / "model.json").write_text(
        (llm_repo / "qwen2.5-0.5b-instruct" / "1" / "model.json").read_text().replace("4096", "2048"))
    outputs = llm_outputs(tmp_path, s3, stub, openaiUrl="http://llm.llm.svc.cluster.local:9000/v1")
    code, out, err = push_llm(capsys, s3, llm_repo, outputs, "--kubeconfig", str(stub.kubeconfig(tmp_path)),
                              "--openai-url", "http://127.0.0.1:9/v1")
    assert code == 0, out + err
    assert "not reachable from here" in out and "kubectl -n llm port-forward svc/llm 9000:9000" in out


def test_no_restart_no_change_and_polling_deployments_leave_the_cluster_alone(capsys, s3, kube, llm_repo, tmp_path):
    stub = kube()
    kubeconfig = str(stub.kubeconfig(tmp_path))
    code, out, _ = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub), "--kubeconfig", kubeconfig, "--no-restart")
    assert code == 0
    assert ("not restarted (--no-restart): deployment llm reads its models only at start and serves the old set "
            "until `kubectl -n llm rollout restart deployment/llm`") in out
    code, out, _ = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub), "--kubeconfig", kubeconfig)
    assert code == 0 and "nothing changed: deployment llm keeps serving what it has" in out

    (llm_repo / "qwen2.5-0.5b-instruct" / "config.pbtxt").write_text(
        (llm_repo / "qwen2.5-0.5b-instruct" / "config.pbtxt").read_text() + "\n# changed\n")
    code, out, _ = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub, mode="standard", modelControl="poll"),
                            "--kubeconfig", kubeconfig, "--dry-run")
    assert code == 0 and "would then restart" not in out
    code, out, _ = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub, mode="standard", modelControl="poll"),
                            "--kubeconfig", kubeconfig)
    assert code == 0 and "polls its repository: it picks the changes up within its poll interval" in out
    assert stub.patches() == []


def test_dry_run_says_it_would_restart_and_an_unreachable_cluster_says_what_to_run(capsys, s3, kube, llm_repo, tmp_path):
    stub = kube()
    outputs = llm_outputs(tmp_path, s3, stub, modelControl="explicit", mode="standard")
    code, out, _ = push_llm(capsys, s3, llm_repo, outputs, "--dry-run", "--kubeconfig", str(stub.kubeconfig(tmp_path)))
    assert code == 0 and "would then restart deployment llm/llm (it reads its models only at start)" in out
    kubeconfig = tmp_path / "elsewhere"
    kubeconfig.write_text(stub.kubeconfig(tmp_path).read_text().replace(stub.url, "http://127.0.0.1:9"))
    code, out, err = push_llm(capsys, s3, llm_repo, outputs, "--kubeconfig", str(kubeconfig))
    assert code == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9 (context stack)" in err
    assert "the models are uploaded, but deployment llm still serves its old set: run `kubectl -n llm rollout restart deployment/llm`" in err


def test_push_refuses_a_vllm_model_that_leaves_gpus_idle(capsys, s3, kube, llm_repo, tmp_path):
    """prod's llm replica holds 4 GPUs; the 1-GPU example would leave three idle (issue 12, #12)."""
    stub = kube()
    code, _, err = push_llm(capsys, s3, llm_repo, llm_outputs(tmp_path, s3, stub, gpusPerReplica=4))
    assert code == 1
    assert "but each replica of deployment llm holds 4: 3 would sit idle" in err
    assert "is not a valid model repository for deployment llm" in err and "nothing uploaded" in err
    assert not keys(s3, "triton/llm/") and stub.requests == []


@pytest.mark.parametrize("status, expected", [
    ({"observedGeneration": 1}, "spec update to be observed"),
    ({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 0, "availableReplicas": 1}, "0 out of 1 new replicas have been updated"),
    ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2}, "1 old replicas are pending termination"),
    ({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}, "0 of 1 updated replicas are available"),
    ({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}, "successfully rolled out"),
])
def test_rollout_state_follows_kubectl_rollout_status(status, expected):
    """kubectl pkg/polymorphichelpers/rollout_status.go deploymentRolloutStatus, case by case."""
    from platformctl.models.rollout import rollout_state

    state = rollout_state({"metadata": {"name": "llm", "generation": 2}, "spec": {"replicas": 1}, "status": status})
    assert expected in state.message and state.done == (expected == "successfully rolled out") and not state.failed
