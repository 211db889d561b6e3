//! The body scanner and rewriter (`rewrite_model`, `body_facts`): generated JSON objects with
//! one or more top-level `model` members (escaped spellings, near misses, any whitespace), then
//! arbitrary and mutated bodies, judged against serde_json.

use std::fmt;

use ai_load_balancer::rewrite::{body_facts, rewrite_model, Skip};
use proptest::prelude::*;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::mutate::{any_bytes, mutated, token_soup};
use crate::runner::config;
use crate::values::{json_value, text};

/// `model` as clients may spell it: raw key text, between the quotes.
const MODEL_SPELLINGS: &[&str] = &[
    "model",
    "mod\\u0065l",
    "\\u006D\\u006f\\u0064\\u0065\\u006c",
];

/// Near misses, and the other members `body_facts` reads (`stream` escaped too).
#[rustfmt::skip]
const OTHER_KEYS: &[&str] = &[
    "Model", "models", "mode", "model\\u0000", "\\\"model\\\"", "mod\\/el", "stream",
    "str\\u0065am", "messages", "prompt", "input",
];

/// Fragments that mean something to a JSON scanner, for mutations and token soup.
#[rustfmt::skip]
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b"\\u", b"\\u00", b"\\ud800",
    b"\"model\"", b"\"model\":", b"\"mod\\u0065l\"", b"true", b"false", b"null", b"-", b"0",
    b"1e", b"1.5", b"E+9", b" ", b"\t", b"\r\n", b"\x00", b"\x1f", b"\x7f", b"\xc3\xa9",
    b"\xc3", b"\xff", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80",
];

fn blank() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,2}"
}

/// One top-level member as written: raw key, whitespace around key, colon and value.
#[derive(Debug, Clone)]
struct Member {
    raw_key: String,
    value: String,
    blanks: [String; 4],
}

fn member(key: impl Strategy<Value = String>) -> impl Strategy<Value = Member> {
    let blanks = [blank(), blank(), blank(), blank()];
    (key, json_value(), any::<bool>(), blanks).prop_map(|(raw_key, value, pretty, blanks)| {
        let value = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        };
        Member {
            raw_key,
            value: value.unwrap(),
            blanks,
        }
    })
}

fn model_key() -> impl Strategy<Value = String> {
    prop::sample::select(MODEL_SPELLINGS).prop_map(str::to_string)
}

fn other_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(OTHER_KEYS).prop_map(str::to_string),
        // Any key, as serde_json escapes it.
        text().prop_map(|key| {
            let quoted = serde_json::to_string(&key).unwrap();
            quoted[1..quoted.len() - 1].to_string()
        }),
    ]
}

/// An object body with 1 to 3 model members among up to 5 others, and the byte ranges of the
/// model values.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Vec<u8>,
    model_spans: Vec<std::ops::Range<usize>>,
}

pub fn body_with_models() -> impl Strategy<Value = Body> {
    let members = (
        prop::collection::vec(member(model_key()), 1..4),
        prop::collection::vec(member(other_key()), 0..6),
    )
        .prop_flat_map(|(models, others)| Just([models, others].concat()).prop_shuffle());
    (members, blank(), blank(), blank())
        .prop_map(|(members, before, inside, after)| write_body(&members, &before, &inside, &after))
}

fn write_body(members: &[Member], before: &str, inside: &str, after: &str) -> Body {
    let mut text = format!("{before}{{{inside}");
    let mut model_spans = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let [before_key, after_key, after_colon, after_value] = &member.blanks;
        if index > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "{before_key}\"{}\"{after_key}:{after_colon}",
            member.raw_key
        ));
        let start = text.len();
        text.push_str(&member.value);
        let key: String = serde_json::from_str(&format!("\"{}\"", member.raw_key)).unwrap();
        if key == "model" {
            model_spans.push(start..text.len());
        }
        text.push_str(after_value);
    }
    text.push('}');
    text.push_str(after);
    Body {
        bytes: text.into_bytes(),
        model_spans,
    }
}

/// A JSON object's members in order, duplicates kept (serde_json's `Map` keeps the last).
#[derive(Debug, PartialEq)]
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

fn members(body: &[u8]) -> Members {
    serde_json::from_slice(body).unwrap()
}

/// What `body_facts` must say the model is: the string every model member agrees on.
fn agreed_model(members: &Members) -> Option<String> {
    let mut models = members.0.iter().filter(|(key, _)| key == "model");
    let first = models.next()?.1.as_str()?.to_string();
    models
        .all(|(_, value)| value.as_str() == Some(&first))
        .then_some(first)
}

/// The checks any input gets: no panic, the scanner and serde_json agree on what is JSON, and
/// a rewritten body is JSON with the same members whenever the original was.
fn check_any_body(body: &[u8]) {
    let rewritten = rewrite_model(body, "new\"model\u{1}");
    let facts = body_facts(body, 64);
    // Both run the same validation.
    match (&rewritten, &facts) {
        (Err(Skip::NoModel), Ok(facts)) => assert_eq!(facts.model, None),
        (Ok(_), Ok(_)) => {}
        (Err(skip), Err(same)) => assert_eq!(skip, same),
        other => panic!("rewrite and facts disagree: {other:?}"),
    }
    // serde_json is at least as strict (it also refuses lone surrogates, numbers out of f64
    // range and nesting past 128); what it reads, the scanner must read.
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        assert!(
            !matches!(rewritten, Err(Skip::NotUtf8 | Skip::NotJson { .. })),
            "serde_json reads it: {rewritten:?}"
        );
        assert_eq!(
            value.is_object(),
            !matches!(rewritten, Err(Skip::NotAnObject))
        );
        if let Ok(out) = &rewritten {
            let expected: Vec<_> = members(body)
                .0
                .into_iter()
                .map(|(key, value)| match key.as_str() {
                    "model" => (key, Value::String("new\"model\u{1}".into())),
                    _ => (key, value),
                })
                .collect();
            assert_eq!(members(out), Members(expected));
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_model_value_is_replaced_and_nothing_else(body in body_with_models(), new in any::<String>()) {
        let out = rewrite_model(&body.bytes, &new).unwrap();
        // The bytes outside the model values are the body's, around one replacement text.
        let removed: usize = body.model_spans.iter().map(|span| span.len()).sum();
        let count = body.model_spans.len();
        let replacement_len = (out.len() + removed - body.bytes.len()) / count;
        let first = body.model_spans[0].start;
        let replacement = &out[first..first + replacement_len];
        prop_assert_eq!(serde_json::from_slice::<String>(replacement).unwrap(), new.clone());
        let mut expected = Vec::new();
        let mut copied = 0;
        for span in &body.model_spans {
            expected.extend_from_slice(&body.bytes[copied..span.start]);
            expected.extend_from_slice(replacement);
            copied = span.end;
        }
        expected.extend_from_slice(&body.bytes[copied..]);
        prop_assert_eq!(&out, &expected);
        // As JSON: the same members in the same order, every model the new name.
        let before = members(&body.bytes);
        prop_assert_eq!(before.0.iter().filter(|(key, _)| key == "model").count(), count);
        let after = members(&out);
        prop_assert_eq!(after.0.len(), before.0.len());
        for ((key, value), (old_key, old_value)) in after.0.iter().zip(&before.0) {
            prop_assert_eq!(key, old_key);
            if key == "model" {
                prop_assert_eq!(value, &Value::String(new.clone()));
            } else {
                prop_assert_eq!(value, old_value);
            }
        }
        prop_assert_eq!(body_facts(&out, 64).unwrap().model, Some(new));
    }

    #[test]
    fn facts_read_the_members_serde_json_reads(body in body_with_models(), prefix_bytes in 0..64usize) {
        let facts = body_facts(&body.bytes, prefix_bytes).unwrap();
        let members = members(&body.bytes);
        prop_assert_eq!(facts.model, agreed_model(&members));
        let stream = members.0.iter().rev().find(|(key, _)| key == "stream");
        prop_assert_eq!(facts.streaming, stream.is_some_and(|(_, value)| value == &Value::Bool(true)));
        let has_prompt = members
            .0
            .iter()
            .any(|(key, _)| matches!(key.as_str(), "messages" | "prompt" | "input"));
        prop_assert_eq!(facts.prefix_hash.is_some(), has_prompt && prefix_bytes > 0);
    }

    #[test]
    fn an_object_without_a_model_is_left_alone(
        others in prop::collection::vec(member(other_key()), 0..6),
        blanks in (blank(), blank(), blank()),
    ) {
        let body = write_body(&others, &blanks.0, &blanks.1, &blanks.2);
        prop_assume!(body.model_spans.is_empty());
        prop_assert_eq!(rewrite_model(&body.bytes, "m"), Err(Skip::NoModel));
        prop_assert_eq!(body_facts(&body.bytes, 64).unwrap().model, None);
    }

    #[test]
    fn mutated_bodies_are_judged_like_serde_json(
        body in mutated(body_with_models().prop_map(|body| body.bytes), JSON_TOKENS),
    ) {
        check_any_body(&body);
    }

    #[test]
    fn arbitrary_bytes_are_judged_like_serde_json(body in any_bytes()) {
        check_any_body(&body);
    }

    #[test]
    fn json_token_soup_is_judged_like_serde_json(body in token_soup(JSON_TOKENS)) {
        check_any_body(&body);
    }
}
