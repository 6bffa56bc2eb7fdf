"""How long an offline plan takes, from a cold process as a user runs it.

Figures: median wall time of `python -m platformctl plan` for dev and prod, the bare import cost of
the Pulumi SDK modules the program uses (the floor no plan can beat), and a synthetic dev stack with
20 GPU pools to show how plan time grows with pools. Targets: dev <= 3 s; 20 pools <= 2x dev.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import stack_config

RUNS = 5
PROJECT = stack_config.PROJECT_DIR


def _median_seconds(command: list[str], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[1:])} failed:\n{result.stderr}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_stack(pools: int, directory: Path) -> Path:
    doc = yaml.safe_load((PROJECT / "Pulumi.dev.yaml").read_text())
    existing = doc["config"]["ai-platform:gpuNodeGroups"]
    # Keep the stack's own pools (Triton deployments name them) and add copies up to `pools`.
    existing += [{**existing[0], "name": f"pool-{i:02d}"} for i in range(len(existing), pools)]
    path = directory / f"Pulumi.dev-{pools}pools.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run() -> list[tuple[str, str]]:
    python = sys.executable
    results = []
    imports = _median_seconds([python, "-c", "import pulumi, pulumi_aws, pulumi_kubernetes, pulumi_random; "
                               "import pulumi_aws.ec2, pulumi_aws.eks, pulumi_aws.iam, pulumi_aws.s3, "
                               "pulumi_kubernetes.core.v1, pulumi_kubernetes.apps.v1, pulumi_kubernetes.helm.v3"])
    results.append(("import Pulumi SDK modules (floor)", f"{imports:.2f} s"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timings = {}
        for stack in ("dev", "prod"):
            timings[stack] = _median_seconds([python, "-m", "platformctl", "plan", "--stack", stack, "--out", str(out / stack)])
            results.append((f"plan {stack} (median of {RUNS})", f"{timings[stack]:.2f} s"))
        stack_file = synthetic_stack(20, out)
        many = _median_seconds([python, "-m", "platformctl", "plan", "--stack", "dev", "--stack-file", str(stack_file), "--out", str(out / "many")])
        results.append((f"plan dev with 20 GPU pools (median of {RUNS})", f"{many:.2f} s = {many / timings['dev']:.2f}x dev"))
    return results
