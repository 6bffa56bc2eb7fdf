"""The code has no undefined names, unused imports or variables (ruff's pyflakes rules)."""

import subprocess
import sys

import stack_config


def test_ruff_finds_no_pyflakes_errors():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                            capture_output=True, text=True, cwd=stack_config.PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
