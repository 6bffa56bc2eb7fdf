"""models push vs aws s3 sync: 200 files / 300 MB repository, one moto_server, median of 3 runs.

Both tools run as fresh processes (interpreter start included) against the same moto_server on
127.0.0.1, each run into a new bucket: "first push" uploads everything, "no-op re-push" runs again
with nothing changed. awscli comes from PyPI into its own venv (build/venvs/awscli, pinned in
bench/requirements-awscli.txt) so it cannot disturb the project's pins. Note what differs:
`aws s3 sync` decides by size and mtime only; `models push` compares content (SHA-256, cached
per file by size+mtime and per object by ETag) and orders config.pbtxt last. Each first push of
models push starts with an empty digest cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-awscli.txt"
VENV = ROOT / "build" / "venvs" / "awscli"
RUNS = 3
MODELS, FILES_PER_MODEL = 10, 20  # 200 files
MiB = 1024 * 1024


def _awscli() -> Path:
    stamp = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker, binary = VENV / ".requirements-sha256", VENV / "bin" / "aws"
    if not (binary.exists() and marker.exists() and marker.read_text() == stamp):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
        marker.write_text(stamp)
    return binary


def make_repository(root: Path) -> tuple[int, int]:
    """10 python-backend models, each config.pbtxt + model.py + 2 x 10 MiB shards (multipart) +
    16 x 640 KiB shards: 200 files, 300 MiB, incompressible."""
    files = size = 0
    for m in range(MODELS):
        version = root / f"model_{m:02d}" / "1"
        version.mkdir(parents=True)
        (version.parent / "config.pbtxt").write_text(f'name: "model_{m:02d}"\nbackend: "python"\nmax_batch_size: 0\n')
        (version / "model.py").write_text("# bench model\n")
        shards = [10 * MiB] * 2 + [640 * 1024] * (FILES_PER_MODEL - 4)
        for i, shard in enumerate(shards):
            (version / f"shard_{i:02d}.bin").write_bytes(os.urandom(shard))
        files += FILES_PER_MODEL
        size += sum(shards)
    return files, size


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _timed(cmd: list[str], env: dict) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    return time.monotonic() - start


def run() -> list[tuple[str, str]]:
    aws = _awscli()
    py = Path(sys.executable)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT)}
    env.pop("AWS_PROFILE", None)
    server = subprocess.Popen([str(py.parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            files, size = make_repository(repo)
            tools = {
                "models push": lambda b: [str(py), "-m", "platformctl", "models", "push", str(repo), "--bucket", b,
                                          "--prefix", "bench", "--endpoint-url", endpoint],
                "aws s3 sync": lambda b: [str(aws), "s3", "sync", str(repo), f"s3://{b}/bench", "--endpoint-url", endpoint,
                                          "--only-show-errors"],
            }
            times = {(tool, phase): [] for tool in tools for phase in ("first", "noop")}
            for run_index in range(RUNS):
                for tool, command in tools.items():
                    bucket = f"bench-{tool.split()[0]}-{run_index}"
                    s3.create_bucket(Bucket=bucket)
                    # Cold digest cache for each first push; the re-push uses what it learned,
                    # as on an operator's machine.
                    run_env = {**env, "XDG_CACHE_HOME": str(Path(tmp) / f"cache-{run_index}")}
                    times[(tool, "first")].append(_timed(command(bucket), run_env))
                    times[(tool, "noop")].append(_timed(command(bucket), run_env))
                    listed = s3.list_objects_v2(Bucket=bucket, Prefix="bench/")
                    assert listed["KeyCount"] == files, f"{tool} uploaded {listed['KeyCount']} of {files} files"
                    for obj in listed["Contents"]:  # free moto's memory for the next run
                        s3.delete_object(Bucket=bucket, Key=obj["Key"])
                    s3.delete_bucket(Bucket=bucket)
    finally:
        server.terminate()
        server.wait(timeout=10)
    rows = [("repository", f"{files} files, {size / MiB:.0f} MiB")]
    for phase, label in (("first", "first push"), ("noop", "no-op re-push")):
        ours, theirs = (statistics.median(times[(t, phase)]) for t in tools)
        rows.append((f"{label}: models push (median of {RUNS})", f"{ours:.2f} s"))
        rows.append((f"{label}: aws s3 sync (median of {RUNS})", f"{theirs:.2f} s"))
        rows.append((f"{label}: models push / aws s3 sync", f"{ours / theirs:.2f}x"))
    return rows
