//! The configuration reader: the YAML subset (`config::yaml::parse`) and `PluginConfig::parse`
//! on either build. Any value written as block YAML or as JSON reads back as itself; arbitrary,
//! token-soup and mutated configurations (the shipped examples among the seeds) are refused
//! with an error, never a panic, and YAML and JSON spellings of one document get one answer.

use ai_load_balancer::config::{yaml, Build, PluginConfig};
use proptest::prelude::*;
use serde_json::Value;

use crate::mutate::{any_bytes, mutated_from, token_soup};
use crate::runner::config;
use crate::values::json_value;

/// Every YAML form the reader takes, in one document.
const EVERY_FORM: &[u8] = br#"# every form this reader takes
plain: text with:colon # and a comment
folded: >-
  one
  two

  three
literal: |+
  keep
   indented

quoted: "tab\t \u00e9 \
  joined \ 
  folded"
single: 'it''s
  folded'
flow: {a: [1, 2.5, -3, 0x1F, 0o17, .5, 1e3], "b": null, c: ~, d: true}
list:
- - nested
  - 2
- key: value
  other: [x, {y: z}]
empty:
...
"#;

const SEEDS: &[&[u8]] = &[
    include_bytes!("../../examples/envoy/background.yaml"),
    include_bytes!("../../examples/envoy/failover.yaml"),
    include_bytes!("../../examples/envoy/pools.yaml"),
    include_bytes!("../../examples/envoy/webdis.yaml"),
    include_bytes!("../../examples/higress/production.yaml"),
    include_bytes!("../../examples/higress/replicas.yaml"),
    include_bytes!("../../examples/higress/rules.json"),
    include_bytes!("../../examples/higress/seed.yaml"),
    EVERY_FORM,
];

#[rustfmt::skip]
const YAML_TOKENS: &[&[u8]] = &[
    b"\n", b"\r\n", b"\r", b"  ", b"\t", b": ", b":", b"- ", b"-", b"? ", b"#", b" #", b"\"",
    b"'", b"''", b"\\", b"\\u00", b"\\ ", b"|", b"|-", b"|+2", b">", b"[", b"]", b"{", b"}",
    b",", b"---", b"...", b"&a", b"*a", b"!tag", b"%YAML", b"~", b"null", b"true", b"0x",
    b"0o7", b"1e3", b".inf", b"-.5", b"9223372036854775808", b"\x00", b"\xef\xbb\xbf", b"\xff",
    b"providers:", b"name:", b"redis:", b"_rules_:", b"_match_route_:",
];

/// `value` as block YAML at `indent`: mappings and sequences on their own lines, every key and
/// string double-quoted (JSON's escapes are YAML's), scalars and empty collections in flow.
fn block_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                out.push_str(&format!("{pad}{}:", serde_json::to_string(key).unwrap()));
                block_child(value, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                block_child(item, indent, out);
            }
        }
        scalar => out.push_str(&format!(
            "{pad}{}\n",
            serde_json::to_string(scalar).unwrap()
        )),
    }
}

fn block_child(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {}
        Value::Array(items) if !items.is_empty() => {}
        scalar => {
            out.push_str(&format!(" {}\n", serde_json::to_string(scalar).unwrap()));
            return;
        }
    }
    out.push('\n');
    block_yaml(value, indent + 2, out);
}

fn non_null(document: serde_json::Value) -> Result<serde_json::Value, String> {
    if document.is_null() {
        Err("null".into())
    } else {
        Ok(document)
    }
}

/// No panic on either build, and the YAML spelling of a document reads as its JSON spelling.
fn check_config(bytes: &[u8]) {
    for build in [Build::Envoy, Build::Higress] {
        let direct = PluginConfig::parse(bytes, build);
        let Ok(text) = std::str::from_utf8(bytes) else {
            assert!(direct.is_err());
            continue;
        };
        let parsed = PluginConfig::from_yaml(text, build);
        let text = text.trim_start_matches('\u{feff}');
        if text.trim_start().starts_with('{') {
            continue;
        }
        // A document of only comments configures nothing; JSON has no such document.
        if let Ok(document) = yaml::parse(text).and_then(non_null) {
            let json = serde_json::to_vec(&document).unwrap();
            let as_json = PluginConfig::parse(&json, build);
            assert_eq!(format!("{parsed:?}"), format!("{as_json:?}"), "{text}");
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn yaml_reads_back_any_value_written_as_block_yaml(value in json_value()) {
        let mut text = String::new();
        block_yaml(&value, 0, &mut text);
        prop_assert_eq!(yaml::parse(&text).map_err(|err| format!("{err}\n{text}")), Ok(value));
    }

    #[test]
    fn yaml_reads_back_any_value_written_as_json(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        prop_assert_eq!(yaml::parse(&text).map_err(|err| format!("{err}\n{text}")), Ok(value));
    }

    #[test]
    fn yaml_never_panics(
        text in prop_oneof![any_bytes(), token_soup(YAML_TOKENS), mutated_from(SEEDS, YAML_TOKENS)],
    ) {
        let _ = yaml::parse(&String::from_utf8_lossy(&text));
    }

    #[test]
    fn configuration_never_panics_and_yaml_agrees_with_json(
        bytes in prop_oneof![
            1 => any_bytes(),
            1 => token_soup(YAML_TOKENS),
            4 => mutated_from(SEEDS, YAML_TOKENS),
        ],
    ) {
        check_config(&bytes);
    }
}

#[test]
fn every_seed_reads_the_same_as_yaml_and_as_json() {
    for seed in SEEDS {
        check_config(seed);
        if !seed.starts_with(b"{") {
            assert!(yaml::parse(std::str::from_utf8(seed).unwrap()).is_ok());
        }
    }
}
