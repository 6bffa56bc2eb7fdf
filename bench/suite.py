"""How long `make test` takes warm, as a contributor runs it.

Figure: wall time of one `make test` after a first run has built the virtualenvs and tools (so the
figure is the suite, not the installs), with the number of tests, and pytest's own figure.
Target: <= 90 s warm on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import time

import stack_config

PROJECT = stack_config.PROJECT_DIR


def run() -> list[tuple[str, str]]:
    subprocess.run(["make", "--no-print-directory", "venv", "tools"], cwd=PROJECT, check=True,
                   capture_output=True)
    start = time.perf_counter()
    result = subprocess.run(["make", "--no-print-directory", "test"], cwd=PROJECT, capture_output=True,
                            text=True)
    wall = time.perf_counter() - start
    summary = re.search(r"(\d+) passed.* in ([\d.]+)s", result.stdout)
    if result.returncode != 0 or not summary:
        return [("`make test`, warm", f"failed (exit {result.returncode}): {result.stdout.strip()[-200:]}")]
    return [("`make test`, warm (two xdist workers)",
             f"{wall:.1f} s wall, {summary.group(1)} tests (pytest: {summary.group(2)} s)")]
