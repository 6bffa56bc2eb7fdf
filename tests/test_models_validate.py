"""`platformctl models validate`: the example repositories and the good fixture pass; every
mistake in the bad fixture is reported with its path (and line:col for syntax errors)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from onnx.reference import ReferenceEvaluator
from tritonclient.grpc import model_config_pb2 as mc

from platformctl.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "model_repos"
EXAMPLES = ROOT / "models"

# Every problem of tests/fixtures/model_repos/bad, as (path relative to the repo, message part).
BAD_EXPECTED = [
    ("bad_version_dir/01", "not a version directory"),
    ("bad_version_dir/v2", "not a version directory"),
    ("batching_without_batch/config.pbtxt", "dynamic_batching needs max_batch_size > 0"),
    ("cpu_with_gpus/config.pbtxt", "instance_group[0]: lists gpus but kind is KIND_CPU"),
    ("ensemble_unknown_step/config.pbtxt", "uses model 'tokenizer', which is not in this repository"),
    ("missing_file/1/model.plan", "tensorrt_plan models need model.plan in every version directory (found: model.onnx)"),
    ("name_mismatch/config.pbtxt", "name 'resnet' does not match the directory name 'name_mismatch'"),
    ("no_backend/config.pbtxt", "sets neither 'platform' nor 'backend'"),
    ("no_config/config.pbtxt", "missing: every model needs an explicit config.pbtxt"),
    ("no_version", "has no version directory"),
    ("policy_missing_version/config.pbtxt", "names version(s) 3 that do not exist (have: 1)"),
    ("preferred_too_big/config.pbtxt", "preferred_batch_size 16 must be between 1 and max_batch_size (8)"),
    ("syntax_error/config.pbtxt:3:1", 'has no field named "max_batch_sise"'),
    ("zero_dim/config.pbtxt", "input[0] 'x': dims [0, 4] may only hold positive sizes or -1"),
]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["models", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("repo", ["standard", "llm", "llm-tp4"])
def test_example_repositories_validate(capsys, repo):
    code, out, err = run(capsys, str(EXAMPLES / repo))
    assert code == 0, out + err
    assert "valid" in out


def test_good_fixture_passes_and_lists_every_model(capsys):
    code, out, _ = run(capsys, str(FIXTURES / "good"))
    assert code == 0, out
    assert "5 models valid (classifier, llm, pipeline, preprocess, tf_model)" in out


def test_each_bad_model_fails_with_its_path_and_message(capsys):
    bad = FIXTURES / "bad"
    code, out, err = run(capsys, str(bad))
    assert code == 1
    lines = out.strip().splitlines()
    for where, message in BAD_EXPECTED:
        prefix = f"{bad / where}:"
        assert any(line.startswith(prefix) and message in line for line in lines), f"no '{message}' at {where}:\n{out}"
    # Exactly these problems: no model has a second complaint it should not have.
    assert len(lines) == len(BAD_EXPECTED), out
    assert f"{len(BAD_EXPECTED)} problems" in err


def test_every_bad_model_is_in_the_expectations():
    """A model added to the bad fixture must come with its expected problem."""
    named = {where.split("/")[0].split(":")[0] for where, _ in BAD_EXPECTED}
    present = {p.name for p in (FIXTURES / "bad").iterdir() if p.is_dir()}
    assert present == named


def test_missing_directory_is_one_clear_problem(capsys, tmp_path):
    code, out, _ = run(capsys, str(tmp_path / "nope"))
    assert code == 1
    assert out.strip() == f"{tmp_path / 'nope'}: does not exist"


def test_empty_repository_fails(capsys, tmp_path):
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert "holds no model directories" in out


def test_a_fixed_copy_of_a_bad_model_passes(capsys, tmp_path):
    """The checks react to the content: correcting the one mistake makes the model valid."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "bad" / "preferred_too_big", repo / "preferred_too_big")
    config = repo / "preferred_too_big" / "config.pbtxt"
    config.write_text(config.read_text().replace("[ 4, 16 ]", "[ 4, 8 ]"))
    code, out, _ = run(capsys, str(repo))
    assert code == 0, out


# --- fit to a deployment: vLLM models use the GPUs a replica holds -------------------------------

# The example repository each stack's `llm` deployment serves (README "Triton and the model repository").
LLM_EXAMPLE = {"dev": "llm", "prod": "llm-tp4"}


@pytest.fixture(scope="module")
def plan_outputs(tmp_path_factory):
    """plan.json of each stack (the outputs `models validate --outputs` reads)."""
    import json

    from tests.harness import plan

    files = {}
    for stack in LLM_EXAMPLE:
        path = tmp_path_factory.mktemp(stack) / "plan.json"
        path.write_text(json.dumps(plan(stack).to_json()))
        files[stack] = path
    return files


def vllm_repo(root: Path, engine_args: dict, kind: str = "KIND_MODEL") -> Path:
    import json

    model = root / "m"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(f'backend: "vllm"\nmax_batch_size: 0\nmodel_transaction_policy {{ decoupled: true }}\n'
                                        f"instance_group [ {{ count: 1 kind: {kind} }} ]\n")
    (model / "1" / "model.json").write_text(json.dumps({"model": "x", **engine_args}))
    return root


@pytest.mark.parametrize("stack", sorted(LLM_EXAMPLE))
def test_each_stacks_llm_example_fits_its_deployment_and_not_the_other(capsys, plan_outputs, stack):
    """The vLLM backend passes model.json to vLLM as engine arguments
    (triton-inference-server/vllm_backend r25.06 src/model.py: `AsyncEngineArgs(**vllm_engine_config)`;
    README: "For multi-GPU support, EngineArgs like tensor_parallel_size can be specified in
    model.json"). A replica's engine uses tensor_parallel_size x pipeline_parallel_size GPUs
    (vLLM ParallelConfig.world_size), so prod's gpusPerReplica 4 with the 1-GPU example left three
    GPUs idle (issue 12, #12): validate for the deployment says so; the committed pairs agree,
    including the tokenizer the OpenAI frontend uses for the served model."""
    import json

    from tests.harness import config_for

    outputs = str(plan_outputs[stack])
    code, out, err = run(capsys, str(EXAMPLES / LLM_EXAMPLE[stack]), "--outputs", outputs, "--deployment", "llm")
    assert code == 0, out + err
    assert "fits deployment llm" in out
    [llm] = [d for d in config_for(stack).tritonDeployments if d.name == "llm"]
    [engine] = (EXAMPLES / LLM_EXAMPLE[stack]).glob("*/1/model.json")
    assert json.loads(engine.read_text())["model"] == llm.tokenizer

    [other] = [repo for name, repo in LLM_EXAMPLE.items() if name != stack]
    code, out, err = run(capsys, str(EXAMPLES / other), "--outputs", outputs, "--deployment", "llm")
    assert code == 1
    if stack == "prod":
        assert ("takes 1 GPU (tensor_parallel_size x pipeline_parallel_size) but each replica of deployment llm "
                "holds 4: 3 would sit idle") in out
    else:
        assert "takes 4 GPUs (tensor_parallel_size x pipeline_parallel_size) but each replica of deployment llm has 1: vLLM cannot start" in out


def test_pipeline_parallel_counts_and_models_that_need_no_gpu_are_not_judged(capsys, plan_outputs, tmp_path):
    repo = vllm_repo(tmp_path / "a", {"tensor_parallel_size": 2, "pipeline_parallel_size": 2})
    code, out, err = run(capsys, str(repo), "--outputs", str(plan_outputs["prod"]), "--deployment", "llm")
    assert code == 0, out + err
    code, out, _ = run(capsys, str(EXAMPLES / "standard"), "--outputs", str(plan_outputs["prod"]), "--deployment", "standard")
    assert code == 0, out


def test_multi_gpu_vllm_model_on_kind_gpu_and_bad_engine_args_are_refused(capsys, tmp_path):
    """vllm_backend r25.06 src/model.py `_validate_device_config`: "KIND_GPU is currently for
    single-GPU models, please specify KIND_MODEL" when tensor_parallel_size > 1."""
    code, out, _ = run(capsys, str(vllm_repo(tmp_path / "a", {"tensor_parallel_size": 2}, kind="KIND_GPU")))
    assert code == 1 and "instance_group kind KIND_GPU runs a model on one GPU, but 1/model.json asks for 2: use KIND_MODEL" in out
    code, out, _ = run(capsys, str(vllm_repo(tmp_path / "b", {"tensor_parallel_size": "4"})))
    assert code == 1 and "tensor_parallel_size must be a positive integer (got '4')" in out


def test_deployment_needs_outputs(capsys):
    code, _, err = run(capsys, str(EXAMPLES / "llm"), "--deployment", "llm")
    assert code == 2 and "--deployment goes with --stack or --outputs" in err


# --- the example ONNX model -----------------------------------------------------------------

def test_committed_example_model_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "model.onnx"
    subprocess.run([sys.executable, str(EXAMPLES / "make_example.py"), "--out", str(out)], check=True, capture_output=True)
    committed = EXAMPLES / "standard" / "add_sub" / "1" / "model.onnx"
    assert out.read_bytes() == committed.read_bytes(), "run models/make_example.py and commit the result"
    assert committed.stat().st_size < 4096


def test_example_model_matches_its_config_and_computes_add_sub():
    model = onnx.load(str(EXAMPLES / "standard" / "add_sub" / "1" / "model.onnx"))
    config = text_format.Parse((EXAMPLES / "standard" / "add_sub" / "config.pbtxt").read_text(), mc.ModelConfig())

    def shapes(values):  # ONNX shape minus the batch dimension Triton adds for max_batch_size > 0
        return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim][1:] for v in values}

    assert shapes(model.graph.input) == {t.name: list(t.dims) for t in config.input}
    assert shapes(model.graph.output) == {t.name: list(t.dims) for t in config.output}
    assert all(t.data_type == mc.TYPE_FP32 for t in list(config.input) + list(config.output))

    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    total, difference = ReferenceEvaluator(model).run(None, {"INPUT0": a, "INPUT1": b})
    np.testing.assert_allclose(total, a + b)
    np.testing.assert_allclose(difference, a - b)
