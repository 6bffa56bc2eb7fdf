"""Mock harness: run the whole program for a stack under Pulumi's mock runtime and query what it
registered. Runs of the real stack files are cached (read-only: do not mutate what they return)."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Iterable

import pulumi
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import stack_config
from platformctl.mockrun import COMPUTED, PROJECT, SECRET, PreviewMocks, ProgramRun, RecordedResource, RecordingMonitor, run_stack

STACKS = ("dev", "prod")
__all__ = ["COMPUTED", "SECRET", "STACKS", "ProgramRun", "RecordedResource", "plan", "plan_with", "run", "stack_values", "config_for"]


@functools.lru_cache(maxsize=None)
def plan(stack: str) -> ProgramRun:
    """The program run on the real `Pulumi.<stack>.yaml` (cached)."""
    return run_stack(stack)


def plan_with(stack: str, **overrides: Any) -> ProgramRun:
    """The program run on a real stack file with some `ai-platform:` keys replaced (not cached)."""
    return run_stack(stack, overrides={f"ai-platform:{k}": v for k, v in overrides.items()})


def run(build: Callable[[], Any], stack: str = "test", config: dict[str, Any] | None = None) -> ProgramRun:
    """Run `build` (a function creating resources: one component, a layer) under the same preview
    mocks and recording monitor as the whole program, without the stack files."""
    mocks = PreviewMocks()
    monitor = RecordingMonitor(mocks, stack, PROJECT)
    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config or {}), [])
    _sync_await(run_pulumi_func(build))
    ROOT.set(None)
    return ProgramRun(stack, monitor.recorded, {}, mocks.invokes)


def stack_values(stack: str) -> dict[str, Any]:
    """The stack's `ai-platform:` values, decoded, for building variations in tests."""
    values, _ = stack_config.read_stack_files(stack)
    return {k.split(":", 1)[1]: stack_config.decode_value(v) for k, v in values.items() if k.startswith("ai-platform:")}


def config_for(stack: str) -> stack_config.StackConfig:
    return stack_config.load_from_files(stack)


def inputs(resource: RecordedResource) -> dict[str, Any]:
    return resource.public_inputs()


def json_policy(resource: RecordedResource, key: str = "policy") -> dict[str, Any]:
    """A policy document input, asserted to be known at preview (an unknown one would make any
    check on it vacuous)."""
    value = resource.public_inputs()[key]
    assert value != COMPUTED, f"{resource.name}.{key} is unknown at preview; the test would check nothing"
    return json.loads(value)


def names(resources: Iterable[RecordedResource]) -> list[str]:
    return [r.name for r in resources]
