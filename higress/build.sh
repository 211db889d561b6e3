#!/usr/bin/env bash
# Builds the modules (`make build`); higress/deploy.sh then copies dist/ai-load-balancer.wasm,
# the Higress build (feature `higress`: Higress's Redis host calls), into the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
make build
