//! What operators write in Envoy YAML, and how it reads: block and flow styles, quoted and block
//! scalars, comments, the core schema's scalars, anchors; and what is refused, with its line.

use serde_json::{json, Value};

use super::parse;

fn read(yaml: &str) -> Value {
    parse(yaml).unwrap_or_else(|err| panic!("{yaml:?}: {err}"))
}

fn refusal(yaml: &str) -> String {
    match parse(yaml) {
        Ok(value) => panic!("{yaml:?} was accepted as {value}"),
        Err(err) => err,
    }
}

#[test]
fn the_seed_configuration_reads_as_its_json() {
    let seed = crate::config::tests::SEED;
    assert_eq!(
        read(seed),
        json!({
            "providers": [
                {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
                {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
            ],
            "redis": {"service_name": "redis-svc", "service_port": 6379}
        })
    );
}

#[test]
fn flow_providers_and_a_block_store_read_together() {
    let text = "providers:\n- {name: a, key: ka, weight: 3}\n- {name: b, key: kb, model: m-b, weight: 0}\nredis:\n  cluster: \"outbound|6380||redis.prod.svc.cluster.local\"\n  key_prefix: \"load/\"\n  timeout_ms: 250\nmax_body_bytes: 1048576\n";
    assert_eq!(
        read(text),
        json!({
            "providers": [
                {"name": "a", "key": "ka", "weight": 3},
                {"name": "b", "key": "kb", "model": "m-b", "weight": 0}
            ],
            "redis": {
                "cluster": "outbound|6380||redis.prod.svc.cluster.local",
                "key_prefix": "load/",
                "timeout_ms": 250
            },
            "max_body_bytes": 1048576
        })
    );
}

#[test]
fn a_list_may_sit_under_its_key_or_at_the_key_s_indentation() {
    let indented = read("providers:\n  - name: a\n    key: k\n  - name: b\nnext: 1\n");
    let flush = read("providers:\n- name: a\n  key: k\n- name: b\nnext: 1\n");
    assert_eq!(indented, flush);
    assert_eq!(
        flush,
        json!({"providers": [{"name": "a", "key": "k"}, {"name": "b"}], "next": 1})
    );
}

#[test]
fn flow_collections_nest_and_span_lines() {
    assert_eq!(
        read("a: {b: [x, \"y, z\", 3], c: {}}\n"),
        json!({"a": {"b": ["x", "y, z", 3], "c": {}}})
    );
    assert_eq!(
        read("list: [\n  one,   # first\n  two\n]\nafter: 1\n"),
        json!({"list": ["one", "two"], "after": 1})
    );
}

#[test]
fn plain_scalars_follow_the_core_schema() {
    assert_eq!(
        read("[~, null, Null, NULL, true, True, TRUE, false, yes, off]"),
        json!([null, null, null, null, true, true, true, false, "yes", "off"])
    );
    assert_eq!(
        read("[0, -12, +7, 0x1f, 0o17, 0o8, 1.5, -2e3, .5, 1e400x, 18446744073709551615]"),
        json!([
            0,
            -12,
            7,
            31,
            15,
            "0o8",
            1.5,
            -2000.0,
            0.5,
            "1e400x",
            u64::MAX
        ])
    );
    assert_eq!(read("a:\nb: ''\n"), json!({"a": null, "b": ""}));
}

#[test]
fn quoted_scalars_are_always_strings() {
    assert_eq!(
        read("['1', \"true\", \"~\", '', 'null']"),
        json!(["1", "true", "~", "", "null"])
    );
}

#[test]
fn double_quoted_escapes_and_single_quoted_doubling() {
    assert_eq!(
        read(
            r#"["a\"b", "back\\slash", "line\nfeed", "tab\there", "\u00e9\x41", 'it''s', 'no \n escape']"#
        ),
        json!([
            "a\"b",
            "back\\slash",
            "line\nfeed",
            "tab\there",
            "éA",
            "it's",
            "no \\n escape"
        ])
    );
}

#[test]
fn comments_end_lines_but_not_words() {
    assert_eq!(
        read("# top\na: b # trailing\nc: d#e\nf: \"# kept\"\n# end"),
        json!({"a": "b", "c": "d#e", "f": "# kept"})
    );
}

#[test]
fn a_leading_start_marker_and_a_trailing_end_marker_are_allowed() {
    assert_eq!(read("---\na: 1\n...\n"), json!({"a": 1}));
    assert_eq!(read("--- # comment\na: 1\n"), json!({"a": 1}));
}

#[test]
fn block_scalars_keep_or_fold_lines_and_chomp_the_end() {
    let text = "literal: |\n  one\n  two\n\nfolded: >\n  one\n  two\n\n  three\nstrip: |-\n  x\n\nkeep: |+\n  x\n\nlast: 1\n";
    assert_eq!(
        read(text),
        json!({
            "literal": "one\ntwo\n",
            "folded": "one two\nthree\n",
            "strip": "x",
            "keep": "x\n\n",
            "last": 1
        })
    );
}

#[test]
fn integer_and_boolean_keys_read_as_their_text() {
    assert_eq!(
        read("1: a\n0x10: b\ntrue: c\n'quoted': d\n\"@type\": e\n"),
        json!({"1": "a", "16": "b", "true": "c", "quoted": "d", "@type": "e"})
    );
}

#[test]
fn anchors_and_aliases_repeat_a_value_and_core_tags_apply() {
    assert_eq!(
        read("base: &redis {cluster: r, timeout_ms: 50}\nother: *redis\nport: !!str 6379\n"),
        json!({
            "base": {"cluster": "r", "timeout_ms": 50},
            "other": {"cluster": "r", "timeout_ms": 50},
            "port": "6379"
        })
    );
}

#[test]
fn what_json_cannot_hold_or_yaml_forbids_is_refused_with_its_line() {
    let cases = [
        (
            "a: 1\n---\nb: 2\n",
            "line 2: several documents; expected one",
        ),
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key \"a\""),
        ("a: {x: 1, x: 2}\n", "line 1: duplicate key \"x\""),
        ("~: 1\n", "line 1: mapping keys must be names, not null"),
        ("a: .inf\n", "line 1: \".inf\" is not a finite number"),
        ("a: .nan\n", "line 1: \".nan\" is not a finite number"),
    ];
    for (yaml, expected) in cases {
        assert_eq!(refusal(yaml), expected, "{yaml:?}");
    }
    for (yaml, line) in [
        ("a:\n\tb: 1\n", "line 2"),
        ("a: \"open\nb: 1\n", "line 1"),
        ("a: [1, 2\n", "line 2"),
        ("a: b: c\n", "line 1"),
        ("a: 1\nb: *x\n", "line 2"),
    ] {
        let error = refusal(yaml);
        assert!(error.contains(line), "{yaml:?}: {error}");
    }
}

#[test]
fn nesting_past_the_depth_limit_is_refused_without_exhausting_the_stack() {
    let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(parse(&at_limit).is_ok());
    let flow = "[".repeat(100);
    assert_eq!(refusal(&flow), "line 1: nested deeper than 64 levels");
    // The parser itself stops far deeper flows before any value is built.
    assert!(parse(&"[".repeat(100_000)).is_err());
    let block: String = (0..100)
        .map(|level| format!("{}k:\n", " ".repeat(level)))
        .collect();
    assert_eq!(refusal(&block), "line 65: nested deeper than 64 levels");
    let dashes = "- ".repeat(100);
    assert_eq!(refusal(&dashes), "line 1: nested deeper than 64 levels");
}

#[test]
fn aliases_cannot_expand_without_bound() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    assert!(refusal(&text).contains("aliases copy more than"));
}

#[test]
fn empty_and_comment_only_texts_are_null() {
    assert_eq!(read(""), Value::Null);
    assert_eq!(read("\n# nothing here\n   \n"), Value::Null);
}
