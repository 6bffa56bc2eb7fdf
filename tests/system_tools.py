"""System tools the tests run (Debian packages scripts/ensure-tools.sh installs): found on PATH,
or the test fails in CI (a suite must never silently skip what it is meant to check) and is
skipped elsewhere with the command that installs the tool."""

from __future__ import annotations

import os
import shutil

import pytest


def require(binary: str, package: str, checks: str) -> str:
    """Path of `binary` (from the Debian package `package`), which `checks` need."""
    path = shutil.which(binary)
    if path:
        return path
    message = (f"{binary} is not installed; install it with `sudo apt-get install --no-install-recommends {package}` "
               "(or run `make test`, which installs it when it can)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must not skip {checks}")
    pytest.skip(message)
