#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Every shipped configuration loads, so none can rot: `examples/envoy/*` on the Envoy build,
//! `examples/higress/*` on the Higress build, and the plugin configuration inside
//! `envoy/envoy.yaml`.

use std::path::{Path, PathBuf};

use ai_load_balancer::config::{Build, PluginConfig};
use yaml_rust2::{Yaml, YamlLoader};

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
}

/// Finds every `configuration: {value: ...}` string under the wasm filter in an Envoy config.
fn plugin_configurations(node: &Yaml, found: &mut Vec<String>) {
    match node {
        Yaml::Hash(map) => {
            for (key, value) in map {
                if key.as_str() == Some("configuration") {
                    if let Some(text) = value["value"].as_str() {
                        found.push(text.to_string());
                    }
                }
                plugin_configurations(value, found);
            }
        }
        Yaml::Array(items) => items
            .iter()
            .for_each(|item| plugin_configurations(item, found)),
        _ => {}
    }
}

#[test]
fn envoy_yaml_carries_a_valid_plugin_configuration() {
    let text = std::fs::read_to_string(root().join("envoy/envoy.yaml")).expect("envoy/envoy.yaml");
    let documents = YamlLoader::load_from_str(&text).expect("envoy/envoy.yaml is YAML");
    let mut found = Vec::new();
    plugin_configurations(&documents[0], &mut found);
    assert_eq!(found.len(), 1, "one wasm filter configuration");
    PluginConfig::parse(found[0].as_bytes(), Build::Envoy)
        .unwrap_or_else(|err| panic!("envoy/envoy.yaml plugin configuration: {err}"));
}
