"""Offline checks of a Triton model repository (`platformctl models validate DIR`).

Every problem is collected (not just the first), each with the path it is about and, for
config.pbtxt syntax errors, the line and column, so one run shows everything to fix before a
push. The checks mirror what makes Triton refuse or silently ignore a model at load time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format


def _model_config_module():
    """tritonclient's generated `model_config_pb2`, loaded on its own: importing it through the
    `tritonclient.grpc` package first runs that package's __init__, which imports grpc and numpy
    (~90 ms of every `models push`) that config parsing never uses."""
    import importlib.util
    import sys

    name = "tritonclient.grpc.model_config_pb2"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("tritonclient")
    path = Path(package.submodule_search_locations[0]) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a later `from tritonclient.grpc import model_config_pb2` reuses it
    spec.loader.exec_module(module)
    return module


mc = _model_config_module()

CONFIG_FILE = "config.pbtxt"

# Model file Triton looks for in each version directory when `default_model_filename` is unset.
# Keyed by platform or backend; a backend not listed here (a custom one) is not file-checked.
DEFAULT_MODEL_FILES: dict[str, str] = {
    "onnxruntime_onnx": "model.onnx",
    "onnxruntime": "model.onnx",
    "tensorrt_plan": "model.plan",
    "tensorrt": "model.plan",
    "pytorch_libtorch": "model.pt",
    "pytorch": "model.pt",
    "tensorflow_savedmodel": "model.savedmodel",
    "tensorflow_graphdef": "model.graphdef",
    "python": "model.py",
    "vllm": "model.json",
    "openvino": "model.xml",
}
# These may be a directory (SavedModel always is; ONNX with external weights may be).
DIRECTORY_MODEL_FILES = {"model.savedmodel", "model.onnx"}
KNOWN_PLATFORMS = {"onnxruntime_onnx", "tensorrt_plan", "pytorch_libtorch", "tensorflow_savedmodel",
                   "tensorflow_graphdef", "ensemble"}
# A version directory is a positive decimal without leading zeros; Triton skips anything else.
VERSION_DIR = re.compile(r"^[1-9][0-9]*$")
_PARSE_POSITION = re.compile(r"^\d+:\d+ : ")


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.message}"


@dataclass
class ModelInfo:
    """What push needs to know about a model that validated."""

    name: str
    directory: Path
    config: mc.ModelConfig | None


def parse_config(path: Path) -> tuple[mc.ModelConfig | None, Problem | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, Problem(path, f"cannot read: {exc}")
    config = mc.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        message = _PARSE_POSITION.sub("", str(exc))
        return None, Problem(path, message, exc.GetLine(), exc.GetColumn())
    return config, None


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _version_dirs(model_dir: Path) -> tuple[list[int], list[Problem]]:
    versions, found = [], []
    for child in sorted(model_dir.iterdir()):
        if _is_hidden(child) or not child.is_dir():
            continue  # files beside config.pbtxt (labels, etc.) are allowed
        if VERSION_DIR.match(child.name):
            versions.append(int(child.name))
        else:
            found.append(Problem(child, "not a version directory (must be a number without leading zeros; Triton ignores it)"))
    return sorted(versions), found


def _check_model_files(model_dir: Path, config: mc.ModelConfig, versions: list[int]) -> list[Problem]:
    kind = config.platform or config.backend
    config_path = model_dir / CONFIG_FILE
    if not kind:
        return [Problem(config_path, "sets neither 'platform' nor 'backend', so Triton cannot tell how to run the model")]
    if config.platform and config.platform not in KNOWN_PLATFORMS:
        return [Problem(config_path, f"unknown platform {config.platform!r} (known: {', '.join(sorted(KNOWN_PLATFORMS))})")]
    if config.platform == "ensemble":
        return []  # an ensemble's version directories are empty by design
    filename = config.default_model_filename or DEFAULT_MODEL_FILES.get(kind)
    if filename is None:
        return []  # custom backend: its files are its own business
    found = []
    for version in versions:
        target = model_dir / str(version) / filename
        if not target.exists():
            present = sorted(p.name for p in target.parent.iterdir() if not _is_hidden(p))
            hint = f" (found: {', '.join(present)})" if present else " (the directory is empty)"
            found.append(Problem(target, f"missing: {kind} models need {filename} in every version directory{hint}"))
        elif target.is_dir() and filename not in DIRECTORY_MODEL_FILES:
            found.append(Problem(target, "is a directory, expected a file"))
        elif target.is_file() and filename == "model.savedmodel":
            found.append(Problem(target, "must be a SavedModel directory, not a file"))
    return found


def _check_tensors(config_path: Path, config: mc.ModelConfig) -> list[Problem]:
    found = []
    for section in ("input", "output"):
        seen: set[str] = set()
        for index, tensor in enumerate(getattr(config, section)):
            label = f"{section}[{index}] {tensor.name!r}" if tensor.name else f"{section}[{index}]"
            if not tensor.name:
                found.append(Problem(config_path, f"{label}: has no name"))
            elif tensor.name in seen:
                found.append(Problem(config_path, f"{label}: duplicate {section} name"))
            seen.add(tensor.name)
            if tensor.data_type == mc.TYPE_INVALID:
                found.append(Problem(config_path, f"{label}: data_type is not set"))
            bad = [d for d in tensor.dims if d == 0 or d < -1]
            if bad:
                found.append(Problem(config_path, f"{label}: dims {list(tensor.dims)} may only hold positive sizes or -1 (variable)"))
    return found


def _check_batching(config_path: Path, config: mc.ModelConfig) -> list[Problem]:
    found = []
    if config.max_batch_size < 0:
        found.append(Problem(config_path, f"max_batch_size must be >= 0 (got {config.max_batch_size})"))
    if config.HasField("dynamic_batching"):
        if config.max_batch_size <= 0:
            found.append(Problem(config_path, "dynamic_batching needs max_batch_size > 0 (a model without batching cannot batch requests)"))
        for size in config.dynamic_batching.preferred_batch_size:
            if size <= 0 or (config.max_batch_size > 0 and size > config.max_batch_size):
                found.append(Problem(config_path, f"dynamic_batching.preferred_batch_size {size} must be between 1 and max_batch_size ({config.max_batch_size})"))
    return found


def _check_instance_groups(config_path: Path, config: mc.ModelConfig) -> list[Problem]:
    found = []
    names: set[str] = set()
    for index, group in enumerate(config.instance_group):
        label = f"instance_group[{index}]" + (f" {group.name!r}" if group.name else "")
        if group.name:
            if group.name in names:
                found.append(Problem(config_path, f"{label}: duplicate instance group name"))
            names.add(group.name)
        if group.count < 0:
            found.append(Problem(config_path, f"{label}: count must be >= 1 (got {group.count})"))
        if group.gpus and group.kind != mc.ModelInstanceGroup.KIND_GPU:
            kind = mc.ModelInstanceGroup.Kind.Name(group.kind)
            found.append(Problem(config_path, f"{label}: lists gpus but kind is {kind}; only KIND_GPU groups run on GPUs"))
        if any(gpu < 0 for gpu in group.gpus):
            found.append(Problem(config_path, f"{label}: gpu ids must be >= 0 (got {list(group.gpus)})"))
    if config.platform == "ensemble" and config.instance_group:
        found.append(Problem(config_path, "instance_group has no effect on an ensemble; set it on the composing models"))
    return found


def _check_version_policy(config_path: Path, config: mc.ModelConfig, versions: list[int]) -> list[Problem]:
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "specific":
        missing = [v for v in policy.specific.versions if v not in versions]
        if not policy.specific.versions:
            return [Problem(config_path, "version_policy.specific lists no versions")]
        if missing:
            have = ", ".join(map(str, versions)) or "none"
            return [Problem(config_path, f"version_policy.specific names version(s) {', '.join(map(str, missing))} that do not exist (have: {have})")]
    elif which == "latest" and policy.latest.num_versions < 1:
        return [Problem(config_path, f"version_policy.latest.num_versions must be >= 1 (got {policy.latest.num_versions})")]
    return []


# vLLM engine arguments (model.json) that multiply into the GPUs one engine takes: vLLM's
# ParallelConfig.world_size = pipeline_parallel_size x tensor_parallel_size.
VLLM_PARALLEL_KEYS = ("tensor_parallel_size", "pipeline_parallel_size")
VLLM_ENGINE_FILE = "model.json"


def vllm_gpus(model_json: Path) -> tuple[int | None, Problem | None]:
    """GPUs a vLLM model (Triton vllm_backend, `model.json` = vLLM engine args) takes."""
    try:
        args = json.loads(model_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, Problem(model_json, f"cannot read: {exc}")
    except json.JSONDecodeError as exc:
        return None, Problem(model_json, f"not JSON: {exc.msg}", exc.lineno, exc.colno)
    if not isinstance(args, dict):
        return None, Problem(model_json, "must be a JSON object of vLLM engine arguments")
    gpus = 1
    for key in VLLM_PARALLEL_KEYS:
        value = args.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return None, Problem(model_json, f"{key} must be a positive integer (got {value!r})")
        gpus *= value
    return gpus, None


def _vllm_engine_files(model_dir: Path, versions: list[int]) -> list[Path]:
    return [p for p in (model_dir / str(v) / VLLM_ENGINE_FILE for v in versions) if p.is_file()]


def _check_vllm_devices(model_dir: Path, config: mc.ModelConfig, versions: list[int]) -> list[Problem]:
    """vllm_backend (src/model.py, _validate_device_config) refuses tensor_parallel_size > 1 on a
    KIND_GPU instance group: a multi-GPU model needs KIND_MODEL."""
    found = []
    kind_gpu = any(g.kind == mc.ModelInstanceGroup.KIND_GPU for g in config.instance_group)
    for path in _vllm_engine_files(model_dir, versions):
        gpus, problem = vllm_gpus(path)
        if problem:
            found.append(problem)
        elif kind_gpu and gpus > 1:
            found.append(Problem(model_dir / CONFIG_FILE, f"instance_group kind KIND_GPU runs a model on one GPU, but "
                                                          f"{path.relative_to(model_dir)} asks for {gpus}: use KIND_MODEL "
                                                          "(the vLLM backend refuses KIND_GPU with tensor_parallel_size > 1)"))
    return found


def deployment_problems(models: list[ModelInfo], deployment: str, gpus_per_replica: int) -> list[Problem]:
    """Do the vLLM models fit the GPUs each replica of `deployment` holds? Every vLLM engine of a
    KIND_MODEL instance starts on the first GPUs it sees, so a replica uses as many GPUs as its
    largest model: more than the replica holds cannot start, fewer leaves GPUs idle."""
    found: list[Problem] = []
    largest: tuple[int, Path] | None = None
    for model in models:
        if model.config is None or model.config.backend != "vllm":
            continue
        versions, _ = _version_dirs(model.directory)
        for path in _vllm_engine_files(model.directory, versions):
            gpus, problem = vllm_gpus(path)
            if problem or gpus is None:
                continue  # reported by check_model
            if gpus > gpus_per_replica:
                found.append(Problem(path, f"takes {gpus} GPUs (tensor_parallel_size x pipeline_parallel_size) but each "
                                           f"replica of deployment {deployment} has {gpus_per_replica}: vLLM cannot start; "
                                           f"set tensor_parallel_size to {gpus_per_replica} or gpusPerReplica to {gpus}"))
            if largest is None or gpus > largest[0]:
                largest = (gpus, path)
    if largest and largest[0] < gpus_per_replica:
        gpus, path = largest
        found.append(Problem(path, f"takes {gpus} GPU{'s' * (gpus != 1)} (tensor_parallel_size x pipeline_parallel_size) "
                                   f"but each replica of deployment {deployment} holds {gpus_per_replica}: "
                                   f"{gpus_per_replica - gpus} would sit idle; set tensor_parallel_size to "
                                   f"{gpus_per_replica} (if the model's attention heads divide by it) or the "
                                   f"deployment's gpusPerReplica to {gpus}"))
    return found


def check_model(model_dir: Path) -> tuple[ModelInfo, list[Problem]]:
    found: list[Problem] = []
    config_path = model_dir / CONFIG_FILE
    config = None
    if not config_path.is_file():
        # Triton can auto-complete some configs, but the platform pushes reviewed configs only:
        # batching, instances and version policy are decisions, not defaults.
        found.append(Problem(config_path, "missing: every model needs an explicit config.pbtxt"))
    else:
        config, problem = parse_config(config_path)
        if problem:
            found.append(problem)
    versions, version_problems = _version_dirs(model_dir)
    found += version_problems
    if not versions:
        found.append(Problem(model_dir, "has no version directory (e.g. 1/ holding the model file)"))
    if config is not None:
        if config.name and config.name != model_dir.name:
            found.append(Problem(config_path, f"name {config.name!r} does not match the directory name {model_dir.name!r}"))
        found += _check_model_files(model_dir, config, versions)
        found += _check_tensors(config_path, config)
        found += _check_batching(config_path, config)
        found += _check_instance_groups(config_path, config)
        found += _check_version_policy(config_path, config, versions)
        if config.backend == "vllm":
            found += _check_vllm_devices(model_dir, config, versions)
    return ModelInfo(model_dir.name, model_dir, config), found


def validate_repository(root: Path) -> tuple[list[ModelInfo], list[Problem]]:
    """Check every model under `root`; returns the models and every problem found."""
    if not root.exists():
        return [], [Problem(root, "does not exist")]
    if not root.is_dir():
        return [], [Problem(root, "is not a directory")]
    models, found = [], []
    for child in sorted(root.iterdir()):
        if _is_hidden(child) or not child.is_dir():
            continue
        model, problems = check_model(child)
        models.append(model)
        found += problems
    if not models:
        found.append(Problem(root, "holds no model directories"))
    names = {m.name for m in models}
    for model in models:
        config = model.config
        if config is None or config.platform != "ensemble":
            continue
        for index, step in enumerate(config.ensemble_scheduling.step):
            if step.model_name not in names:
                found.append(Problem(model.directory / CONFIG_FILE, f"ensemble_scheduling.step[{index}] uses model {step.model_name!r}, which is not in this repository"))
    return models, found
