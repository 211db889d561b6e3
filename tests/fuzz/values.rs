//! Arbitrary JSON values and the strings inside them.

use proptest::prelude::*;
use serde_json::{Number, Value};

/// Short words, any Unicode text, and strings that look like JSON or hold what must be escaped.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        any::<String>(),
        prop::sample::select(vec![
            "model",
            "\"model\":\"x\"",
            "\\",
            "\u{0}\u{1f}",
            "é\u{1F600}",
            "a: b",
            "- x",
            "#"
        ])
        .prop_map(str::to_string),
    ]
}

/// Any JSON value up to four levels deep, numbers of every kind included.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
