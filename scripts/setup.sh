#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages (espeak-ng, where apt is available), a virtual
# environment in .venv with the exact versions in constraints.txt, and speechtok itself (editable) with the dev
# tools and the `eval` extra (WER, speaker similarity, DNSMOS, MCD, ABX, Codec2 baselines; models in the wheels).
# Re-running is cheap: pip is skipped when pyproject.toml and constraints.txt have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

# Debian packages: espeak-ng (sample-corpus voices), PostgreSQL (the MLflow server of the two-host cluster test,
# tests/cluster; its server binaries live in /usr/lib/postgresql/*/bin) and docker-compose (tests/infra validate
# infra/compose.yaml with `docker-compose config`; no container engine needed).
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "setup: could not install ${missing[*]}; without espeak-ng synthetic voices are used, without" \
        "PostgreSQL the cluster test and without docker-compose its compose check are skipped"
  else
    echo "setup: ${missing[*]} not installed and apt-get unavailable (or not root): without espeak-ng synthetic" \
      "voices are used, without PostgreSQL the cluster test and without docker-compose its compose check are skipped"
  fi
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
