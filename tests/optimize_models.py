"""Tiny ONNX models built with onnx.helper for the `models optimize` / `models perf` tests: a
transformer-like MLP (MatMul-heavy, an embedding output: dynamic INT8, cosine gate) and a small
conv classifier (Conv-heavy, softmax output: static Q/DQ INT8 with calibration, top-1 gate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR_VERSION = 17, 8


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def mlp(path: Path, width: int = 64, hidden: int = 256) -> Path:
    """x[batch, width] -> MatMul -> Add -> Relu -> MatMul -> Add -> embedding[batch, width]."""
    rng = np.random.default_rng(1)
    inits = [_init("w1", rng.standard_normal((width, hidden)) / np.sqrt(width)), _init("b1", rng.standard_normal(hidden) * 0.1),
             _init("w2", rng.standard_normal((hidden, width)) / np.sqrt(hidden)), _init("b2", rng.standard_normal(width) * 0.1)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
             helper.make_node("Add", ["h3", "b2"], ["embedding"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", width])], inits)
    return _save(graph, path)


def convnet(path: Path, classes: int = 10) -> Path:
    """image[batch, 3, 16, 16] -> 2 x (Conv, Relu) -> GlobalAveragePool -> Flatten -> Gemm -> Softmax."""
    rng = np.random.default_rng(2)
    inits = [_init("c1", rng.standard_normal((32, 3, 3, 3)) * 0.3), _init("c1b", np.zeros(32)),
             _init("c2", rng.standard_normal((64, 32, 3, 3)) * 0.08), _init("c2b", np.zeros(64)),
             _init("fc", rng.standard_normal((64, classes)) * 2.0), _init("fcb", np.zeros(classes))]
    nodes = [helper.make_node("Conv", ["image", "c1", "c1b"], ["a1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("Conv", ["r1", "c2", "c2b"], ["a2"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"]), helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])], inits)
    return _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def image_batches(directory: Path, count: int, batch: int = 4, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        np.savez(directory / f"batch_{i:02d}.npz", image=rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
    return directory
