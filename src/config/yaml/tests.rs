//! Focused tests: what each feature reads as, and each refusal with its line.

use serde_json::{json, Value};

use super::parse;

fn read(yaml: &str) -> Value {
    parse(yaml).unwrap_or_else(|err| panic!("{yaml:?}: {err}"))
}

fn refusal(yaml: &str) -> String {
    match parse(yaml) {
        Ok(value) => panic!("{yaml:?} was accepted as {value}"),
        Err(err) => err.to_string(),
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
fn double_quoted_lines_fold_without_their_blanks_unless_escaped() {
    assert_eq!(
        read("- \"a \t\n  b\"\n- \"a\\ \n  b\"\n- \"a\\t \n\n b\"\n- \"\\ \n\\ \"\n"),
        json!(["a b", "a  b", "a\t\nb", "   "])
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
fn error_lines_count_from_the_top_of_the_text() {
    assert_eq!(
        refusal("# comment\n\na: 1\nb: &anchor 2\n"),
        "line 4: anchors (&) are not supported"
    );
    assert_eq!(
        refusal("a: 1\r\nb: *x\r\n"),
        "line 2: aliases (*) are not supported"
    );
}

#[test]
fn what_the_reader_does_not_support_is_refused_with_its_line() {
    let cases = [
        ("a: &x 1\n", "line 1: anchors (&) are not supported"),
        ("a: 1\nb: *x\n", "line 2: aliases (*) are not supported"),
        ("a: !!str 1\n", "line 1: tags (!) are not supported"),
        ("a: [!x 1]\n", "line 1: tags (!) are not supported"),
        ("a: 1\n---\nb: 2\n", "line 2: several documents; expected one"),
        ("---\na: 1\n---\n", "line 3: several documents; expected one"),
        ("a: 1\n...\nb: 2\n", "line 3: several documents; expected one"),
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key \"a\""),
        ("a: {x: 1, x: 2}\n", "line 1: duplicate key \"x\""),
        ("a:\n\tb: 1\n", "line 2: tabs cannot indent YAML; use spaces"),
        ("a:\n  b: 1\n   c: 2\n", "line 3: unexpected ':' (check the indentation: a nested mapping goes on its own lines)"),
        ("a:\n  b: [1]\n   c: 2\n", "line 3: bad indentation: deeper than the mapping's keys"),
        ("a:\n  b: 1\n c: 2\n", "line 3: bad indentation: deeper than the mapping's keys"),
        ("- \"a\"\n  - b\n", "line 2: bad indentation: deeper than the list's items"),
        ("- a\nb: 1\n", "line 2: bad indentation: this line belongs to nothing above"),
        ("a: 1\n- b\n", "line 2: expected a `key: value` entry like the lines above"),
        ("a: b: c\n", "line 1: unexpected ':' (check the indentation: a nested mapping goes on its own lines)"),
        ("a: - b\n", "line 1: a `- ` list item cannot start here"),
        ("a: \"open\nb: 1\n", "line 1: unterminated quoted string"),
        ("a: 'open\n", "line 1: unterminated quoted string"),
        ("a: [1, 2\n", "line 1: '[' is never closed"),
        ("a: [1, 2\nb: 3\n", "line 1: a key inside [..] or {..} must fit on one line; is a bracket unclosed?"),
        ("a: {b: 1\n", "line 1: '{' is never closed"),
        ("a: [\"x\" y]\n", "line 1: expected ',' or ']', found 'y'"),
        ("? a\n: 1\n", "line 1: complex keys (?) are not supported"),
        ("[a]: 1\n", "line 1: complex keys (a [..] or {..} key) are not supported"),
        ("a: {[b]: 1}\n", "line 1: complex keys (a [..] or {..} key) are not supported"),
        ("\"a\nb\": 1\n", "line 1: a mapping key must fit on one line"),
        ("~: 1\n", "line 1: mapping keys must be strings, not null"),
        ("1.5: 1\n", "line 1: mapping keys must be strings, not 1.5"),
        ("a: .inf\n", "line 1: \".inf\" is not a finite number"),
        ("a: [-.INF]\n", "line 1: \"-.INF\" is not a finite number"),
        ("a: .nan\n", "line 1: \".nan\" is not a finite number"),
        ("a: 1e400\n", "line 1: \"1e400\" is not a finite number"),
        ("a: 0x1ffffffffffffffff\n", "line 1: \"0x1ffffffffffffffff\" does not fit in 64 bits"),
        ("a: \"\\q\"\n", "line 1: unknown escape \\q"),
        ("a: \"\\u12\"\n", "line 1: \\u needs 4 hex digits naming a character"),
        ("a: \"\\uD800\"\n", "line 1: \\u needs 4 hex digits naming a character"),
        ("%YAML 1.2\n---\na: 1\n", "line 1: directives (%) are not supported"),
        ("a: | x\n  y\n", "line 1: unexpected 'x' after a complete value"),
        ("a: \"x\" y\n", "line 1: unexpected 'y' after a complete value"),
        ("a: \"x\" 名\n", "line 1: unexpected '名' after a complete value"),
        ("a: [\"x\" é]\n", "line 1: expected ',' or ']', found 'é'"),
        ("a: @x\n", "line 1: unexpected '@'"),
        ("a: 1\0\n", "line 1: NUL characters are not allowed"),
    ];
    for (yaml, expected) in cases {
        assert_eq!(refusal(yaml), expected, "{yaml:?}");
    }
}

#[test]
fn nesting_past_the_depth_limit_is_refused_without_exhausting_the_stack() {
    let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(parse(&at_limit).is_ok());
    let flow = "[".repeat(100_000);
    assert_eq!(refusal(&flow), "line 1: nested deeper than 64 levels");
    let block: String = (0..100)
        .map(|level| format!("{}k:\n", " ".repeat(level)))
        .collect();
    assert_eq!(refusal(&block), "line 65: nested deeper than 64 levels");
    let dashes = "- ".repeat(100);
    assert_eq!(refusal(&dashes), "line 1: nested deeper than 64 levels");
}

#[test]
fn empty_and_comment_only_texts_are_null() {
    assert_eq!(read(""), Value::Null);
    assert_eq!(read("\n# nothing here\n   \n"), Value::Null);
}
