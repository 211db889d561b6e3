#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The JSON Schema generated from the configuration's types (`src/config/schema.rs`,
//! `config::document`) against what ships and what the parsers accept: the three generated files
//! are what it generates (`UPDATE_SCHEMA=1` rewrites them), every mapping refuses unknown fields,
//! every shipped plugin configuration validates against it, and configurations the filter
//! refuses for a wrong type or an unknown field the schema refuses too.

#[path = "shipped/mod.rs"]
mod shipped;
#[path = "schema/validator.rs"]
mod validator;

use ai_load_balancer::config::{schema, yaml, Build, PluginConfig};
use serde_json::{json, Value};

use shipped::{read_config, root, shipped_configurations};
use validator::validate;

const SCHEMA_FILE: &str = "schema/ai-load-balancer.schema.json";
const SPEC_FILE: &str = "higress/spec.yaml";
const REFERENCE_FILE: &str = "docs/config-reference.md";

/// Compares a shipped file with what is generated now, or with `UPDATE_SCHEMA=1` rewrites it.
fn check_generated(relative: &str, generated: &str) {
    let path = root().join(relative);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        let dir = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).expect("create the directory");
        std::fs::write(&path, generated).unwrap_or_else(|err| panic!("{relative}: {err}"));
        return;
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    if shipped != generated {
        let line = shipped
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                shipped.lines().count().min(generated.lines().count()),
                |n| n,
            )
            + 1;
        panic!(
            "{relative} is not what the configuration's types generate (first difference on line \
             {line}); run `UPDATE_SCHEMA=1 cargo test --test schema` to rewrite it, and review \
             the diff"
        );
    }
}

#[test]
fn shipped_json_schema_is_generated() {
    check_generated(SCHEMA_FILE, &schema::json_schema_text());
}

#[test]
fn shipped_higress_spec_is_generated() {
    let spec = schema::higress_spec_yaml(&schema::json_schema_text()).expect("spec.yaml");
    check_generated(SPEC_FILE, &spec);
}

#[test]
fn shipped_config_reference_is_generated() {
    let reference =
        schema::config_reference_markdown(&schema::json_schema_text()).expect("the reference");
    check_generated(REFERENCE_FILE, &reference);
}

#[test]
fn json_schema_text_is_the_schema_value() {
    let text: Value = serde_json::from_str(&schema::json_schema_text()).expect("JSON");
    assert_eq!(text, schema::json_schema());
}

/// Every mapping the schema describes refuses fields it does not name, as the parser's types do
/// (`deny_unknown_fields` on each): the schema is derived from them, so this holds wherever a
/// type was derived, and the refusal test below checks it against the parser.
#[test]
fn every_object_in_the_schema_refuses_unknown_fields() {
    fn walk(node: &Value, at: &str, objects: &mut usize) {
        if let Some(properties) = node["properties"].as_object() {
            *objects += 1;
            assert_eq!(node["additionalProperties"], json!(false), "{at}");
            for (name, field) in properties {
                walk(field, &format!("{at}.{name}"), objects);
            }
        }
        for key in ["items", "additionalProperties"] {
            if node[key].is_object() {
                walk(&node[key], &format!("{at}.{key}"), objects);
            }
        }
        for key in ["oneOf", "anyOf"] {
            for variant in node[key].as_array().into_iter().flatten() {
                walk(variant, at, objects);
            }
        }
    }
    let mut objects = 0;
    walk(&schema::json_schema(), "", &mut objects);
    assert!(objects >= 20, "{objects} objects");
}

fn schema_errors(config: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(&schema::json_schema(), config, "", &mut errors);
    errors
}

/// The validator reads schemas as schemars 1.x derives them (`$ref`, `$defs`, `"type": [T,
/// "null"]`, `const`, `format`), as the shipped schema will be once it comes from the types.
#[test]
fn the_validator_reads_schemars_output() {
    let derived: Value = serde_json::from_str(include_str!(
        "../src/config/schema/testdata/schemars-1.json"
    ))
    .expect("JSON");
    let retry = json!({"max_retries": 3, "ratio": null});
    let accepted = json!({"again": retry, "list": [retry], "models": {"a": {}}, "plain": "a",
        "retry": null, "kind": "random", "either": "least_load", "timeout_ms": 5, "key": "k"});
    let mut errors = Vec::new();
    validate(&derived, &accepted, "", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    for (field, wrong) in [
        ("again", json!({"max_retries": 11})),
        ("list", json!([])),
        ("plain", json!("c")),
        ("kind", json!("fastest")),
        ("either", json!({"max_retries": "1"})),
        ("timeout_ms", json!(-1)),
        ("key", json!(1)),
    ] {
        let mut refused = accepted.clone();
        refused[field] = wrong;
        let mut errors = Vec::new();
        validate(&derived, &refused, "", &mut errors);
        assert!(!errors.is_empty(), "{field}: accepted {refused}");
    }
}

#[test]
fn every_shipped_configuration_validates_against_the_schema() {
    let configs = shipped_configurations();
    assert!(
        configs.len() >= 10,
        "found {} configurations",
        configs.len()
    );
    for (place, text) in configs {
        let errors = schema_errors(&read_config(&text));
        assert!(errors.is_empty(), "{place}: {errors:#?}");
    }
}

#[test]
fn configurations_the_filter_refuses_for_types_or_unknown_fields_the_schema_refuses() {
    let provider = json!({"name": "a", "key": "a"});
    let redis = json!({"service_name": "redis-svc", "service_port": 6379});
    let refused = [
        json!({}),
        json!({"providers": [provider], "typo": 1}),
        json!({"providers": []}),
        json!({"providers": "a"}),
        json!({"providers": [{"name": "a", "wieght": 2}]}),
        json!({"providers": [{"name": "a", "weight": "2"}]}),
        json!({"providers": [{"name": "a", "weight": 2_000_000}]}),
        json!({"providers": [{"name": ""}]}),
        json!({"providers": [provider], "max_body_bytes": -1}),
        json!({"providers": [provider], "list_models": "yes"}),
        json!({"providers": [provider], "redis": {"service_name": "r", "service_port": 6379, "protocol": "tcp"}}),
        json!({"providers": [provider], "redis": {"service_name": "r", "service_port": 70000}}),
        json!({"providers": [provider], "redis": {"cluster": "r", "refresh_intervl_ms": 100}}),
        json!({"providers": [provider], "redis": redis, "strategy": "fastest"}),
        json!({"providers": [provider], "redis": redis, "strategy": {"name": "least_load", "extra": 1}}),
        json!({"providers": [provider], "health": {"probe": "yes"}}),
        json!({"providers": [provider], "health": {"failure_statuses": [700]}}),
        json!({"providers": [provider], "health": {"failure_statuses": ["6xx"]}}),
        json!({"providers": [provider], "retry": {"max_retries": 0}}),
        json!({"providers": [provider], "load_source": "gossip"}),
        json!({"providers": [provider], "models": {"auto": {"backends": [{"provider": "a", "prio": 1}]}}}),
        json!({"providers": [provider], "_match_route_": ["r"]}),
        json!({"_rules_": [{"_match_route_": ["r"], "_match_domain_": ["d"], "providers": [provider]}]}),
        json!({"_rules_": [{"providers": [provider]}]}),
        json!({"_rules_": [{"_match_route_": [], "providers": [provider]}]}),
    ];
    for config in refused {
        let text = config.to_string();
        assert!(
            PluginConfig::from_yaml(&text, Build::Higress).is_err(),
            "the filter accepts {text}"
        );
        assert!(
            !schema_errors(&config).is_empty(),
            "the schema accepts {text}"
        );
    }
}

#[test]
fn higress_spec_carries_the_schema_and_examples_the_filter_accepts() {
    let spec = schema::higress_spec_yaml(&schema::json_schema_text()).expect("spec.yaml");
    let spec = yaml::parse(&spec).expect("spec.yaml is YAML");
    // The console's form is the JSON Schema's, less the defaults described in words for the
    // reference (the form shows `default`), the alternatives and `_rules_` (the console's
    // format has neither).
    let resolved = schema::as_the_writers_read_it(&schema::json_schema_text()).expect("resolved");
    let json_schema = in_console_form(without_key(resolved, "x-default-description"));
    let config = &spec["spec"]["configSchema"]["openAPIV3Schema"];
    assert_eq!(config["properties"], json_schema["properties"]);
    assert!(config.get("anyOf").is_none());
    let route = &spec["spec"]["routeConfigSchema"]["openAPIV3Schema"];
    assert_eq!(route["properties"], json_schema["properties"]);
    for form in [config, route] {
        let example = &form["example"];
        let mut errors = Vec::new();
        validate(form, example, "", &mut errors);
        assert!(errors.is_empty(), "{errors:#?}");
        PluginConfig::parse(example.to_string().as_bytes(), Build::Higress)
            .unwrap_or_else(|err| panic!("spec example: {err}"));
    }
    for key in [
        "name",
        "title",
        "x-title-i18n",
        "description",
        "x-description-i18n",
    ] {
        assert!(!spec["info"][key].is_null(), "info.{key}");
    }
    assert!(spec["spec"]["phase"].is_string() && spec["spec"]["priority"].is_u64());
}

/// A resolved JSON Schema as the console's form has it: no `anyOf`, `oneOf`, `allOf`, no `items`
/// left empty by their removal, no `_rules_` field.
fn in_console_form(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| {
                    !["anyOf", "oneOf", "allOf", "_rules_"].contains(&name.as_str())
                })
                .map(|(name, value)| (name, in_console_form(value)))
                .filter(|(name, value)| !(name == "items" && value == &json!({})))
                .collect(),
        ),
        other => other,
    }
}

/// `value` with every entry named `key` taken out, at any depth.
fn without_key(value: Value, key: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| name != key)
                .map(|(name, value)| (name, without_key(value, key)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| without_key(v, key)).collect())
        }
        other => other,
    }
}

/// Every field has a Chinese title and description, for the console's zh-CN form.
#[test]
fn every_field_is_described_in_english_and_chinese() {
    fn walk(node: &Value, at: &str) {
        if let Some(properties) = node["properties"].as_object() {
            for (name, field) in properties {
                let path = format!("{at}.{name}");
                for key in ["title", "description"] {
                    assert!(
                        field[key].as_str().is_some_and(|t| !t.is_empty()),
                        "{path}: {key}"
                    );
                    let zh = field[format!("x-{key}-i18n")]["zh-CN"]
                        .as_str()
                        .unwrap_or("");
                    assert!(
                        zh.chars().any(|c| c > '\u{2e80}'),
                        "{path}: {key} in Chinese"
                    );
                }
                walk(field, &path);
            }
        }
        for key in ["items", "additionalProperties"] {
            if node[key].is_object() {
                walk(&node[key], at);
            }
        }
        if let Some(variants) = node["oneOf"].as_array() {
            for variant in variants {
                walk(variant, at);
            }
        }
    }
    walk(&schema::json_schema(), "");
}

#[test]
fn the_reference_has_a_row_for_every_field() {
    let reference =
        schema::config_reference_markdown(&schema::json_schema_text()).expect("the reference");
    fn names(node: &Value, found: &mut Vec<String>) {
        if let Some(properties) = node["properties"].as_object() {
            for (name, field) in properties {
                found.push(name.clone());
                names(field, found);
            }
        }
        for key in ["items", "additionalProperties"] {
            if node[key].is_object() {
                names(&node[key], found);
            }
        }
        for variant in node["oneOf"].as_array().into_iter().flatten() {
            names(variant, found);
        }
    }
    let mut found = Vec::new();
    names(&schema::json_schema(), &mut found);
    for name in found {
        assert!(
            reference.contains(&format!("| `{name}` |")),
            "no row for {name}"
        );
    }
}

#[test]
fn a_rule_needs_exactly_one_of_the_match_keys_the_filter_reads() {
    let schema = schema::json_schema();
    let one_of = schema["properties"]["_rules_"]["items"]["oneOf"]
        .as_array()
        .expect("_rules_ items: oneOf");
    let keys: Vec<&str> = one_of
        .iter()
        .map(|choice| choice["required"][0].as_str().expect("a required key"))
        .collect();
    assert_eq!(keys, ai_load_balancer::rules::RuleMatch::MATCH_KEYS);
}
