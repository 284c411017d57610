#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages (espeak-ng, where apt is available), a virtual
# environment in .venv with the exact versions in constraints.txt, and speechtok itself (editable) with the dev
# tools and the `eval` extra (WER, speaker similarity, DNSMOS, MCD, ABX, Codec2 baselines; models in the wheels).
# Re-running is cheap: pip is skipped when pyproject.toml and constraints.txt have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if ! command -v espeak-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing espeak-ng (sample-corpus voices)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null \
      || echo "setup: espeak-ng could not be installed; the sample corpus will use the built-in synthetic voices"
  else
    echo "setup: espeak-ng not installed and apt-get unavailable; the sample corpus uses synthetic voices"
  fi
fi

# docker-compose: tests/infra validate infra/compose.yaml with `docker-compose config` (no engine needed).
if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "setup: installing docker-compose (validates infra/compose.yaml in the tests)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null \
    || echo "setup: docker-compose could not be installed; its check in tests/infra will be skipped"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.speechtok-installed"
fingerprint=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
  echo "setup: installing dependencies (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install -q --upgrade pip "setuptools<81" wheel
  # setuptools<81: packages that build from source against pkg_resources need it in their build env.
  PIP_CONSTRAINT="$PWD/constraints.txt" "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev,eval,server]"
  echo "$fingerprint" > "$stamp"
fi
