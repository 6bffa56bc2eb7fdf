"""The virtualenvs the model-optimisation work runs in, kept out of .venv.

`build/venvs/optimize` holds ONNX Runtime, onnx and numpy (requirements-optimize.txt, ~100 MB);
`build/venvs/optimize-examples` adds torch (CPU), transformers and the example model packages
(requirements-examples.txt, ~1.8 GB) for models/make_examples_accel.py and `make bench`;
`build/venvs/optimize-cv` adds only the CV example's package (requirements-cv.txt, ~0.45 GB) for
`make trt-sources` (dev's TensorRT build source, which CI writes before previewing dev). Each is
created on first use, with a one-line message, and created again whenever its requirements file
changes (the SHA-256 of the files is kept in the venv, as scripts/ensure-checkov.sh does).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENVS = ROOT / "build" / "venvs"
REQUIREMENTS = {
    "optimize": [HERE / "requirements-optimize.txt"],
    "optimize-examples": [HERE / "requirements-optimize.txt", HERE / "requirements-examples.txt"],
    "optimize-cv": [HERE / "requirements-optimize.txt", HERE / "requirements-cv.txt"],
}


class VenvError(Exception):
    """The virtualenv could not be created (pip failed, no network to the package index...)."""


def _stamp(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure(kind: str = "optimize", log=None) -> Path:
    """Path of the venv's python, creating or re-creating the venv when needed."""
    files = REQUIREMENTS[kind]
    venv = VENVS / kind
    python, marker = venv / "bin" / "python", venv / ".requirements-sha256"
    want = _stamp(files)
    if python.exists() and marker.exists() and marker.read_text().strip() == want:
        return python
    log = log or (lambda message: print(message, file=sys.stderr))
    log(f"creating {venv.relative_to(ROOT)} from {files[-1].relative_to(ROOT)} (first use or changed requirements; "
        f"{'about a minute' if kind == 'optimize' else 'a few minutes'})...")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(files[-1])], check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        detail = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()
        detail = [line for line in detail if "is ignored: it is neither a file nor a directory" not in line]
        raise VenvError(f"could not create {venv}: {' / '.join(detail[-3:]) or exc}") from None
    marker.write_text(want + "\n")
    return python
