//! Reading what the project ships, for the test binaries that check it (`examples`, `schema`):
//! every plugin configuration (`examples/envoy/*`, `examples/higress/*`, `higress/console.yaml`
//! and the one inside `envoy/envoy.yaml`) and the pieces that find them.
// Each binary uses part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ai_load_balancer::config::yaml;
use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A configuration file as the filter reads it: JSON when it starts with `{`, else YAML.
pub fn read_config(text: &str) -> Value {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).expect("JSON configuration")
    } else {
        yaml::parse(text).expect("YAML configuration")
    }
}

/// The files of a directory, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

/// envoy/envoy.yaml is a template (`${LISTEN_PORT}`…, filled by scripts/gateway.py); any value
/// will do for reading its YAML.
pub fn fill_placeholders(template: &str) -> String {
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

/// Every `configuration: {value: ...}` string in an Envoy configuration.
pub fn plugin_configurations(node: &Value, found: &mut Vec<String>) {
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
        Value::Array(items) => {
            for item in items {
                plugin_configurations(item, found);
            }
        }
        _ => {}
    }
}

/// Every plugin configuration the project ships, by where it is.
pub fn shipped_configurations() -> Vec<(String, String)> {
    let mut configs = Vec::new();
    for dir in ["examples/envoy", "examples/higress"] {
        for file in files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).expect("readable example");
            configs.push((file.display().to_string(), text));
        }
    }
    let console = std::fs::read_to_string(root().join("higress/console.yaml")).expect("console");
    configs.push(("higress/console.yaml".into(), console));
    let found = envoy_yaml_configurations();
    assert!(!found.is_empty(), "envoy/envoy.yaml configures the plugin");
    for text in found {
        configs.push(("envoy/envoy.yaml".into(), text));
    }
    configs
}

/// The plugin configurations inside `envoy/envoy.yaml`.
pub fn envoy_yaml_configurations() -> Vec<String> {
    let template =
        std::fs::read_to_string(root().join("envoy/envoy.yaml")).expect("envoy/envoy.yaml");
    let envoy = yaml::parse(&fill_placeholders(&template)).expect("envoy/envoy.yaml is YAML");
    let mut found = Vec::new();
    plugin_configurations(&envoy, &mut found);
    found
}
