"""Run the real Pulumi program under Pulumi's mock runtime, in preview mode, and record what it
would register: every resource with its engine-level inputs and options, and the stack outputs.

Mocks echo a resource's inputs back as its state and invent nothing else, so values that only
exist after a deploy (ARNs, IDs, endpoints) stay unknown exactly as `pulumi preview` shows them.
"""

from __future__ import annotations

import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import stack_config
from stack_config.base import OFFLINE_SECRET_PLACEHOLDER

# How plan.json shows what a preview cannot: a value known only after deploy, and a secret (the
# same placeholder the config loader puts in place of an encrypted value it cannot decrypt).
COMPUTED = "<computed>"
SECRET = OFFLINE_SECRET_PLACEHOLDER
PROJECT = "ai-platform"


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]  # raw: may hold Unknown and wrapped secrets
    provider: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    dependencies: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    aliases: list[str] = field(default_factory=list)  # resolved to URNs (see AliasResolver)
    custom_timeouts: dict[str, str] = field(default_factory=dict)  # the customTimeouts option, as set

    @property
    def parent_type(self) -> str:
        return self.parent.split("::")[2].split("$")[-1] if self.parent else ""

    def public_inputs(self) -> dict[str, Any]:
        """Inputs as JSON-safe data: unknowns as `<computed>`, secrets as `[secret]`."""
        return public_value(self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider.rsplit("::", 1)[0] if self.provider else "",
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "dependencies": sorted(self.dependencies),
            "ignoreChanges": self.ignore_changes,
            "aliases": self.aliases,
            "customTimeouts": self.custom_timeouts,
            "inputs": self.public_inputs(),
        }


def public_value(value: Any) -> Any:
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return COMPUTED
    if rpc.is_rpc_secret(value):
        # Secretness is pushed up to the enclosing map (e.g. a Secret's stringData): keep its
        # keys, which are not secret, so manifests keep their shape.
        inner = rpc.unwrap_rpc_secret(value)
        if isinstance(inner, dict):
            return {k: SECRET for k in inner}
        return SECRET
    if isinstance(value, dict):
        return {k: public_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_value(v) for v in value]
    if isinstance(value, pulumi.FileAsset):
        return file_asset(value.path)
    if isinstance(value, pulumi.Asset) or isinstance(value, pulumi.Archive):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        # Numbers cross the engine protocol as doubles; Kubernetes integer fields (ports, uids)
        # must come out as integers or the manifests would not apply (and checkov misreads them).
        return int(value)
    return value


def file_asset(path: str) -> dict[str, Any]:
    """A FileAsset as plan.json shows it: its path (relative to the project when under it, so plans
    compare across checkouts) and whether the file is there; the engine reads it at preview and fails
    on a missing one (pulumi/pulumi sdk/go/common/resource/asset/asset.go readPath)."""
    absolute = Path(path) if Path(path).is_absolute() else stack_config.PROJECT_DIR / path
    try:
        shown = str(absolute.relative_to(stack_config.PROJECT_DIR))
    except ValueError:
        shown = str(absolute)
    return {"fileAsset": shown, "exists": absolute.is_file()}


def _to_state(value: Any) -> Any:
    """Inputs echoed back as state; unknowns must go back over the wire as the unknown sentinel."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _to_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_state(v) for v in value]
    return value


class PreviewMocks(Mocks):
    def __init__(self) -> None:
        self.invokes: list[str] = []

    def new_resource(self, args: MockResourceArgs):
        return None, _to_state(args.inputs)

    def call(self, args: MockCallArgs):
        # Invokes would read the cloud; offline they return nothing, so their results stay unknown.
        self.invokes.append(args.token)
        return {}


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A resource's URN as the engine builds it: the parent's *full* qualified type chain, none
    under the root stack (pulumi/pulumi pkg/resource/deploy/deployment.go `generateURN`).
    MockMonitor.make_urn keeps only the parent's last type and prefixes `pulumi:pulumi:Stack$` to
    top-level resources: URNs no real stack has."""
    if parent and _qualified_type(parent) != ROOT_STACK_TYPE:
        type_ = f"{_qualified_type(parent)}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


class AliasResolver:
    """Each resource's aliases as the URNs the engine would look its old state up by, following
    pulumi/pulumi pkg/resource/deploy/step_generator.go: `collapseAliasToUrn` (an alias spec's
    empty name/type/parent default to the resource's own; `noParent` or a root-stack parent means
    top level; an explicit parent's own alias stands in for it) and `generateAliases` + `inheritedChildAlias` (a child of an aliased parent gets,
    for the parent's alias, its own name/type under that alias, the parent-name prefix of its name
    swapped for the alias's name, and the same for each of its own aliases). The engine inherits
    the one parent alias that matched old state; offline every candidate is listed."""

    def __init__(self, stack: str, project: str) -> None:
        self.stack, self.project = stack, project
        self.by_urn: dict[str, list[str]] = {}

    def resolve(self, urn: str, request) -> list[str]:
        own = [*request.aliasURNs, *(urn for alias in request.aliases for urn in self._collapse(request, alias))]
        found = list(dict.fromkeys(own))
        parent = request.parent
        parent_name = parent.rsplit("::", 1)[-1] if parent else ""
        for parent_alias in self.by_urn.get(parent, []):
            candidates = [(request.type, request.name)] + [(self._type_of(a), a.rsplit("::", 1)[-1]) for a in own]
            for type_, name in candidates:
                if name.startswith(parent_name):
                    name = parent_alias.rsplit("::", 1)[-1] + name[len(parent_name):]
                inherited = engine_urn(self.stack, self.project, parent_alias, type_, name)
                if inherited not in found:
                    found.append(inherited)
        self.by_urn[urn] = found
        return found

    @staticmethod
    def _type_of(urn: str) -> str:
        return _qualified_type(urn).split("$")[-1]

    def _collapse(self, request, alias) -> list[str]:
        if alias.WhichOneof("alias") == "urn":
            return [alias.urn]
        spec = alias.spec
        # An explicit parent that itself answers to old URNs: the engine uses the one it matched.
        parents = [spec.parentUrn, *self.by_urn.get(spec.parentUrn, [])] if spec.parentUrn else [request.parent]
        found = []
        for parent in parents:
            if spec.noParent or (parent and _qualified_type(parent) == ROOT_STACK_TYPE):
                parent = ""
            found.append(engine_urn(spec.stack or self.stack, spec.project or self.project, parent,
                                    spec.type or request.type, spec.name or request.name))
        return list(dict.fromkeys(found))


class RecordingMonitor(MockMonitor):
    """The mock monitor, with engine URNs, recording every registration with its aliases."""

    def __init__(self, mocks: Mocks, stack: str = "", project: str = PROJECT):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.stack, self.project = stack, project
        self.alias_resolver = AliasResolver(stack, project)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(self.stack or pulumi.get_stack(), self.project, parent, type_, name)

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != ROOT_STACK_TYPE:
            self.recorded.append(RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(request.object),
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                dependencies=list(request.dependencies),
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                aliases=self.alias_resolver.resolve(response.urn, request),
                custom_timeouts={k: v for k in ("create", "update", "delete")
                                 if (v := getattr(request.customTimeouts, k, ""))},
            ))
        return response


@dataclass
class StackOutput:
    value: Any  # JSON-safe, unknown parts as COMPUTED
    known: bool
    secret: bool

    def public(self) -> Any:
        return SECRET if self.secret else self.value


@dataclass
class ProgramRun:
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, StackOutput]
    invokes: list[str]

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: Optional[str] = None) -> RecordedResource:
        found = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}" + (f" of type {type_}" if type_ else ""))
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def kubernetes_objects(self) -> list[RecordedResource]:
        return [r for r in self.in_tree_order() if r.type.startswith("kubernetes:") and r.custom
                and not r.type.startswith("kubernetes:helm.sh/")]

    def in_tree_order(self) -> list[RecordedResource]:
        """Parents before children, siblings by (type, name): the same order on every run, unlike
        registration order, which follows the program's asynchronous resolution."""
        children: dict[str, list[RecordedResource]] = {}
        urns = {r.urn for r in self.resources}
        for resource in self.resources:
            parent = resource.parent if resource.parent in urns else ""
            children.setdefault(parent, []).append(resource)
        ordered: list[RecordedResource] = []

        def visit(parent: str) -> None:
            for child in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
                ordered.append(child)
                visit(child.urn)

        visit("")
        return ordered

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "resources": [r.to_json() for r in self.in_tree_order()],
            "outputs": {name: out.public() for name, out in self.outputs.items()},
        }


async def _resolve_output(value: Any) -> StackOutput:
    output = pulumi.Output.from_input(value)
    known = await output.is_known()
    secret = await output.is_secret()
    resolved = await output.future(with_unknowns=True)
    return StackOutput(public_value(resolved), known, secret)


def run_program(
    stack: str,
    config: dict[str, Any],
    secret_keys: Iterable[str] = (),
    project_dir: Path = stack_config.PROJECT_DIR,
) -> ProgramRun:
    """Run `__main__.py` of the project for `stack` with engine-style `config` under mocks."""
    mocks = PreviewMocks()
    monitor = RecordingMonitor(mocks, stack, PROJECT)
    ROOT.set(None)  # a fresh root Stack per run, also when one process plans several stacks
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    program = str(project_dir / "__main__.py")
    _sync_await(run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__")))

    root = ROOT.get()
    outputs: dict[str, StackOutput] = {}
    for name, value in (getattr(root, "outputs", None) or {}).items():
        outputs[name] = _sync_await(_resolve_output(value))
    ROOT.set(None)
    return ProgramRun(stack, monitor.recorded, outputs, mocks.invokes)


def run_stack(
    stack: str,
    project_dir: Path = stack_config.PROJECT_DIR,
    overrides: Optional[dict[str, Any]] = None,
    stack_file: Optional[Path] = None,
) -> ProgramRun:
    """Validate the stack's config files (raising ConfigError), then run the program on them.

    `overrides` replaces engine-style keys (e.g. {"ai-platform:gpuNodeGroups": [...]}) — tests use it
    to vary one setting of a real stack file."""
    values, secret = stack_config.read_stack_files(stack, project_dir, stack_file)
    for key, value in (overrides or {}).items():
        values[key] = stack_config.engine_value(value)
    stack_config.parse(values, secret, stack)
    return run_program(stack, values, secret, project_dir)
