"""`platformctl plan`: an offline preview of a stack.

Runs the real program under Pulumi's mock runtime on the real `Pulumi.<stack>.yaml`, prints the
resource tree, counts by type and the stack outputs, and writes `plan.json` plus one manifest per
Kubernetes object. Values known only after deploy are shown as `<computed>`; secrets as `[secret]`.
Under the tree: the policy check, the first-deploy check (`platformctl/first_deploy.py`: what
`pulumi up` waits for, in order, and whether each can finish) and the cost estimate.

Exit codes: 0 fine (warnings allowed), 1 a mandatory policy is violated, 2 the config is refused
(or a report could not be produced), 3 the first deploy would certainly not finish. When several
apply, the highest is returned and every report is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pulumi
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

import stack_config
from platformctl import first_deploy
from platformctl.mockrun import COMPUTED, ProgramRun, RecordedResource, run_stack

# Settings worth seeing in the tree, per resource type (engine-level input paths).
KEY_SETTINGS: dict[str, list[str]] = {
    "aws:ec2/vpc:Vpc": ["cidrBlock"],
    "aws:ec2/subnet:Subnet": ["availabilityZone", "cidrBlock"],
    "aws:eks/cluster:Cluster": ["name", "version", "vpcConfig.endpointPublicAccess", "vpcConfig.endpointPrivateAccess", "enabledClusterLogTypes"],
    "aws:eks/nodeGroup:NodeGroup": ["amiType", "instanceTypes", "capacityType", "scalingConfig", "labels", "taints"],
    "aws:eks/addon:Addon": ["addonName"],
    "aws:autoscaling/tag:Tag": ["tag.key", "tag.value"],
    "aws:s3/bucket:Bucket": ["bucket", "forceDestroy"],
    "aws:s3/bucketV2:BucketV2": ["bucket", "forceDestroy"],
    "aws:iam/role:Role": ["name"],
    "aws:rds/instance:Instance": ["engine", "engineVersion", "instanceClass", "deletionProtection"],
    "kubernetes:helm.sh/v3:Release": ["chart", "version", "namespace"],
}


def _lookup(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, dict) and {"key", "effect"} <= set(v) for v in value):
        return ", ".join(f"{v['key']}={v.get('value', '')}:{v['effect']}" for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def describe(resource: RecordedResource) -> str:
    inputs = resource.public_inputs()
    if resource.type.startswith("kubernetes:") and "kind" in inputs:
        meta = inputs.get("metadata") or {}
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        detail = f"{inputs['kind']} {where}{meta.get('name', COMPUTED)}"
    else:
        parts = []
        for path in KEY_SETTINGS.get(resource.type, []):
            value = _lookup(inputs, path)
            if value is not None:
                parts.append(f"{path.rsplit('.', 1)[-1]}={_short(value)}")
        detail = " ".join(parts)
    flags = [flag for flag, on in (("protect", resource.protect), ("retainOnDelete", resource.retain_on_delete)) if on]
    return f"{detail} [{', '.join(flags)}]" if flags else detail


def build_tree(run: ProgramRun) -> Tree:
    tree = Tree(f"[bold]ai-platform-{run.stack}[/] (pulumi:pulumi:Stack)")
    nodes: dict[str, Tree] = {}
    for resource in run.in_tree_order():
        parent = nodes.get(resource.parent, tree)
        label = f"[bold]{resource.name}[/] [dim]{resource.type}[/]"
        detail = escape(describe(resource))
        nodes[resource.urn] = parent.add(f"{label} {detail}" if detail else label)
    return tree


def _file_name(resource: RecordedResource, inputs: dict[str, Any]) -> str:
    """<kind>-<namespace>-<name>.yaml: unique per object, and stable between runs so plans diff."""
    meta = inputs.get("metadata") or {}
    parts = [inputs.get("kind", "Object"), meta.get("namespace") or "", meta.get("name") or resource.name]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).lower() + ".yaml"


COMPUTED_NOTE = "plan.ai-platform/computed-at-deploy"


def manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object as it would be applied. A Secret's data built from values generated at
    deploy (passwords) is unknown as a whole in a preview; it is left out and named in an
    annotation, so the manifest stays schema-valid and says what it lacks."""
    doc = dict(inputs)
    missing = [key for key in ("data", "stringData") if isinstance(doc.get(key), str)]
    if missing:
        for key in missing:
            del doc[key]
        meta = dict(doc.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), COMPUTED_NOTE: ",".join(missing)}
        doc["metadata"] = meta
    return doc


def write_outputs(run: ProgramRun, out_dir: Path) -> dict[str, Any]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "manifests").mkdir(parents=True)
    plan = run.to_json()
    plan["firstDeploy"] = first_deploy.check(plan).to_json()
    (out_dir / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=False) + "\n")
    for resource in run.kubernetes_objects():
        inputs = resource.public_inputs()
        if "kind" not in inputs:
            continue
        (out_dir / "manifests" / _file_name(resource, inputs)).write_text(yaml.safe_dump(manifest(inputs), sort_keys=False))
    releases = run.of_type("kubernetes:helm.sh/v3:Release")
    if releases:
        (out_dir / "helm").mkdir()
        for release in releases:
            (out_dir / "helm" / f"{release.name}.yaml").write_text(yaml.safe_dump(release.public_inputs(), sort_keys=False))
    return plan


def counts_table(run: ProgramRun) -> Table:
    table = Table(title="Resources by type", show_lines=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(Counter(r.type for r in run.resources).items()):
        table.add_row(type_, str(count))
    table.add_row("[bold]total[/]", f"[bold]{len(run.resources)}[/]")
    return table


def outputs_table(run: ProgramRun) -> Table:
    table = Table(title="Stack outputs")
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for name, output in run.outputs.items():
        value = output.public()
        table.add_row(name, escape(value if isinstance(value, str) else json.dumps(value)))
    return table


def render_markdown(run: ProgramRun, extra_sections: list[tuple[str, str]]) -> str:
    lines = [f"### Offline plan: `{run.stack}`", "", f"{len(run.resources)} resources (values known only after deploy show as `{COMPUTED}`).", ""]
    lines += ["| type | count |", "|---|---:|"]
    lines += [f"| `{t}` | {c} |" for t, c in sorted(Counter(r.type for r in run.resources).items())]
    lines += ["", "<details><summary>Resource tree</summary>", "", "```"]
    console = Console(width=200, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(build_tree(run))
    lines += [console.export_text().rstrip(), "```", "", "</details>", "", "| output | value |", "|---|---|"]
    for name, output in run.outputs.items():
        value = output.public()
        lines.append(f"| `{name}` | `{value if isinstance(value, str) else json.dumps(value)}` |")
    for title, body in extra_sections:
        lines += ["", f"#### {title}", "", body]
    return "\n".join(lines) + "\n"


# Reports shown under the resource tree: (title, fn(run, config, plan, console, markdown) ->
# (text, exit_code)).
PlanSection = Callable[[ProgramRun, stack_config.StackConfig, dict, Console, bool], tuple[str, int]]


def sections() -> list[tuple[str, PlanSection]]:
    from platformctl import cost, policy_check

    return [
        (policy_check.PLAN_SECTION_TITLE, policy_check.plan_section),
        (first_deploy.PLAN_SECTION_TITLE, first_deploy.plan_section),
        (cost.PLAN_SECTION_TITLE, cost.plan_section),
    ]


# What a non-zero exit of a section means (the plan exits with the highest).
EXIT_REASONS = {
    1: "A mandatory policy is violated (see the policy check above): exit 1.",
    2: "A report could not be produced (see the error above): exit 2.",
    first_deploy.EXIT_DEADLOCK: f"The first deploy would not finish (see \"{first_deploy.PLAN_SECTION_TITLE}\" above): exit {first_deploy.EXIT_DEADLOCK}.",
}


def plan(stack: str, out_dir: Path, fmt: str = "text", console: Console | None = None, stack_file: Path | None = None) -> int:
    console = console or Console()
    err = Console(stderr=True)
    try:
        config = stack_config.load_from_files(stack, stack_file=stack_file)
        run = run_stack(stack, stack_file=stack_file)
    except (stack_config.ConfigError, pulumi.RunError) as error:
        # RunError: the program refused the config (as `pulumi up` would, without a traceback).
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    plan_doc = write_outputs(run, out_dir)

    codes: list[int] = []
    extra: list[tuple[str, str]] = []
    if fmt == "text":
        console.print(build_tree(run))
        console.print(counts_table(run))
        console.print(outputs_table(run))
    for title, section in sections():
        # Only the text format prints the reports; markdown and json keep stdout machine-readable.
        text, code = section(run, config, plan_doc, console, fmt != "text")
        codes.append(code)
        extra.append((title, text))
    exit_code = max(codes, default=0)
    markdown = render_markdown(run, extra)
    (out_dir / "plan.md").write_text(markdown)
    if fmt == "markdown":
        sys.stdout.write(markdown)
    elif fmt == "json":
        sys.stdout.write(json.dumps(plan_doc, indent=2) + "\n")
    else:
        manifests = len(list((out_dir / "manifests").glob("*.yaml")))
        console.print(f"Wrote {out_dir}/plan.json, {manifests} manifests in {out_dir}/manifests/, {out_dir}/plan.md")
        for code in sorted(set(codes) - {0}):
            console.print(EXIT_REASONS.get(code, f"exit {code}"), markup=False)
        if stack_file is None:
            console.print(f"Before the first deploy, check GPU quotas and zone offerings: make preflight STACK={stack}")
            console.print(f"Deploy for real: pulumi up -s {stack}")
    return exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plan", help="offline preview of a stack under Pulumi's mock runtime")
    parser.add_argument("--stack", default="dev", help="stack name (Pulumi.<stack>.yaml), default dev")
    parser.add_argument("--out", type=Path, help="output directory (default build/plan/<stack>)")
    parser.add_argument("--format", choices=["text", "markdown", "json"], default="text", help="what to print")
    parser.add_argument("--stack-file", type=Path, help="plan this stack file instead of Pulumi.<stack>.yaml (to try a variant)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # A variant gets its own directory by default, so it never overwrites the stack's real plan.
    default_dir = Path("build/plan") / (args.stack_file.stem if args.stack_file else args.stack)
    return plan(args.stack, args.out or default_dir, args.format, stack_file=args.stack_file)
