"""`platformctl smoke`: is a Triton deployment serving? Checks, with tritonclient over HTTP (KServe
v2): server live and ready, the repository index and each model's readiness, each ready model's
metadata and one inference with inputs generated from that metadata; and, for an OpenAI-compatible
endpoint, that `/v1/models` lists at least one model. On a KServe-v2 server without Triton's
repository index (e.g. KServe's ModelServer), the models named with --model are checked through the
core protocol alone; without --model the check fails and says to name them. With --stack/--outputs and no --deployment,
every Triton deployment of the stack is checked, each in turn. Prints a table per deployment;
exit 1 when any check of any deployment fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .models.control import client_for, describe, request_tensors
from .models.outputs import OutputsError, load_outputs, server_urls

# Triton HTTP cannot run a decoupled model through /infer (vLLM models are decoupled); those get
# their one request through the generate extension instead.
GENERATE_TEXT = "Say OK."


@dataclass
class Check:
    check: str
    target: str
    ok: bool | None  # None: skipped
    detail: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("smoke", help="check that a Triton deployment serves its models",
                                   description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="Triton HTTP URL, e.g. http://localhost:8000")
    source.add_argument("--stack", help="take the URLs from this stack's outputs (pulumi stack output)")
    source.add_argument("--outputs", type=Path, metavar="FILE", help="take them from saved `pulumi stack output --json`")
    parser.add_argument("--deployment", help="Triton deployment to check (with --stack/--outputs); default: every one")
    parser.add_argument("--openai-url", help="OpenAI-compatible base URL ending in /v1, e.g. http://localhost:9000/v1")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="check only this model (repeatable; with one deployment); default: every model in "
                             "the repository index")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.set_defaults(func=cmd_smoke)


def _post_json(url: str, body: dict, timeout: float) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-given URL
        return json.loads(response.read() or b"null")


def _http_error(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        body = exc.read().decode(errors="replace").strip()
        try:
            body = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            pass
        return f"HTTP {exc.code}: {body}"[:300]
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return describe(exc)


def _base(url: str) -> str:
    return (url if "://" in url else f"http://{url}").rstrip("/")


def repository_index(url: str, timeout: float) -> list[dict]:
    # tritonclient posts an empty body, which Triton accepts but other KServe-v2 servers (MLServer)
    # reject; `{}` is valid for all of them.
    index = _post_json(f"{_base(url)}/v2/repository/index", {}, timeout)
    if not isinstance(index, list):
        raise ValueError(f"repository index is not a list: {str(index)[:200]}")
    return index


def _decoupled(client, name: str) -> bool:
    try:
        config = client.get_model_config(name)
    except Exception:  # noqa: BLE001 - not every KServe-v2 server has the config extension
        return False
    return bool(config.get("model_transaction_policy", {}).get("decoupled"))


def _infer(client, name: str, metadata: dict, timeout: float) -> str:
    inputs, outputs = request_tensors(metadata)
    start = time.monotonic()
    # All-JSON request: say so. tritonclient sends no Content-Type, and KServe's ModelServer reads
    # an untyped body as binary tensors (then wants Inference-Header-Content-Length).
    result = client.infer(name, inputs, outputs=outputs or None, timeout=int(timeout * 1_000_000),
                          headers={"Content-Type": "application/json"})
    took = (time.monotonic() - start) * 1000
    got = result.get_response().get("outputs", [])
    missing = sorted({o["name"] for o in metadata.get("outputs", [])} - {o["name"] for o in got})
    if missing:
        raise ValueError(f"response lacks output(s) {', '.join(missing)}")
    shapes = ", ".join(f"{o['name']}{list(o.get('shape', []))}" for o in got)
    return f"{shapes} in {took:.0f} ms"


def _generate(url: str, name: str, timeout: float) -> str:
    start = time.monotonic()
    body = {"text_input": GENERATE_TEXT, "parameters": {"stream": False, "max_tokens": 8, "temperature": 0}}
    response = _post_json(f"{_base(url)}/v2/models/{name}/generate", body, timeout)
    took = (time.monotonic() - start) * 1000
    text = response.get("text_output") if isinstance(response, dict) else None
    if not text:
        raise ValueError(f"generate returned no text_output: {str(response)[:200]}")
    return f"generated {len(text)} chars in {took:.0f} ms"


# The repository index is Triton's model repository extension (server
# docs/protocol/extension_model_repository.md), not part of the KServe v2 / Open Inference
# Protocol core (kserve docs/predict-api/v2/required_api.md: health, server and model metadata,
# model ready, infer). Servers without it answer with one of these.
NO_EXTENSION_STATUSES = (404, 405, 501)


def _server_metadata(url: str, timeout: float) -> str:
    """`GET /v2` (core protocol) as "name version", for messages; "" when it cannot be read."""
    try:
        with urllib.request.urlopen(f"{_base(url)}/v2", timeout=timeout) as response:  # noqa: S310
            body = json.loads(response.read())
        return " ".join(str(body.get(key)) for key in ("name", "version") if body.get(key))
    except Exception:  # noqa: BLE001 - only decorates a message
        return ""


def _index_check(url: str, timeout: float, only: list[str]) -> tuple[dict | None, Check]:
    """(the repository index by model name, or None when the server has none; its Check).
    Without the index, --model names are checked through the core protocol; with neither, the
    check fails and says what to pass."""
    try:
        index = repository_index(url, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code not in NO_EXTENSION_STATUSES:
            return None, Check("repository index", url, False, _http_error(exc))
        server = _server_metadata(url, timeout) or "this server"
        if only:
            return None, Check("repository index", url, None,
                               f"{server} has no repository index (a Triton extension): checking "
                               f"{', '.join(only)} through the KServe v2 core API")
        return None, Check("repository index", url, False,
                           f"{server} has no repository index (HTTP {exc.code}; a Triton extension), so the models "
                           f"cannot be listed: name each model to check with --model NAME")
    except Exception as exc:  # noqa: BLE001
        return None, Check("repository index", url, False, _http_error(exc))
    listed = {entry.get("name"): entry for entry in index}
    names = only or [n for n in listed if n]
    return listed, Check("repository index", url, bool(names),
                         f"{len(listed)} model(s)" if listed else "the repository has no models")


def _model_ready(client, url: str, name: str, entry: dict | None, indexed: bool, timeout: float) -> Check:
    if indexed and entry is None:
        return Check("model ready", name, False, "not in the repository index")
    state = (entry or {}).get("state") or ("UNKNOWN" if indexed else "")
    try:
        ready = bool(client.is_model_ready(name))
    except Exception as exc:  # noqa: BLE001
        ready, state = False, f"{state}; {describe(exc)}".lstrip("; ")
    if ready:
        return Check("model ready", name, True, f"{state}, version {entry.get('version') or 'latest'}" if indexed else "ready")
    if indexed:
        reason = entry.get("reason")
        return Check("model ready", name, False, f"{state}{f': {reason}' if reason else ''}")
    try:  # the core protocol's metadata call says why (e.g. "Model with name x does not exist")
        with urllib.request.urlopen(f"{_base(url)}/v2/models/{name}", timeout=timeout):  # noqa: S310
            detail = "not ready"
    except Exception as exc:  # noqa: BLE001
        detail = f"not ready: {_http_error(exc)}"
    return Check("model ready", name, False, detail if not state else f"{detail} ({state})")


def _model_checks(client, url: str, name: str, timeout: float) -> list[Check]:
    """Metadata, then one inference (or generate, for decoupled models)."""
    try:
        metadata = client.get_model_metadata(name)
        tensors = lambda key: ", ".join(f"{t['name']}:{t['datatype']}{t['shape']}" for t in metadata.get(key, []))  # noqa: E731
        checks = [Check("metadata", name, True, f"in {tensors('inputs') or '-'} / out {tensors('outputs') or '-'}")]
    except Exception as exc:  # noqa: BLE001
        return [Check("metadata", name, False, describe(exc))]
    try:
        if _decoupled(client, name):
            checks.append(Check("generate", name, True, _generate(url, name, timeout)))
        else:
            checks.append(Check("infer", name, True, _infer(client, name, metadata, timeout)))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("infer", name, False, _http_error(exc) if isinstance(exc, urllib.error.URLError) else describe(exc)))
    return checks


def check_triton(url: str, timeout: float, only: list[str]) -> list[Check]:
    checks: list[Check] = []
    try:
        client = client_for(url, timeout)
    except ValueError as exc:
        return [Check("server", url, False, str(exc))]
    for label, probe in (("live", client.is_server_live), ("ready", client.is_server_ready)):
        try:
            ok = bool(probe())
            checks.append(Check(f"server {label}", url, ok, "yes" if ok else "no"))
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(f"server {label}", url, False, describe(exc)))
            return checks  # nothing else can work
    listed, index_check = _index_check(url, timeout, only)
    checks.append(index_check)
    if listed is None and not only:
        return checks
    for name in only or sorted(n for n in listed if n):
        ready = _model_ready(client, url, name, (listed or {}).get(name), listed is not None, timeout)
        checks.append(ready)
        if ready.ok:
            checks.extend(_model_checks(client, url, name, timeout))
    return checks


def check_openai(base_url: str, timeout: float) -> Check:
    url = _base(base_url) + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - operator-given URL
            body = json.loads(response.read())
        ids = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
    except Exception as exc:  # noqa: BLE001
        return Check("openai /v1/models", url, False, _http_error(exc))
    if not ids:
        return Check("openai /v1/models", url, False, "lists no models")
    return Check("openai /v1/models", url, True, ", ".join(map(str, ids)))


def run(url: str, openai_url: str | None, timeout: float, only: list[str]) -> list[Check]:
    checks = check_triton(url, timeout, only)
    if openai_url:
        checks.append(check_openai(openai_url, timeout))
    return checks


@dataclass(frozen=True)
class Target:
    deployment: str | None  # None: a --url given directly
    url: str
    openai_url: str | None


class UsageError(Exception):
    """The arguments cannot name what to check (exit 2, before anything is checked)."""


def targets(args: argparse.Namespace) -> list[Target]:
    """What to check, all resolved before the first request so that a stack output missing for a
    later deployment is a usage error, not a half-run smoke test."""
    if args.url:
        if args.deployment:
            raise UsageError("--deployment goes with --stack/--outputs, not --url")
        return [Target(None, args.url, args.openai_url)]
    try:
        outputs = load_outputs(args.stack, args.outputs)
        names: list[str | None] = [args.deployment]
        deployments = outputs.get("tritonDeployments")
        if args.deployment is None and isinstance(deployments, dict) and deployments:
            names = sorted(deployments)
        found = [(name, *server_urls(outputs, name)) for name in names]
    except OutputsError as exc:
        raise UsageError(str(exc)) from None
    if len(found) > 1:
        # Each deployment serves its own models and its own OpenAI endpoint: one --model or
        # --openai-url cannot apply to all of them.
        for flag, given in (("--model", args.model), ("--openai-url", args.openai_url)):
            if given:
                raise UsageError(f"{flag} applies to one deployment; add --deployment "
                                 f"(this stack has {', '.join(n for n, _, _ in found)})")
    return [Target(name, url, args.openai_url or stack_openai) for name, url, stack_openai in found]


def _report(target: Target, checks: list[Check], console) -> bool:
    """Print one deployment's table and verdict; True when nothing failed."""
    from rich.table import Table

    title = f"smoke: {target.url}" if target.deployment is None else f"smoke: {target.url} (deployment {target.deployment})"
    table = Table(title=title)
    for column in ("check", "target", "result", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[yellow]skip[/]" if c.ok is None else "[red]FAIL[/]")
        table.add_row(c.check, c.target, status, c.detail)
    console.print(table)
    failed = [c for c in checks if c.ok is False]
    if failed:
        console.print(f"[red]{len(failed)} of {len(checks)} check(s) failed[/]")
    else:
        console.print(f"[green]all {len(checks)} checks passed[/]")
    return not failed


def cmd_smoke(args: argparse.Namespace) -> int:
    try:
        chosen = targets(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    # Every deployment is checked even after one fails: the run should show all that is broken.
    passed = {t.deployment: _report(t, run(t.url, t.openai_url, args.timeout, args.model), console) for t in chosen}
    if len(chosen) > 1:
        failing = [name for name, ok in passed.items() if not ok]
        if failing:
            console.print(f"[red]{len(failing)} of {len(chosen)} deployment(s) failed: {', '.join(failing)}[/]")
        else:
            console.print(f"[green]all {len(chosen)} deployments passed[/]")
    return 0 if all(passed.values()) else 1
