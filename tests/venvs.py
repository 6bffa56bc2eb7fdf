"""One lock for creating the tool venvs under build/venvs/ (MLServer, KServe, optimize) from tests.

`make test` runs test files on parallel workers; on a first run two of them could otherwise create
the same venv at once. Whoever holds the lock creates or checks the venv; the other then finds it
ready."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

import stack_config

VENVS = stack_config.PROJECT_DIR / "build" / "venvs"


@contextlib.contextmanager
def lock() -> Iterator[None]:
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / ".tests.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield
