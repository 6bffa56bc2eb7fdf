"""Every resource keeps its URN or answers to it through an alias: a changed URN is a delete and a
recreate on a real stack (the cluster, the bucket, the database).

`tests/fixtures/urns/<stack>.txt` holds every URN of the dev and prod plans before the layer
components (issue 13), as the engine builds them (pulumi/pulumi pkg/resource/deploy/deployment.go
`generateURN`: the parent's full qualified type chain, none under the root stack). The aliases are
resolved to URNs as the engine resolves them (pkg/resource/deploy/step_generator.go
`collapseAliasToUrn`, `generateAliases`, `inheritedChildAlias`), from the alias specs the Python SDK
3.272 sends (sdk/python/lib/pulumi/runtime/resource.py `prepare_aliases`: specs, not URNs, since the
monitor advertises RESOURCE_MONITOR_FEATURE_ALIAS_SPECS, as the mock monitor does)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from tests.harness import STACKS, ProgramRun, plan, plan_with, run

FIXTURES = Path(__file__).parent / "fixtures" / "urns"


def recorded_urns(stack: str) -> list[str]:
    return (FIXTURES / f"{stack}.txt").read_text().split()


def unanswered(urns: list[str], run_: ProgramRun) -> list[str]:
    """The URNs no resource of `run_` has, neither as its URN nor as an alias."""
    answered = {r.urn for r in run_.resources} | {a for r in run_.resources for a in r.aliases}
    return [urn for urn in urns if urn not in answered]


@pytest.mark.parametrize("stack", STACKS)
def test_every_urn_of_the_plan_before_the_layers_is_still_answered(stack):
    urns = recorded_urns(stack)
    assert len(urns) > 100, "the fixture lost its URNs: the test would pass vacuously"
    assert unanswered(urns, plan(stack)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_two_resources_answer_to_the_same_urn(stack):
    """The engine refuses a URN claimed twice (step_generator.go: GetDuplicateResourceAliasError)."""
    claims: dict[str, str] = {}
    for resource in plan(stack).resources:
        for urn in {resource.urn, *resource.aliases}:
            assert claims.setdefault(urn, resource.urn) == resource.urn, f"{urn}: {claims[urn]} and {resource.urn}"


def test_the_real_program_without_its_aliases_would_replace_everything(monkeypatch):
    """The layers' one alias per moved component is what keeps the stack: without it, no old URN
    of a moved resource is answered (on a real stack: delete and recreate the cluster, the bucket)."""
    import components.layers.context as context
    from components.layers import apps, foundation, gpu_stack, inference

    def moved_without_alias(layer, *depends_on, providers=()):
        return pulumi.ResourceOptions(parent=layer, depends_on=list(depends_on), providers=list(providers))

    for module in (context, apps, foundation, gpu_stack, inference):
        monkeypatch.setattr(module, "moved", moved_without_alias)
    urns = recorded_urns("dev")
    lost = unanswered(urns, plan_with("dev"))
    assert len(lost) >= len(urns) - 1  # all but the AWS provider, which stays at the top
    assert "urn:pulumi:dev::ai-platform::aws:eks/cluster:Cluster::cluster-eks" not in urns  # a child, not top level
    assert "urn:pulumi:dev::ai-platform::ai-platform:cluster:Cluster$aws:eks/cluster:Cluster::cluster-eks" in lost


class Leaf(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Leaf", name, None, opts)


class Old(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Old", name, None, opts)
        Leaf(f"{name}-leaf", pulumi.ResourceOptions(parent=self))


def build(move: bool, alias: bool):
    """`Old` at the top (before), or moved under a new `Layer` component (after), with or without
    an alias to its old parent (the stack); its child `Leaf` declares nothing."""
    def program():
        if not move:
            Old("db")
            return
        layer = pulumi.ComponentResource("test:index:Layer", "data")
        aliases = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)] if alias else []
        Old("db", pulumi.ResourceOptions(parent=layer, aliases=aliases))
    return program


def test_the_check_fails_when_a_resource_is_re_parented_without_an_alias():
    before = [r.urn for r in run(build(move=False, alias=False)).resources]
    assert before == ["urn:pulumi:test::ai-platform::test:index:Old::db",
                      "urn:pulumi:test::ai-platform::test:index:Old$test:index:Leaf::db-leaf"]
    moved = run(build(move=True, alias=False))
    assert sorted(unanswered(before, moved)) == sorted(before)
    # the engine's URN of the grandchild carries the whole type chain (the mock monitor's would not)
    assert moved.named("db-leaf").urn == "urn:pulumi:test::ai-platform::test:index:Layer$test:index:Old$test:index:Leaf::db-leaf"


def test_an_alias_on_the_moved_component_answers_for_its_children_too():
    before = [r.urn for r in run(build(move=False, alias=False)).resources]
    moved = run(build(move=True, alias=True))
    assert unanswered(before, moved) == []
    assert moved.named("db").aliases == ["urn:pulumi:test::ai-platform::test:index:Old::db"]
    assert moved.named("db-leaf").aliases == ["urn:pulumi:test::ai-platform::test:index:Old$test:index:Leaf::db-leaf"]
    assert moved.named("data").aliases == []
