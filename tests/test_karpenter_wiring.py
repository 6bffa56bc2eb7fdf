"""`ai-platform:gpuProvisioner: karpenter`: the config it refuses, what the stack plans in each mode,
and what reads GPU capacity (policy pack, cost, first-deploy check). Karpenter facts cited at
aws/karpenter-provider-aws tag v1.14.0 (see components/karpenter_manifests.py)."""

from __future__ import annotations

import pytest

import stack_config

NETWORK = {"availabilityZones": ["us-west-2a", "us-west-2b"]}


def _problems(**keys) -> list[str]:
    values = {"aws:region": "us-west-2"}
    values.update({f"ai-platform:{k}": stack_config.engine_value(v) for k, v in keys.items()})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(values, stack="test")
    return caught.value.problems


def _pool(**changes):
    return {"name": "inference", "instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "maxSize": 2, **changes}


def test_default_is_node_groups():
    assert stack_config.load_from_files("dev").gpuProvisioner == "nodeGroups"
    assert stack_config.load_from_files("prod").gpuProvisioner == "nodeGroups"


def test_karpenter_refuses_warm_nodes_mixed_mig_and_autoscaler_settings_all_at_once():
    """A NodePool has no minimum (karpenter.sh_nodepools.yaml has `limits`, no min), and Karpenter
    sizes nodes from EC2's GPU count, so nvidia.com/mig-<profile> requests never launch one
    (docs/karpenter.md, "GPU sharing with Karpenter")."""
    found = _problems(
        network=NETWORK, gpuProvisioner="karpenter", clusterAutoscaler={"expander": "least-waste"},
        gpuNodeGroups=[_pool(minSize=1, desiredSize=1),
                       _pool(name="mig", instanceTypes=["p4d.24xlarge"], capacityType="ON_DEMAND",
                             sharing={"mode": "mig", "migStrategy": "mixed", "migProfile": "all-1g.5gb"})],
    )
    text = "\n".join(found)
    for key in ("gpuNodeGroups[0].minSize", "gpuNodeGroups[0].desiredSize", "gpuNodeGroups[1].sharing.migStrategy",
                "clusterAutoscaler"):
        assert key in text, text


def test_karpenter_accepts_a_disabled_autoscaler_and_node_groups_keep_their_rules():
    values = {"aws:region": "us-west-2", "ai-platform:network": stack_config.engine_value(NETWORK)}
    ok = stack_config.parse({**values, "ai-platform:gpuProvisioner": "karpenter",
                             "ai-platform:clusterAutoscaler": stack_config.engine_value({"enabled": False}),
                             "ai-platform:gpuNodeGroups": stack_config.engine_value([_pool()])}, stack="test")
    assert ok.gpuProvisioner == "karpenter"
    warm = stack_config.parse({**values, "ai-platform:gpuNodeGroups": stack_config.engine_value([_pool(minSize=1, desiredSize=1)]),
                               "ai-platform:clusterAutoscaler": stack_config.engine_value({"expander": "least-waste"})},
                              stack="test")
    assert warm.gpuProvisioner == "nodeGroups"


def test_unknown_provisioner_is_refused():
    assert any("gpuProvisioner" in p for p in _problems(network=NETWORK, gpuProvisioner="fargate", gpuNodeGroups=[_pool()]))
