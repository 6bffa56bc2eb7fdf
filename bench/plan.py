"""How long an offline plan takes, from a cold process as a user runs it.

Figures: median wall time of `python -m platformctl plan` for dev and prod (with the CPU time, which
another load on a shared machine inflates less), the bare import cost of the Pulumi SDK packages a
dev plan actually loads (the floor no plan can beat: the program registers resources of each), and
a synthetic dev stack with 20 GPU pools to show how plan time grows with pools.
Targets: dev <= 3 s; 20 pools <= 2x dev.
"""

from __future__ import annotations

import resource
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


SDK_PACKAGES = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_random")


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_seconds(command: list[str], runs: int = RUNS) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `runs` cold runs."""
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _child_cpu()
        result = subprocess.run(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[1:])} failed:\n{result.stderr}")
        times.append(time.perf_counter() - start)
        cpu.append(_child_cpu() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def sdk_packages(python: str, out: Path) -> list[str]:
    """The Pulumi SDK packages (pulumi_aws.ec2, pulumi_kubernetes.core.v1, ...) a dev plan imports."""
    script = (
        "import contextlib, io, sys\n"
        "from platformctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['plan', '--stack', 'dev', '--out', {str(out)!r}])\n"
        f"print(' '.join(sorted(n for n, m in list(sys.modules.items()) if n.split('.')[0] in {SDK_PACKAGES!r} "
        "and hasattr(m, '__path__') and type(m).__name__ == 'module')))\n"
    )
    result = subprocess.run([python, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True)
    return result.stdout.split()


def _figure(wall: float, cpu: float) -> str:
    return f"{wall:.2f} s (CPU {cpu:.2f} s)"


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
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        packages = sdk_packages(python, out / "modules")
        imports = "import " + ", ".join(packages)
        results.append((f"import the {len(packages)} Pulumi SDK packages a dev plan loads (floor)",
                        _figure(*_median_seconds([python, "-c", imports]))))
        results.append(("the same with the cyclic GC off, as `plan` runs",
                        _figure(*_median_seconds([python, "-c", "import gc; gc.disable(); " + imports]))))
        timings = {}
        for stack in ("dev", "prod"):
            timings[stack] = _median_seconds([python, "-m", "platformctl", "plan", "--stack", stack, "--out", str(out / stack)])
            results.append((f"plan {stack} (median of {RUNS})", _figure(*timings[stack])))
        stack_file = synthetic_stack(20, out)
        many, many_cpu = _median_seconds([python, "-m", "platformctl", "plan", "--stack", "dev", "--stack-file", str(stack_file), "--out", str(out / "many")])
        results.append((f"plan dev with 20 GPU pools (median of {RUNS})",
                        f"{_figure(many, many_cpu)} = {many / timings['dev'][0]:.2f}x dev"))
    return results
