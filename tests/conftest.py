"""Suite-wide fixtures and the order files run in.

`make test` runs the suite on parallel workers (pytest-xdist, `-n 2 --dist loadfile`: each file on
one worker, so a module fixture is built once). Each worker is its own process with its own cache of
the whole-program runs (tests/harness.py), so a stack's plan is run at most once per worker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from pulumi.runtime.settings import ROOT
from rich.console import Console

import pulumi

# The files that take longest, longest first (measured with `pytest --durations=0`). xdist hands
# files to workers in collection order when told not to re-sort them by test count
# (`--no-loadscope-reorder`, which `make test` passes; xdist 3.8 xdist/scheduler/loadscope.py
# `schedule` sorts by count otherwise), so starting with the long ones keeps a worker from being
# left alone with one at the end (longest-processing-time first). Unlisted files follow in their
# usual order; the order within a file is never changed.
SLOWEST_FIRST = (  # by measured time (pytest --durations=0), longest first
    "test_gateway_proxy.py",  # the pinned LiteLLM proxy, started three times (two replicas + the planned config)
    "test_preflight.py",
    "test_security.py",  # checkov
    "test_workflows.py",  # `make plan` and the policy check as the workflow runs them, per stack
    "test_models_push.py",
    "test_openwebui.py",
    "test_plan.py",
    "test_gpu_stack.py",
    "test_inference_gateway.py",
    "test_triton.py",
    "test_foundation.py",
    "test_gateway_key_sync.py",  # a stub in LiteLLM's own interpreter (imports litellm: ~4.5 s)
    "test_smoke.py",  # MLServer and KServe's ModelServer
    "test_ci_role.py",
    "test_model_repository.py",
    "test_models_perf.py",
    "test_alerts.py",  # promtool
    "test_exposure.py",
    "test_architecture.py",
    "test_layers.py",
    "test_models_optimize.py",
)


def pytest_configure(config: pytest.Config) -> None:
    share_botocore_loader()


def share_botocore_loader() -> None:
    """Every botocore session of the test process shares one data loader (per AWS_DATA_PATH), so
    each service model (EC2's is megabytes of JSON) is parsed once per worker instead of once per
    session: preflight and models push make a new boto3 session per client, as they should. Within
    a session botocore already shares its loader between clients; this extends that to sessions.
    boto3 adds its own data directory to the loader of every session it makes: added once here."""
    import botocore.loaders
    import botocore.session

    create_loader = botocore.loaders.create_loader
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    class SearchPaths(list):
        def append(self, path: str) -> None:
            if path not in self:
                super().append(path)

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loader = create_loader(search_path_string)
            loader._search_paths = SearchPaths(loader.search_paths)
            loaders[search_path_string] = loader
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file stays together


@pytest.fixture(autouse=True)
def fresh_pulumi_runtime():
    """Every test starts and ends with no root stack and empty config, so no test sees resources,
    outputs or config left by another (mocks are installed anew by each program run)."""
    ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    yield
    ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])


@dataclass(frozen=True)
class WrittenPlan:
    directory: Path  # plan.json, plan.md, manifests/, helm/
    stdout: str  # what the command printed (text format, 200 columns)
    exit_code: int


@pytest.fixture(scope="session")
def written_plans(tmp_path_factory) -> dict[str, WrittenPlan]:
    """What `platformctl plan --stack <stack> --out DIR` writes and prints for each committed stack:
    the command's own function, in-process, on the harness's run of the stack (the program is
    deterministic, tests/test_plan.py checks it, so this is the run the command would make). Read
    only. The command as a process is tested in tests/test_plan.py and tests/test_workflows.py."""
    from platformctl import plan as plan_command
    from tests import harness

    def cached_run(stack: str, stack_file: Path | None = None):
        assert stack_file is None
        return harness.plan(stack)

    written = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan_command, "run_stack", cached_run)
        for stack in harness.STACKS:
            directory = tmp_path_factory.mktemp(f"plan-{stack}")
            stdout = io.StringIO()
            code = plan_command.plan(stack, directory, console=Console(file=stdout, width=200))
            written[stack] = WrittenPlan(directory, stdout.getvalue(), code)
    return written
