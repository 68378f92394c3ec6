#!/usr/bin/env bash
# Installs everything sluice needs to build and to run its tests on Debian 12:
# compilers and libraries from apt, Node packages from npm, pytest for the
# test interpreter. Safe to run again; it only installs what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PYTHON="${SLUICE_TEST_PYTHON:-python3}"
WITH_TESTS=1
[[ "${1:-}" == "--no-tests" ]] && WITH_TESTS=0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

build_pkgs=(build-essential cmake ninja-build ccache pkg-config libboost1.81-dev nlohmann-json3-dev
  libspdlog-dev catch2 pybind11-dev libssl-dev libyaml-cpp-dev libzip-dev zlib1g-dev curl ca-certificates
  python3 nodejs npm)
test_pkgs=(python3-pytest python3-debugpy wrk hyperfine autoconf automake libtool make g++ unzip openssl git)

pkgs=("${build_pkgs[@]}")
if [[ $WITH_TESTS -eq 1 ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  # Node and npm often come from elsewhere (nvm, NodeSource): a working command is enough.
  if [[ "$p" == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  if [[ "$p" == python3 ]] && command -v python3 >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python package (pybind11) is built for the test interpreter and needs its headers.
if ! "$PYTHON" -c "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null; then
  if [[ "$("$PYTHON" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" == /usr ]]; then
    echo "setup: installing python3-dev (headers for the sluice Python package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-dev >/dev/null
  else
    echo "setup: warning: $PYTHON has no development headers (Python.h); install them, or build with -DSLUICE_BUILD_PYTHON=OFF" >&2
  fi
fi

if [[ $WITH_TESTS -eq 0 ]]; then exit 0; fi

# The end-to-end tests drive real clients: boto3 and the aws CLI from the test
# interpreter, and Node packages (the official runtime interface client, the JS SDK).
if ! "$PYTHON" -c "import boto3" 2>/dev/null; then
  echo "setup: $PYTHON has no boto3; installing Debian's python3-boto3"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-boto3 >/dev/null
fi
# Requirements layers (deploy/package) are built by the interpreter's pip.
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  echo "setup: $PYTHON has no pip; installing Debian's python3-pip"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi
# The deploy tests run against moto_server. Debian has no moto and PyPI is out of reach here,
# so it must come with the test interpreter (the machine image's pyenv Python has moto 5).
if ! "$PYTHON" -c "import moto.server" 2>/dev/null; then
  echo "setup: warning: $PYTHON has no moto (moto_server); the deploy end-to-end tests will fail." >&2
  echo "setup: install it into that interpreter with 'pip install \"moto[server]>=5\"' where PyPI is reachable." >&2
fi
if ! command -v aws >/dev/null; then
  echo "setup: installing the aws CLI (Debian's awscli)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq awscli >/dev/null
fi

# pytest: use the interpreter's own if it has one, else borrow Debian's pure
# Python pytest through a small path shim (pyenv interpreters have no pytest).
mkdir -p "$BUILD_DIR/pytest-shim"
if ! "$PYTHON" -c "import pytest" 2>/dev/null; then
  for mod in _pytest pytest py.py pluggy iniconfig; do
    if ! "$PYTHON" -c "import ${mod%.py}" 2>/dev/null && [[ -e /usr/lib/python3/dist-packages/$mod ]]; then
      ln -sfn "/usr/lib/python3/dist-packages/$mod" "$BUILD_DIR/pytest-shim/$mod"
    fi
  done
fi
PYTHONPATH="$BUILD_DIR/pytest-shim" "$PYTHON" -m pytest --version >/dev/null

if [[ -f "$ROOT/tests/node/package.json" ]]; then
  if [[ ! -d "$ROOT/tests/node/node_modules" ]] || [[ "$ROOT/tests/node/package-lock.json" -nt "$ROOT/tests/node/node_modules/.package-lock.json" ]]; then
    echo "setup: npm ci in tests/node (builds aws-lambda-ric's native addon, a few minutes the first time)"
    (cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "setup: ready"
