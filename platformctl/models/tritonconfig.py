"""The config.pbtxt `models optimize` writes for an ONNX model (onnxruntime backend), built as a
`ModelConfig` message (tritonclient's model_config_pb2) and printed with protobuf text_format, so
it is well-formed by construction.

Execution accelerators follow triton-inference-server/onnxruntime_backend README.md and
src/onnxruntime.cc at r25.06: `gpu_execution_accelerator` entries named "tensorrt" (parameters
precision_mode FP32|FP16|INT8, max_workspace_size_bytes, trt_engine_cache_enable,
trt_engine_cache_path) or "cuda" (parameters optional). The README's TensorRT snippet closes the
parameters list early (`...value: "1073741824" }}`): its braces do not balance, so it is not
copied; this file emits the message instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import text_format

from .validate import mc

# onnx.TensorProto element type -> Triton data type (model_config.proto DataType).
ONNX_TO_TRITON = {
    1: mc.TYPE_FP32, 2: mc.TYPE_UINT8, 3: mc.TYPE_INT8, 4: mc.TYPE_UINT16, 5: mc.TYPE_INT16, 6: mc.TYPE_INT32,
    7: mc.TYPE_INT64, 8: mc.TYPE_STRING, 9: mc.TYPE_BOOL, 10: mc.TYPE_FP16, 11: mc.TYPE_FP64, 12: mc.TYPE_UINT32,
    13: mc.TYPE_UINT64, 16: mc.TYPE_BF16,
}
TRT_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


@dataclass(frozen=True)
class Tensor:
    name: str
    elem_type: int  # onnx.TensorProto element type
    dims: tuple[int, ...]  # -1 for a variable dimension


@dataclass(frozen=True)
class Accelerator:
    name: str  # "tensorrt" | "cuda"
    precision: str = "fp32"  # fp32 | fp16 | int8 (tensorrt)
    workspace_bytes: int = 1 << 30
    cache_path: str = ""


def batchable(inputs: list[Tensor], outputs: list[Tensor]) -> bool:
    """Triton batching needs a variable first dimension on every input and output."""
    return all(t.dims and t.dims[0] == -1 for t in (*inputs, *outputs))


def _add_tensors(section, tensors: list[Tensor], batched: bool) -> None:
    for tensor in tensors:
        if tensor.elem_type not in ONNX_TO_TRITON:
            raise ValueError(f"tensor {tensor.name!r}: ONNX element type {tensor.elem_type} has no Triton data type")
        entry = section.add(name=tensor.name, data_type=ONNX_TO_TRITON[tensor.elem_type])
        dims = list(tensor.dims[1:] if batched else tensor.dims)
        if dims:
            entry.dims.extend(dims)
        else:  # a scalar per batch row: Triton wants dims, the model wants none
            entry.dims.append(1)
            entry.reshape.SetInParent()


def build(name: str, inputs: list[Tensor], outputs: list[Tensor], *, max_batch_size: int = 8,
          accelerator: Accelerator | None = None) -> mc.ModelConfig:
    config = mc.ModelConfig(name=name, backend="onnxruntime")
    batched = batchable(inputs, outputs) and max_batch_size > 0
    if batched:
        config.max_batch_size = max_batch_size
        # As the standard example: wait at most 100 µs for more requests.
        config.dynamic_batching.max_queue_delay_microseconds = 100
    _add_tensors(config.input, inputs, batched)
    _add_tensors(config.output, outputs, batched)
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_GPU)
    config.version_policy.latest.num_versions = 1
    if accelerator is not None:
        entry = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name=accelerator.name)
        if accelerator.name == "tensorrt":
            entry.parameters["precision_mode"] = TRT_PRECISION[accelerator.precision]
            entry.parameters["max_workspace_size_bytes"] = str(accelerator.workspace_bytes)
            entry.parameters["trt_engine_cache_enable"] = "1"
            entry.parameters["trt_engine_cache_path"] = accelerator.cache_path or f"/tmp/triton-trt-cache/{name}"
    return config


def render(config: mc.ModelConfig, header: str = "") -> str:
    body = text_format.MessageToString(config)
    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comments + body
