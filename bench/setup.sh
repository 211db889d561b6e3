#!/usr/bin/env bash
# What `make bench` needs beyond `make setup`: wrk and perf (Debian; perf only profiles, and a
# machine where it cannot sample gets a report that says so), matplotlib in .venv, LiteLLM's
# proxy in its own venv, and the Go peer (bench/go_peer.py: a Higress plugin from PyPI, patched
# for upstream Envoy). Either peer failing does not stop the run: results.md then says why.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! command -v wrk >/dev/null 2>&1 || ! command -v perf >/dev/null 2>&1; then
  echo "bench setup: installing wrk and linux-perf"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends linux-perf >/dev/null \
    || echo "bench setup: linux-perf could not be installed; the run goes on without a profile"
fi

if ! .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
  echo "bench setup: installing matplotlib into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
fi

mkdir -p target/bench
if ! bash bench/setup_litellm.sh >target/bench/litellm-setup.log 2>&1; then
  echo "bench setup: LiteLLM could not be installed (see target/bench/litellm-setup.log);" \
       "the run goes on without it"
fi

if ! .venv/bin/python bench/go_peer.py; then
  echo "bench setup: the Go peer is left out (see target/bench/go-peer/status.txt)"
fi
