//! No configuration takes the reader super-linear time: YAML and JSON of up to 1 MiB (long
//! lines and scalars, many keys and rules, nesting to the limit, escapes, duplicate keys) take
//! ~4x as long for 4x the input (`growth`). Configurations are kilobytes, and the reader is
//! ~10x slower per byte than the request-path parsers: 1 MiB is large enough to tell.

use ai_load_balancer::config::{yaml, Build, PluginConfig};

use crate::growth::{assert_linear_text, numbered, shape, Shape};

/// The largest input.
const LARGE: usize = 1 << 20;

const YAML: &[Shape] = &[
    shape("yaml long plain line", "a: ", "word word ", "\n"),
    shape("yaml long flow line", "a: [", "1, \"x\", {b: c}, ", "1]\n"),
    shape("yaml comments", "", "# comment: - [ {\n\n", "a: 1\n"),
    shape(
        "yaml escapes",
        "a: \"",
        r#"\u00e9\t\"\\\x41\U0001F600"#,
        "\"\n",
    ),
    // Escaped blanks ending every line (continuation lines indented, as YAML requires under a
    // key): trimming the whole value at each line was quadratic in the former reader.
    shape("yaml escaped blanks", "a: \"", "\\ \n ", "\"\n"),
    shape("yaml single-quoted", "a: '", "it''s \n\n ", "'\n"),
    shape("yaml folded plain", "a: x\n", "  y z\n\n", ""),
    shape(
        "yaml literal block",
        "a: |+\n",
        "  line\n\n   more\n",
        "b: 1\n",
    ),
    shape("yaml folded block", "a: >-\n", "  line\n\n   more\n", ""),
];

fn read_yaml(text: &str) -> bool {
    yaml::parse(text).is_ok()
}

#[test]
fn yaml_with_long_lines_and_scalars() {
    for shape in YAML {
        assert!(read_yaml(&shape.build(1 << 10)), "{shape:?}");
        shape.assert_linear_time(LARGE, read_yaml);
    }
}

#[test]
fn yaml_with_many_keys() {
    let make = |size| numbered(size, "", |i| format!("key{i}: value {i}\r\n"), "");
    assert!(read_yaml(&make(1 << 10)));
    assert_linear_text("yaml keys", LARGE, make, read_yaml);
}

#[test]
fn yaml_nested_to_the_depth_limit() {
    // 64 levels is the limit: a mapping, a sequence, then 60 flow or block levels.
    let flow = format!("- {}{}\n", "[".repeat(60), "]".repeat(60));
    let block: String = (0..60)
        .map(|level| format!("{}k{level}:\n", "  ".repeat(level + 1)))
        .collect();
    let block = format!("- b:\n{block}");
    let make = |size| {
        numbered(
            size,
            "a:\n",
            |i| {
                if i % 2 == 0 {
                    flow.clone()
                } else {
                    block.clone()
                }
            },
            "",
        )
    };
    assert!(read_yaml(&make(1 << 10)));
    assert_linear_text("yaml nested", LARGE, make, read_yaml);
}

/// JSON as the module reads it; YAML as the tests turn it into JSON first.
fn read_config(text: &str) -> bool {
    if text.starts_with('{') {
        PluginConfig::parse(text.as_bytes(), Build::Higress).is_ok()
    } else {
        PluginConfig::from_yaml(text, Build::Higress).is_ok()
    }
}

fn assert_config_linear(what: &str, size: usize, make: impl Fn(usize) -> String) {
    assert!(read_config(&make(1 << 10)), "{what}");
    assert_linear_text(what, size, make, read_config);
}

#[test]
fn configuration_with_many_rules() {
    assert_config_linear("configuration rules (JSON)", LARGE, |size| {
        let providers = r#"[{"name":"a","model":"m\u00e9"},{"name":"b"}]"#;
        let rule = |i| format!(r#"{{"_match_route_":["r{i}","s"],"providers":{providers}}},"#);
        numbered(
            size,
            r#"{"redis":{"cluster":"redis"},"_rules_":["#,
            rule,
            r#"{"_match_domain_":["x"],"providers":[{"name":"c"}]}]}"#,
        )
    });
    assert_config_linear("configuration rules (YAML)", LARGE, |size| {
        let providers = "  providers:\n  - name: a\n    model: \"m\\u00e9\"\n  - {name: b}\n";
        let rule = |i| format!("- _match_route_: [r{i}]\n{providers}");
        numbered(size, "redis:\n  cluster: redis\n_rules_:\n", rule, "")
    });
}

#[test]
fn configuration_with_duplicate_keys() {
    // serde_json keeps the last of duplicate keys.
    let duplicates = shape(
        "configuration duplicate keys",
        "{",
        r#""providers":[{"name":"a","weight":0},{"name":"b"}],"#,
        r#""redis":{"cluster":"r"}}"#,
    );
    assert_config_linear(duplicates.what, LARGE, |size| duplicates.build(size));
}

// Each duplicate check over a configuration's lists compares every entry with every one before
// it; the lists are capped (`MAX_LIST_ITEMS` entries), so a longer list is refused before any
// check and the reading stays linear. These failed (12-16x for 4x input) before the cap.

/// Large enough to show these, short of minutes per run.
const QUADRATIC_LARGE: usize = 512 << 10;

#[test]
fn configuration_with_many_providers() {
    assert_config_linear("configuration providers", QUADRATIC_LARGE, |size| {
        let provider = |i| format!(r#"{{"name":"p{i}"}},"#);
        numbered(
            size,
            r#"{"redis":{"cluster":"r"},"providers":["#,
            provider,
            r#"{"name":"last"}]}"#,
        )
    });
}

#[test]
fn configuration_with_many_pool_backends() {
    assert_config_linear("configuration pool backends", QUADRATIC_LARGE, |size| {
        let backend = |i| format!(r#"{{"provider":"a","model":"m{i}"}},"#);
        let head = concat!(
            r#"{"redis":{"cluster":"r"},"providers":[{"name":"a"},{"name":"b"}],"#,
            r#""models":{"m":{"backends":["#
        );
        numbered(size, head, backend, r#"{"provider":"b"}]}}}"#)
    });
}

#[test]
fn configuration_with_many_api_tokens() {
    assert_config_linear("configuration api tokens", QUADRATIC_LARGE, |size| {
        let token = |i| format!(r#""sk-{i:012}","#);
        numbered(
            size,
            r#"{"redis":{"cluster":"r"},"providers":[{"name":"a","api_tokens":["#,
            token,
            r#""sk-last"]}]}"#,
        )
    });
}

#[test]
fn configuration_with_many_rule_header_names() {
    // The quadratic part overtakes the rest only past 1 MiB.
    assert_config_linear("configuration rules' header names", 4 << 20, |size| {
        let rule = |i| format!(r#"{{"_match_route_":["r"],"selected_provider_header":"x-p{i}"}},"#);
        numbered(
            size,
            r#"{"redis":{"cluster":"r"},"providers":[{"name":"a"}],"_rules_":["#,
            rule,
            r#"{"_match_route_":["r"]}]}"#,
        )
    });
}
