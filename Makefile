# The two commands the README promises. Both set the machine up first (scripts/setup.sh is idempotent).
.PHONY: setup demo test lint bench gpu-check image

VENV ?= .venv

setup:
	@bash scripts/setup.sh

demo: setup  ## the main job on embedded defaults
	$(VENV)/bin/speechtok demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint  ## lint, type-check, then the test suite (unit + integration on loopback; slow/gpu opt-in)
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python benchmarks/shard_throughput.py
	$(VENV)/bin/python benchmarks/codec_speed.py
	$(VENV)/bin/python benchmarks/tokenize_throughput.py
	$(VENV)/bin/python benchmarks/train_step.py
	$(VENV)/bin/python benchmarks/export_llm.py
	$(VENV)/bin/python benchmarks/startup.py
	$(VENV)/bin/python benchmarks/scale.py  # ~25 min: shard → tokenize → verify at 4 sizes, extrapolated to LibriLight

gpu-check: setup  ## on a CUDA machine: paper-config GPU tests, then encode throughput per batch shape
	$(VENV)/bin/python -m pytest -m gpu tests/gpu -v
	$(VENV)/bin/python benchmarks/gpu_tokenize.py

IMAGE ?= speechtok:latest
TORCH_VARIANT ?= cuda
image:  ## the deployable image (Dockerfile): TORCH_VARIANT=cuda (default) or cpu
	docker build --build-arg TORCH_VARIANT=$(TORCH_VARIANT) -t $(IMAGE) .
