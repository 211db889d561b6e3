#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Every shipped configuration loads, so none can rot: `examples/envoy/*` on the Envoy build,
//! `examples/higress/*` and `higress/console.yaml` on the Higress build, and the plugin
//! configuration inside `envoy/envoy.yaml`.

use std::path::{Path, PathBuf};

use ai_load_balancer::config::{yaml, Build, PluginConfig};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

fn check(dir: &str, build: Build) {
    let files = files(&root().join(dir));
    assert!(!files.is_empty(), "no examples in {dir}");
    for file in files {
        let bytes = std::fs::read(&file).expect("readable example");
        let plugin = PluginConfig::parse(&bytes, build)
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        assert!(
            plugin.all().count() > 0,
            "{}: configures nothing",
            file.display()
        );
    }
}

#[test]
fn envoy_examples_load_on_the_envoy_build() {
    check("examples/envoy", Build::Envoy);
}

#[test]
fn higress_examples_load_on_the_higress_build() {
    check("examples/higress", Build::Higress);
    let console = std::fs::read(root().join("higress/console.yaml")).expect("higress/console.yaml");
    PluginConfig::parse(&console, Build::Higress)
        .unwrap_or_else(|err| panic!("higress/console.yaml: {err}"));
}

/// envoy/envoy.yaml is a template (`${LISTEN_PORT}`…, filled by scripts/gateway.py); any value
/// will do for reading its YAML.
fn fill_placeholders(template: &str) -> String {
    let mut text = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("closed placeholder") + start;
        text.push_str(&rest[..start]);
        text.push('0');
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text
}

/// Finds every `configuration: {value: ...}` string under the wasm filter in an Envoy config.
fn plugin_configurations(node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "configuration" {
                    if let Some(text) = value["value"].as_str() {
                        found.push(text.to_string());
                    }
                }
                plugin_configurations(value, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| plugin_configurations(item, found)),
        _ => {}
    }
}

#[test]
fn envoy_yaml_carries_a_valid_plugin_configuration() {
    let template =
        std::fs::read_to_string(root().join("envoy/envoy.yaml")).expect("envoy/envoy.yaml");
    let text = fill_placeholders(&template);
    let document = yaml::parse(&text).expect("envoy/envoy.yaml is YAML");
    let mut found = Vec::new();
    plugin_configurations(&document, &mut found);
    assert_eq!(found.len(), 1, "one wasm filter configuration");
    PluginConfig::parse(found[0].as_bytes(), Build::Envoy)
        .unwrap_or_else(|err| panic!("envoy/envoy.yaml plugin configuration: {err}"));
}
