"""The model work of `platformctl models optimize`, run as a script by the optimize venv's python
(build/venvs/optimize: onnxruntime, onnx, numpy), never imported by .venv.

Reads one JSON request on stdin, writes one JSON result on stdout. Steps:
1. offline graph optimisation with ONNX Runtime at ORT_ENABLE_BASIC, the level whose rewrites run
   before graph partitioning and so apply to every execution provider (extended and layout
   optimisations are EP- or CPU-specific and are left to the serving session);
2. the precision: INT8 by `quantize_dynamic` (per-channel INT8 weights of MatMul/Gemm and of
   embedding Gathers, activations quantised at run time: transformers) or `quantize_static` with
   Q/DQ nodes and a calibration set (convnets; Q/DQ is also what TensorRT takes for explicit INT8),
   FP16 by onnxruntime.transformers.float16 with FP32 inputs/outputs, or FP32 (graph only);
3. the accuracy gate against the original on the evaluation inputs;
4. CPU latency (p50/p95 at batch 1 and at a larger batch) and throughput of both models.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort

GENERATED_BATCHES = 8  # evaluation batches generated from the input spec when --eval is not given
GENERATED_SEQUENCE = 16  # a variable non-batch dimension (e.g. a sequence) of a generated input


class UsageError(Exception):
    """Bad evaluation/calibration data for this model: exit 2, nothing written."""


def _np_dtype(elem_type: int):
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type)


def input_specs(model: onnx.ModelProto) -> list[dict]:
    initializers = {i.name for i in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                for d in value.type.tensor_type.shape.dim]
        specs.append({"name": value.name, "elem_type": value.type.tensor_type.elem_type, "dims": dims})
    return specs


def _vocabulary(model: onnx.ModelProto, name: str) -> int:
    """Rows of the embedding table an integer input indexes (Gather(data=initializer, indices=input))."""
    sizes = {i.name: list(i.dims) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name and node.input[0] in sizes:
            return int(sizes[node.input[0]][0])
    return 100


def generate_batches(model: onnx.ModelProto, batch: int, count: int, seed: int = 0) -> list[dict]:
    """Inputs from the input spec: floats standard normal, integer ids uniform below the vocabulary
    (masks all ones, token types zeros), bools true; variable dims: batch first, 16 elsewhere."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        feed = {}
        for spec in input_specs(model):
            shape = [d if d > 0 else (batch if i == 0 else GENERATED_SEQUENCE) for i, d in enumerate(spec["dims"])]
            dtype, lowered = _np_dtype(spec["elem_type"]), spec["name"].lower()
            if np.issubdtype(dtype, np.floating):
                feed[spec["name"]] = rng.standard_normal(shape).astype(dtype)
            elif dtype == np.bool_ or "mask" in lowered:
                feed[spec["name"]] = np.ones(shape, dtype=dtype)
            elif "type" in lowered:
                feed[spec["name"]] = np.zeros(shape, dtype=dtype)
            else:
                feed[spec["name"]] = rng.integers(0, _vocabulary(model, spec["name"]), shape).astype(dtype)
        batches.append(feed)
    return batches


def load_batches(directory: str, model: onnx.ModelProto) -> list[dict]:
    """A directory of .npz files (one batch each, keyed by input name) or, for a one-input model,
    .npy files (one batch each)."""
    names = [s["name"] for s in input_specs(model)]
    batches = []
    for path in sorted(Path(directory).iterdir()):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                feed = {k: data[k] for k in data.files}
        elif path.suffix == ".npy":
            if len(names) != 1:
                raise UsageError(f"{path}: .npy holds one input, but the model has {len(names)} ({', '.join(names)}); use .npz")
            feed = {names[0]: np.load(path, allow_pickle=False)}
        else:
            continue
        if sorted(feed) != sorted(names):
            raise UsageError(f"{path}: holds {', '.join(sorted(feed)) or 'nothing'}, the model's inputs are {', '.join(names)}")
        batches.append(feed)
    if not batches:
        raise UsageError(f"{directory}: no .npz or .npy files")
    return batches


def graph_optimize(src: str, dst: str) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = dst
    ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


class _Reader:
    """CalibrationDataReader over loaded batches (duck-typed: get_next returns None at the end)."""

    def __init__(self, batches: list[dict]):
        self._iter = iter(batches)

    def get_next(self):
        return next(self._iter, None)

    def rewind(self):  # pragma: no cover - only some calibrators call it
        pass


def _at_least_opset(path: str, wanted: int) -> str:
    """Per-channel Q/DQ (the axis attribute of QuantizeLinear/DequantizeLinear) needs opset >= 13."""
    model = onnx.load(path)
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), wanted)
    if current >= wanted:
        return ""
    onnx.save(onnx.version_converter.convert_version(model, wanted), path)
    return f", opset {current} converted to {wanted} for per-channel Q/DQ"


def convert(request: dict, optimized: str, dst: str, calibration: list[dict] | None) -> str:
    """Writes the candidate to dst; returns a one-line description of what was done."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    precision, mode = request["precision"], request.get("quantization")
    if precision == "int8" and mode == "dynamic":
        quantize_dynamic(optimized, dst, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm", "Gather"],
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
        return "dynamic INT8 (per-channel INT8 weights of MatMul/Gemm/Gather, activations quantised at run time)"
    if precision == "int8":
        symmetric = bool(request.get("symmetric_activations"))
        upgraded = _at_least_opset(optimized, 13)
        quantize_static(optimized, dst, _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                        extra_options={"ActivationSymmetric": symmetric, "DefaultTensorType": onnx.TensorProto.FLOAT})
        kind = "symmetric INT8 (TensorRT)" if symmetric else "UINT8"
        return (f"static INT8, Q/DQ format, per-channel INT8 weights, {kind} activations, MinMax over "
                f"{len(calibration)} calibration batch(es){upgraded}")
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(optimized), keep_io_types=True), dst)
        return "FP16 weights and compute, FP32 inputs/outputs"
    onnx.save(onnx.load(optimized), dst)
    return "FP32 (graph optimisation only)"


def _session(path: str) -> ort.InferenceSession:
    # Default options (all optimisation levels, as Triton's onnxruntime backend runs a model).
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def accuracy(metric: str, reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict:
    ref = np.concatenate([r.reshape(-1, r.shape[-1]) if r.ndim else r.reshape(1, 1) for r in reference]).astype(np.float64)
    got = np.concatenate([c.reshape(-1, c.shape[-1]) if c.ndim else c.reshape(1, 1) for c in candidate]).astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
        cos = np.where(norms > 0, (ref * got).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)
        return {"metric": "cosine", "value": float(cos.min()), "mean": float(cos.mean()), "drop": float(1 - cos.min()), "rows": len(cos)}
    if metric == "top1":
        agree = (ref.argmax(axis=1) == got.argmax(axis=1)).mean()
        return {"metric": "top1", "value": float(agree), "drop": float(1 - agree), "rows": len(ref)}
    diff = float(np.abs(ref - got).max()) if ref.size else 0.0
    return {"metric": "maxabs", "value": diff, "drop": diff, "rows": len(ref)}


def _time_pair(sessions: list, feed: dict, iterations: int, budget: float) -> list[list[float]]:
    """Interleaved runs (original, candidate, original, ...), so that load from other processes
    on a shared machine falls on both alike."""
    for session in sessions:
        for _ in range(2):
            session.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    deadline = time.monotonic() + budget
    while len(times[0]) < iterations and (len(times[0]) < 3 or time.monotonic() < deadline):
        for session, bucket in zip(sessions, times):
            start = time.perf_counter()
            session.run(None, feed)
            bucket.append((time.perf_counter() - start) * 1000)
    return times


def measure(sessions: list, sample: dict, batch: int | None, iterations: int, budget: float) -> list[dict]:
    figures: list[dict] = [{} for _ in sessions]
    feeds = [("b1", {k: v[:1] for k, v in sample.items()}, 1)]
    if batch:
        feeds.append(("bn", {k: np.repeat(v[:1], batch, axis=0) for k, v in sample.items()}, batch))
    for label, feed, rows in feeds:
        for figure, times in zip(figures, _time_pair(sessions, feed, iterations, budget)):
            figure[label] = {"batch": rows, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                             "throughput": float(rows * 1000 / np.mean(times)), "runs": len(times)}
    return figures


def run(request: dict) -> dict:
    src, dst = request["src"], request["out"]
    model = onnx.load(src, load_external_data=False)
    batchable = request["batchable"]
    if request.get("eval"):
        eval_batches, eval_source = load_batches(request["eval"], model), f"{request['eval']}"
    else:
        size = request["batch"] if batchable else 1
        eval_batches = generate_batches(model, size, GENERATED_BATCHES)
        eval_source = (f"generated from the input spec ({GENERATED_BATCHES} batches of {size}, seed 0: floats N(0,1), "
                       f"ids uniform below the vocabulary, masks ones; variable dims {GENERATED_SEQUENCE})")
    calibration = load_batches(request["calibration"], model) if request.get("calibration") else None
    with tempfile.TemporaryDirectory() as tmp:
        optimized = os.path.join(tmp, "basic.onnx")
        graph_optimize(src, optimized)
        done = convert(request, optimized, dst, calibration)
    original, candidate = _session(src), _session(dst)
    primary = original.get_outputs()[0].name
    try:
        reference = [original.run([primary], feed)[0] for feed in eval_batches]
        got = [candidate.run([primary], feed)[0] for feed in eval_batches]
    except (ort.capi.onnxruntime_pybind11_state.InvalidArgument, ort.capi.onnxruntime_pybind11_state.Fail) as exc:
        raise UsageError(f"the evaluation inputs do not fit the model: {str(exc).splitlines()[0]}") from None
    result = accuracy(request["metric"], reference, got)
    result.update(output=primary, source=eval_source, threshold=request["max_drop"], passed=result["drop"] <= request["max_drop"])
    larger = request["batch"] if batchable else None
    before, after = measure([original, candidate], eval_batches[0], larger, request["iterations"], request["budget"])
    return {
        "conversion": done,
        "graph_optimization": "ORT_ENABLE_BASIC (offline, portable across execution providers)",
        "accuracy": result,
        "original": {"size": os.path.getsize(src), **before},
        "optimized": {"size": os.path.getsize(dst), **after},
        "ops": sorted({n.op_type for n in onnx.load(dst, load_external_data=False).graph.node}),
    }


def main() -> int:
    """The result goes to the file named in the request (quantisation tools print to stdout)."""
    request = json.loads(sys.stdin.read())
    try:
        result = run(request)
    except UsageError as exc:
        result = {"usage_error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the CLI, which prints one line
        message = re.sub(r"\s+", " ", str(exc)).strip()[:600]
        result = {"error": f"{type(exc).__name__}: {message}"}
    Path(request["result_file"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
