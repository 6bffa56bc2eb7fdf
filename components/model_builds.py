"""TensorRT engine builds (`modelBuilds`): pure builders for the Job that turns an ONNX model of the
bucket into `model.plan` + a `tensorrt_plan` config.pbtxt under the target Triton deployment's
prefix, and for the least-privilege IAM policy of its IRSA role. No resources here: the component
that registers them is wired in with the layered Inference component (issue 13/14).

Why in the cluster: a TensorRT plan loads only on the TensorRT version and GPU architecture that
built it. So the build runs on the deployment's own GPU pool, in `nvcr.io/nvidia/tensorrt:<yy.mm>-py3`
of the same release as the deployment's `nvcr.io/nvidia/tritonserver:<yy.mm>-py3` image.

The pod, in order (init containers run one after the other, each to completion):
1. `fetch` (AWS CLI): the source ONNX from S3 to the scratch volume, waiting up to
   SOURCE_WAIT_SECONDS for it to appear. On a new account the bucket is created by the same
   `pulumi up` that runs the Job: with `sourceFile` the stack uploads the source itself (an
   `aws.s3.BucketObjectv2` the Job depends on, so the first `pulumi up` converges); without it,
   something else must put it there while the Job waits;
2. `build` (TensorRT container, 1 GPU): `trtexec` builds the plan, then the `tensorrt` Python module
   deserialises it and writes config.pbtxt from the engine's I/O tensors. The config is generated
   here, not at `pulumi preview`: the ONNX exists only in S3, and the engine's tensors (names,
   types, the dynamic batch dimension of the profile) are what Triton will check the config against;
3. `upload` (AWS CLI): model.plan first, config.pbtxt last, so a polling Triton never sees a config
   without its plan.
Only the AWS CLI containers hold credentials that matter; the GPU container has no S3 call to make.

trtexec flags (NVIDIA/TensorRT tag v10.11, samples/common/sampleOptions.cpp, BuildOptions::parse
and helpBuildOptions; samples/trtexec/README.md):
- `--onnx=<file>`, `--saveEngine=<file>`, `--skipInference` (exit once the engine is built);
- `--fp16` / `--int8` "in addition to fp32"; trtexec does not calibrate (README: in INT8 mode
  random scales are used), so int8 needs an explicitly quantised (Q/DQ) source;
- `--minShapes/--optShapes/--maxShapes=name:1x3x224x224[,name2:...]` (getShapesBuild: `,`
  between tensors, the value after the last `:`, dims split on `x`);
- `--memPoolSize=workspace:<size>`: base-2 suffixes B/K/M/G, MiB when none is given
  (addDefaultUnitSuffixIfNotSpecified(..., 'M')); the suffix is written anyway. `--workspace` is
  no longer parsed by 10.11 (only --memPoolSize sets the workspace).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import security
from components.iam import IrsaRole, IrsaRoleArgs, irsa_trust_policy
from components.gpu_scheduling import MANAGED_BY, gpu_limits, gpu_pod_placement
from components.model_repository import _kms_statement
from components.s3 import bucket_arn
from components.triton import NODE_PROVISIONING_SECONDS
from stack_config.gpu_stack import VALIDATION_PRIORITY_CLASS
from stack_config.model_builds import SOURCE_POLL_SECONDS, SOURCE_WAIT_SECONDS, STANDARD_IMAGE_TAG, ModelBuildConfig
from stack_config.triton import TritonDeploymentConfig

TENSORRT_REPOSITORY = "nvcr.io/nvidia/tensorrt"
# AWS CLI v2 release 2.27.49 (aws/aws-cli .changes/2.27.49.json), from the official image AWS
# publishes with a tag per version on ECR Public (docs.aws.amazon.com/cli/latest/userguide/
# getting-started-docker.html, "Use specific versions and tags"). Its entrypoint is `aws`; the
# command is overridden with `sh -ec` to chain the two uploads.
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.49"
# At or above cluster-autoscaler's expendable cut-off (a pool at zero scales up for the build) and
# never preempting (a build must not evict serving Triton pods). The platform's class with exactly
# that contract is the GPU validation one (components/gpu_scheduling.py PRIORITY_CLASSES).
BUILD_PRIORITY_CLASS = VALIDATION_PRIORITY_CLASS
SCRATCH = "/work"
ONNX_PATH = f"{SCRATCH}/model.onnx"
PLAN_PATH = f"{SCRATCH}/model.plan"
CONFIG_PATH = f"{SCRATCH}/config.pbtxt"
TRANSFER_RESOURCES = {"cpu": "500m", "memory": "512Mi"}
# A failed build is usually deterministic (unsupported op, out of memory): one retry for a lost node.
BACKOFF_LIMIT = 1
HASH_LENGTH = 10
PULUMI_TIMEOUT = "pulumi.com/timeoutSeconds"
# Extra time `pulumi up` gives the Job beyond its own deadline before calling it failed.
AWAIT_MARGIN_SECONDS = 300
# Pod template annotation with the SHA-256 of the source the stack uploads (`sourceFile`): part of
# the spec, so of the Job's name, so a new source file is a new Job (a rebuild).
SOURCE_SHA256_ANNOTATION = "ai-platform/source-sha256"
# ONNX has no registered media type; S3's own default for binary data.
ONNX_CONTENT_TYPE = "application/octet-stream"
HASH_CHUNK = 1 << 20


def file_sha256(path: Path) -> Optional[str]:
    """Hex SHA-256 of a file, read once in 1 MiB chunks (an ONNX can be gigabytes); None when it
    is not a file. The same digest Pulumi keeps for a FileAsset (pulumi/pulumi
    sdk/go/common/resource/asset/asset.go EnsureHash: sha256 of the contents)."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tensorrt_image(triton_image_tag: str) -> str:
    """The TensorRT container of the Triton image's release: 25.06-py3 -> nvcr.io/nvidia/tensorrt:25.06-py3.
    Other flavours (-vllm-python-py3, -trtllm-python-py3) are refused: builds target standard
    deployments, and those images' TensorRT need not be the release's: Triton's compatibility
    matrix (docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/introduction/
    compatibility.html) lists 25.06-trtllm-python-py3 with TensorRT 10.10.0.31, while the 25.06
    TensorRT container is taken to ship 10.11 (not confirmed from a stored source; the pairing by
    release does not depend on the number)."""
    match = STANDARD_IMAGE_TAG.match(triton_image_tag)
    if not match:
        raise ValueError(f"Triton image tag {triton_image_tag!r} is not <yy.mm>-py3: TensorRT builds target "
                         f"standard deployments")
    return f"{TENSORRT_REPOSITORY}:{match.group(1)}-py3"


def plan_key(build: ModelBuildConfig, deployment: TritonDeploymentConfig) -> str:
    return f"{deployment.modelPrefix}/{build.model}/{build.version}/model.plan"


def config_key(build: ModelBuildConfig, deployment: TritonDeploymentConfig) -> str:
    return f"{deployment.modelPrefix}/{build.model}/config.pbtxt"


def _dims(dims: list[int]) -> str:
    return "x".join(str(d) for d in dims)


def trtexec_args(build: ModelBuildConfig) -> list[str]:
    """The trtexec command line (see the module docstring for the sources of each flag)."""
    args = ["trtexec", f"--onnx={ONNX_PATH}", f"--saveEngine={PLAN_PATH}"]
    if build.precision != "fp32":
        args.append(f"--{build.precision}")
    if build.shapes:
        for flag, field in (("--minShapes", "min"), ("--optShapes", "opt"), ("--maxShapes", "max")):
            spec = ",".join(f"{name}:{_dims(getattr(shape, field))}" for name, shape in sorted(build.shapes.items()))
            args.append(f"{flag}={spec}")
    args += [f"--memPoolSize=workspace:{build.workspaceMiB}M", "--skipInference"]
    return args


# Runs in the TensorRT container: trtexec (argv[2:]), then config.pbtxt from the engine's I/O
# tensors (TensorRT 10 Python API, NVIDIA/TensorRT v10.11 python/src/infer/pyCore.cpp:
# ICudaEngine.num_io_tensors, get_tensor_name, get_tensor_mode, get_tensor_dtype,
# get_tensor_shape, get_tensor_profile_shape; DataType names from pyFoundationalTypes.cpp).
# The batch becomes Triton's (max_batch_size, dynamic batching) when every tensor's first
# dimension is dynamic; otherwise max_batch_size 0 and full shapes.
CONFIG_SCRIPT = r'''
import os, shutil, subprocess, sys
import tensorrt as trt
model, argv = sys.argv[1], sys.argv[2:]
exe = shutil.which(argv[0]) or next((p for p in ("/opt/tensorrt/bin/trtexec", "/workspace/tensorrt/bin/trtexec") if os.path.exists(p)), argv[0])
code = subprocess.call([exe, *argv[1:]])
if code:
    sys.exit(code)
plan = next(a.split("=", 1)[1] for a in argv if a.startswith("--saveEngine="))
TYPES = {"FLOAT": "TYPE_FP32", "HALF": "TYPE_FP16", "BF16": "TYPE_BF16", "INT8": "TYPE_INT8", "INT32": "TYPE_INT32",
         "INT64": "TYPE_INT64", "BOOL": "TYPE_BOOL", "UINT8": "TYPE_UINT8"}
with open(plan, "rb") as f:
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(f.read())
tensors = []
for i in range(engine.num_io_tensors):
    name = engine.get_tensor_name(i)
    is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
    tensors.append((name, is_input, TYPES[engine.get_tensor_dtype(name).name], list(engine.get_tensor_shape(name))))
batched = all(dims and dims[0] == -1 for _, _, _, dims in tensors)
max_batch = min(engine.get_tensor_profile_shape(n, 0)[2][0] for n, i, _, _ in tensors if i) if batched else 0
lines = [f'name: "{model}"', 'platform: "tensorrt_plan"', f"max_batch_size: {max_batch}"]
for section, want in (("input", True), ("output", False)):
    for name, is_input, dtype, dims in tensors:
        if is_input == want:
            shown = dims[1:] if batched else dims
            lines.append(f'{section} [ {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(map(str, shown))} ] }} ]')
if batched:
    lines.append("dynamic_batching { }")
lines.append("instance_group [ { kind: KIND_GPU count: 1 } ]")
with open(os.environ["CONFIG_OUT"], "w") as f:
    f.write("\n".join(lines) + "\n")
print(open(os.environ["CONFIG_OUT"]).read())
'''.strip()



def resource_name(build: ModelBuildConfig) -> str:
    """Name of the build's ServiceAccount (and stem of its Job's and IAM role's names)."""
    return f"model-build-{build.name}"


def pod_labels(build: ModelBuildConfig) -> dict[str, str]:
    """The build pod's labels: what its NetworkPolicies (DNS, HTTPS egress to S3/STS) select."""
    return {"app.kubernetes.io/name": "model-build", "app.kubernetes.io/instance": build.name}


def fetch_script(bucket: str, key: str) -> str:
    """Wait for the source (HeadObject: s3:GetObject, which the role has; without s3:ListBucket a
    missing key answers 403, not 404), then copy it. Fails, naming the upload command, when it is
    still missing after SOURCE_WAIT_SECONDS."""
    url = shlex.quote(f"s3://{bucket}/{key}")
    tries = SOURCE_WAIT_SECONDS // SOURCE_POLL_SECONDS
    return (f"i=0; until aws s3api head-object --bucket {shlex.quote(bucket)} --key {shlex.quote(key)} >/dev/null 2>&1; "
            f"do i=$((i+1)); if [ $i -gt {tries} ]; then echo \"{url} is missing: upload the source ONNX "
            f"(aws s3 cp model.onnx {url})\" >&2; exit 1; fi; "
            f"echo \"waiting for {url} ($i/{tries})\"; sleep {SOURCE_POLL_SECONDS}; done; "
            f"aws s3 cp {url} {ONNX_PATH}")


def _transfer_container(name: str, script: str, env: list[dict]) -> dict[str, Any]:
    return {
        "name": name,
        "image": AWS_CLI_IMAGE,
        "command": ["sh", "-ec", script],
        "env": env,
        "resources": {"requests": dict(TRANSFER_RESOURCES), "limits": dict(TRANSFER_RESOURCES)},
        "securityContext": security.restricted_security_context(),
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _containers(build: ModelBuildConfig, deployment: TritonDeploymentConfig, bucket: str,
                region: str) -> tuple[list[dict], list[dict]]:
    """(initContainers, containers): fetch, build (GPU), then upload."""
    # HOME on the writable /tmp: the AWS CLI and CUDA's JIT cache write under it.
    env = [{"name": "AWS_REGION", "value": region}, {"name": "AWS_DEFAULT_REGION", "value": region},
           {"name": "HOME", "value": "/tmp"}]
    s3 = f"s3://{bucket}"
    fetch = _transfer_container("fetch", fetch_script(bucket, build.source), env)
    upload = _transfer_container("upload", " && ".join([
        f"aws s3 cp {PLAN_PATH} {shlex.quote(f'{s3}/{plan_key(build, deployment)}')}",
        f"aws s3 cp {CONFIG_PATH} {shlex.quote(f'{s3}/{config_key(build, deployment)}')}",
    ]), env)
    cpu_memory = {"cpu": build.resources.cpu, "memory": build.resources.memory}
    gpu = gpu_limits(1)
    builder = {
        "name": "build",
        "image": tensorrt_image(deployment.imageTag),
        "command": ["python3", "-c", CONFIG_SCRIPT, build.model, *trtexec_args(build)],
        "env": [{"name": "CONFIG_OUT", "value": CONFIG_PATH}, {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {**cpu_memory, **gpu["requests"]}, "limits": {**cpu_memory, **gpu["limits"]}},
        "securityContext": security.restricted_security_context(),
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    for container in (fetch, builder, upload):
        # Tags are pinned releases; Always re-checks the tag's digest at pod start.
        container["imagePullPolicy"] = "Always"
    return [fetch, builder], [upload]


def job_spec(build: ModelBuildConfig, deployment: TritonDeploymentConfig, bucket: str, region: str,
             source_sha256: Optional[str] = None) -> dict[str, Any]:
    """The Job's spec (Kubernetes spelling). No ttlSecondsAfterFinished, as for the GPU validation
    Jobs: a Job deleted behind Pulumi's back would be recreated, and the build re-run, by the next
    `pulumi up`. A changed build, or a new source file (`source_sha256`), gets a new name instead
    (`job_name`)."""
    init_containers, containers = _containers(build, deployment, bucket, region)
    template_meta: dict[str, Any] = {"labels": {**MANAGED_BY, **pod_labels(build)}}
    if source_sha256:
        template_meta["annotations"] = {SOURCE_SHA256_ANNOTATION: source_sha256}
    return {
        "backoffLimit": BACKOFF_LIMIT,
        # Counted from the Job's start, Pending included: leave time to add a GPU node.
        "activeDeadlineSeconds": build.timeoutSeconds + NODE_PROVISIONING_SECONDS,
        "template": {
            "metadata": template_meta,
            "spec": {
                **gpu_pod_placement(deployment.gpuPool, BUILD_PRIORITY_CLASS),
                "serviceAccountName": resource_name(build),
                # The IRSA token is its own projected volume; the pod needs no Kubernetes API.
                "automountServiceAccountToken": False,
                "restartPolicy": "Never",
                "securityContext": security.restricted_pod_security_context(),
                "initContainers": init_containers,
                "containers": containers,
                "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": build.scratchSize}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
            },
        },
    }


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:HASH_LENGTH]


def job_name(build: ModelBuildConfig, spec: dict[str, Any]) -> str:
    """`model-build-<name>-<hash of the spec>`: a Job's pod template is immutable, so a changed build
    is a new Job (Pulumi creates it, waits for it, then deletes the old one)."""
    return f"{resource_name(build)}-{spec_hash(spec)}"


def job_manifest(build: ModelBuildConfig, deployment: TritonDeploymentConfig, bucket: str, region: str,
                 source_sha256: Optional[str] = None) -> dict[str, Any]:
    """The build Job (metadata + spec), in the target deployment's namespace (its GPU quota)."""
    spec = job_spec(build, deployment, bucket, region, source_sha256)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(build, spec),
            "namespace": deployment.namespace,
            "labels": {**MANAGED_BY, **pod_labels(build), "ai-platform/triton-deployment": deployment.name},
            "annotations": {
                # `pulumi up` waits for the Job to complete (pulumi-kubernetes await/job.go); the
                # default 10 minutes is too short for a node to come up and an engine to build.
                # Read when no customTimeouts is set (provider/pkg/metadata: AnnotationTimeoutSeconds).
                PULUMI_TIMEOUT: str(spec["activeDeadlineSeconds"] + AWAIT_MARGIN_SECONDS),
                **security.checkov_skips({"CKV_K8S_43": "the TensorRT image tag follows the deployment's pinned "
                                                        "Triton release; the AWS CLI tag is pinned"}),
            },
        },
        "spec": spec,
    }


def service_account_manifest(build: ModelBuildConfig, deployment: TritonDeploymentConfig,
                             role_arn: Optional[str] = None) -> dict[str, Any]:
    """The build's ServiceAccount; `role_arn` (the IRSA role, known at deploy) as its annotation."""
    annotations = {"eks.amazonaws.com/role-arn": role_arn} if role_arn else {}
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": resource_name(build), "namespace": deployment.namespace,
                         "labels": {**MANAGED_BY, **pod_labels(build)}, "annotations": annotations},
            "automountServiceAccountToken": False}


def build_policy(partition: str, bucket: str, build: ModelBuildConfig, deployment: TritonDeploymentConfig,
                 kms_key_arn: Optional[str] = None) -> str:
    """Least privilege for one build: read its source object, write the model's two objects.
    No s3:ListBucket: `aws s3 cp` of a single key needs none (without it a missing source is a
    403 rather than a 404). KMS only for a customer managed key (as the model repository's other
    roles): Decrypt to read, GenerateDataKey (and Decrypt, for multipart) to write."""
    arn = bucket_arn(partition, bucket)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadSource", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/{build.source}"},
            {"Sid": "WritePlan", "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
             "Resource": [f"{arn}/{plan_key(build, deployment)}", f"{arn}/{config_key(build, deployment)}"]},
            *_kms_statement(kms_key_arn, ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
    })


def trust_policy(oidc_provider_arn, oidc_issuer, build: ModelBuildConfig, deployment: TritonDeploymentConfig):
    """IRSA trust for the build's ServiceAccount only (components.iam.irsa_trust_policy)."""
    return irsa_trust_policy(oidc_provider_arn, oidc_issuer, deployment.namespace, resource_name(build))



@dataclass(frozen=True)
class ModelBuildArgs:
    build: ModelBuildConfig
    deployment: TritonDeploymentConfig  # the target (standard) deployment
    bucket_name: str
    region: str
    partition: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    kms_key_arn: Optional[str] = None
    # What the Job waits for: its namespace (a GPU-quota one, created before Triton), the priority
    # classes, the pool's GPU validation Job, the bucket (the deployment's prefix marker).
    waits_for: Sequence[pulumi.Resource] = ()
    # When the stack uploads `build.source` from a local file (`sourceFile`, `source_upload`): that
    # upload, which the Job waits for, and the file's SHA-256 (None: not there, offline only).
    source_object: Optional[pulumi.Resource] = None
    source_sha256: Optional[str] = None


class ModelBuild(pulumi.ComponentResource):
    """One TensorRT build: IRSA role (read the source, write the model's two objects), its
    ServiceAccount, DNS and HTTPS egress for the build pod (the namespace denies egress), and the
    Job, which `pulumi up` waits for, after the upload of its source when the stack makes one
    (`source_object`). The Job's name carries a hash of its spec: a changed build or source is
    a new Job (created and awaited, then the old one deleted). Whatever serves the plan depends on
    `job`. Pass the AWS and Kubernetes providers in `opts.providers`."""

    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: ModelBuildArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:inference:ModelBuild", name, None, opts)
        build, deployment = args.build, args.deployment
        ns, base = deployment.namespace, resource_name(build)
        role = IrsaRole(f"{name}-role", IrsaRoleArgs(
            args.oidc_provider_arn, args.oidc_issuer, ns, base,
            policy=build_policy(args.partition, args.bucket_name, build, deployment, args.kms_key_arn),
            description=f"TensorRT build {build.name}: read s3://{args.bucket_name}/{build.source}, write "
                        f"{deployment.modelPrefix}/{build.model}/",
            max_session_duration=3600,
        ), pulumi.ResourceOptions(parent=self))
        k8s_opts = pulumi.ResourceOptions(parent=self, depends_on=list(args.waits_for))
        sa_doc = service_account_manifest(build, deployment)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={**sa_doc["metadata"], "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
            automount_service_account_token=False, opts=k8s_opts)
        policies = [security.allow_dns_egress(ns, k8s_opts, pod_labels(build), name=f"{base}-allow-dns-egress"),
                    security.allow_https_egress(ns, pod_labels(build), k8s_opts, name=f"{base}-allow-https-egress")]
        manifest = job_manifest(build, deployment, args.bucket_name, args.region, args.source_sha256)
        # The Job's fetch finds the source on its first look when the stack uploads it.
        source = [args.source_object] if args.source_object is not None else []
        self.job = k8s.batch.v1.Job(
            f"{name}-job", metadata=manifest["metadata"], spec=manifest["spec"],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[service_account, *policies, *source])))
        self.job_name = manifest["metadata"]["name"]
        self.register_outputs({"jobName": self.job_name})


def source_upload(name: str, bucket: str, key: str, path: Path, kms_key_arn: Optional[str],
                  opts: pulumi.ResourceOptions) -> aws.s3.BucketObjectv2:
    """A build's source ONNX, uploaded by the stack's own credentials (the build role stays
    read-only on it); SSE-KMS as the bucket's default (its key when the repository has a customer
    managed one) with the bucket key (components/s3.py). `opts` should wait for the bucket and its
    default encryption."""
    kms = {"kms_key_id": kms_key_arn} if kms_key_arn else {}
    return aws.s3.BucketObjectv2(
        name, bucket=bucket, key=key, source=pulumi.FileAsset(str(path)), content_type=ONNX_CONTENT_TYPE,
        server_side_encryption="aws:kms", bucket_key_enabled=True, **kms, opts=opts)


__all__ = [
    "AWS_CLI_IMAGE", "BUILD_PRIORITY_CLASS", "CONFIG_SCRIPT", "ModelBuild", "ModelBuildArgs", "ONNX_CONTENT_TYPE",
    "SOURCE_SHA256_ANNOTATION", "build_policy", "fetch_script", "config_key", "file_sha256", "job_manifest", "job_name",
    "job_spec", "plan_key", "pod_labels", "resource_name", "service_account_manifest", "spec_hash", "tensorrt_image",
    "source_upload", "trtexec_args", "trust_policy",
]
