#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! What a real Higress does with the shipped plugin (issue 18), checked against Higress's own
//! sources where the upstream schemas are vendored (`../shared/schemas/`, as CI has them; a
//! test that needs them says SKIPPED when they are absent):
//! - the console looks a plugin's name up among its built-ins first (`plugins.properties`), so
//!   the plugin ships under a name no built-in uses, the same in every Higress file;
//! - the spec's forms are in the console's format (no `anyOf`/`oneOf`/`allOf`, no `_rules_`),
//!   with keywords the console's own specs or OpenAPI 3.0 use;
//! - hgctl validates each scope's configuration (a WasmPlugin's `defaultConfig`, each
//!   `matchRules` config) against the spec's `configSchema` (draft-04, santhosh-tekuri's
//!   jsonschema with `Draft4`): every shipped one passes.

#[path = "shipped/mod.rs"]
mod shipped;
#[path = "schema/validator.rs"]
mod validator;

use std::collections::BTreeSet;
use std::path::PathBuf;

use ai_load_balancer::config::{schema, yaml};
use serde_json::Value;

use shipped::{files, read_config, root};
use validator::validate;

/// The vendored upstream schemas, or None (with the reason on stderr) where they are absent.
fn upstream(test: &str) -> Option<PathBuf> {
    let dir = root().join("../shared/schemas");
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "SKIPPED {test}: {} is absent (CI has Higress's and Istio's schemas there; a clone of \
         this repository alone does not)",
        dir.display()
    );
    None
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

fn shipped_spec() -> Value {
    yaml::parse(&read("higress/spec.yaml")).expect("higress/spec.yaml is YAML")
}

/// The Higress WasmPlugin manifests: (file, resource).
fn higress_wasmplugins() -> Vec<(String, Value)> {
    files(&root().join("higress"))
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wasmplugin"))
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable manifest");
            (
                path.display().to_string(),
                yaml::parse(&text).expect("YAML"),
            )
        })
        .collect()
}

#[test]
fn the_plugin_ships_under_one_name_no_built_in_uses() {
    assert_ne!(
        schema::PLUGIN_NAME,
        "ai-load-balancer",
        "Higress's built-in"
    );
    assert_eq!(shipped_spec()["info"]["name"], schema::PLUGIN_NAME);
    let plugins = higress_wasmplugins();
    assert!(plugins.len() >= 2, "{plugins:?}");
    for (file, plugin) in &plugins {
        assert_eq!(plugin["metadata"]["name"], schema::PLUGIN_NAME, "{file}");
    }
    let console_hint = format!("Plugins -> {}", schema::PLUGIN_NAME);
    assert!(read("higress/console.yaml").contains(&console_hint));
    for readme in ["higress/README.md", "higress/README_ZH.md", "README.md"] {
        assert!(read(readme).contains(schema::PLUGIN_NAME), "{readme}");
    }
    // The README tells the two apart.
    assert!(read("README.md").contains("built-in `ai-load-balancer`"));

    let Some(upstream) = upstream("the_plugin_ships_under_one_name_no_built_in_uses") else {
        return;
    };
    let properties = std::fs::read_to_string(upstream.join("higress-console/plugins.properties"))
        .expect("plugins.properties");
    let built_ins: BTreeSet<&str> = properties
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .collect();
    assert!(
        built_ins.contains("ai-load-balancer") && built_ins.len() > 40,
        "{built_ins:?}"
    );
    assert!(
        !built_ins.contains(schema::PLUGIN_NAME),
        "{} is a built-in",
        schema::PLUGIN_NAME
    );
}

/// Every keyword of a form (the keys of each schema, not of `properties` or `example`).
fn keywords(schema: &Value, found: &mut BTreeSet<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    for (key, value) in map {
        found.insert(key.clone());
        match key.as_str() {
            "properties" => value
                .as_object()
                .into_iter()
                .flatten()
                .for_each(|(_, field)| keywords(field, found)),
            "items" | "additionalProperties" | "not" => keywords(value, found),
            "anyOf" | "oneOf" | "allOf" => value
                .as_array()
                .into_iter()
                .flatten()
                .for_each(|variant| keywords(variant, found)),
            _ => {}
        }
    }
}

fn forms(spec: &Value) -> Vec<&Value> {
    ["configSchema", "routeConfigSchema"]
        .iter()
        .map(|name| &spec["spec"][name]["openAPIV3Schema"])
        .filter(|form| !form.is_null())
        .collect()
}

/// OpenAPI 3.0's validation keywords (a Schema Object's JSON Schema subset): the console passes
/// them on to validation, and draws a form from the rest.
const OPENAPI_VALIDATION: &[&str] = &[
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
    "uniqueItems",
    "additionalProperties",
];

#[test]
fn the_spec_is_in_the_consoles_format() {
    let spec = shipped_spec();
    let ours_forms = forms(&spec);
    assert_eq!(ours_forms.len(), 2);
    let mut ours = BTreeSet::new();
    for form in &ours_forms {
        keywords(form, &mut ours);
        assert!(
            form["properties"].get("_rules_").is_none(),
            "Higress builds _rules_"
        );
        assert!(!form["properties"]["providers"].is_null());
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        assert!(!ours.contains(combinator), "{combinator} in a form");
    }

    let Some(upstream) = upstream("the_spec_is_in_the_consoles_format") else {
        return;
    };
    let mut theirs = BTreeSet::new();
    let mut top_level = BTreeSet::new();
    let specs: Vec<PathBuf> = files(&upstream.join("higress-console"))
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".spec.yaml"))
        .collect();
    assert!(specs.len() >= 5, "{specs:?}");
    for path in specs {
        let text = std::fs::read_to_string(&path).expect("readable spec");
        let spec = yaml::parse(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        for form in forms(&spec) {
            keywords(form, &mut theirs);
        }
        top_level.extend(
            spec["spec"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        );
        top_level.extend(
            spec["info"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| format!("info.{k}")),
        );
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        assert!(
            !theirs.contains(combinator),
            "upstream now uses {combinator}: revisit issue 18"
        );
    }
    let unknown: Vec<&String> = ours
        .iter()
        .filter(|key| !theirs.contains(*key) && !OPENAPI_VALIDATION.contains(&key.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "keywords no console spec uses: {unknown:?}"
    );
    for key in spec["spec"].as_object().expect("spec").keys() {
        assert!(top_level.contains(key), "spec.{key}");
    }
    for key in spec["info"].as_object().expect("info").keys() {
        assert!(top_level.contains(&format!("info.{key}")), "info.{key}");
    }
}

/// hgctl's check (`hgctl/pkg/plugin/install`): each scope's configuration against the spec's
/// `configSchema`. The validator reads the keywords the form uses with draft-04's meaning
/// (`minimum`/`maximum` inclusive, `required` a list, `integer` a number without fraction).
#[test]
fn every_shipped_scope_validates_against_the_config_schema() {
    let spec = shipped_spec();
    let config_schema = &spec["spec"]["configSchema"]["openAPIV3Schema"];
    let route_schema = &spec["spec"]["routeConfigSchema"]["openAPIV3Schema"];
    let mut scopes: Vec<(String, &Value, Value)> = Vec::new();
    let plugins = higress_wasmplugins();
    for (file, plugin) in &plugins {
        let default = plugin["spec"]["defaultConfig"].clone();
        assert!(default.is_object(), "{file}");
        scopes.push((format!("{file}: defaultConfig"), config_schema, default));
        let rules = plugin["spec"]["matchRules"].as_array().expect("matchRules");
        for (at, rule) in rules.iter().enumerate() {
            let config = rule["config"].clone();
            scopes.push((
                format!("{file}: matchRules[{at}].config"),
                config_schema,
                config.clone(),
            ));
            scopes.push((
                format!("{file}: matchRules[{at}].config (route form)"),
                route_schema,
                config,
            ));
        }
    }
    // What a user pastes into the console (one scope each); rules.json is what Higress builds
    // from a WasmPlugin: its global part and each rule less its `_match_*_` keys.
    let mut configs = vec![(
        "higress/console.yaml".to_string(),
        read("higress/console.yaml"),
    )];
    for file in files(&root().join("examples/higress")) {
        let text = std::fs::read_to_string(&file).expect("readable example");
        configs.push((file.display().to_string(), text));
    }
    for (place, text) in configs {
        let mut config = read_config(&text);
        let rules = config.as_object_mut().and_then(|map| map.remove("_rules_"));
        for (at, rule) in rules
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut rule = rule.clone();
            if let Some(map) = rule.as_object_mut() {
                map.retain(|key, _| !key.starts_with("_match_"));
            }
            scopes.push((format!("{place}: _rules_[{at}]"), route_schema, rule));
        }
        scopes.push((place, config_schema, config));
    }
    assert!(scopes.len() >= 10, "{}", scopes.len());
    for (place, form, config) in scopes {
        let mut errors = Vec::new();
        validate(form, &config, "", &mut errors);
        assert!(errors.is_empty(), "{place}: {errors:#?}");
    }
}
