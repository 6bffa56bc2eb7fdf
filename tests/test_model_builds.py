"""TensorRT builds on the GPU pool (`modelBuilds`, issue 14): the config section's checks and the
rendered build Job, IAM policy and trust (components/model_builds.py), and the first-deploy check
walking the Job in a synthetic plan; then the wiring: dev's build in the plan (ModelBuild in the
Inference layer), its IRSA role and egress, Triton waiting for it, and the capacity checks.

Upstream facts held here:
- [trtexec] NVIDIA/TensorRT tag v10.11 (NvInferVersion.h: 10.11), samples/common/sampleOptions.cpp:
  `--onnx`, `--saveEngine`, `--fp16`, `--int8`, `--skipInference` (BuildOptions/SystemOptions::parse),
  `--minShapes/--optShapes/--maxShapes` as `name:AxBxC[,name2:...]` (getShapesBuild,
  splitNameAndValue, stringToValue<std::vector<int32_t>> splits on `x`), `--memPoolSize=workspace:<n>`
  in MiB unless suffixed B/K/M/G (addDefaultUnitSuffixIfNotSpecified(..., 'M')); no `--workspace`
  option is parsed any more. samples/trtexec/README.md: in INT8 mode trtexec does not calibrate.
- [trt-python] same tag, python/src/infer/pyCore.cpp (ICudaEngine.num_io_tensors, get_tensor_name,
  get_tensor_mode, get_tensor_dtype, get_tensor_shape, get_tensor_profile_shape; TensorIOMode.INPUT)
  and pyFoundationalTypes.cpp (DataType FLOAT, HALF, INT8, INT32, INT64, BOOL, UINT8, BF16).
- [cutoff] kubernetes/autoscaler cluster-autoscaler-1.33.0: pods below --expendable-pods-priority-cutoff
  (default -10) never scale a pool up (FAQ.md; core/utils/expendable.go `priority < cutoff`).
- [job] Kubernetes batch/v1 Job: the pod template is immutable after creation (a changed build must
  be a new Job); activeDeadlineSeconds counts from the Job's start.
- [s3] S3 authorises CreateMultipartUpload/UploadPart/CompleteMultipartUpload as s3:PutObject;
  SSE-KMS uploads need kms:GenerateDataKey (and kms:Decrypt for multipart), reads kms:Decrypt.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest

import pulumi
from pydantic import ValidationError

from components import model_builds as mb
from platformctl import first_deploy as fd
from platformctl.models.validate import parse_config
from stack_config.base import PROBLEMS_ERROR
from stack_config.gpu_stack import DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF, PRIORITY_VALUES
from stack_config.model_builds import ModelBuildConfig, model_build_problems
from stack_config.triton import TritonDeploymentConfig
from tests import test_first_deploy as tfd

BUCKET, REGION = "ai-platform-dev-models-us-east-1", "us-east-1"
SHAPES = {"input": {"min": [1, 3, 224, 224], "opt": [8, 3, 224, 224], "max": [32, 3, 224, 224]}}


def deployment(**kw) -> TritonDeploymentConfig:
    return TritonDeploymentConfig(**{"name": "standard", "imageTag": "25.06-py3", "gpuPool": "inference",
                                     "modelPrefix": "triton/standard", **kw})


def build(**kw) -> ModelBuildConfig:
    return ModelBuildConfig(**{"name": "cv", "source": "sources/cv/model.onnx", "deployment": "standard",
                               "model": "text_orientation_trt", "shapes": SHAPES, **kw})


def pod(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


def container(manifest: dict, name: str) -> dict:
    spec = pod(manifest)
    return next(c for c in spec["initContainers"] + spec["containers"] if c["name"] == name)


# --- the Job ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tag, image", [("25.06-py3", "nvcr.io/nvidia/tensorrt:25.06-py3"),
                                        ("24.12-py3", "nvcr.io/nvidia/tensorrt:24.12-py3")])
def test_the_build_image_is_the_tensorrt_container_of_the_deployments_triton_release(tag, image):
    """A plan loads only on the TensorRT that built it: same NGC release as the Triton image."""
    manifest = mb.job_manifest(build(), deployment(imageTag=tag), BUCKET, REGION)
    assert container(manifest, "build")["image"] == image
    assert image.split(":")[1].split("-")[0] == tag.split("-")[0]


@pytest.mark.parametrize("tag", ["25.06-vllm-python-py3", "25.06-trtllm-python-py3"])
def test_other_triton_flavours_are_refused(tag):
    with pytest.raises(ValueError, match="standard deployments"):
        mb.tensorrt_image(tag)
    problems = model_build_problems([build()], [deployment(imageTag=tag)])
    assert problems and problems[0][0] == "modelBuilds[0].deployment" and tag in problems[0][1]


def test_only_the_build_container_holds_one_gpu_on_the_deployments_pool():
    manifest = mb.job_manifest(build(), deployment(gpuPool="inference"), BUCKET, REGION)
    spec = pod(manifest)
    assert container(manifest, "build")["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container(manifest, "build")["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert all("nvidia.com/gpu" not in container(manifest, n)["resources"]["limits"] for n in ("fetch", "upload"))
    assert spec["nodeSelector"] == {"ai-platform/gpu-pool": "inference"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "model-build-cv"
    assert manifest["metadata"]["namespace"] == "inference"  # the deployment's: its GPU quota counts the build


def test_the_priority_scales_a_pool_from_zero_and_never_preempts_serving():
    """[cutoff] below the cut-off the autoscaler never adds the node the build waits for."""
    from components.gpu_scheduling import PRIORITY_CLASSES

    name = pod(mb.job_manifest(build(), deployment(), BUCKET, REGION))["priorityClassName"]
    assert PRIORITY_VALUES[name] >= DEFAULT_EXPENDABLE_PODS_PRIORITY_CUTOFF
    assert PRIORITY_CLASSES[name][1] == "Never"


def test_every_container_runs_non_root_with_a_read_only_root_and_bounded_resources():
    spec = pod(mb.job_manifest(build(), deployment(), BUCKET, REGION))
    assert spec["securityContext"]["runAsNonRoot"] is True
    for c in spec["initContainers"] + spec["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]


def test_the_job_fetches_the_source_and_uploads_plan_then_config_under_the_deployment_prefix():
    manifest = mb.job_manifest(build(version=3), deployment(), BUCKET, REGION)
    spec = pod(manifest)
    assert [c["name"] for c in spec["initContainers"]] == ["fetch", "build"]
    assert container(manifest, "fetch")["command"][-1] == mb.fetch_script(BUCKET, "sources/cv/model.onnx")
    assert mb.fetch_script(BUCKET, "sources/cv/model.onnx").endswith(f"; aws s3 cp s3://{BUCKET}/sources/cv/model.onnx /work/model.onnx")
    upload = container(manifest, "upload")["command"][-1]
    plan = f"s3://{BUCKET}/triton/standard/text_orientation_trt/3/model.plan"
    config = f"s3://{BUCKET}/triton/standard/text_orientation_trt/config.pbtxt"
    assert upload == f"aws s3 cp /work/model.plan {plan} && aws s3 cp /work/config.pbtxt {config}"


def test_deadlines_leave_time_for_a_node_and_no_ttl_recreates_the_job():
    manifest = mb.job_manifest(build(timeoutSeconds=1800), deployment(), BUCKET, REGION)
    assert manifest["spec"]["backoffLimit"] == 1
    assert manifest["spec"]["activeDeadlineSeconds"] == 1800 + mb.NODE_PROVISIONING_SECONDS
    assert int(manifest["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) > manifest["spec"]["activeDeadlineSeconds"]
    assert "ttlSecondsAfterFinished" not in manifest["spec"]


def test_a_changed_build_is_a_new_job_and_an_unchanged_one_keeps_its_name():
    """[job] the pod template is immutable: the name carries a hash of the spec."""
    names = {mb.job_manifest(b, d, BUCKET, REGION)["metadata"]["name"] for b, d in [
        (build(), deployment()), (build(precision="int8"), deployment()), (build(workspaceMiB=2048), deployment()),
        (build(version=2), deployment()), (build(), deployment(imageTag="25.05-py3")),
    ]}
    assert len(names) == 5
    again = mb.job_manifest(build(), deployment(), BUCKET, REGION)["metadata"]["name"]
    assert again in names and again.startswith("model-build-cv-") and len(again) <= 63


def _run_fetch(tmp_path: Path, missing_heads: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The fetch script under sh with `aws` and `sleep` stubbed: HeadObject fails `missing_heads` times."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f"""#!/bin/sh
echo "$*" >> {log}
if [ "$2" = head-object ]; then
  n=$(grep -c head-object {log}); [ "$n" -gt {missing_heads} ] || exit 254
fi
""")
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    done = subprocess.run(["sh", "-ec", mb.fetch_script(BUCKET, "sources/cv/model.onnx")], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    return done, log.read_text().splitlines()


def test_fetch_waits_for_a_source_uploaded_while_pulumi_up_runs(tmp_path):
    """On a new account the bucket comes with the same `pulumi up`: the source can only follow it."""
    done, calls = _run_fetch(tmp_path, missing_heads=2)
    assert done.returncode == 0, done.stderr
    assert calls == [f"s3api head-object --bucket {BUCKET} --key sources/cv/model.onnx"] * 3 + [
        f"s3 cp s3://{BUCKET}/sources/cv/model.onnx /work/model.onnx"]
    assert "waiting for s3://" in done.stdout


def test_fetch_fails_naming_the_upload_when_the_source_never_comes(tmp_path):
    done, calls = _run_fetch(tmp_path, missing_heads=10_000)
    assert done.returncode == 1 and len(calls) == mb.SOURCE_WAIT_SECONDS // mb.SOURCE_POLL_SECONDS + 1
    assert f"upload the source ONNX (aws s3 cp model.onnx s3://{BUCKET}/sources/cv/model.onnx)" in done.stderr


# --- trtexec ------------------------------------------------------------------------------------

def test_the_trtexec_command_line_matches_tensorrt_10_11():
    """[trtexec] shape specs name:AxB, workspace with an explicit M suffix, no --workspace."""
    assert mb.trtexec_args(build()) == [
        "trtexec", "--onnx=/work/model.onnx", "--saveEngine=/work/model.plan", "--fp16",
        "--minShapes=input:1x3x224x224", "--optShapes=input:8x3x224x224", "--maxShapes=input:32x3x224x224",
        "--memPoolSize=workspace:4096M", "--skipInference",
    ]
    assert not any(a.startswith("--workspace") for a in mb.trtexec_args(build()))


def test_precision_flags_and_several_dynamic_inputs():
    two = {"input_ids": {"min": [1, 8], "opt": [8, 128], "max": [32, 256]},
           "attention_mask": {"min": [1, 8], "opt": [8, 128], "max": [32, 256]}}
    args = mb.trtexec_args(build(precision="int8", shapes=two))
    assert "--int8" in args and "--fp16" not in args
    assert "--minShapes=attention_mask:1x8,input_ids:1x8" in args
    fp32 = mb.trtexec_args(build(precision="fp32", shapes={}))
    assert not {"--fp16", "--int8"} & set(fp32) and not any("Shapes" in a for a in fp32)


# --- the config.pbtxt step, run against a stand-in of the tensorrt module --------------------------

def _fake_tensorrt(tensors: dict[str, tuple[bool, str, list[int], list[int] | None]]) -> types.ModuleType:
    """tensorrt with the TensorRT 10 engine API the script uses [trt-python]."""
    trt = types.ModuleType("tensorrt")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    names = list(tensors)

    class Engine:
        num_io_tensors = len(names)

        def get_tensor_name(self, i): return names[i]
        def get_tensor_mode(self, n): return "INPUT" if tensors[n][0] else "OUTPUT"
        def get_tensor_dtype(self, n): return types.SimpleNamespace(name=tensors[n][1])
        def get_tensor_shape(self, n): return tensors[n][2]
        def get_tensor_profile_shape(self, n, profile): return [tensors[n][3]] * 2 + [tensors[n][3]]

    class Logger:
        WARNING = 2

        def __init__(self, level): pass

    class Runtime:
        def __init__(self, logger): pass
        def deserialize_cuda_engine(self, data): return Engine()

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


def _run_script(tmp_path: Path, monkeypatch, tensors) -> Path:
    (tmp_path / "model.plan").write_bytes(b"engine")
    out = tmp_path / "config.pbtxt"
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(tensors))
    monkeypatch.setenv("CONFIG_OUT", str(out))
    calls = []
    monkeypatch.setattr("subprocess.call", lambda argv: calls.append(argv) or 0)
    script = tmp_path / "script.py"
    script.write_text(mb.CONFIG_SCRIPT)
    argv = [a.replace("/work", str(tmp_path)) for a in mb.trtexec_args(build())]
    monkeypatch.setattr(sys, "argv", [str(script), "text_orientation_trt", *argv])
    runpy.run_path(str(script), run_name="__main__")
    assert calls and calls[0][1:] == argv[1:]
    return out


def test_the_job_writes_a_tensorrt_plan_config_that_parses_with_a_batched_profile(tmp_path, monkeypatch, capsys):
    out = _run_script(tmp_path, monkeypatch, {
        "input": (True, "FLOAT", [-1, 3, 224, 224], [32, 3, 224, 224]),
        "logits": (False, "HALF", [-1, 2], None),
    })
    config, problem = parse_config(out)
    assert problem is None, problem
    assert config.platform == "tensorrt_plan" and config.name == "text_orientation_trt"
    assert config.max_batch_size == 32 and config.HasField("dynamic_batching")
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", [3, 224, 224])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [2])]


def test_a_static_engine_gets_max_batch_size_zero_and_full_shapes(tmp_path, monkeypatch, capsys):
    out = _run_script(tmp_path, monkeypatch, {"x": (True, "INT64", [1, 16], [1, 16]), "y": (False, "FLOAT", [1, 4], None)})
    config, problem = parse_config(out)
    assert problem is None and config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 16]


# --- IAM ----------------------------------------------------------------------------------------

def test_the_policy_reads_the_source_and_writes_only_the_models_two_objects():
    """[s3] PutObject covers multipart; no ListBucket, no other key."""
    doc = json.loads(mb.build_policy("aws", BUCKET, build(), deployment()))
    arn = f"arn:aws:s3:::{BUCKET}"
    assert doc["Statement"] == [
        {"Sid": "ReadSource", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/sources/cv/model.onnx"},
        {"Sid": "WritePlan", "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
         "Resource": [f"{arn}/triton/standard/text_orientation_trt/1/model.plan",
                      f"{arn}/triton/standard/text_orientation_trt/config.pbtxt"]},
    ]


def test_a_customer_managed_key_adds_decrypt_and_generate_data_key_through_s3_only():
    key = "arn:aws:kms:us-east-1:123456789012:key/0123abcd-0123-0123-0123-0123456789ab"
    kms = json.loads(mb.build_policy("aws", BUCKET, build(), deployment(), kms_key_arn=key))["Statement"][-1]
    assert kms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and kms["Resource"] == key
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


def test_the_trust_admits_only_the_builds_service_account(monkeypatch):
    """Reuses components.iam.irsa_trust_policy (exact `system:serviceaccount:<ns>:<sa>` subject)."""
    seen = []
    monkeypatch.setattr(mb, "irsa_trust_policy", lambda *args: seen.append(args) or "doc")
    assert mb.trust_policy("arn:provider", "issuer", build(), deployment()) == "doc"
    assert seen == [("arn:provider", "issuer", "inference", "model-build-cv")]
    sa = mb.service_account_manifest(build(), deployment(), "arn:aws:iam::123456789012:role/b")
    assert sa["metadata"]["name"] == pod(mb.job_manifest(build(), deployment(), BUCKET, REGION))["serviceAccountName"]
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/b"}


# --- config -------------------------------------------------------------------------------------

def _messages(exc: ValidationError) -> list[tuple[str, str]]:
    """(key path, message) per problem, the `problems()` ones unpacked as stack_config reports them."""
    found = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == PROBLEMS_ERROR:
            found += [(f"{where}.{field}", message) for field, message in error["ctx"]["problems"]]
        else:
            found.append((where, error["msg"]))
    return found


@pytest.mark.parametrize("overrides, key, text", [
    ({"shapes": {"input": {"min": [8, 3], "opt": [4, 3], "max": [32, 3]}}}, "opt", "min <= opt <= max"),
    ({"shapes": {"input": {"min": [1, 3], "opt": [8, 3], "max": [4, 3]}}}, "max", "min <= opt <= max"),
    ({"shapes": {"input": {"min": [1, 3], "opt": [8, 3, 3], "max": [32, 3]}}}, "min", "same rank"),
    ({"shapes": {"in,put": SHAPES["input"]}}, "shapes", "should match pattern"),
    ({"precision": "int4"}, "precision", "'fp16'"),
    ({"source": "sources/cv/model.pt"}, "source", "should match pattern"),
    ({"workspaceMiB": 0}, "workspaceMiB", "greater than or equal"),
])
def test_bad_entries_are_refused_naming_the_key(overrides, key, text):
    with pytest.raises(ValidationError) as err:
        build(**overrides)
    found = _messages(err.value)
    assert any(key in where and text in message for where, message in found), found


def test_cross_checks_name_every_bad_entry():
    deployments = [deployment(), deployment(name="chat", mode="llm", imageTag="25.06-vllm-python-py3",
                                            modelPrefix="triton/chat", modelControl={"mode": "none"})]
    builds = [build(), build(), build(name="x", deployment="nope"), build(name="y", deployment="chat"),
              build(name="z", source="triton/standard/raw/model.onnx", model="other")]
    problems = dict((k, m) for k, m in reversed(model_build_problems(builds, deployments)))
    assert "duplicate build name 'cv'" in problems["modelBuilds[1].name"]
    assert "already writes text_orientation_trt version 1" in problems["modelBuilds[1].model"]
    assert "no Triton deployment named 'nope'" in problems["modelBuilds[2].deployment"]
    assert "mode llm" in problems["modelBuilds[3].deployment"]
    assert "modelPrefix" in problems["modelBuilds[4].source"]
    assert model_build_problems([build()], [deployment()]) == []


# --- the first-deploy check walks the Job ----------------------------------------------------------

def _plan(job_before_triton: bool, quota: int | None = None) -> dict:
    manifest = mb.job_manifest(build(), deployment(), BUCKET, REGION)
    job = tfd.res("kubernetes:batch/v1:Job", "trt-build", {k: manifest[k] for k in ("kind", "metadata", "spec")})
    extra = [tfd.priority_class(mb.BUILD_PRIORITY_CLASS, PRIORITY_VALUES[mb.BUILD_PRIORITY_CLASS]), job]
    if quota is not None:
        extra.append(tfd.quota("inference", {"requests.nvidia.com/gpu": str(quota)}))
    doc = tfd.base(*extra, gpu_desired=0, gpu_max=2)
    triton = tfd.deployment("standard", tfd.gpu_pod(), deps=[job["urn"]] if job_before_triton else [])
    doc["resources"].append(triton)
    return doc


def test_the_first_deploy_check_scales_the_pool_from_zero_for_the_build():
    report = fd.check(_plan(job_before_triton=True))
    step = tfd.step(report, f"Job inference/{mb.job_manifest(build(), deployment(), BUCKET, REGION)['metadata']['name']}")
    # Only the source the stack does not upload itself is a warning (first_deploy._source_finding).
    assert [f.rule for f in step.findings if f.status != fd.OK] == ["models"], fd.render(report)
    assert "scale-up" in tfd.rules(step, fd.OK) and "placement" in tfd.rules(step, fd.OK)
    assert step.waits.startswith("the Job completes") and "timeout 4800 s" in step.waits
    assert report.exit_code == 0


def test_the_build_gpu_counts_in_the_peak_when_it_runs_beside_triton():
    """A 1-GPU quota holds Triton or the build, not both at once."""
    assert fd.check(_plan(job_before_triton=True, quota=1)).exit_code == 0
    report = fd.check(_plan(job_before_triton=False, quota=1))
    assert report.exit_code == fd.EXIT_DEADLOCK, fd.render(report)
    peak = next(p for p in report.peaks if p.scope == "namespace inference")
    assert peak.peak == 2 and peak.limit == 1 and any("trt" in w or "model-build" in w for w in peak.workloads)


def test_below_the_cut_off_the_build_never_gets_a_node():
    doc = _plan(job_before_triton=True)
    for r in doc["resources"]:
        if r["type"] == fd.PRIORITY_CLASS and r["inputs"]["metadata"]["name"] == mb.BUILD_PRIORITY_CLASS:
            r["inputs"]["value"] = -100
    assert fd.check(doc).exit_code == fd.EXIT_DEADLOCK


def test_a_build_beside_serving_replicas_must_fit_the_pool_and_the_quota():
    """A changed build runs while Triton serves: its GPU comes on top of Triton's peak."""
    from stack_config.gpu_pools import GpuNodeGroupConfig

    pool = GpuNodeGroupConfig(name="inference", instanceTypes=["g6.xlarge"], maxSize=2)  # 1 GPU per node
    serving = deployment(maxReplicas=1, rolloutStrategy="recreate")  # peak 1 GPU
    assert model_build_problems([build()], [serving], [pool], {"inference": 2}) == []
    problems = dict(model_build_problems([build(), build(name="nlp", model="nlp_trt")], [serving], [pool], {"inference": 4}))
    assert "pool inference offers 2 GPUs; Triton may hold 1 and the 2 build(s)" in problems["modelBuilds[1].deployment"]
    problems = dict(model_build_problems([build()], [serving], [pool], {"inference": 1}))
    assert "namespace inference offers 1 GPUs" in problems["modelBuilds[0].deployment"]


# --- wired into the stack: the dev plan (tests/harness.py) -----------------------------------------
# dev declares one build: the CV example (rapidocr's text-orientation classifier, input `x`
# [batch, 3, H, W], static Q/DQ INT8 from `models optimize --calibration`) into `standard`.

JOB_TYPE, DEPLOYMENT_TYPE = "kubernetes:batch/v1:Job", "kubernetes:apps/v1:Deployment"


def dev_build_job(run):
    [job] = [j for j in run.of_type(JOB_TYPE) if j.name == "model-build-text-orientation-job"]
    return job


def test_the_dev_plan_builds_the_cv_example_with_its_tritons_release_on_its_pool():
    from tests.harness import config_for, plan

    run, config = plan("dev"), config_for("dev")
    [spec] = [b for b in config.modelBuilds if b.name == "text-orientation"]
    standard = next(d for d in config.tritonDeployments if d.name == spec.deployment)
    job = dev_build_job(run).public_inputs()
    triton = run.named("triton-standard-deployment", DEPLOYMENT_TYPE).public_inputs()
    triton_image = triton["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container(job, "build")["image"].rsplit(":", 1)[1] == triton_image.rsplit(":", 1)[1] == "25.06-py3"
    assert container(job, "build")["image"].startswith("nvcr.io/nvidia/tensorrt:")
    placement = pod(job)
    assert placement["nodeSelector"] == triton["spec"]["template"]["spec"]["nodeSelector"] == {"ai-platform/gpu-pool": "inference"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in placement["tolerations"]
    assert container(job, "build")["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert job["metadata"]["namespace"] == standard.namespace  # the namespace's GPU quota counts it
    # [cutoff] the pool idles at zero: the build's pod must make the autoscaler add a node
    classes = {r.public_inputs()["metadata"]["name"]: r.public_inputs()["value"]
               for r in run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")}
    assert classes[placement["priorityClassName"]] >= config.clusterAutoscaler.expendablePodsPriorityCutoff
    bucket = config.modelRepository.bucket_name("dev", config.region)
    assert container(job, "fetch")["command"][-1] == mb.fetch_script(bucket, "sources/text-orientation/model.onnx")
    assert container(job, "upload")["command"][-1] == (
        f"aws s3 cp /work/model.plan s3://{bucket}/triton/standard/text_orientation_trt/1/model.plan && "
        f"aws s3 cp /work/config.pbtxt s3://{bucket}/triton/standard/text_orientation_trt/config.pbtxt")
    args = container(job, "build")["command"][4:]
    assert "--int8" in args and "--minShapes=x:1x3x48x192" in args and "--maxShapes=x:32x3x48x192" in args


def test_the_dev_build_runs_under_its_own_least_privilege_irsa_role():
    from tests.harness import json_policy, plan

    run = plan("dev")
    component = run.named("model-build-text-orientation", "ai-platform:inference:ModelBuild")
    assert component.parent_type == "ai-platform:layers:Inference"
    role_component = run.named("model-build-text-orientation-role", "ai-platform:iam:IrsaRole")
    assert role_component.parent == component.urn
    policy = run.named("model-build-text-orientation-role", "aws:iam/rolePolicy:RolePolicy")
    assert policy.parent == role_component.urn
    statements = json_policy(policy)["Statement"]
    bucket = "arn:aws:s3:::ai-platform-dev-models-us-west-2"
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("s3:GetObject", f"{bucket}/sources/text-orientation/model.onnx"),
        (["s3:PutObject", "s3:AbortMultipartUpload"], [f"{bucket}/triton/standard/text_orientation_trt/1/model.plan",
                                                       f"{bucket}/triton/standard/text_orientation_trt/config.pbtxt"]),
    ]
    # The trust needs the cluster's OIDC issuer (unknown at preview); its subject is pinned by
    # components.iam.irsa_trust_policy to the ServiceAccount below (test_iam holds it).
    assert run.named("model-build-text-orientation-role", "aws:iam/role:Role").parent == role_component.urn
    sa = run.named("model-build-text-orientation-sa", "kubernetes:core/v1:ServiceAccount").public_inputs()
    assert sa["metadata"]["name"] == pod(dev_build_job(run).public_inputs())["serviceAccountName"]
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]


def test_the_build_pod_may_resolve_names_and_reach_https_and_waits_for_both_policies():
    """The inference namespace denies egress: without DNS and 443 the fetch from S3 (and STS for
    IRSA) would hang until the Job's deadline."""
    from tests.harness import plan

    run = plan("dev")
    job = dev_build_job(run)
    labels = job.public_inputs()["spec"]["template"]["metadata"]["labels"]
    policies = {r.public_inputs()["metadata"]["name"]: r for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for name, port in (("model-build-text-orientation-allow-dns-egress", 53),
                       ("model-build-text-orientation-allow-https-egress", 443)):
        spec = policies[name].public_inputs()["spec"]
        assert spec["policyTypes"] == ["Egress"] and spec["podSelector"]["matchLabels"].items() <= labels.items()
        assert port in [p["port"] for rule in spec["egress"] for p in rule["ports"]]
        assert policies[name].urn in job.dependencies
    assert run.named("model-build-text-orientation-sa", "kubernetes:core/v1:ServiceAccount").urn in job.dependencies


def test_the_target_triton_waits_for_its_build_and_the_build_for_the_pools_validation():
    from tests.harness import plan

    run = plan("dev")
    job = dev_build_job(run)
    assert job.urn in run.named("triton-standard-deployment", DEPLOYMENT_TYPE).dependencies
    assert job.urn not in run.named("triton-llm-deployment", DEPLOYMENT_TYPE).dependencies  # not its model
    validation = next(j for j in run.of_type(JOB_TYPE) if j.public_inputs()["metadata"]["name"] == "gpu-validation-inference")
    assert validation.urn in job.dependencies
    assert run.named("cluster-autoscaler", "kubernetes:helm.sh/v3:Release").urn in job.dependencies


def test_the_first_deploy_check_walks_the_dev_build_before_standard():
    from tests.harness import plan

    run = plan("dev")
    report = fd.check(run.to_json())
    name = dev_build_job(run).public_inputs()["metadata"]["name"]
    titles = [s.title for s in report.steps]
    build_step = tfd.step(report, f"Job inference/{name}")
    # At most the sourceFile upload, when `make examples` has not run here (test_a_missing_source_file_...)
    assert {f.rule for f in build_step.findings if f.status != fd.OK} <= {"models"}
    assert "scale-up" in tfd.rules(build_step, fd.OK)
    assert titles.index(build_step.title) < titles.index(tfd.step(report, "Deployment inference/standard").title)
    assert report.exit_code == 0, fd.render(report)


def test_without_its_ordering_the_dev_build_would_not_fit_a_two_gpu_quota():
    """The dependency is what keeps the first deploy's peak at 2: with standard's Triton not waiting
    for the build, the build, standard and llm run at once and need 3."""
    from tests.harness import plan

    doc = json.loads(json.dumps(plan("dev").to_json()))
    job_urn = next(r["urn"] for r in doc["resources"] if r["name"] == "model-build-text-orientation-job")
    for r in doc["resources"]:
        if r["type"] == "kubernetes:core/v1:ResourceQuota":
            r["inputs"]["spec"]["hard"]["requests.nvidia.com/gpu"] = "2"
        if "TritonServer$" in r["urn"] or r["name"].startswith("triton-standard"):
            r["dependencies"] = [d for d in r.get("dependencies", []) if d != job_urn]
    assert fd.check(doc).exit_code == fd.EXIT_DEADLOCK
    for r in doc["resources"]:
        if r["name"] == "triton-standard-deployment":
            r["dependencies"].append(job_urn)
    assert fd.check(doc).exit_code == 0


@pytest.mark.parametrize("pool_max, quota", [(2, 3), (3, 2)])
def test_dev_with_no_spare_gpu_for_its_build_is_a_config_error(pool_max, quota):
    """A later `pulumi up` that changes the build runs its Job while both Tritons hold a GPU: at
    dev's old 2 GPUs (pool or quota) the Job would stay Pending until `pulumi up` times out."""
    import stack_config
    from tests.harness import stack_values

    values = stack_values("dev")
    pools = [{**values["gpuNodeGroups"][0], "maxSize": pool_max}]
    gpu_stack = {**values["gpuStack"], "scheduling": {"gpuQuotas": {"inference": quota}}}
    raw, secret = stack_config.read_stack_files("dev")
    raw.update({"ai-platform:gpuNodeGroups": stack_config.engine_value(pools),
                "ai-platform:gpuStack": stack_config.engine_value(gpu_stack)})
    with pytest.raises(stack_config.ConfigError) as caught:
        stack_config.parse(raw, secret, "dev")
    scope = "pool inference offers 2" if pool_max == 2 else "namespace inference offers 2"
    assert any(p.startswith("ai-platform:modelBuilds[0].deployment: " + scope) for p in caught.value.problems), caught.value.problems


def test_a_build_into_a_namespace_without_a_gpu_quota_is_a_config_error():
    """Its Job runs before Triton, so its namespace must exist first: the quota namespaces do."""
    problems = model_build_problems([build()], [deployment(namespace="vision")], gpu_quotas={"inference": 3})
    assert problems == [("modelBuilds[0].deployment", problems[0][1])] and "namespace vision" in problems[0][1]


def test_the_model_build_components_role_trusts_only_its_service_account():
    """The component on its own, with a known OIDC issuer, so the trust document is known."""
    from tests.harness import json_policy, run

    recorded = run(lambda: mb.ModelBuild("model-build-cv", mb.ModelBuildArgs(
        build(), deployment(), BUCKET, REGION, "aws", "arn:aws:iam::123456789012:oidc-provider/oidc.example/id",
        "oidc.example/id")))
    trust = json_policy(recorded.named("model-build-cv-role", "aws:iam/role:Role"), "assumeRolePolicy")
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "oidc.example/id:sub": "system:serviceaccount:inference:model-build-cv", "oidc.example/id:aud": "sts.amazonaws.com"}
    job = recorded.named("model-build-cv-job", JOB_TYPE).public_inputs()
    assert job == {**job, **{k: v for k, v in mb.job_manifest(build(), deployment(), BUCKET, REGION).items()
                             if k in ("metadata", "spec")}}


def test_the_publisher_may_upload_the_build_sources_too():
    """The source ONNX goes to the bucket before the build (README: `aws s3 cp`, or as the publisher role)."""
    from tests.harness import json_policy, plan

    statements = json_policy(plan("dev").named("model-repository-publisher", "aws:iam/policy:Policy"))["Statement"]
    publish = next(s for s in statements if s["Sid"] == "PublishModels")
    assert publish["Resource"] == [f"arn:aws:s3:::ai-platform-dev-models-us-west-2/{p}/*"
                                   for p in ("triton/standard", "triton/llm", "sources/text-orientation")]



# --- the source the stack uploads (modelBuilds[].sourceFile) ----------------------------------------
# On a new account the bucket comes with the same `pulumi up` as the Job: without the stack
# uploading the source, the Job waits SOURCE_WAIT_SECONDS and fails, and the first `pulumi up` with it.
# [asset] pulumi/pulumi sdk/go/common/resource/asset/asset.go: a FileAsset's hash is the SHA-256 of
# the file's contents, assets compare by that hash only (Equals), and a missing file fails readPath
# ("failed to open asset file"): a real preview/up cannot go on without it.
# [trt-qdq] TensorRT 10.11 docs, docs.nvidia.com/deeplearning/tensorrt/10.11.0/inference-library/
# work-quantized-types.html: calibration is the implicit (PTQ) path, a Q/DQ network carries its scales
# (explicit quantization); NVIDIA/TensorRT v10.11 samples/common/sampleEngines.cpp sets placeholder
# dynamic ranges only when the network has no Q/DQ layers (`!hasQDQLayers(network) && build.int8 &&
# build.calibration.empty()`), and include/NvInfer.h deprecates IInt8Calibrator ("superseded by explicit
# quantization"): `trtexec --int8` on make examples' static Q/DQ model needs no calibration cache.

DEV_SOURCE_FILE = "build/examples/trt-source/text_orientation/1/model.onnx"
OBJECT_TYPE = "aws:s3/bucketObjectv2:BucketObjectv2"


def test_dev_uploads_the_int8_qdq_example_and_its_build_job_waits_for_the_upload():
    """[trt-qdq] dev's int8 build takes what `make examples` writes with --calibration and
    --gpu-accelerator tensorrt (static symmetric Q/DQ, Makefile), uploaded by the stack."""
    from tests.harness import config_for, plan

    [spec] = config_for("dev").modelBuilds
    assert spec.precision == "int8" and spec.sourceFile == DEV_SOURCE_FILE
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    recipe = makefile[makefile.index("rm -rf $(EXAMPLES)/trt-source"):].split("\n\n")[0]
    assert "--out $(EXAMPLES)/trt-source" in recipe and "--name text_orientation" in recipe and "--version 1" in recipe
    assert "--calibration" in recipe and "--gpu-accelerator tensorrt" in recipe
    assert spec.sourceFile == "build/examples/trt-source/text_orientation/1/model.onnx"  # EXAMPLES := build/examples
    # `make trt-sources` (what CI runs for dev) writes the same file from a venv without torch, with the
    # pins `make examples` uses, so both write the same source (and the same Job name).
    target = makefile[makefile.index("\ntrt-sources:"):].split("\n\n")[0]
    assert "ensure('optimize-cv')" in target and "--only text_orientation" in target and "trt-source-model" in target
    models = Path(__file__).parent.parent / "platformctl" / "models"

    def pins(name: str) -> dict[str, str]:
        lines = (models / name).read_text().splitlines()
        return dict(line.lower().split("==") for line in lines if "==" in line and not line.startswith("#"))

    cv, examples = pins("requirements-cv.txt"), pins("requirements-examples.txt")
    assert "torch" not in cv and "transformers" not in cv and "rapidocr-onnxruntime" in cv
    assert {k: examples.get(k) for k in cv} == cv

    run = plan("dev")
    upload = run.named("model-build-text-orientation-source", OBJECT_TYPE)
    layer = next(r for r in run.resources if r.type == "ai-platform:layers:Inference")
    assert upload.parent == layer.urn  # one upload per source key, which every build of the key waits for
    inputs = upload.public_inputs()
    assert (inputs["bucket"], inputs["key"]) == ("ai-platform-dev-models-us-west-2", spec.source)
    assert inputs["source"]["fileAsset"] == DEV_SOURCE_FILE
    assert inputs["serverSideEncryption"] == "aws:kms" and inputs["contentType"] == mb.ONNX_CONTENT_TYPE
    encryption = next(r for r in run.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
                      if r.name == "model-repository-encryption")
    assert encryption.urn in upload.dependencies  # written encrypted like the models
    assert upload.urn in dev_build_job(run).dependencies
    # The build role does not change: it reads the source, the stack writes it.
    assert run.named("model-build-text-orientation-role", "aws:iam/rolePolicy:RolePolicy").public_inputs()["policy"].count("s3:PutObject") == 1


def _component(tmp_path: Path, content: bytes, **kw):
    from tests.harness import run

    source = tmp_path / "model.onnx"
    source.write_bytes(content)
    digest = mb.file_sha256(source)

    def program():
        spec = build(sourceFile="model.onnx", **kw)
        upload = mb.source_upload("model-build-cv-source", BUCKET, spec.source, source, None, pulumi.ResourceOptions())
        mb.ModelBuild("model-build-cv", mb.ModelBuildArgs(
            spec, deployment(), BUCKET, REGION, "aws", "arn:aws:iam::1:oidc-provider/x", "x",
            source_object=upload, source_sha256=digest))
    return run(program)


def test_a_new_source_file_is_a_new_job_and_the_same_file_keeps_its_name(tmp_path):
    """[job] a new source must rebuild: the file's SHA-256 is in the pod template, so in the name."""
    import hashlib

    first, again = _component(tmp_path, b"v1"), _component(tmp_path, b"v1")
    other = _component(tmp_path, b"v2")
    name = lambda r: r.named("model-build-cv-job", JOB_TYPE).public_inputs()["metadata"]["name"]  # noqa: E731
    assert name(first) == name(again) != name(other)
    template = other.named("model-build-cv-job", JOB_TYPE).public_inputs()["spec"]["template"]["metadata"]
    assert template["annotations"][mb.SOURCE_SHA256_ANNOTATION] == hashlib.sha256(b"v2").hexdigest()
    upload = other.named("model-build-cv-source", OBJECT_TYPE)
    assert upload.urn in other.named("model-build-cv-job", JOB_TYPE).dependencies
    # Without a source file the Job is as before (no annotation, same name as the plain builder's).
    assert "annotations" not in mb.job_manifest(build(), deployment(), BUCKET, REGION)["spec"]["template"]["metadata"]


def test_the_digest_streams_the_file(tmp_path):
    import hashlib

    big = tmp_path / "big.onnx"
    big.write_bytes(b"x" * (mb.HASH_CHUNK * 2 + 3))
    assert mb.file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert mb.file_sha256(tmp_path / "missing.onnx") is None


def test_a_missing_source_file_warns_in_the_offline_plan_and_stops_a_real_run(tmp_path, monkeypatch):
    """The mock plan (a fresh clone) still plans the upload and warns, naming the key and `make
    examples`; under the Pulumi CLI (not the mock monitor) the program refuses before registering anything."""
    import stack_config
    from tests.harness import plan, run

    doc = json.loads(json.dumps(plan("dev").to_json()))
    for r in doc["resources"]:
        if r["type"] == OBJECT_TYPE and r["name"] == "model-build-text-orientation-source":
            r["inputs"]["source"] = {"fileAsset": DEV_SOURCE_FILE, "exists": False}
    report = fd.check(doc)
    [finding] = [f for s in report.steps for f in s.findings if "sources/text-orientation/model.onnx" in f.message]
    assert finding.status == fd.WARN and DEV_SOURCE_FILE in finding.message and "`make trt-sources`" in finding.fix
    assert report.exit_code == 0

    monkeypatch.setattr(stack_config, "PROJECT_DIR", tmp_path)  # nothing built here
    values, secret = stack_config.read_stack_files("dev", Path(__file__).parent.parent)
    seen = {}

    def program():
        assert stack_config.mock_runtime()  # the switch the refusal hangs on is real
        monkeypatch.setattr(stack_config, "mock_runtime", lambda: False)
        with pytest.raises(stack_config.ConfigError) as caught:
            stack_config.load_from_pulumi()
        seen["problems"] = caught.value.problems

    recorded = run(program, stack="dev", config=values)
    [problem] = seen["problems"]
    assert problem.startswith("ai-platform:modelBuilds[0].sourceFile: " + DEV_SOURCE_FILE)
    assert "`make trt-sources` (or `make examples`, which includes it) writes it" in problem and "sources/text-orientation/model.onnx" in problem
    assert recorded.resources == []


@pytest.mark.parametrize("source_file, text", [
    ("/abs/model.onnx", "must be a relative path"),
    ("../outside/model.onnx", "leads out of the project directory"),
    ("build/x/../../../model.onnx", "leads out of the project directory"),
    ("build/model.pt", "is not an .onnx file"),
])
def test_a_bad_source_file_is_refused_naming_the_key(source_file, text):
    with pytest.raises(ValidationError) as err:
        build(sourceFile=source_file)
    found = _messages(err.value)
    assert any(where.endswith("sourceFile") and text in m and "sources/cv/model.onnx" in m for where, m in found), found


def test_two_builds_uploading_different_files_to_one_key_are_refused():
    deployments = [deployment()]
    same = [build(sourceFile="a.onnx"), build(name="b", model="b", sourceFile="./a.onnx"), build(name="c", model="c")]
    assert model_build_problems(same, deployments) == []
    clash = [build(sourceFile="a.onnx"), build(name="b", model="b", sourceFile="b.onnx")]
    [(key, message)] = model_build_problems(clash, deployments)
    assert key == "modelBuilds[1].sourceFile" and "modelBuilds[0] uploads a.onnx to the same bucket key sources/cv/model.onnx" in message


def test_builds_sharing_a_source_key_share_one_upload(tmp_path, monkeypatch):
    """One object per key (two would fight over it); every build of the key waits for it."""
    import stack_config
    from tests.harness import plan_with, stack_values

    monkeypatch.setattr(stack_config, "PROJECT_DIR", tmp_path)
    (tmp_path / DEV_SOURCE_FILE).parent.mkdir(parents=True)
    (tmp_path / DEV_SOURCE_FILE).write_bytes(b"qdq")
    [dev_build] = stack_values("dev")["modelBuilds"]
    second = {k: v for k, v in dev_build.items() if k != "sourceFile"} | {"name": "text-orientation-fp16", "model": "t_fp16",
                                                                         "precision": "fp16"}
    pools = [{**stack_values("dev")["gpuNodeGroups"][0], "maxSize": 4}]
    gpu_stack = {**stack_values("dev")["gpuStack"], "scheduling": {"gpuQuotas": {"inference": 4}}}
    run = plan_with("dev", modelBuilds=[second, dev_build], gpuNodeGroups=pools, gpuStack=gpu_stack)
    [upload] = [r for r in run.of_type(OBJECT_TYPE) if r.public_inputs()["key"] == dev_build["source"]]
    assert upload.name == "model-build-text-orientation-source" and upload.public_inputs()["source"]["exists"] is True
    jobs = [j for j in run.of_type(JOB_TYPE) if j.name.startswith("model-build-")]
    assert len(jobs) == 2 and all(upload.urn in j.dependencies for j in jobs)
    assert fd.check(run.to_json()).exit_code == 0
