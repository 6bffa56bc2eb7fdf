"""Stack configuration: one typed model, loaded from Pulumi config, with one clear error message.

`load_from_pulumi()` is what the program calls; `load_from_files()` reads `Pulumi.yaml` and
`Pulumi.<stack>.yaml` the way the Pulumi CLI would (project defaults, then stack values), for
tools that run without the CLI (`platformctl plan`, `preflight`, tests).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from .base import OFFLINE_SECRET_PLACEHOLDER, PROBLEMS_ERROR
from .model import SECRET_KEYS, GpuNodeGroupConfig, StackConfig, placeholder_cidrs
from .model_builds import missing_source_files

NAMESPACE = "ai-platform"
REGION_KEY = "aws:region"
PROJECT_DIR = Path(__file__).resolve().parent.parent

__all__ = [
    "ConfigError",
    "GpuNodeGroupConfig",
    "NAMESPACE",
    "PROJECT_DIR",
    "StackConfig",
    "load_from_files",
    "load_from_pulumi",
    "parse",
    "mock_runtime",
    "read_stack_files",
    "refuse_missing_source_files",
    "refuse_placeholders",
]


class ConfigError(Exception):
    """Every problem of a stack configuration, each as `<key path>: <message>`."""

    def __init__(self, problems: list[str], stack: str | None = None):
        self.problems = problems
        self.stack = stack
        where = f" of stack '{stack}'" if stack else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration{where} ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{lines}")


def _key_path(loc: Iterable[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    if path == "region":
        return REGION_KEY
    return f"{NAMESPACE}:{path}"


def _join(base: str, field: str) -> str:
    if not field:
        return base
    if base.endswith(":"):
        return base + field
    return f"{base}{field}" if field.startswith("[") else f"{base}.{field}"


def _describe(error: Mapping[str, Any], model_fields: Iterable[str]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, list(model_fields), n=1)
        return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    message = message[0].lower() + message[1:] if message else message
    if kind.startswith("value_error"):
        message = message.removeprefix("value error, ")
    shown = value if not isinstance(value, (dict, list)) else None
    if shown is not None and kind not in ("gpu_type", "arn", "duration", "cidr"):
        message += f" (got {shown!r})"
    return message


def _siblings(loc: tuple, root: type[StackConfig]) -> list[str]:
    """Field names valid at the place an unknown key was found, for 'did you mean'."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", ()) + (annotation,):
            inner = getattr(candidate, "__args__", ())
            for c in (candidate, *inner):
                if isinstance(c, type) and hasattr(c, "model_fields"):
                    model = c
                    break
            else:
                continue
            break
    return list(getattr(model, "model_fields", {}))


def _problems_from(exc: ValidationError) -> list[str]:
    found = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == PROBLEMS_ERROR:
            base = _key_path(loc) if loc else f"{NAMESPACE}:"
            for field, message in error["ctx"]["problems"]:
                found.append(f"{_join(base, field)}: {message}")
        else:
            found.append(f"{_key_path(loc)}: {_describe(error, _siblings(loc, StackConfig))}")
    return found


def decode_value(raw: Any) -> Any:
    """Pulumi hands structured config values to programs as JSON text; scalars stay text."""
    if isinstance(raw, str) and raw.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def parse(
    values: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    stack: str | None = None,
) -> StackConfig:
    """Build the model from engine-style config (`{"ai-platform:key": value, "aws:region": ...}`).

    Raises ConfigError naming every bad key; nothing else escapes.
    """
    secret_keys = set(secret_keys)
    data: dict[str, Any] = {}
    found: list[str] = []
    prefix = f"{NAMESPACE}:"
    for key, raw in values.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            if name == "region":
                found.append(f"{key}: unknown key (the region is set with {REGION_KEY})")
                continue
            if name in SECRET_KEYS and key not in secret_keys:
                found.append(f"{key}: must be a secret (pulumi config set --secret {name} ...)")
            data[name] = decode_value(raw)
    if values.get(REGION_KEY) is not None:
        data["region"] = values[REGION_KEY]
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        found.extend(_problems_from(exc))
        raise ConfigError(found, stack) from None
    if found:
        raise ConfigError(found, stack)
    return config


def load_from_pulumi() -> StackConfig:
    """Read the running program's stack config (as set by the Pulumi CLI or the mock runtime)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env()) | {k for k in values if runtime_config.is_config_secret(k)}
    config = parse(values, secret, pulumi.get_stack())
    if not pulumi.runtime.is_dry_run():  # `pulumi up`, not a preview or an offline plan
        refuse_placeholders(config, pulumi.get_stack())
    if not mock_runtime():  # `pulumi preview` or `pulumi up`: the engine reads the files to upload
        refuse_missing_source_files(config, pulumi.get_stack())
    return config


def mock_runtime() -> bool:
    """True under Pulumi's mock runtime (`platformctl plan`, the tests: `pulumi.runtime.set_mocks`
    installs a MockMonitor), False under the Pulumi CLI, whose monitor is the engine's gRPC stub."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), MockMonitor)


def refuse_missing_source_files(config: StackConfig, stack: str | None = None, project_dir: Path | None = None) -> None:
    """Raise ConfigError when a TensorRT build's `sourceFile` is missing: the stack uploads it, so
    the engine would fail on it halfway through the deploy (an offline plan only warns)."""
    found = missing_source_files(config.modelBuilds, project_dir or PROJECT_DIR)
    if found:
        raise ConfigError([f"{NAMESPACE}:{key}: {message}" for key, message in found], stack)


def refuse_placeholders(config: StackConfig, stack: str | None = None) -> None:
    """Raise ConfigError when an API access list still holds a documentation placeholder: nobody
    deploys from 203.0.113.x, so the cluster would come up unreachable for the rest of `pulumi up`."""
    found = placeholder_cidrs(config)
    if found:
        raise ConfigError([
            f"{NAMESPACE}:{key}: {cidr} is a documentation placeholder (RFC 5737), not your deployer's address; "
            "replace it with the egress address(es) of whoever runs `pulumi up` (VPN, office, the CI runner's NAT): "
            f"edit Pulumi.{stack or '<stack>'}.yaml or `pulumi config set --path '{NAMESPACE}:{key}' <address>/32`"
            for key, cidr in found
        ], stack)


def read_stack_files(stack: str, project_dir: Path = PROJECT_DIR, stack_file: Path | None = None) -> tuple[dict[str, Any], set[str]]:
    """Config as the Pulumi CLI would pass it: `Pulumi.yaml` defaults, then the stack file.

    Secure (encrypted) values cannot be decrypted offline; they are replaced by a placeholder and
    reported as secret, which is all an offline plan needs.
    """
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    stack_file = stack_file or project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise ConfigError([f"{stack_file}: no such stack file (stacks: {', '.join(list_stacks(project_dir))})"], stack)
    try:
        stack_doc = yaml.safe_load(stack_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{stack_file.name}: not valid YAML ({exc})".replace("\n", " ")], stack) from None
    if not isinstance(stack_doc, dict) or not isinstance(stack_doc.get("config", {}), dict):
        raise ConfigError([f"{stack_file.name}: expected a mapping with a 'config:' section"], stack)
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(decl, dict) and ("default" in decl or "value" in decl):
            values[full] = engine_value(decl.get("default", decl.get("value")))
        elif not isinstance(decl, dict):
            values[full] = engine_value(decl)
    for key, value in (stack_doc.get("config") or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = OFFLINE_SECRET_PLACEHOLDER
            secret.add(full)
        else:
            values[full] = engine_value(value)
    return values, secret


def engine_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_from_files(stack: str, project_dir: Path = PROJECT_DIR, stack_file: Path | None = None) -> StackConfig:
    values, secret = read_stack_files(stack, project_dir, stack_file)
    return parse(values, secret, stack)
