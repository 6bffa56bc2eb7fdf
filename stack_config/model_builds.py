"""Configuration of TensorRT engine builds (`modelBuilds`): each entry turns an ONNX model in the
model bucket into a TensorRT plan for one Triton deployment, built in the cluster on that
deployment's GPU pool by `trtexec` from the TensorRT container of the deployment's release.

A plan only loads on the TensorRT version and GPU architecture it was built with, hence the build
on the serving pool with the matching release (components/model_builds.py).

Builds on `triton` (the target deployment) and `gpu_pools`; `StackConfig` calls `model_build_problems`.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Annotated, Literal, Mapping, Optional, Sequence

from pydantic import Field, model_validator

from .base import ConfigModel, DnsLabel, Quantity, problems
from .gpu_pools import GpuNodeGroupConfig, advertised_gpus
from .triton import MODEL_NAME, MODEL_PREFIX, ResourcesConfig, TritonDeploymentConfig

# The ONNX source: a key in the model bucket, `sources/<name>/model.onnx`.
SOURCE_KEY = rf"{MODEL_PREFIX[:-1]}\.onnx$"
# An ONNX input name as trtexec's shape specs can carry it: `name:1x3x224x224,name2:...` is split
# on `,` and at the last `:` (TensorRT v10.11 samples/common/sampleOptions.cpp, getShapesBuild and
# splitNameAndValue), so neither may appear in the name; quotes are stripped by trtexec.
INPUT_NAME = r"^[A-Za-z0-9_./-]+$"
# The Triton image flavour whose TensorRT is the one of nvcr.io/nvidia/tensorrt:<yy.mm>-py3.
STANDARD_IMAGE_TAG = re.compile(r"^(\d{2}\.\d{2})-py3$")
Dim = Annotated[int, Field(ge=1, le=1_000_000)]
# How long a build Job waits for its source ONNX to appear in the bucket before failing (on a new
# account the bucket comes with the `pulumi up` that runs the Job), and how often it looks.
SOURCE_WAIT_SECONDS, SOURCE_POLL_SECONDS = 900, 30
# Where `make examples` writes its output (Makefile EXAMPLES): a missing sourceFile under it is
# produced by that command.
EXAMPLES_DIR = "build/examples/"


class ShapeRange(ConfigModel):
    """The optimisation profile of one dynamic input: every dimension, batch first."""

    min: Annotated[list[Dim], Field(min_length=1, max_length=8)]
    opt: Annotated[list[Dim], Field(min_length=1, max_length=8)]
    max: Annotated[list[Dim], Field(min_length=1, max_length=8)]

    @model_validator(mode="after")
    def _check(self):
        if not len(self.min) == len(self.opt) == len(self.max):
            problems([("min", f"min, opt and max must have the same rank (got {len(self.min)}, {len(self.opt)}, "
                              f"{len(self.max)})")])
        found = []
        for axis, (low, mid, high) in enumerate(zip(self.min, self.opt, self.max)):
            if not low <= mid <= high:
                found.append(("opt" if low > mid else "max",
                              f"dimension {axis}: need min <= opt <= max (got {low}, {mid}, {high})"))
        problems(found)
        return self


class ModelBuildConfig(ConfigModel):
    # Names the build's Job, ServiceAccount and IAM role (with a hash of the build's spec).
    name: DnsLabel
    # Key of the ONNX model in the model bucket, e.g. sources/<name>/model.onnx. Outside every
    # deployment's modelPrefix (Triton would try to serve it).
    source: Annotated[str, Field(pattern=SOURCE_KEY)]
    # A local ONNX file (relative to the project directory, e.g. what `make examples` writes) that
    # the stack itself uploads to `source` before the build Job runs, so a first `pulumi up` on a
    # new account converges in one pass; its SHA-256 is in the Job's name (a new file rebuilds).
    # Unset: something else (a pipeline, `aws s3 cp`) must put `source` in the bucket.
    sourceFile: Optional[str] = None
    # The `tritonDeployments` entry (mode standard) that serves the plan: its pool builds it, its
    # image release picks the TensorRT container, its modelPrefix receives it.
    deployment: DnsLabel
    # Model name in the repository: <modelPrefix>/<model>/<version>/model.plan and
    # <modelPrefix>/<model>/config.pbtxt (written by the Job from the engine's tensors).
    model: Annotated[str, Field(pattern=MODEL_NAME)]
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    # fp16: FP16 kernels where faster (trtexec --fp16); fp32: none; int8: trtexec --int8, which
    # does NOT calibrate (samples/trtexec/README.md: INT8 without calibration data uses
    # placeholder values): the source must be an explicitly quantised ONNX with Q/DQ nodes, e.g.
    # `platformctl models optimize --precision int8 --calibration DIR --gpu-accelerator tensorrt`
    # (static Q/DQ with symmetric INT8 activations, what TensorRT takes). Its dynamic
    # quantisation (no --calibration) is not Q/DQ and is no source for an int8 build.
    precision: Literal["fp16", "int8", "fp32"] = "fp16"
    # Optimisation profile per dynamic input (--minShapes/--optShapes/--maxShapes). Empty: the
    # ONNX has static shapes. The first dimension is the batch: its max becomes max_batch_size.
    shapes: dict[Annotated[str, Field(pattern=INPUT_NAME, max_length=128)], ShapeRange] = {}
    # Builder workspace memory pool (--memPoolSize=workspace:<MiB>M).
    workspaceMiB: Annotated[int, Field(ge=16, le=262144)] = 4096
    # How long the build may run once its pod is scheduled (a GPU node may have to be added first:
    # the Job's deadline adds time for that).
    timeoutSeconds: Annotated[int, Field(ge=300, le=86400)] = 3600
    # CPU and memory of the build container (requests = limits).
    resources: ResourcesConfig = ResourcesConfig()
    # Scratch space for the ONNX, the plan and the logs (an emptyDir).
    scratchSize: Quantity = "20Gi"

    @model_validator(mode="after")
    def _check_source_file(self):
        problems([("sourceFile", message) for message in source_file_problems(self.sourceFile, self.source)])
        return self

    @property
    def source_file(self) -> Optional[str]:
        """sourceFile normalised (`./a/../b.onnx` -> `b.onnx`), or None."""
        return posixpath.normpath(self.sourceFile) if self.sourceFile else None


def source_file_problems(path: Optional[str], key: str) -> list[str]:
    """A sourceFile must stay inside the project directory (relative, no `..` out of it) and be an
    ONNX file: the stack uploads it to the bucket key `key`."""
    if path is None:
        return []
    found = []
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or "\\" in path:
        found.append(f"{path!r} must be a relative path (with /) inside the project directory; the stack uploads it to "
                     f"the bucket key {key}")
    elif posixpath.normpath(path).split("/")[0] == "..":
        found.append(f"{path!r} leads out of the project directory; the stack uploads it to the bucket key {key}: keep "
                     "the file under the project (e.g. build/examples/...)")
    if not path.endswith(".onnx"):
        found.append(f"{path!r} is not an .onnx file; the build of the bucket key {key} takes an ONNX model")
    return found


def producer_hint(path: str) -> str:
    """The command that writes a missing sourceFile."""
    if path.startswith(EXAMPLES_DIR):
        return "`make trt-sources` (or `make examples`, which includes it) writes it"
    return ("write it first (e.g. `.venv/bin/python -m platformctl models optimize SRC.onnx --name NAME --out DIR`) "
            "or point sourceFile at an existing ONNX file")


def missing_source_files(builds: Sequence[ModelBuildConfig], project_dir: Path) -> list[tuple[str, str]]:
    """(key path, message) for each build whose sourceFile is not a file under `project_dir`."""
    found = []
    for index, build in enumerate(builds):
        if build.source_file and not (project_dir / build.source_file).is_file():
            found.append((f"modelBuilds[{index}].sourceFile",
                          f"{build.sourceFile} does not exist (in {project_dir}): the stack uploads it to the bucket key "
                          f"{build.source} for build {build.name}; {producer_hint(build.source_file)}, then run "
                          "`pulumi preview` / `pulumi up` again"))
    return found


def model_build_problems(builds: Sequence[ModelBuildConfig], deployments: Sequence[TritonDeploymentConfig],
                         pools: Sequence[GpuNodeGroupConfig] = (),
                         gpu_quotas: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """Checks across `modelBuilds`, `tritonDeployments` and (when given) `gpuNodeGroups` and
    `gpuStack.scheduling.gpuQuotas`, each reported under the key to change."""
    found = _entry_problems(builds, deployments)
    found += _capacity_problems(builds, deployments, pools, gpu_quotas or {})
    if gpu_quotas is not None:
        found += _namespace_problems(builds, deployments, gpu_quotas)
    return found


def _namespace_problems(builds: Sequence[ModelBuildConfig], deployments: Sequence[TritonDeploymentConfig],
                        gpu_quotas: Mapping[str, int]) -> list[tuple[str, str]]:
    """The Job runs in its deployment's namespace, before that deployment's Triton: the namespace
    must exist first, i.e. be one GPU scheduling creates (a `gpuQuotas` entry), which also bounds
    the build's GPU with Triton's."""
    by_name = {d.name: d for d in deployments}
    found = []
    for index, build in enumerate(builds):
        deployment = by_name.get(build.deployment)
        if deployment is not None and deployment.namespace not in gpu_quotas:
            found.append((f"modelBuilds[{index}].deployment",
                          f"deployment {deployment.name} runs in namespace {deployment.namespace}, which has no "
                          f"gpuStack.scheduling.gpuQuotas entry: builds run in a GPU-quota namespace (created before "
                          f"Triton, which waits for its builds); add one sized for Triton's peak plus the builds"))
    return found


def _capacity_problems(builds: Sequence[ModelBuildConfig], deployments: Sequence[TritonDeploymentConfig],
                       pools: Sequence[GpuNodeGroupConfig], gpu_quotas: Mapping[str, int]) -> list[tuple[str, str]]:
    """A changed build runs beside its deployment's serving replicas (Pulumi creates every changed
    Job at once): one GPU per build on top of Triton's peak must fit the pool and the namespace
    quota, or the build stays Pending until `pulumi up` times out."""
    by_name = {d.name: d for d in deployments}
    pool_gpus = {p.name: p.maxSize * advertised_gpus(p) for p in pools}
    found: list[tuple[str, str]] = []
    for scope, limits, key_of in (("pool", pool_gpus, lambda d: d.gpuPool),
                                  ("namespace", gpu_quotas, lambda d: d.namespace)):
        indexes: dict[str, list[int]] = {}  # pool or namespace -> the builds that run there
        for index, build in enumerate(builds):
            if build.deployment in by_name:
                indexes.setdefault(key_of(by_name[build.deployment]), []).append(index)
        for name, mine in sorted(indexes.items()):
            if not limits.get(name):
                continue  # unknown pool or no GPUs (the Triton checks report it), or no quota
            serving = sum(d.peak_gpus for d in deployments if key_of(d) == name)
            if serving + len(mine) > limits[name]:
                found.append((f"modelBuilds[{mine[-1]}].deployment",
                              f"{scope} {name} offers {limits[name]} GPUs; Triton may hold {serving} and the "
                              f"{len(mine)} build(s) targeting it need {len(mine)} more while they run"))
    return found


def _entry_problems(builds: Sequence[ModelBuildConfig],
                    deployments: Sequence[TritonDeploymentConfig]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    by_name = {d.name: d for d in deployments}
    seen: dict[str, int] = {}
    targets: dict[tuple[str, str, int], int] = {}
    uploads: dict[str, tuple[str, int]] = {}  # bucket key -> (sourceFile, first build uploading it)
    for index, build in enumerate(builds):
        key = f"modelBuilds[{index}]"
        if build.source_file:
            other = uploads.setdefault(build.source, (build.source_file, index))
            if other[0] != build.source_file:
                found.append((f"{key}.sourceFile", f"modelBuilds[{other[1]}] uploads {other[0]} to the same bucket key "
                                                   f"{build.source}: one key holds one file (use another source key, or "
                                                   "the same sourceFile)"))
        if build.name in seen:
            found.append((f"{key}.name", f"duplicate build name {build.name!r} (also modelBuilds[{seen[build.name]}])"))
        seen.setdefault(build.name, index)
        for d in deployments:
            if build.source == d.modelPrefix or build.source.startswith(f"{d.modelPrefix}/"):
                found.append((f"{key}.source", f"{build.source} lies under deployment {d.name}'s modelPrefix "
                                               f"{d.modelPrefix}: Triton would try to load it; keep sources outside "
                                               f"(e.g. sources/{build.name}/model.onnx)"))
        deployment = by_name.get(build.deployment)
        if deployment is None:
            found.append((f"{key}.deployment", f"no Triton deployment named {build.deployment!r} in tritonDeployments "
                                               f"(deployments: {', '.join(by_name) or 'none'})"))
            continue
        if deployment.mode != "standard":
            found.append((f"{key}.deployment", f"deployment {deployment.name} is mode {deployment.mode}; TensorRT plans "
                                               f"are served by mode standard (tritonserver with the tensorrt backend)"))
            continue
        if not STANDARD_IMAGE_TAG.match(deployment.imageTag):
            found.append((f"{key}.deployment", f"deployment {deployment.name} runs image tag {deployment.imageTag}; builds "
                                               f"need a plain <yy.mm>-py3 Triton image, whose release names the TensorRT "
                                               f"container (nvcr.io/nvidia/tensorrt:<yy.mm>-py3) with the same TensorRT"))
            continue
        target = (deployment.name, build.model, build.version)
        if target in targets:
            found.append((f"{key}.model", f"modelBuilds[{targets[target]}] already writes {build.model} version "
                                          f"{build.version} of deployment {deployment.name}"))
        targets.setdefault(target, index)
    return found


__all__ = ["EXAMPLES_DIR", "SOURCE_POLL_SECONDS", "SOURCE_WAIT_SECONDS", "STANDARD_IMAGE_TAG", "ModelBuildConfig", "ShapeRange",
           "missing_source_files", "model_build_problems", "producer_hint", "source_file_problems"]
