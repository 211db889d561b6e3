"""Every Envoy configuration we ship passes `envoy --mode validate` with the built module.

envoy/envoy.yaml is covered by test_envoy_config.py. The Istio manifests are not Envoy
configurations themselves, so each is turned into the one Istio would produce: the
EnvoyFilter's HTTP filter patch (and its listener patch) in a minimal bootstrap (listener,
HTTP connection manager, that filter, the router), and each WasmPlugin as the Wasm filter Istio
makes of it. The module path is replaced by the local dist/ai-load-balancer-envoy.wasm.
Validation loads the module and runs its configure step, so the plugin configuration must be
one the filter accepts ("ai-load-balancer: configured"). The Higress manifests need the Higress
build, which upstream Envoy cannot load: tests/examples.rs checks their configurations.

The manifests are cut textually (no YAML library in the venv): a block is the lines nested
under a `key:` line, which keeps the patch's own YAML, block scalars included, as written.
"""
import re
import subprocess
import textwrap

import pytest

from stack import ROOT, gateway

ISTIO = ROOT / "envoy" / "istio"
ISTIO_CLUSTER = re.compile(r"outbound\|\d+\|\|[A-Za-z0-9.-]+")


def block(text, key, after):
    """The lines nested under the first `key:` line following the line containing `after`."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if after in line)
    for index in range(start, len(lines)):
        stripped = lines[index].lstrip()
        if stripped.rstrip() != key + ":":
            continue
        indent = len(lines[index]) - len(stripped)
        body = []
        for line in lines[index + 1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
        return textwrap.dedent("\n".join(body)).strip("\n")
    raise AssertionError(f"no `{key}:` after {after!r}")


def list_item(text, indent):
    """`text` (a YAML mapping) as one item of a block list indented by `indent` spaces."""
    lines = text.splitlines()
    first = " " * indent + "- " + lines[0]
    return "\n".join([first] + [(" " * (indent + 2) + line) if line else "" for line in lines[1:]])


def bootstrap(http_filter, listener_fields="", clusters=()):
    """A minimal Envoy: one listener whose HTTP connection manager runs `http_filter`, then the
    router; one static cluster per name in `clusters` (the routes go to the first)."""
    clusters = list(clusters) or ["provider"]
    cluster_lines = []
    for name in clusters:
        cluster_lines += [
            f"  - name: '{name}'",
            "    type: STATIC",
            "    connect_timeout: 1s",
            "    load_assignment:",
            f"      cluster_name: '{name}'",
            "      endpoints: [{lb_endpoints: [{endpoint: {address: "
            "{socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]",
        ]
    return "\n".join([
        "static_resources:",
        "  listeners:",
        "  - name: gateway",
        f"    address: {{socket_address: {{address: 127.0.0.1, port_value: {gateway.free_port()}}}}}",
        textwrap.indent(listener_fields, "    "),
        "    filter_chains:",
        "    - filters:",
        "      - name: envoy.filters.network.http_connection_manager",
        "        typed_config:",
        '          "@type": type.googleapis.com/envoy.extensions.filters.network'
        '.http_connection_manager.v3.HttpConnectionManager',
        "          stat_prefix: gateway",
        "          http_filters:",
        list_item(http_filter, 10),
        "          - name: envoy.filters.http.router",
        "            typed_config:",
        '              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
        "          route_config:",
        "            virtual_hosts:",
        "            - name: all",
        "              domains: ['*']",
        f"              routes: [{{match: {{prefix: /}}, route: {{cluster: '{clusters[0]}'}}}}]",
        "  clusters:",
        *cluster_lines,
        "",
    ])


def validate(tmp_path, config):
    if not gateway.WASM_PATH.exists():
        pytest.fail(f"{gateway.WASM_PATH} is missing: run `make build`", pytrace=False)
    path = tmp_path / "envoy.yaml"
    path.write_text(config)
    return subprocess.run(
        [gateway.envoy_binary(), "--mode", "validate", "-c", str(path), "-l", "info"],
        capture_output=True, text=True, timeout=60)


def assert_configured(done, config):
    assert done.returncode == 0, config + "\n" + done.stdout + done.stderr[-3000:]
    assert "OK" in done.stdout
    assert "ai-load-balancer: configured" in done.stderr, done.stderr[-3000:]


def envoy_filter_bootstrap(edit=lambda text: text):
    """envoy/istio/envoyfilter.yaml's patches in a minimal bootstrap, with the clusters its
    plugin configuration names (Istio's `outbound|port||host`) and the local module."""
    manifest = edit((ISTIO / "envoyfilter.yaml").read_text())
    http_filter = block(manifest, "value", after="operation: INSERT_BEFORE")
    assert "envoy.filters.http.wasm" in http_filter
    http_filter = re.sub(r"filename: \S+\.wasm", f"filename: {gateway.WASM_PATH}", http_filter)
    listener_fields = block(manifest, "value", after="operation: MERGE")
    clusters = sorted(set(ISTIO_CLUSTER.findall(http_filter)))
    assert clusters, "the plugin configuration names no Istio cluster"
    return bootstrap(http_filter, listener_fields, clusters)


def test_istio_envoy_filter_patch_validates(tmp_path):
    config = envoy_filter_bootstrap()
    assert "per_connection_buffer_limit_bytes: 67108864" in config
    assert_configured(validate(tmp_path, config), config)


def test_the_envoy_filter_configuration_reaches_the_filter(tmp_path):
    """The harness is not vacuous: a refused configuration in the patch stops Envoy."""
    def duplicate_provider(text):
        assert text.count('"name": "qianwen"') == 1
        return text.replace('"name": "qianwen"', '"name": "minmax"')

    done = validate(tmp_path, envoy_filter_bootstrap(duplicate_provider))
    assert done.returncode != 0
    assert 'ai-load-balancer: invalid configuration: providers[1].name: duplicate "minmax"' \
        in done.stderr


@pytest.mark.parametrize("manifest", ["wasmplugin.yaml", "wasmplugin-oci.yaml"])
def test_istio_wasm_plugin_validates(tmp_path, manifest):
    """The Wasm filter Istio makes of a WasmPlugin: pluginConfig as the StringValue, in JSON as
    Istio sends it, the module local."""
    text = (ISTIO / manifest).read_text()
    assert re.search(r"^  url: (file|oci)://\S+ai-load-balancer-envoy", text, re.M)
    plugin_config = block(text, "pluginConfig", after="spec:")
    http_filter = "\n".join([
        "name: envoy.filters.http.wasm",
        "typed_config:",
        '  "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
        "  config:",
        "    name: istio-system.ai-load-balancer",
        "    vm_config:",
        "      runtime: envoy.wasm.runtime.v8",
        f"      code: {{local: {{filename: {gateway.WASM_PATH}}}}}",
        "    configuration:",
        '      "@type": type.googleapis.com/google.protobuf.StringValue',
        "      value: |",
        textwrap.indent(gateway.as_json(plugin_config), "        "),
    ])
    config = bootstrap(http_filter, clusters=sorted(set(ISTIO_CLUSTER.findall(plugin_config))))
    assert_configured(validate(tmp_path, config), config)


def test_make_image_packs_each_module_as_plugin_wasm():
    """`make image` (not run here: it needs docker) builds higress/Dockerfile once per module."""
    dockerfile = (ROOT / "higress" / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    assert instructions == ["FROM scratch", "ARG WASM=ai-load-balancer.wasm",
                            "COPY ${WASM} plugin.wasm"]
    done = subprocess.run(["make", "-n", "image", "REGISTRY=registry.test/", "VERSION=9.9.9"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    builds = [line for line in done.stdout.splitlines() if line.startswith("docker build")]
    assert builds == [
        "docker build -f higress/Dockerfile --build-arg WASM=ai-load-balancer.wasm"
        " -t registry.test/ai-provider-balancer:9.9.9 dist",
        "docker build -f higress/Dockerfile --build-arg WASM=ai-load-balancer-envoy.wasm"
        " -t registry.test/ai-load-balancer-envoy:9.9.9 dist",
    ]
