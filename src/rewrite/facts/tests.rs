#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn facts(body: &str, prefix_bytes: usize) -> BodyFacts {
    body_facts(body.as_bytes(), prefix_bytes)
        .unwrap_or_else(|skip| panic!("{body}: expected facts, got {skip:?}"))
}

fn model(body: &str) -> Option<String> {
    facts(body, 64).model
}

fn streaming(body: &str) -> bool {
    facts(body, 64).streaming
}

fn hash(body: &str, prefix_bytes: usize) -> Option<u64> {
    facts(body, prefix_bytes).prefix_hash
}

#[test]
fn plain_chat_body() {
    let body =
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"Be brief."}]}"#;
    assert_eq!(
        facts(body, 4096),
        BodyFacts {
            model: Some("gpt-4o".into()),
            streaming: true,
            // FNV-1a 64 of the whole `messages` text, as any other implementation computes it.
            prefix_hash: Some(0x0659_d3f8_a465_4b60),
            session_hash: None,
        }
    );
}

#[test]
fn model_decoded_through_escapes() {
    assert_eq!(
        model(r#"{"model":"qwen\u002dmax\/v2 \"x\" \\ \t\ud83e\udd80\u00e9"}"#).as_deref(),
        Some("qwen-max/v2 \"x\" \\ \t🦀é")
    );
    assert_eq!(
        model(r#"{"model":"通义千问-🤖"}"#).as_deref(),
        Some("通义千问-🤖")
    );
    assert_eq!(model(r#"{"model":""}"#).as_deref(), Some(""));
    // The key is matched after unescaping too, as by rewrite_model.
    assert_eq!(model(r#"{"mod\u0065l":"a"}"#).as_deref(), Some("a"));
}

#[test]
fn model_that_is_not_a_string_is_none() {
    for value in ["42", "null", "true", "[\"a\"]", r#"{"name":"a"}"#] {
        assert_eq!(model(&format!(r#"{{"model":{value}}}"#)), None, "{value}");
    }
    // Lone surrogates are valid JSON but no Rust string can hold them.
    for value in [
        r#""\ud800""#,
        r#""a\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800x""#,
    ] {
        assert_eq!(model(&format!(r#"{{"model":{value}}}"#)), None, "{value}");
    }
}

#[test]
fn model_absent_or_nested_only_is_none() {
    assert_eq!(model(r#"{"messages":[]}"#), None);
    assert_eq!(
        model(r#"{"metadata":{"model":"a"},"tools":[{"model":"b"}]}"#),
        None
    );
    assert_eq!(model("{}"), None);
}

#[test]
fn duplicate_models_must_agree() {
    assert_eq!(
        model(r#"{"model":"a","n":1,"model":"a"}"#).as_deref(),
        Some("a")
    );
    // Agreement is on the decoded name, whatever the spelling.
    assert_eq!(
        model(r#"{"model":"a","model":"\u0061"}"#).as_deref(),
        Some("a")
    );
    assert_eq!(model(r#"{"model":"a","model":"b"}"#), None);
    assert_eq!(model(r#"{"model":"a","model":"a","model":"b"}"#), None);
    assert_eq!(model(r#"{"model":"a","model":1}"#), None);
    assert_eq!(model(r#"{"model":null,"model":"a"}"#), None);
}

#[test]
fn stream_only_when_top_level_true() {
    assert!(streaming(r#"{"model":"a","stream":true}"#));
    assert!(streaming(r#"{"stream" :  true , "model":"a"}"#));
    assert!(!streaming(r#"{"model":"a","stream":false}"#));
    assert!(!streaming(r#"{"model":"a"}"#));
    for value in [r#""true""#, "1", "null", "[true]", r#"{"stream":true}"#] {
        assert!(!streaming(&format!(r#"{{"stream":{value}}}"#)), "{value}");
    }
    assert!(!streaming(r#"{"options":{"stream":true}}"#));
}

#[test]
fn duplicate_stream_last_one_counts() {
    assert!(streaming(r#"{"stream":false,"stream":true}"#));
    assert!(!streaming(r#"{"stream":true,"stream":false}"#));
}

#[test]
fn prefix_hash_equal_when_first_bytes_of_messages_match() {
    let system = r#"{"role":"system","content":"You are a travel agent. Answer in French."}"#;
    let user = r#"{"role":"user","content":"Lyon?"}"#;
    let first = format!(r#"{{"model":"a","messages":[{system},{user}]}}"#);
    // Other members, their order and the spacing around the colon do not count.
    let grown = format!(
        r#"{{"stream":true, "messages" : [{system},{user},{{"role":"assistant","content":"Oui."}}],"model":"b"}}"#
    );
    // Both messages values start with `[`, system, `,`, user.
    let shared = 1 + system.len() + 1 + user.len();
    assert_eq!(hash(&first, shared), hash(&grown, shared));
    assert!(hash(&first, shared).is_some());
    assert_eq!(
        hash(&first, 1 + system.len()),
        hash(&grown, 1 + system.len())
    );
    // One byte further the values differ (`]` against `,`).
    assert_ne!(hash(&first, shared + 1), hash(&grown, shared + 1));
}

#[test]
fn prefix_hash_differs_when_first_bytes_differ() {
    let a = r#"{"messages":[{"role":"system","content":"You are a travel agent."}]}"#;
    let b = r#"{"messages":[{"role":"system","content":"You are a tax adviser."}]}"#;
    assert_ne!(hash(a, 4096), hash(b, 4096));
    // The first 40 bytes of both values are `[{"role":"system","content":"You are a t`.
    assert_eq!(hash(a, 40), hash(b, 40));
    assert_ne!(hash(a, 41), hash(b, 41));
}

#[test]
fn prefix_hash_is_fnv1a_64_of_the_raw_value_text() {
    // Reference values from the FNV specification's test vectors.
    assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    // The value's text includes its quotes; a prefix longer than the value takes all of it.
    assert_eq!(
        hash(r#"{"prompt":"foobar"}"#, 8),
        Some(0x6477_f76a_9c2f_ba7e)
    );
    assert_eq!(
        hash(r#"{"prompt":"foobar"}"#, 1000),
        Some(0x6477_f76a_9c2f_ba7e)
    );
    assert_eq!(
        hash(r#"{"prompt":"foobar"}"#, 7),
        Some(0x622f_644c_298d_f0a8)
    );
    // Raw bytes: another spelling of the same text is another prompt.
    assert_ne!(
        hash(r#"{"prompt":"foobar"}"#, 8),
        hash(r#"{"prompt":"fo\u006fbar"}"#, 8)
    );
}

#[test]
fn prefix_hash_falls_back_to_prompt_then_input() {
    let value = r#"["Once upon a time"]"#;
    let want = Some(fnv1a_64(value.as_bytes()));
    assert_eq!(
        hash(&format!(r#"{{"model":"a","prompt":{value}}}"#), 64),
        want
    );
    assert_eq!(
        hash(&format!(r#"{{"model":"a","input":{value}}}"#), 64),
        want
    );
    // messages wins over prompt and input, and prompt over input, wherever they appear.
    assert_eq!(
        hash(
            &format!(r#"{{"input":"x","prompt":"y","messages":{value}}}"#),
            64
        ),
        want
    );
    assert_eq!(
        hash(&format!(r#"{{"input":"x","prompt":{value}}}"#), 64),
        want
    );
    // Duplicates: the last one counts.
    assert_eq!(
        hash(&format!(r#"{{"prompt":"x","prompt":{value}}}"#), 64),
        want
    );
}

#[test]
fn prefix_hash_none_without_prompt_or_length() {
    assert_eq!(hash(r#"{"model":"a","stream":true}"#, 64), None);
    assert_eq!(
        hash(r#"{"model":"a","metadata":{"messages":[]}}"#, 64),
        None
    );
    assert_eq!(hash(r#"{"model":"a","messages":[]}"#, 0), None);
    // Any JSON value is hashed, even one no API accepts.
    assert!(hash(r#"{"messages":null}"#, 64).is_some());
}

#[test]
fn invalid_json_is_refused() {
    for body in [
        "",
        "{",
        r#"{"model":"a",}"#,
        r#"{"model":"a"} x"#,
        r#"{"model":"a\q"}"#,
        r#"{"model":tru}"#,
        r#"{"messages":[1,2}"#,
        r#"[1,]"#,
    ] {
        assert!(
            matches!(body_facts(body.as_bytes(), 64), Err(Skip::NotJson { .. })),
            "{body}"
        );
    }
    assert_eq!(body_facts(b"{\"model\":\"\xff\"}", 64), Err(Skip::NotUtf8));
}

#[test]
fn non_object_is_refused() {
    for body in [
        "[]",
        r#"[{"model":"a"}]"#,
        r#""model""#,
        "1",
        "null",
        " true ",
    ] {
        assert_eq!(
            body_facts(body.as_bytes(), 64),
            Err(Skip::NotAnObject),
            "{body}"
        );
    }
}

fn session_hash(body: &str, field: &str) -> Option<u64> {
    body_facts_with_session(body.as_bytes(), 0, Some(field))
        .unwrap()
        .session_hash
}

#[test]
fn session_key_is_the_hash_of_a_top_level_string_as_written() {
    let plain = session_hash(r#"{"model":"m","user":"alice-42"}"#, "user");
    // FNV-1a 64 of the bytes between the quotes: the same value sent in a header hashes the same.
    assert_eq!(plain, Some(fnv1a_64(b"alice-42")));
    let escaped = session_hash(r#"{"user":"alice\u002d42","model":"m"}"#, "user");
    assert_eq!(escaped, Some(fnv1a_64(br"alice\u002d42")), "not decoded");
    let other = session_hash(r#"{"model":"m","user":"bob"}"#, "user");
    assert!(other.is_some() && other != plain);
    // The last duplicate counts, as for the other members.
    assert_eq!(
        session_hash(r#"{"user":"bob","user":"alice-42"}"#, "user"),
        plain
    );
}

#[test]
fn no_session_key_without_a_top_level_nonempty_string() {
    for body in [
        r#"{"model":"m"}"#,
        r#"{"user":42}"#,
        r#"{"user":null}"#,
        r#"{"user":""}"#,
        r#"{"user":{"user":"alice"}}"#,
        r#"{"metadata":{"user":"alice"}}"#,
    ] {
        assert_eq!(session_hash(body, "user"), None, "{body}");
    }
    let facts = body_facts(br#"{"user":"alice"}"#, 0).unwrap();
    assert_eq!(facts.session_hash, None, "no field asked for");
}

#[test]
fn reading_the_session_field_leaves_the_other_facts_alone() {
    let body = br#"{"model":"m","stream":true,"user":"alice","messages":[1]}"#;
    let with = body_facts_with_session(body, 64, Some("user")).unwrap();
    let without = body_facts(body, 64).unwrap();
    assert!(with.session_hash.is_some());
    assert_eq!(
        BodyFacts {
            session_hash: None,
            ..with
        },
        without
    );
    assert!(is_fact_key("model") && is_fact_key("input") && !is_fact_key("user"));
}
