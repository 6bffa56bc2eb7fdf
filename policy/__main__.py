"""CrossGuard entry point: `pulumi preview --policy-pack policy --policy-pack-config policy/config.<stack>.json`.

Only assembles the pack. Constructing PolicyPack starts the analyzer's gRPC server and blocks, so
nothing (tests, platformctl) imports this file; the policies themselves are in rules.py.
"""

import sys
from pathlib import Path

# The engine runs this file with the pack directory on sys.path; the rules import the GPU instance
# table from stack_config at the repo root, one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.rules import pulumi_policies  # noqa: E402

PolicyPack(
    name="ai-platform-policies",
    # Each policy defaults to mandatory; policy/config.dev.json turns them all advisory for dev.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=pulumi_policies(),
)
