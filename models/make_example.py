"""Writes the example ONNX model of the `standard` repository: models/standard/add_sub/1/model.onnx.

OUTPUT0 = INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1 on FP32 vectors of 4, with a variable
batch dimension (config.pbtxt sets max_batch_size). It is built from ONNX operators in code so the
repository needs no download; the output is byte-for-byte reproducible (the IR version, opset
and producer are fixed), and a test keeps the committed file equal to what this script writes.

    .venv/bin/python models/make_example.py            # rewrite the committed model
    .venv/bin/python models/make_example.py --out X    # write it elsewhere
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parent / "standard" / "add_sub" / "1" / "model.onnx"
# Pinned so the bytes do not change with the installed onnx version, and old enough for the
# ONNX Runtime in every supported Triton release.
IR_VERSION = 8
OPSET = 13


def build() -> onnx.ModelProto:
    vector = ["batch", 4]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, vector) for n in ("INPUT0", "INPUT1")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, vector) for n in ("OUTPUT0", "OUTPUT1")]
    nodes = [
        helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
        helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub"),
    ]
    graph = helper.make_graph(nodes, "add_sub", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ai-platform/models/make_example.py", ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def serialize() -> bytes:
    return build().SerializeToString(deterministic=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write the model (default: {OUT})")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = serialize()
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
