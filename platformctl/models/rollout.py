"""After `models push`: restart a Triton Deployment that reads its repository only at start, wait
for the rollout, and check that the OpenAI frontend lists the pushed models.

Which deployments need it: Triton in model control mode `none` or `explicit` never looks at the
repository again after start, and the OpenAI frontend of `llm` mode (`none`) builds its model list
once, at start (triton-inference-server/server r25.06
python/openai/openai_frontend/engine/triton_engine.py: "Creation time and model metadata will be
static at startup"). `poll` picks changes up by itself.

The restart is `kubectl rollout restart`: the pod template gets the annotation
`kubectl.kubernetes.io/restartedAt` (kubectl pkg/polymorphichelpers/objectrestarter.go), so the
Deployment rolls its pods with its own strategy (surge: the old pod serves until the new one is
ready). Readiness gates on Triton having loaded every model, so a finished rollout means the new
pods serve the new repository; a model that fails to load stalls the rollout and the old pods keep
serving. The wait is `kubectl rollout status` (kubectl pkg/polymorphichelpers/rollout_status.go).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from .kube import KubeApi, KubeError

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
POLL_SECONDS = 5.0
# How long the frontend of a finished rollout may take to list the models (Services may still
# route to a terminating old pod for a moment).
LIST_TIMEOUT_SECONDS = 60.0


def fixed_at_start(values: dict[str, Any]) -> bool | None:
    """Does this deployment (its stack outputs) read its repository only at start? None: the
    outputs do not say (a stack deployed before `modelControl` was exported)."""
    control = values.get("modelControl")
    if control is None:
        return True if values.get("mode") == "llm" else None
    return control != "poll"


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def restart_patch(now: datetime) -> dict[str, Any]:
    """What `kubectl rollout restart` sends (RFC 3339 time)."""
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def restart(api: KubeApi, namespace: str, name: str, now: datetime) -> dict[str, Any]:
    path = deployment_path(namespace, name)
    current = api.request("GET", path)
    if current.get("spec", {}).get("paused"):
        raise KubeError(f"deployment {namespace}/{name} is paused; resume it (kubectl -n {namespace} rollout resume "
                        f"deployment/{name}) and push again")
    return api.request("PATCH", path, restart_patch(now), content_type=STRATEGIC_MERGE)


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    message: str


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    """kubectl's deploymentRolloutStatus, as a pure function of the Deployment object."""
    name = deployment.get("metadata", {}).get("name", "?")
    generation = deployment.get("metadata", {}).get("generation", 0)
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    if generation > status.get("observedGeneration", 0):
        return RolloutState(False, False, f"waiting for deployment {name!r} spec update to be observed")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(False, True, f"deployment {name!r} exceeded its progress deadline")
    updated, replicas = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available, wanted = status.get("availableReplicas", 0), spec.get("replicas")
    if wanted is not None and updated < wanted:
        return RolloutState(False, False, f"{updated} out of {wanted} new replicas have been updated")
    if replicas > updated:
        return RolloutState(False, False, f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return RolloutState(False, False, f"{available} of {updated} updated replicas are available")
    return RolloutState(True, False, f"deployment {name!r} successfully rolled out")


def wait_rollout(api: KubeApi, namespace: str, name: str, timeout: float,
                 report: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> RolloutState:
    deadline = clock() + timeout
    last = ""
    while True:
        state = rollout_state(api.request("GET", deployment_path(namespace, name)))
        if state.message != last:
            report(state.message)
            last = state.message
        if state.done or state.failed:
            return state
        if clock() >= deadline:
            return RolloutState(False, True, f"gave up after {timeout:.0f}s: {state.message}")
        sleep(POLL_SECONDS)


def wait_budget(deployment: dict[str, Any]) -> float:
    """How long to wait: the Deployment's own progress deadline for each replica it replaces
    (each new ready replica restarts the deadline), plus a minute."""
    deadline = deployment.get("spec", {}).get("progressDeadlineSeconds", 600)
    replicas = max(1, deployment.get("spec", {}).get("replicas") or deployment.get("status", {}).get("replicas", 1))
    return float(deadline * replicas + 60)


def listed_models(openai_url: str, timeout: float = 10.0) -> set[str]:
    """Model ids the OpenAI frontend lists (GET <base>/models)."""
    with urllib.request.urlopen(openai_url.rstrip("/") + "/models", timeout=timeout) as response:
        body = json.loads(response.read())
    return {m.get("id") for m in body.get("data", []) if isinstance(m, dict)}


def check_listed(openai_url: str, models: list[str], timeout: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[bool | None, str]:
    """(True, ...) when every model is listed; (False, ...) when the frontend answers without
    them until `timeout`; (None, why) when it cannot be reached from here."""
    deadline = clock() + (LIST_TIMEOUT_SECONDS if timeout is None else timeout)
    while True:
        try:
            listed = listed_models(openai_url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return None, f"{openai_url}/models not reachable from here ({getattr(exc, 'reason', exc)})"
        missing = [m for m in models if m not in listed]
        if not missing:
            return True, f"{openai_url}/models lists {', '.join(models)}"
        if clock() >= deadline:
            return False, f"{openai_url}/models does not list {', '.join(missing)} (lists: {', '.join(sorted(listed)) or 'nothing'})"
        sleep(POLL_SECONDS)
