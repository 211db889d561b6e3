//! Differential test: YAML texts beside the JSON value YAML 1.2 gives them. Every case was
//! checked against two full parsers, yaml-rust2 0.13 (YAML 1.2, which this reader replaced)
//! and PyYAML 6 (YAML 1.1). Where they disagree with each other or with the 1.2 spec, the
//! case says which one it follows; where only YAML 1.1 differs (`yes`, `0o17`, `1e3`, `12:30`,
//! `1_000`), it follows 1.2.

use serde_json::Value;

use super::parse;

/// (YAML, the same document as JSON).
const CASES: &[(&str, &str)] = &[
    // Block collections.
    ("a: 1\nb: two\n", r##"{"a": 1, "b": "two"}"##),
    ("a:\n  b:\n    c: d\n", r##"{"a": {"b": {"c": "d"}}}"##),
    ("- a\n- b\n", r##"["a", "b"]"##),
    ("- name: a\n  key: k\n- name: b\n", r##"[{"name": "a", "key": "k"}, {"name": "b"}]"##),
    ("key:\n- a\n- b\nnext: 1\n", r##"{"key": ["a", "b"], "next": 1}"##),
    ("key:\n  - a\n  - b\n", r##"{"key": ["a", "b"]}"##),
    ("- - a\n  - b\n- c\n", r##"[["a", "b"], "c"]"##),
    ("- a:\n  - x\n  b: 2\n", r##"[{"a": ["x"], "b": 2}]"##),
    ("a:\n  - b: 1\n    c:\n    - d\n", r##"{"a": [{"b": 1, "c": ["d"]}]}"##),
    ("-\n  a: 1\n-\n  - 2\n", r##"[{"a": 1}, [2]]"##),
    ("a:\n  # between\n  b: 1\n", r##"{"a": {"b": 1}}"##),
    ("  a: 1\n  b: 2\n", r##"{"a": 1, "b": 2}"##),
    ("a: 1\r\nb:\r\n  - x\r\n", r##"{"a": 1, "b": ["x"]}"##),
    // Nulls and booleans (YAML 1.2: yes/no/on are strings).
    // Core schema `null | Null | NULL | ~` (PyYAML agrees; yaml-rust2 reads "Null" as text).
    ("a:\nb: ~\nc: null\nd: Null\ne: NULL\n", r##"{"a": null, "b": null, "c": null, "d": null, "e": null}"##),
    ("-\n- \n-  # comment\n- x\n", r##"[null, null, null, "x"]"##),
    (
        "a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: yes\ng: no\nh: on\n",
        r##"{"a": true, "b": true, "c": true, "d": false, "e": false, "f": "yes", "g": "no", "h": "on"}"##,
    ),
    // Numbers.
    (
        "a: 0\nb: -17\nc: +5\nd: 0x1F\ne: 0o17\nf: 007\ng: 9223372036854775807\nh: -9223372036854775808\n",
        r##"{"a": 0, "b": -17, "c": 5, "d": 31, "e": 15, "f": 7, "g": 9223372036854775807, "h": -9223372036854775808}"##,
    ),
    (
        "a: 1.5\nb: -0.25\nc: 1e3\nd: 2.5E-2\ne: .5\nf: 1.\ng: +1.0\nh: 6.02e+23\n",
        r##"{"a": 1.5, "b": -0.25, "c": 1000.0, "d": 0.025, "e": 0.5, "f": 1.0, "g": 1.0, "h": 6.02e23}"##,
    ),
    // Plain scalars that are strings.
    (
        "a: 1.2.3\nb: 0x\nc: 0xG\nd: 12:30\ne: 1_000\nf: .\ng: -x\nh: ?x\ni: :x\nj: e5\n",
        r##"{"a": "1.2.3", "b": "0x", "c": "0xG", "d": "12:30", "e": "1_000", "f": ".", "g": "-x", "h": "?x", "i": ":x", "j": "e5"}"##,
    ),
    (
        "url: http://x:80/a#frag\nmsg: a # comment\nt: a#b\ns: two  words \n",
        r##"{"url": "http://x:80/a#frag", "msg": "a", "t": "a#b", "s": "two  words"}"##,
    ),
    ("a: one\n  two\n\n  three\nb: x\n", r##"{"a": "one two\nthree", "b": "x"}"##),
    ("- one\n  two\n- - x\n", r##"["one two", ["x"]]"##),
    ("hello\nworld\n", r##""hello world""##),
    ("名前: 值 # 注释\n", r##"{"名前": "值"}"##),
    // Tabs separate tokens within a line: spec example 6.3 (yaml-rust2 agrees, PyYAML refuses).
    ("- foo:\t bar\n- - baz\n  -\tbaz\n", r##"[{"foo": "bar"}, ["baz", "baz"]]"##),
    ("a: [1,\t2]\n", r##"{"a": [1, 2]}"##),
    // Quoted scalars.
    ("a: 'it''s'\nb: '#not a comment'\nc: ''\n", r##"{"a": "it's", "b": "#not a comment", "c": ""}"##),
    (
        r##"a: "q\"b\\s\n\tt"
b: "\u00e9\x41\U0001F600"
c: "\/\0\ \_"
"##,
        r##"{"a": "q\"b\\s\n\tt", "b": "éA😀", "c": "/\u0000 \u00a0"}"##,
    ),
    ("a: \"1\"\nb: 'true'\nc: \"null\"\nd: '~'\n", r##"{"a": "1", "b": "true", "c": "null", "d": "~"}"##),
    ("a: \"one\n  two\n\n  three\"\nb: 'x  \n  y'\n", r##"{"a": "one two\nthree", "b": "x y"}"##),
    ("a: \"one \\\n   two\"\nb: \"keep\\t\n  z\"\n", r##"{"a": "one two", "b": "keep\t z"}"##),
    // Flow collections.
    (
        "a: [a, \"b\", 3, 'c d', true, ~, 1.5, a b]\n",
        r##"{"a": ["a", "b", 3, "c d", true, null, 1.5, "a b"]}"##,
    ),
    ("a: {x: 1, y: [p, q], z: {}}\nb: []\n", r##"{"a": {"x": 1, "y": ["p", "q"], "z": {}}, "b": []}"##),
    ("a: [\n  1,\n  2, # two\n  3,\n]\nb: {\n  x: 1,\n  y: 2\n}\n", r##"{"a": [1, 2, 3], "b": {"x": 1, "y": 2}}"##),
    ("a: {x, y: }\n", r##"{"a": {"x": null, "y": null}}"##),
    ("a: [x: 1, y]\n", r##"{"a": [{"x": 1}, "y"]}"##),
    (r##"{"a":1, "b":[true,null], "c": {"d": "e"}}"##, r##"{"a": 1, "b": [true, null], "c": {"d": "e"}}"##),
    ("a: {u: http://h:1/p, v: a:b}\n", r##"{"a": {"u": "http://h:1/p", "v": "a:b"}}"##),
    ("a: [1, [2, [3, {b: [4]}]]]\n", r##"{"a": [1, [2, [3, {"b": [4]}]]]}"##),
    ("x:\n  y: { a: 1, b: { c: [d] } }\n", r##"{"x": {"y": {"a": 1, "b": {"c": ["d"]}}}}"##),
    // Comments and document markers.
    ("# head\n---\n# c\na: 1 # x\n# tail\n...\n# after\n", r##"{"a": 1}"##),
    ("--- text\n", r##""text""##),
    ("---\n- a\n", r##"["a"]"##),
    ("", "null"),
    ("# only a comment\n\n", "null"),
    // Block scalars.
    ("a: |\n  line1\n  line2\nb: x\n", r##"{"a": "line1\nline2\n", "b": "x"}"##),
    ("a: |-\n  x\n\nb: 1\n", r##"{"a": "x", "b": 1}"##),
    ("a: |+\n  x\n\n\nb: 1\n", r##"{"a": "x\n\n\n", "b": 1}"##),
    ("a: >\n  one\n  two\n\n  three\n", r##"{"a": "one two\nthree\n"}"##),
    ("a: >-\n  one\n    indented\n  two\n", r##"{"a": "one\n  indented\ntwo"}"##),
    ("a: |2\n    two extra\n  base\n", r##"{"a": "  two extra\nbase\n"}"##),
    ("a: |-2\n    x\n", r##"{"a": "  x"}"##),
    ("a: |\n  # not a comment\n  x\n# a comment\nb: 1\n", r##"{"a": "# not a comment\nx\n", "b": 1}"##),
    ("- |\n  a\n- >\n  b\n  c\n", r##"["a\n", "b c\n"]"##),
    ("a: |\nb: 1\n", r##"{"a": "", "b": 1}"##),
    ("a: |\n  x\n\n  y\n", r##"{"a": "x\n\ny\n"}"##),
    ("a: >\n\n  leading\n", r##"{"a": "\nleading\n"}"##),
    ("a: | # comment\n   three\n   spaces\n", r##"{"a": "three\nspaces\n"}"##),
    // Without a final line break (PyYAML agrees; yaml-rust2 adds one).
    ("a: |\n  x\n  ", r##"{"a": "x\n"}"##),
    ("a: |\n  no final break", r##"{"a": "no final break"}"##),
    (
        ">\n\n folded\n line\n\n next\n line\n   * bullet\n\n   * list\n   * lines\n\n last\n line\n\n# Comment\n",
        r##""\nfolded line\nnext line\n  * bullet\n\n  * list\n  * lines\n\nlast line\n""##,
    ),
    // Keys (PyYAML agrees but for `1` and `true`, one key in Python).
    (
        "1: a\ntrue: b\n0x10: c\n\"quoted key\": d\n'single': e\nkey with spaces: f\n\"@type\": g\n",
        r##"{"1": "a", "true": "b", "16": "c", "quoted key": "d", "single": "e", "key with spaces": "f", "@type": "g"}"##,
    ),
];

#[test]
fn every_case_reads_as_real_yaml_does() {
    for (yaml, json) in CASES {
        let expected: Value = serde_json::from_str(json).unwrap();
        let parsed = parse(yaml).unwrap_or_else(|err| panic!("{yaml:?}: {err}"));
        assert_eq!(parsed, expected, "{yaml:?}");
    }
}
