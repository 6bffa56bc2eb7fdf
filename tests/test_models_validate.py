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


@pytest.mark.parametrize("repo", ["standard", "llm"])
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
