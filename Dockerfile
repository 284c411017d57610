# The speechtok image: the CLI, the Prefect flows, the Ray workers and the MLflow server all run from it.
#
#   make image                                  # CUDA build (default): torch from PyPI, which bundles CUDA
#   make image TORCH_VARIANT=cpu                # CPU build: torch's CPU wheel, ~1 GB instead of ~6 GB
#
# It installs exactly the versions in constraints.txt (the ones the tests pass with), then speechtok itself, and runs
# as the unprivileged user `speechtok`. The entrypoint is the `speechtok` CLI; other programs (ray, prefect, mlflow)
# are started with `--entrypoint` (see infra/compose.yaml and infra/k8s/).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# cuda: PyPI's torch wheel (CUDA libraries included; the host provides the driver). cpu: the CPU-only wheel.
ARG TORCH_VARIANT=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

# espeak-ng: the sample corpus's voices; libsndfile: soundfile's FLAC codec; curl: container healthchecks.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends espeak-ng libsndfile1 curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 speechtok
WORKDIR /opt/speechtok
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

# Dependencies first (a layer that survives code edits), pinned by constraints.txt.
COPY constraints.txt ./
RUN pip install "setuptools<81" wheel \
    && if [ "$TORCH_VARIANT" = "cpu" ]; then \
         pip install -c constraints.txt --index-url "$TORCH_CPU_INDEX" torch torchaudio; \
       fi
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY pipeline ./pipeline
COPY training ./training
COPY storage ./storage
COPY infra ./infra
RUN PIP_CONSTRAINT=/opt/speechtok/constraints.txt pip install -c constraints.txt ".[server]"

USER speechtok
ENV HOME=/home/speechtok
ENTRYPOINT ["speechtok"]
CMD ["--help"]
