"""`platformctl models optimize` on tiny ONNX models it has never seen (built here with onnx.helper):
the model work runs for real in build/venvs/optimize (ONNX Runtime 1.32 on the CPU).

Upstream facts these tests hold:
- ONNX Runtime docs, docs/performance/model-optimizations/graph-optimizations.md (microsoft/onnxruntime
  gh-pages): basic optimisations "run before graph partitioning and thus apply to all the execution
  providers"; extended ones only to nodes of the CPU/CUDA/ROCm EPs; layout ones to CPU only. So the
  offline level is ORT_ENABLE_BASIC.
- triton-inference-server/onnxruntime_backend, README.md and src/onnxruntime.cc at r25.06:
  `optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" parameters
  {...} } ] } }` with precision_mode FP32|FP16|INT8 (anything else: "unsupported precision mode"),
  max_workspace_size_bytes, trt_engine_cache_enable, trt_engine_cache_path; or name "cuda" with
  optional parameters. The README snippet's braces do not balance (`value: "1073741824" }}` closes
  the list early), so the config is built as a message, not copied text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format

from platformctl.cli import main
from platformctl.models import optvenv, tritonconfig
from platformctl.models.validate import mc, validate_repository
from tests import venvs
from tests.optimize_models import convnet, image_batches, mlp


@pytest.fixture(scope="module")
def optimize_venv():
    try:
        with venvs.lock():  # not created twice at once by parallel workers
            return optvenv.ensure("optimize")
    except optvenv.VenvError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {"mlp": mlp(root / "mlp.onnx"), "convnet": convnet(root / "convnet.onnx"),
            "calibration": image_batches(root / "calibration", 8), "eval": image_batches(root / "eval", 4, seed=9)}


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def optimize(capsys, *args) -> tuple[int, str, str]:
    code = main(["models", "optimize", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_transformer_like_model_gets_dynamic_int8_smaller_and_valid(capsys, optimize_venv, sources, tmp_path):
    repo = tmp_path / "repo"
    code, out, err = optimize(capsys, sources["mlp"], "--name", "embedder", "--out", repo, "--json", "--iterations", "5")
    assert code == 0, err
    result = json.loads(out)
    written = repo / "embedder" / "1" / "model.onnx"
    assert result["written"] == [str(written), str(repo / "embedder" / "config.pbtxt")]
    assert result["quantization"] == "dynamic" and "MatMul" in result["decision"]
    # The weights became INT8 (MatMulInteger after DynamicQuantizeLinear) and the file shrank.
    ops = {n.op_type for n in onnx.load(str(written)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops, ops
    assert written.stat().st_size < 0.5 * sources["mlp"].stat().st_size
    assert result["optimized"]["size"] == written.stat().st_size
    accuracy = result["accuracy"]
    assert accuracy["metric"] == "cosine" and accuracy["passed"] and accuracy["value"] > 0.99
    assert accuracy["source"].startswith("generated from the input spec")
    for side in ("original", "optimized"):
        for key in ("b1", "bn"):
            assert result[side][key]["p50_ms"] > 0 and result[side][key]["p95_ms"] >= result[side][key]["p50_ms"]
        assert result[side]["bn"]["batch"] == 8
    models, problems = validate_repository(repo)
    assert not problems and [m.name for m in models] == ["embedder"]
    config = models[0].config
    assert config.backend == "onnxruntime" and config.max_batch_size == 8 and config.HasField("dynamic_batching")
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [("x", mc.TYPE_FP32, [64])]
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not config.HasField("optimization")


def test_conv_classifier_gets_static_qdq_and_a_tensorrt_block(capsys, optimize_venv, sources, tmp_path):
    repo = tmp_path / "repo"
    code, out, err = optimize(capsys, sources["convnet"], "--name", "cls", "--out", repo, "--calibration", sources["calibration"],
                              "--eval", sources["eval"], "--gpu-accelerator", "tensorrt", "--iterations", "5")
    assert code == 0, err
    for label in ("size", "latency p50 @1", "latency p95 @8", "throughput @8", "top-1 agreement", "static INT8, Q/DQ"):
        assert label in out, out
    assert f"evaluation: {sources['eval']}" in out
    model = onnx.load(str(repo / "cls" / "1" / "model.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "Conv" in ops
    # TensorRT's explicit INT8 wants symmetric activations: zero points 0, signed (biases are INT32).
    zero_points = [i for i in model.graph.initializer if i.name.endswith("_zero_point") and i.data_type != onnx.TensorProto.INT32]
    assert zero_points and all(z.data_type == onnx.TensorProto.INT8 for z in zero_points)
    assert all(not any(onnx.numpy_helper.to_array(z).ravel()) for z in zero_points)
    models, problems = validate_repository(repo)
    assert not problems, problems
    accelerators = models[0].config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]
    assert dict(accelerators[0].parameters) == {"precision_mode": "INT8", "max_workspace_size_bytes": str(1 << 30),
                                                "trt_engine_cache_enable": "1", "trt_engine_cache_path": "/tmp/triton-trt-cache/cls"}


def test_source_that_is_not_a_model_exits_2_and_writes_nothing(capsys, tmp_path, sources):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    repo = tmp_path / "repo"
    for src, extra, expected in (
        (text, [], "not an ONNX model"),
        (tmp_path / "missing.onnx", [], "does not exist"),
        (sources["convnet"], [], "needs --calibration"),  # Conv-heavy: static INT8 needs calibration data
        (sources["mlp"], ["--precision", "int4"], "invalid choice"),
        (sources["mlp"], ["--eval", tmp_path], "holds no .npz or .npy"),
    ):
        try:
            code, out, err = optimize(capsys, src, "--name", "m", "--out", repo, *extra)
        except SystemExit as exc:  # argparse's own usage errors
            code, err = exc.code, capsys.readouterr().err
        assert code == 2, (src, err)
        assert expected in err and "Traceback" not in err, err
        assert not repo.exists()


def test_failed_accuracy_gate_exits_1_and_writes_nothing(capsys, optimize_venv, sources, tmp_path):
    repo = tmp_path / "repo"
    code, out, err = optimize(capsys, sources["mlp"], "--name", "m", "--out", repo, "--max-accuracy-drop", "0",
                              "--iterations", "3")
    assert code == 1
    assert "accuracy gate failed: min cosine similarity" in err and "over the allowed 0 by" in err, err
    assert "FAIL" in out
    assert not (repo / "m").exists()


def test_eval_data_that_does_not_fit_is_a_usage_error(capsys, optimize_venv, sources, tmp_path):
    repo = tmp_path / "repo"
    code, _, err = optimize(capsys, sources["mlp"], "--name", "m", "--out", repo, "--eval", sources["eval"])
    assert code == 2 and "the model's inputs are x" in err, err
    assert not (repo / "m").exists()


def test_tensorrt_and_cuda_blocks_parse_and_validate(tmp_path):
    inputs = [tritonconfig.Tensor("input_ids", onnx.TensorProto.INT64, (-1, -1))]
    outputs = [tritonconfig.Tensor("embedding", onnx.TensorProto.FLOAT, (-1, 384))]
    for accelerator in (tritonconfig.Accelerator("tensorrt", "fp16", 2 << 30, "/cache/trt"), tritonconfig.Accelerator("cuda")):
        text = tritonconfig.render(tritonconfig.build("minilm", inputs, outputs, accelerator=accelerator), "header")
        assert text.count("{") == text.count("}")
        parsed = text_format.Parse(text, mc.ModelConfig())
        entry = parsed.optimization.execution_accelerators.gpu_execution_accelerator[0]
        assert entry.name == accelerator.name
        if accelerator.name == "tensorrt":
            assert entry.parameters["precision_mode"] == "FP16"
            assert entry.parameters["max_workspace_size_bytes"] == str(2 << 30)
            assert entry.parameters["trt_engine_cache_path"] == "/cache/trt"
        else:
            assert not entry.parameters
        assert list(parsed.input[0].dims) == [-1] and list(parsed.output[0].dims) == [384]
        model_dir = tmp_path / accelerator.name / "minilm"
        (model_dir / "1").mkdir(parents=True)
        (model_dir / "1" / "model.onnx").write_bytes(b"")
        (model_dir / "config.pbtxt").write_text(text)
        _, problems = validate_repository(model_dir.parent)
        assert not problems, problems


def test_fixed_batch_models_get_max_batch_size_0():
    inputs = [tritonconfig.Tensor("image", onnx.TensorProto.FLOAT, (1, 3, 48, 192))]
    outputs = [tritonconfig.Tensor("scores", onnx.TensorProto.FLOAT, (1, 2))]
    config = tritonconfig.build("cls", inputs, outputs)
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 3, 48, 192]


def test_venv_is_created_once_and_again_when_its_requirements_change(tmp_path, monkeypatch):
    """The bootstrap itself, with subprocess faked: created on first use with one message, reused while
    the requirements are unchanged, re-created when they change, removed again when pip fails."""
    requirements = tmp_path / "requirements-optimize.txt"
    requirements.write_text("onnxruntime==1.32.0\n")
    monkeypatch.setattr(optvenv, "ROOT", tmp_path)
    monkeypatch.setattr(optvenv, "VENVS", tmp_path / "build" / "venvs")
    monkeypatch.setattr(optvenv, "REQUIREMENTS", {"optimize": [requirements]})
    calls, fail = [], []

    def fake_run(command, **kwargs):
        calls.append(command)
        if command[1:3] == ["-m", "venv"]:
            (Path(command[3]) / "bin").mkdir(parents=True)
            (Path(command[3]) / "bin" / "python").write_text("")
        elif fail:
            raise optvenv.subprocess.CalledProcessError(1, command, stderr="ERROR: No matching distribution found for onnxruntime==9")

    monkeypatch.setattr(optvenv.subprocess, "run", fake_run)
    messages = []
    python = optvenv.ensure("optimize", log=messages.append)
    assert python == tmp_path / "build" / "venvs" / "optimize" / "bin" / "python"
    assert len(calls) == 2 and calls[1][-2:] == ["-r", str(requirements)]
    assert len(messages) == 1 and "creating build/venvs/optimize" in messages[0]
    optvenv.ensure("optimize", log=messages.append)
    assert len(calls) == 2 and len(messages) == 1  # reused
    requirements.write_text("onnxruntime==9\n")
    fail.append(True)
    with pytest.raises(optvenv.VenvError, match="No matching distribution"):
        optvenv.ensure("optimize", log=messages.append)
    assert len(calls) == 4 and not python.exists()


def test_npy_eval_metric_override_and_tensorrt_note_for_dynamic_int8(capsys, optimize_venv, sources, tmp_path):
    import numpy as np

    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    for i in range(3):
        np.save(evaluation / f"b{i}.npy", np.random.default_rng(i).standard_normal((5, 64)).astype(np.float32))
    repo = tmp_path / "repo"
    code, out, err = optimize(capsys, sources["mlp"], "--name", "m", "--out", repo, "--eval", evaluation, "--metric", "maxabs",
                              "--max-accuracy-drop", "1", "--gpu-accelerator", "tensorrt", "--json", "--iterations", "3")
    assert code == 0, err
    result = json.loads(out)
    assert result["accuracy"]["metric"] == "maxabs" and result["accuracy"]["rows"] == 15
    assert result["accuracy"]["source"] == str(evaluation)
    assert any("TensorRT cannot run dynamic-INT8 nodes" in note for note in result["notes"])


def test_existing_version_is_not_overwritten(capsys, sources, tmp_path):
    version = tmp_path / "repo" / "m" / "3"
    version.mkdir(parents=True)
    code, _, err = optimize(capsys, sources["mlp"], "--name", "m", "--out", tmp_path / "repo", "--version", "3")
    assert code == 2 and "already exists" in err
    assert list(version.parent.iterdir()) == [version]
