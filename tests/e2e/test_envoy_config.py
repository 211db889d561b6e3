"""The shipped Envoy config, rendered as the stack renders it, passes `envoy --mode validate`.

Validation loads the wasm module and runs the filter's configure step, so this also checks that
the plugin config in envoy/envoy.yaml is one the filter accepts, and that one it refuses stops
Envoy with the field named.
"""
import subprocess

import pytest

from stack import gateway


def validate(tmp_path, edit=lambda text: text):
    """Renders envoy/envoy.yaml, applies `edit`, runs `envoy --mode validate` on it."""
    if not gateway.WASM_PATH.exists():
        pytest.fail(f"{gateway.WASM_PATH} is missing: run `make build`", pytrace=False)
    names = ("admin", "listen", "webdis", "minmax", "qianwen")
    ports = gateway.free_ports(names)
    rendered = gateway.render_envoy_config(ports, gateway.WASM_PATH)
    assert "${" not in rendered
    config = tmp_path / "envoy.yaml"
    config.write_text(edit(rendered))
    return subprocess.run(
        [gateway.envoy_binary(), "--mode", "validate", "-c", str(config), "-l", "info"],
        capture_output=True, text=True, timeout=60)


def test_rendered_envoy_config_validates(tmp_path):
    done = validate(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "OK" in done.stdout
    assert "ai-load-balancer: configured" in done.stderr


def test_a_bad_plugin_config_is_refused_naming_the_field(tmp_path):
    def duplicate_provider(text):
        assert text.count('"name": "qianwen"') == 1
        return text.replace('"name": "qianwen"', '"name": "minmax"')

    done = validate(tmp_path, duplicate_provider)
    assert done.returncode != 0, "Envoy must refuse to start the plugin"
    assert 'ai-load-balancer: invalid configuration: providers[1].name: duplicate "minmax"' \
        in done.stderr


def test_a_yaml_plugin_config_is_refused_saying_to_write_json(tmp_path):
    """The module reads JSON: YAML in the StringValue stops Envoy with what to write instead."""
    def as_yaml(text):
        start, end, _ = gateway.plugin_config_block(text)
        lines = text.splitlines(keepends=True)
        indent = " " * (len(lines[start]) - len(lines[start].lstrip()))
        block = f"{indent}providers:\n{indent}- {{name: minmax, key: minimax_1}}\n"
        return "".join(lines[:start]) + block + "".join(lines[end:])

    done = validate(tmp_path, as_yaml)
    assert done.returncode != 0, "Envoy must refuse to start the plugin"
    assert ("ai-load-balancer: invalid configuration: configuration: invalid JSON: expected "
            "value at line 1 column 1 (YAML is not read: write the configuration as JSON")\
        in done.stderr
