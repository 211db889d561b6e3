#!/usr/bin/env bash
# Builds the Higress module (feature `higress`: Higress's Redis host calls) into
# dist/ai-load-balancer.wasm, the file higress/deploy.sh copies into the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --release --lib --target wasm32-wasip1 --target-dir target/higress --features higress
mkdir -p dist
cp target/higress/wasm32-wasip1/release/ai_load_balancer.wasm dist/ai-load-balancer.wasm
ls -l dist/ai-load-balancer.wasm
