//! Configuration error paths: the module finds the field an error is about from serde_json's
//! error position (src/config/error_path.rs); serde_path_to_error, which tracks it while
//! reading, is the oracle. The shipped examples, with one value replaced by any JSON value, a
//! key added or a key removed anywhere in them, are refused by both at the same path with the
//! same message.

use ai_load_balancer::config::document::Balancer;
use ai_load_balancer::config::{yaml, Build, PluginConfig};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::runner::config;
use crate::values::json_value;

const SEEDS: &[&str] = &[
    include_str!("../../examples/envoy/background.yaml"),
    include_str!("../../examples/envoy/failover.yaml"),
    include_str!("../../examples/envoy/pools.yaml"),
    include_str!("../../examples/envoy/webdis.yaml"),
    include_str!("../../examples/higress/production.yaml"),
    include_str!("../../examples/higress/replicas.yaml"),
    include_str!("../../examples/higress/seed.yaml"),
];

/// What a mutation does at the place it picks.
#[derive(Debug, Clone)]
enum Change {
    Replace(Value),
    AddKey(String, Value),
    RemoveKey,
}

/// The seed's global configuration (no `_rules_`: each rule is read the same way).
fn seed(index: usize) -> Map<String, Value> {
    let mut document = yaml::parse(SEEDS[index % SEEDS.len()]).unwrap();
    let top = document.as_object_mut().unwrap();
    top.remove("_rules_");
    top.clone()
}

/// Every place in `value` (the pointers of its members and items), itself first.
fn places(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                places(
                    member,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                places(item, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn changed(mut document: Value, place: usize, change: Change) -> Value {
    let mut all = Vec::new();
    places(&document, String::new(), &mut all);
    let pointer = &all[place % all.len()];
    let Some(target) = document.pointer_mut(pointer) else {
        return document;
    };
    match change {
        Change::Replace(value) => *target = value,
        Change::AddKey(key, value) => {
            if let Value::Object(map) = target {
                map.insert(key, value);
            }
        }
        Change::RemoveKey => {
            if let Value::Object(map) = target {
                let first = map.keys().next().cloned();
                if let Some(first) = first {
                    map.remove(&first);
                }
            }
        }
    }
    document
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        json_value().prop_map(Change::Replace),
        (
            prop_oneof![
                Just("weight".to_string()),
                Just("wieght".to_string()),
                Just("tier".to_string()),
                "[a-z_.]{1,8}"
            ],
            json_value()
        )
            .prop_map(|(key, value)| Change::AddKey(key, value)),
        Just(Change::RemoveKey),
    ]
}

/// serde_path_to_error's refusal of `document`, as the module words one (`path: message`).
fn oracle(document: &Value) -> Option<String> {
    let mut sorted = document.clone();
    sorted.sort_all_objects();
    let error = serde_path_to_error::deserialize::<_, Balancer>(sorted).err()?;
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    Some(format!("{path}: {}", error.into_inner()))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_examples_are_refused_at_the_path_serde_path_to_error_names(
        index in 0..SEEDS.len(),
        place in any::<usize>(),
        change in change(),
    ) {
        let document = changed(Value::Object(seed(index)), place, change);
        // A top level that is not a mapping is refused before it is read as one.
        prop_assume!(document.is_object());
        let Some(expected) = oracle(&document) else {
            return Ok(());
        };
        let got = PluginConfig::parse(document.to_string().as_bytes(), Build::Higress)
            .err()
            .map(|error| error.to_string());
        let Some(got) = got else {
            return Err(TestCaseError::fail(format!("accepted: {document}")));
        };
        // A name (an enum's) given another type or shape: the readers word it differently (the
        // module in its own words), at the same path.
        let (path, message) = expected.split_once(": ").unwrap();
        let name_shape = ["expected string or map", "expected map with a single key", "variant"]
            .iter()
            .any(|words| message.contains(words));
        if name_shape {
            prop_assert!(got.starts_with(&format!("{path}: ")), "{} / {}", got, expected);
        } else if let Some(list) = path.strip_suffix("[0]").filter(|_| message.starts_with("invalid type: sequence")) {
            // A mapping's type given a list is read from its first item, which serde_json
            // refuses before entering: the module names the list.
            prop_assert!(got == expected || got == format!("{list}: {message}"), "{} / {}", got, expected);
        } else {
            prop_assert_eq!(got, expected, "{}", document);
        }
    }
}
