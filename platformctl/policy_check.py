"""`platformctl policy check PLAN_JSON [--config FILE]`: the CrossGuard policies, offline.

Evaluates the same policy functions as the pack (`policy/rules.py`) over the resources of a
`plan.json` written by `platformctl plan`, prints the violations grouped by policy with their
enforcement level, and exits 1 when a mandatory policy is violated (0 otherwise, 2 when the plan or
the config cannot be read). `platformctl plan` calls `check_plan()` + `render()` itself.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from rich.console import Console
from rich.text import Text

from policy.rules import (
    ALL_POLICIES,
    POLICIES_BY_NAME,
    Finding,
    PackConfig,
    PolicyConfigError,
    StackResource,
    evaluate,
    load_config,
)
from stack_config import PROJECT_DIR

POLICY_DIR = PROJECT_DIR / "policy"


class PlanError(Exception):
    """plan.json is missing or not in the shape `platformctl plan` writes."""


def config_path_for(stack: Optional[str]) -> Optional[Path]:
    """`policy/config.<stack>.json` when the stack has one."""
    if not stack:
        return None
    path = POLICY_DIR / f"config.{stack}.json"
    return path if path.is_file() else None


@dataclass(frozen=True)
class Result:
    stack: Optional[str]
    config_source: Optional[str]
    findings: list[Finding]
    resources: int

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.evaluated]

    @property
    def mandatory(self) -> list[Finding]:
        return [f for f in self.violations if f.level == "mandatory"]

    @property
    def advisory(self) -> list[Finding]:
        return [f for f in self.violations if f.level == "advisory"]

    @property
    def not_evaluated(self) -> list[Finding]:
        return [f for f in self.findings if not f.evaluated]

    @property
    def passed(self) -> bool:
        return not self.mandatory

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def resources_from_plan(plan: Any) -> list[StackResource]:
    """plan.json resources as the policies see them. Raises PlanError on a malformed plan."""
    if not isinstance(plan, Mapping) or not isinstance(plan.get("resources"), list):
        raise PlanError("not a plan: expected a JSON object with a 'resources' list (as written by `platformctl plan`)")
    resources = []
    for index, raw in enumerate(plan["resources"]):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str) or not isinstance(raw.get("urn"), str):
            raise PlanError(f"resources[{index}]: expected an object with string 'type' and 'urn'")
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, Mapping):
            raise PlanError(f"resources[{index}] ({raw['urn']}): 'inputs' must be an object")
        name = raw.get("name") or raw["urn"].rsplit("::", 1)[-1]
        dependencies = tuple(map(str, raw.get("dependencies") or []))
        by_input = raw.get("propertyDependencies") or {}
        by_input = {k: tuple(map(str, v)) for k, v in by_input.items()} if isinstance(by_input, Mapping) else {}
        resources.append(StackResource(raw["type"], str(name), raw["urn"], inputs, dependencies, by_input))
    return resources


def check_plan(plan: Mapping[str, Any], config: PackConfig | str | Path | None = None) -> Result:
    """Evaluate every policy over a plan. `config` is a PackConfig, a config file, or None for the
    stack's own `policy/config.<stack>.json` (built-in defaults when the stack has none).

    Raises PlanError / PolicyConfigError with a readable message."""
    resources = resources_from_plan(plan)
    stack = plan.get("stack") if isinstance(plan.get("stack"), str) else None
    if config is None:
        path = config_path_for(stack)
        config = load_config(path) if path else PackConfig(source=None)
    elif not isinstance(config, PackConfig):
        config = load_config(config)
    source = config.source
    if source and Path(source).is_absolute() and Path(source).is_relative_to(PROJECT_DIR):
        config = PackConfig(config.levels, config.settings, str(Path(source).relative_to(PROJECT_DIR)))
    return Result(stack, config.source, evaluate(resources, config), len(resources))


def _where(f: Finding) -> str:
    if not f.urn:
        return "stack"
    kind = f.resource_type.rsplit(":", 1)[-1] if f.resource_type else "resource"
    return f"{kind} {f.resource_name}" if f.resource_name else f.urn


def render(result: Result, console: Optional[Console] = None) -> None:
    """Print the findings grouped by policy (ALL_POLICIES order), then a one-line verdict."""
    console = console or Console(highlight=False)
    out = lambda text: console.print(text, soft_wrap=True)  # noqa: E731 - long messages stay one line
    config = result.config_source or "built-in defaults"
    out(Text(f"Policy check ({result.resources} resources, stack {result.stack or '?'}, config {config})", style="bold"))
    for policy in ALL_POLICIES:
        mine = [f for f in result.violations if f.policy == policy.name]
        if not mine:
            continue
        level = mine[0].level
        mark, style = ("✗", "red") if level == "mandatory" else ("!", "yellow")
        header = Text(f"{mark} {policy.name} ", style=f"bold {style}")
        header.append(f"[{level}] ", style=style)
        header.append(policy.description)
        out(header)
        for f in mine:
            out(Text(f"    {_where(f)}: {f.message}"))
    notes = result.not_evaluated
    if notes:
        out(Text("Not evaluated (values unknown until deployment):", style="dim"))
        for f in notes:
            out(Text(f"    {f.policy} - {_where(f)}: {f.message}", style="dim"))
    failed = {f.policy for f in result.violations}
    clean = sum(1 for p in ALL_POLICIES if p.name not in failed)
    verdict = Text("FAILED" if not result.passed else "passed", style="bold red" if not result.passed else "bold green")
    line = Text("Policies ")
    line.append_text(verdict)
    line.append(f": {len(result.mandatory)} mandatory violation(s), {len(result.advisory)} advisory, "
                f"{len(notes)} not evaluated; {clean}/{len(ALL_POLICIES)} policies clean")
    out(line)


def plan_section(run: Any, config: Any, plan_doc: dict, console: Console, markdown: bool) -> tuple[str, int]:
    """`platformctl plan` hook: check the plan just written against the stack's policy config,
    print the result under the resource tree, and fail the plan on a mandatory violation."""
    try:
        result = check_plan(plan_doc)
    except (PlanError, PolicyConfigError) as exc:
        if not markdown:
            console.print(Text(f"policy check: error: {exc}", style="red"), soft_wrap=True)
        return f"error: {exc}", 2
    recorder = Console(record=True, file=io.StringIO(), width=200, color_system=None, highlight=False)
    render(result, recorder)
    if not markdown:
        render(result, console)
    return "```\n" + recorder.export_text().rstrip() + "\n```", result.exit_code


PLAN_SECTION_TITLE = "Policy check"


def _run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    path = Path(args.plan)
    try:
        plan = json.loads(path.read_text())
    except OSError as exc:
        err.print(Text(f"error: cannot read {path}: {exc.strerror}"), soft_wrap=True)
        if not path.exists():
            err.print(Text("hint: write one with `.venv/bin/python -m platformctl plan --stack <stack>` (build/plan/<stack>/plan.json)"), soft_wrap=True)
        return 2
    except json.JSONDecodeError as exc:
        err.print(Text(f"error: {path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"), soft_wrap=True)
        return 2
    try:
        result = check_plan(plan, args.config)
    except PlanError as exc:
        err.print(Text(f"error: {path}: {exc}"), soft_wrap=True)
        return 2
    except PolicyConfigError as exc:
        err.print(Text(f"error: {exc}"), soft_wrap=True)
        return 2
    render(result)
    return result.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("policy", help="CrossGuard policies (offline checks)")
    commands = group.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check",
        help="evaluate the policy pack over a plan.json; exit 1 on a mandatory violation",
        description="Evaluate the policies of policy/ over a plan.json written by `platformctl plan`. "
                    "Exit codes: 0 no mandatory violation, 1 mandatory violation, 2 unreadable input.",
    )
    check.add_argument("plan", metavar="PLAN_JSON", help="plan.json from `platformctl plan`")
    check.add_argument(
        "--config", metavar="FILE",
        help="policy pack config (default: policy/config.<stack>.json for the plan's stack)",
    )
    check.set_defaults(func=_run)


__all__ = ["PlanError", "Result", "check_plan", "config_path_for", "plan_section", "render", "register", "POLICIES_BY_NAME"]
