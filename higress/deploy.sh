#!/usr/bin/env bash
# Copies the Higress module into a running Higress all-in-one container, overwriting the file
# the WasmPlugin points at (a copy is seen at once; a bind mount can lag).
#   HIGRESS_CONTAINER  container name          (default: higress-ai-gateway)
#   HIGRESS_PLUGIN_DIR plugin dir in container (default: /data/wasmplugins)
set -euo pipefail
wasm="${1:-dist/ai-load-balancer.wasm}"
container="${HIGRESS_CONTAINER:-higress-ai-gateway}"
plugin_dir="${HIGRESS_PLUGIN_DIR:-/data/wasmplugins}"
if [ ! -f "$wasm" ]; then
  echo "deploy: $wasm is missing; run \`make build\` first" >&2
  exit 1
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "deploy: docker is not installed; copy $wasm to $container:$plugin_dir/ai-load-balancer.wasm by hand" >&2
  exit 1
fi
docker cp "$wasm" "$container:$plugin_dir/ai-load-balancer.wasm"
echo "deploy: $wasm -> $container:$plugin_dir/ai-load-balancer.wasm"
echo "deploy: Higress reloads the plugin when its configuration changes; save the plugin config in the console to pick up the new module."
