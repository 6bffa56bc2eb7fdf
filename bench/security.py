"""Security figures of the rendered stacks: checkov results, NetworkPolicies, Pod Security levels."""

from __future__ import annotations

import tempfile
from pathlib import Path

from platformctl import security_scan as scan
from platformctl.mockrun import run_stack
from platformctl.plan import write_outputs

STACKS = ("dev", "prod")


def run() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for stack in STACKS:
            directory = Path(tmp) / stack
            write_outputs(run_stack(stack), directory)
            objects = [obj for _, obj in scan.load_manifests(directory)]
            try:
                report = scan.run_checkov(directory / "manifests")
                rows.append((f"{stack}: checkov passed / failed / skipped",
                             f"{report.passed} / {report.failed} / {report.skipped}"))
            except scan.CheckovUnavailable as exc:
                rows.append((f"{stack}: checkov", f"not run ({exc})"))
            policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
            rows.append((f"{stack}: NetworkPolicies", str(len(policies))))
            levels = scan.namespace_levels(objects)
            rows.append((f"{stack}: namespaces (Pod Security enforce)",
                         ", ".join(f"{ns}={level['enforce']}" for ns, level in sorted(levels.items()))))
    return rows
