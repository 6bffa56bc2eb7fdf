"""`platformctl models optimize SRC --name NAME --out REPO`: an ONNX model made faster with ONNX
Runtime, gated on accuracy, written as a Triton model (REPO/NAME/<version>/model.onnx and
REPO/NAME/config.pbtxt).

Arguments and the source model are checked here, in .venv (exit 2, nothing written); the model
work (graph optimisation, quantisation, accuracy gate, CPU timings) runs in build/venvs/optimize
(platformctl/models/optimize_worker.py), created on first use. A model that fails the accuracy
gate is not written (exit 1). The config is built here and checked by `models validate` before
anything lands in REPO.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "optimize_worker.py"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CLASSIFIER_WORDS = re.compile(r"logit|prob|class|score|label|softmax", re.I)
EMBEDDING_WORDS = re.compile(r"embed|pool|sentence|hidden|feature|vector", re.I)
PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}
METRIC_LABEL = {"cosine": "min cosine similarity", "top1": "top-1 agreement", "maxabs": "max abs difference"}


class UsageError(Exception):
    """Exit 2: the arguments or the source cannot be used; nothing was written."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "optimize", help="optimise an ONNX model with ONNX Runtime (INT8/FP16), gate it on accuracy, write it for Triton",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, metavar="SRC", help="the ONNX model")
    parser.add_argument("--name", required=True, help="Triton model name (the directory under REPO)")
    parser.add_argument("--out", required=True, type=Path, metavar="REPO", help="Triton model repository to write into")
    parser.add_argument("--version", type=int, help="version directory (default: the next free one, 1 for a new model)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="int8", help="default int8")
    parser.add_argument("--quantization", choices=("auto", "dynamic", "static"), default="auto",
                        help="INT8 method: dynamic (transformers: MatMul/Gemm weights) or static Q/DQ with --calibration "
                             "(convnets); auto picks static for Conv-heavy models, dynamic otherwise")
    parser.add_argument("--calibration", type=Path, metavar="DIR", help="calibration batches (.npz by input name, or .npy for one input)")
    parser.add_argument("--eval", type=Path, metavar="DIR", help="evaluation batches, same format (default: generated from the input spec)")
    parser.add_argument("--metric", choices=("auto", "cosine", "top1", "maxabs"), default="auto",
                        help="accuracy metric on the first output (auto: from its name and producing op)")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.05, metavar="X",
                        help="allowed drop: 1 - min cosine, 1 - top-1 agreement, or the max abs difference (default 0.05)")
    parser.add_argument("--gpu-accelerator", choices=("none", "cuda", "tensorrt"), default="none",
                        help="execution accelerator block in config.pbtxt (default none: ONNX Runtime's CUDA EP)")
    parser.add_argument("--trt-workspace", type=int, default=1 << 30, metavar="BYTES", help="TensorRT max_workspace_size_bytes (default 1 GiB)")
    parser.add_argument("--trt-cache-path", default="", metavar="PATH",
                        help="TensorRT engine cache in the Triton pod (default /tmp/triton-trt-cache/NAME)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="Triton max_batch_size when the model batches (default 8)")
    parser.add_argument("--batch", type=int, default=8, help="the larger batch timed, and of generated evaluation inputs (default 8)")
    parser.add_argument("--iterations", type=int, default=30, help="timed runs per figure (default 30)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.set_defaults(func=cmd_optimize)


@dataclass
class Plan:
    model: object  # onnx.ModelProto (without external data)
    inputs: list
    outputs: list
    quantization: str | None
    why: str
    metric: str
    version: int


def _tensors(model, values) -> list:
    from .tritonconfig import Tensor

    initializers = {i.name for i in model.graph.initializer}
    found = []
    for value in values:
        if value.name in initializers:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in value.type.tensor_type.shape.dim)
        found.append(Tensor(value.name, value.type.tensor_type.elem_type, dims))
    return found


def load_model(src: Path):
    """The ONNX model at src, or UsageError saying why it is not one."""
    import onnx
    from google.protobuf.message import DecodeError

    if not src.exists():
        raise UsageError(f"{src}: does not exist")
    if not src.is_file():
        raise UsageError(f"{src}: is not a file (an ONNX model with external data: give its .onnx file)")
    try:
        model = onnx.load(str(src), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{src}: not an ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if model.ir_version <= 0 or not model.graph.node or not model.graph.output:
        raise UsageError(f"{src}: not an ONNX model (no graph with nodes and outputs)")
    return model


def choose_quantization(args, model) -> tuple[str | None, str]:
    if args.precision != "int8":
        return None, f"{args.precision}: no quantisation"
    ops = [n.op_type for n in model.graph.node]
    convs, matmuls = sum(o in ("Conv", "ConvTranspose") for o in ops), sum(o in ("MatMul", "Gemm") for o in ops)
    mode = args.quantization
    if mode == "auto":
        mode = "static" if convs > matmuls else "dynamic"
        why = (f"auto: {convs} Conv vs {matmuls} MatMul/Gemm nodes -> "
               + ("Conv-heavy, static Q/DQ with calibration" if mode == "static" else "dynamic (weights INT8, activations at run time)"))
    else:
        why = f"--quantization {mode}"
    if mode == "static" and args.calibration is None:
        raise UsageError(f"static INT8 ({why}) needs --calibration DIR with representative inputs"
                         + (" (or --quantization dynamic)" if args.quantization == "auto" else ""))
    return mode, why


def choose_metric(args, model) -> str:
    if args.metric != "auto":
        return args.metric
    output = model.graph.output[0]
    producers = {out: n for n in model.graph.node for out in n.output}
    node, name = producers.get(output.name), output.name
    while node is not None and node.op_type in PASS_THROUGH and node.input:  # look through Identity & co.
        name = node.input[0]
        node = producers.get(name)
    producer = node.op_type if node is not None else ""
    rank = len(output.type.tensor_type.shape.dim)
    if producer in ("Softmax", "LogSoftmax", "ArgMax") or CLASSIFIER_WORDS.search(output.name):
        return "top1"
    if EMBEDDING_WORDS.search(output.name) or rank >= 3:
        return "cosine"
    return "maxabs"


def _check_data_dir(flag: str, directory: Path | None) -> None:
    if directory is None:
        return
    if not directory.is_dir():
        raise UsageError(f"{flag} {directory}: not a directory")
    if not any(p.suffix in (".npz", ".npy") for p in directory.iterdir()):
        raise UsageError(f"{flag} {directory}: holds no .npz or .npy files")


def _next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def plan(args) -> Plan:
    from .tritonconfig import ONNX_TO_TRITON

    if not NAME.match(args.name):
        raise UsageError(f"--name {args.name!r}: letters, digits, '_', '.', '-' only (it is a directory name)")
    for flag, value, low in (("--version", args.version, 1), ("--max-batch-size", args.max_batch_size, 0),
                             ("--batch", args.batch, 1), ("--iterations", args.iterations, 1), ("--trt-workspace", args.trt_workspace, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be >= {low} (got {value})")
    if not 0 <= args.max_accuracy_drop < 1e6:
        raise UsageError(f"--max-accuracy-drop must be >= 0 (got {args.max_accuracy_drop})")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    if args.gpu_accelerator != "tensorrt" and (args.trt_cache_path or args.trt_workspace != 1 << 30):
        raise UsageError("--trt-workspace/--trt-cache-path go with --gpu-accelerator tensorrt")
    _check_data_dir("--calibration", args.calibration)
    _check_data_dir("--eval", args.eval)
    model = load_model(args.src)
    inputs, outputs = _tensors(model, model.graph.input), _tensors(model, model.graph.output)
    bad = [t.name for t in (*inputs, *outputs) if t.elem_type not in ONNX_TO_TRITON]
    if bad:
        raise UsageError(f"{args.src}: tensor(s) {', '.join(bad)} have element types Triton cannot serve")
    quantization, why = choose_quantization(args, model)
    if args.calibration is not None and quantization != "static":
        raise UsageError(f"--calibration is only used by static INT8 (this run: {why})")
    version = args.version or _next_version(args.out / args.name)
    target = args.out / args.name / str(version)
    if target.exists():
        raise UsageError(f"{target} already exists; give another --version or remove it")
    return Plan(model, inputs, outputs, quantization, why, choose_metric(args, model), version)


def run_worker(python: Path, request: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        proc = subprocess.run([str(python), str(WORKER)], input=json.dumps({**request, "result_file": str(result_file)}),
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not result_file.exists():
            tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return {"error": f"the optimize worker failed (exit {proc.returncode}): {tail}"}
        return json.loads(result_file.read_text())


def _config_text(args, plan_: Plan, result: dict) -> str:
    from .tritonconfig import Accelerator, build, render

    accelerator = None
    if args.gpu_accelerator != "none":
        accelerator = Accelerator(args.gpu_accelerator, args.precision, args.trt_workspace, args.trt_cache_path)
    config = build(args.name, plan_.inputs, plan_.outputs, max_batch_size=args.max_batch_size, accelerator=accelerator)
    acc = result["accuracy"]
    header = (f"Written by `platformctl models optimize` from {args.src.name}: {result['conversion']};\n"
              f"graph {result['graph_optimization']}.\n"
              f"Accuracy vs the original: {METRIC_LABEL[acc['metric']]} {acc['value']:.4f} on {acc['rows']} rows.")
    return render(config, header)


def write(args, plan_: Plan, result: dict, candidate: Path) -> Path:
    """Stage the model directory, validate it as `models validate` does, then move it into REPO."""
    from .validate import CONFIG_FILE, check_model

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / args.name
        (staged / str(plan_.version)).mkdir(parents=True)
        shutil.copyfile(candidate, staged / str(plan_.version) / "model.onnx")
        (staged / CONFIG_FILE).write_text(_config_text(args, plan_, result))
        _, problems = check_model(staged)
        if problems:
            raise RuntimeError("the written model does not validate: " + "; ".join(str(p) for p in problems))
        model_dir = args.out / args.name
        (model_dir / str(plan_.version)).mkdir(parents=True)
        shutil.copyfile(staged / str(plan_.version) / "model.onnx", model_dir / str(plan_.version) / "model.onnx")
        shutil.copyfile(staged / CONFIG_FILE, model_dir / CONFIG_FILE)
    return model_dir


def cmd_optimize(args: argparse.Namespace) -> int:
    from .optvenv import VenvError, ensure

    try:
        plan_ = plan(args)
    except UsageError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 2
    try:
        python = ensure("optimize")
    except VenvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "model.onnx"
        request = {"src": str(args.src.resolve()), "out": str(candidate), "precision": args.precision,
                   "quantization": plan_.quantization, "symmetric_activations": args.gpu_accelerator == "tensorrt",
                   "calibration": str(args.calibration) if args.calibration else None,
                   "eval": str(args.eval) if args.eval else None, "metric": plan_.metric,
                   "max_drop": args.max_accuracy_drop, "batch": args.batch, "iterations": args.iterations, "budget": 20.0,
                   "batchable": _batchable(plan_)}
        result = run_worker(python, request)
        if "usage_error" in result:
            print(f"error: {result['usage_error']}; nothing written", file=sys.stderr)
            return 2
        if "error" in result:
            print(f"error: {result['error']}; nothing written", file=sys.stderr)
            return 1
        result.update(quantization=plan_.quantization, decision=plan_.why, name=args.name, version=plan_.version)
        passed = result["accuracy"]["passed"]
        if passed:
            try:
                model_dir = write(args, plan_, result, candidate)
            except (RuntimeError, OSError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            result["written"] = [str(model_dir / str(plan_.version) / "model.onnx"), str(model_dir / "config.pbtxt")]
    notes = _notes(args, plan_)
    result["notes"] = notes
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(args, result)
    if not passed:
        acc = result["accuracy"]
        print(f"error: accuracy gate failed: {METRIC_LABEL[acc['metric']]} {acc['value']:.4f} is a drop of "
              f"{acc['drop']:.4f}, over the allowed {acc['threshold']:g} by {acc['drop'] - acc['threshold']:.4f}; "
              f"nothing written", file=sys.stderr)
        return 1
    return 0


def _batchable(plan_: Plan) -> bool:
    from .tritonconfig import batchable

    return batchable(plan_.inputs, plan_.outputs)


def _notes(args, plan_: Plan) -> list[str]:
    notes = []
    if args.gpu_accelerator == "tensorrt" and plan_.quantization == "dynamic":
        notes.append("TensorRT cannot run dynamic-INT8 nodes (DynamicQuantizeLinear/MatMulInteger): ONNX Runtime "
                     "gives them to the CUDA EP; for INT8 in TensorRT use static Q/DQ (--quantization static --calibration DIR)")
    if args.gpu_accelerator == "tensorrt" and args.precision == "fp16":
        notes.append("precision_mode FP16 lets TensorRT build FP16 engines itself; an FP32 ONNX would do the same")
    return notes


def _ratio(before: float, after: float, higher_is_better: bool) -> str:
    if not before or not after:
        return ""
    ratio = after / before
    if higher_is_better:
        return f"{ratio:.2f}x"
    return f"{ratio:.2f}x" + (f" ({before / after:.2f}x faster)" if ratio < 1 else "")


def _rows(result: dict) -> list[tuple[str, str, str, str]]:
    from .sizes import human_size

    before, after = result["original"], result["optimized"]
    rows = [("size", human_size(before["size"]), human_size(after["size"]), _ratio(before["size"], after["size"], False).split(" (")[0])]
    for key in ("b1", "bn"):
        if key not in before:
            continue
        batch = before[key]["batch"]
        for figure, label in (("p50_ms", "p50"), ("p95_ms", "p95")):
            rows.append((f"latency {label} @{batch}", f"{before[key][figure]:.2f} ms", f"{after[key][figure]:.2f} ms",
                         _ratio(before[key][figure], after[key][figure], False)))
        rows.append((f"throughput @{batch}", f"{before[key]['throughput']:.1f}/s", f"{after[key]['throughput']:.1f}/s",
                     _ratio(before[key]["throughput"], after[key]["throughput"], True)))
    acc = result["accuracy"]
    verdict = "pass" if acc["passed"] else "FAIL"
    rows.append((f"{METRIC_LABEL[acc['metric']]} ({acc['output']})", "reference", f"{acc['value']:.4f}",
                 f"drop {acc['drop']:.4f} <= {acc['threshold']:g}: {verdict}" if acc["passed"]
                 else f"drop {acc['drop']:.4f} > {acc['threshold']:g}: {verdict}"))
    return rows


def _print_table(args, result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"models optimize: {args.src.name} -> {args.name} version {result['version']}",
                  caption="CPU (ONNX Runtime, this machine): latency per request at batch @N, throughput in rows/s")
    for column, justify in (("", "left"), ("original", "right"), ("optimised", "right"), ("change", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(f"conversion: {result['conversion']} [{result['decision']}]", highlight=False)
    console.print(f"graph: {result['graph_optimization']}", highlight=False)
    console.print(f"evaluation: {result['accuracy']['source']}", highlight=False)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    for path in result.get("written", []):
        console.print(f"wrote {path}", highlight=False)
