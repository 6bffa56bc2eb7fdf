"""Where a stack's models live and where its Triton servers answer, read from the stack outputs.

`--stack S` runs `pulumi stack output --json --stack S`; `--outputs FILE` reads the same JSON saved
earlier (`pulumi stack output --json > outputs.json`), for machines without the Pulumi CLI. The
keys used:

    modelBucket                         the model repository bucket
    tritonDeployments.<name>.modelPrefix      the deployment's prefix in that bucket
    tritonDeployments.<name>.mode / modelControl / namespace / deployment
                                              whether a push must restart it, and which Deployment
    tritonDeployments.<name>.gpusPerReplica   GPUs a vLLM model of the deployment should use
    tritonDeployments.<name>.httpUrl          Triton HTTP (KServe v2), in-cluster
    tritonDeployments.<name>.externalHttpUrl  the same, when exposed outside the cluster
    tritonDeployments.<name>.openaiUrl        OpenAI-compatible base URL (`llm` mode), in-cluster
    tritonDeployments.<name>.externalOpenaiUrl  the same, when exposed
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any


class OutputsError(Exception):
    """Stack outputs could not be read or lack what the command needs."""


def load_outputs(stack: str | None, outputs_file: Path | None) -> dict[str, Any]:
    if outputs_file is not None:
        try:
            data = json.loads(outputs_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise OutputsError(f"cannot read {outputs_file}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise OutputsError(f"{outputs_file}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
        source = str(outputs_file)
    else:
        if shutil.which("pulumi") is None:
            raise OutputsError("the pulumi CLI is not installed; save the outputs elsewhere with "
                               "`pulumi stack output --json > outputs.json` and pass --outputs outputs.json")
        proc = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", str(stack)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise OutputsError(f"`pulumi stack output --stack {stack}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
        try:
            data = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise OutputsError(f"`pulumi stack output` printed no JSON ({exc.msg})") from None
        source = f"stack {stack}"
    if isinstance(data, dict) and isinstance(data.get("outputs"), dict) and "resources" in data:
        # A plan.json from `platformctl plan`: its outputs hold the bucket and prefixes already.
        data = dict(data["outputs"])
    if not isinstance(data, dict):
        raise OutputsError(f"outputs of {source} are not a JSON object")
    data.setdefault("_source", source)
    return data


def deployment(outputs: dict[str, Any], name: str | None) -> tuple[str, dict[str, Any]]:
    """The named Triton deployment's outputs; the name may be omitted when there is only one."""
    source = outputs.get("_source", "the outputs")
    deployments = outputs.get("tritonDeployments")
    if not isinstance(deployments, dict) or not deployments:
        raise OutputsError(f"{source}: no tritonDeployments output")
    if name is None:
        if len(deployments) > 1:
            raise OutputsError(f"{source} have several Triton deployments ({', '.join(sorted(deployments))}); choose one with --deployment")
        name = next(iter(deployments))
    if name not in deployments:
        raise OutputsError(f"{source}: no Triton deployment {name!r} (there are: {', '.join(sorted(deployments))})")
    return name, deployments[name]


def model_location(outputs: dict[str, Any], name: str | None) -> tuple[str, str]:
    """(bucket, prefix) of a deployment's model repository."""
    bucket = outputs.get("modelBucket")
    if not isinstance(bucket, str) or not bucket:
        raise OutputsError(f"{outputs.get('_source', 'the outputs')}: no modelBucket output")
    name, values = deployment(outputs, name)
    prefix = values.get("modelPrefix")
    if not isinstance(prefix, str):
        raise OutputsError(f"tritonDeployments.{name} has no modelPrefix output")
    return bucket, prefix


def server_urls(outputs: dict[str, Any], name: str | None) -> tuple[str, str | None]:
    """(Triton HTTP URL, OpenAI base URL or None); external URLs win over in-cluster ones, which
    answer only inside the cluster (or through `kubectl port-forward`)."""
    name, values = deployment(outputs, name)
    url = values.get("externalHttpUrl") or values.get("httpUrl")
    if not url:
        raise OutputsError(f"tritonDeployments.{name} has no httpUrl output")
    return url, values.get("externalOpenaiUrl") or values.get("openaiUrl")
