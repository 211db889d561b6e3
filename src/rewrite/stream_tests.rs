#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// The body fed to a fresh [`StreamRewrite`] in pieces cut at `cuts` (ascending), finished.
fn streamed(body: &[u8], model: &str, cuts: &[usize]) -> (Vec<u8>, StreamRewrite) {
    let mut rewrite = StreamRewrite::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        rewrite.feed(&body[from..cut], model, &mut out);
        from = cut;
    }
    rewrite.finish(&mut out);
    (out, rewrite)
}

/// What the stream must give: `rewrite_model`'s output for a rewritable body, the body itself
/// for one that fails before any `model` value went out; otherwise (malformed after it) the
/// one-chunk stream's output, the same for every split.
fn check_every_split(body: &[u8], model: &str) {
    let (whole, rewrite) = streamed(body, model, &[]);
    let text = String::from_utf8_lossy(body);
    match rewrite_model(body, model) {
        Ok(expected) => assert_eq!(whole, expected, "{text}"),
        Err(_) if rewrite.rewritten() == 0 => assert_eq!(whole, body, "{text}"),
        Err(_) => {}
    }
    for cut in 0..=body.len() {
        assert_eq!(
            streamed(body, model, &[cut]).0,
            whole,
            "{text} cut at {cut}"
        );
    }
    if body.len() <= 80 {
        for first in 0..=body.len() {
            for second in first..=body.len() {
                let cuts = [first, second];
                assert_eq!(
                    streamed(body, model, &cuts).0,
                    whole,
                    "{text} cut at {cuts:?}"
                );
            }
        }
    }
    let every_byte: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        streamed(body, model, &every_byte).0,
        whole,
        "{text} byte by byte"
    );
}

const BODIES: &[&str] = &[
    r#"{"model":"auto","stream":true}"#,
    r#"{ "messages" : [] ,  "model"  :  "auto" }"#,
    "{\n\t\"model\"\r\n:\n\t\"auto\"\n,\"n\":1}",
    " \r\n\t{\"model\":1}\n\n ",
    r#"{"messages":[{"role":"user","content":"\"model\":\"auto\" and model"}],"model":"a"}"#,
    r#"{"content":"say \"model\":\"x\"","model":"a","tail":"\\"}"#,
    r#"{"x":"model","model":"model"}"#,
    r#"{"content":"\"model\":\"a\""}"#,
    r#"{"a":{"model":"x"},"b":[{"model":"y"}],"model":"z"}"#,
    r#"{"mod\u0065l":"a","\u006d\u006F\u0064\u0065\u006c":"b","m\u006fdel":3}"#,
    r#"{"Model":1,"models":2,"mode":3,"model ":4,"mod\/el":5,"model\u0000":6,"\"model\"":7}"#,
    r#"{"model":null,"n":[-0,0.5,1e+2,-3.25E-4,10]}"#,
    r#"{"model":true}"#,
    r#"{"model":false,"x":"y"}"#,
    r#"{"model":-12.5e3}"#,
    r#"{"model":0}"#,
    r#"{"model":{"a":[1,{"model":"x"}]},"z":[]}"#,
    r#"{"model":[]}"#,
    r#"{"model":"a","model":"b","x":1,"model":"c"}"#,
    "{\"model\":\"caf\u{e9} \u{4f60}\u{597d} \u{1f680}\",\"m\":\"\u{1f680}\"}",
    r#"{"model":"\ud800\udc00\n\t\/\b\f\r\"\\"}"#,
    "{}",
    "{ }",
    "[]",
    r#"["model","auto"]"#,
    r#""model""#,
    "42",
    "",
    "   ",
    // Malformed before the model: untouched.
    r#"{"a":tru,"model":"x"}"#,
    r#"{"a":01,"model":"x"}"#,
    r#"{"a":"\x","model":"x"}"#,
    "{\"a\":\"\u{1}\",\"model\":\"x\"}",
    r#"{"model" "x"}"#,
    r#"{"model":"x",}"#,
    r#"{"model":}"#,
    r#"{"model":"x"#,
    r#"{"mod"#,
    r#"{"model":12"#,
    // Malformed after the model went out: its rewrite stays, the rest is untouched.
    r#"{"model":"x","a":tru}"#,
    r#"{"model":"x"} trailing"#,
    r#"{"model":"x","a":[1,2}"#,
    r#"{"model":"x","a":"unterminated"#,
];

#[test]
fn every_split_gives_the_whole_body_rewrite() {
    for body in BODIES {
        for model in ["gpt-4o", "q\"\\\u{1}", "模型", ""] {
            check_every_split(body.as_bytes(), model);
        }
    }
}

#[test]
fn invalid_utf8_before_the_model_leaves_the_body_untouched() {
    for body in [
        &b"{\"a\":\"\xff\",\"model\":\"x\"}"[..],
        b"{\"a\":\"\xc3\",\"model\":\"x\"}",
        // A sequence cut short by an ASCII byte, whichever chunks they fall in.
        b"{\"a\":\"\xc3a\",\"model\":\"x\"}",
        b"{\"a\":\"\xe4\xb8a\",\"model\":\"x\"}",
        b"{\"a\":\"\xed\xa0\x80\",\"model\":\"x\"}",
        b"{\"a\":\"\xe0\x80\x80\",\"model\":\"x\"}",
        b"{\"a\":\"\xf4\x90\x80\x80\",\"model\":\"x\"}",
        b"{\"model\":\"\xc3\"}",
        b"\xef\xbb\xbf{\"model\":\"x\"}",
    ] {
        check_every_split(body, "m");
        assert_eq!(streamed(body, "m", &[]).0, body);
    }
    // Valid sequences split anywhere are fine.
    check_every_split(
        "{\"a\":\"\u{10ffff}\u{800}\u{80}\",\"model\":\"x\"}".as_bytes(),
        "m",
    );
}

#[test]
fn a_body_malformed_after_its_model_keeps_the_rewritten_prefix() {
    let (out, rewrite) = streamed(br#"{"model":"auto","a":tru}"#, "gpt-4o", &[]);
    assert_eq!(out, br#"{"model":"gpt-4o","a":tru}"#);
    assert_eq!(rewrite.rewritten(), 1);
    assert_eq!(
        rewrite.skipped(),
        Some(Skip::NotJson {
            offset: 23,
            reason: "invalid literal"
        })
    );
    // Cut short inside a later key: the held key goes out as it came.
    let (out, _) = streamed(br#"{"model":"auto","mod"#, "x", &[17]);
    assert_eq!(out, br#"{"model":"x","mod"#);
}

#[test]
fn what_is_skipped_is_said() {
    let skipped = |body: &str| streamed(body.as_bytes(), "m", &[]).1.skipped();
    assert_eq!(skipped(r#"{"model":"a"}"#), None);
    assert_eq!(skipped(r#"{"a":"b"}"#), Some(Skip::NoModel));
    assert_eq!(skipped("[]"), Some(Skip::NotAnObject));
    assert_eq!(
        skipped(r#"{"a":"#),
        Some(Skip::NotJson {
            offset: 5,
            reason: "unexpected end of input"
        })
    );
    assert_eq!(
        skipped("{\"a\":\"\u{1}\"}")
            .map(|s| s.to_string())
            .as_deref(),
        Some("not JSON at byte 6: control character in string")
    );
}

#[test]
fn past_the_member_limit_the_rest_is_untouched() {
    let members = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("\"model\":{i}")).collect();
        format!("{{{}}}", list.join(","))
    };
    let at_limit = members(MAX_MODEL_MEMBERS);
    check_every_split(at_limit.as_bytes(), "m");
    assert_eq!(
        streamed(at_limit.as_bytes(), "m", &[]).1.rewritten(),
        MAX_MODEL_MEMBERS
    );

    let over = members(MAX_MODEL_MEMBERS + 2);
    let (out, rewrite) = streamed(over.as_bytes(), "m", &[]);
    let mut expected: Vec<String> = vec!["\"model\":\"m\"".into(); MAX_MODEL_MEMBERS];
    expected.extend((MAX_MODEL_MEMBERS..MAX_MODEL_MEMBERS + 2).map(|i| format!("\"model\":{i}")));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{{{}}}", expected.join(","))
    );
    assert_eq!(
        rewrite.skipped(),
        Some(Skip::TooManyModels {
            count: MAX_MODEL_MEMBERS + 1
        })
    );
    check_every_split(over.as_bytes(), "m");
}

#[test]
fn a_model_value_too_long_to_hold_gives_the_rewrite_up() {
    let fits = format!(
        r#"{{"model":"{}","a":1}}"#,
        "x".repeat(MAX_HELD_MODEL_BYTES - 2)
    );
    let too_long = format!(
        r#"{{"model":"{}","a":1}}"#,
        "x".repeat(MAX_HELD_MODEL_BYTES - 1)
    );
    for cuts in [
        vec![],
        vec![9],
        vec![20, 3000, 4100],
        (1..4100).step_by(7).collect(),
    ] {
        let (out, rewrite) = streamed(fits.as_bytes(), "m", &cuts);
        assert_eq!(out, br#"{"model":"m","a":1}"#);
        assert_eq!(rewrite.rewritten(), 1);
        let (out, rewrite) = streamed(too_long.as_bytes(), "m", &cuts);
        assert_eq!(out, too_long.as_bytes(), "untouched, cut at {cuts:?}");
        assert!(matches!(rewrite.skipped(), Some(Skip::ModelTooLong { .. })));
    }
    // An object value too.
    let object = format!(
        r#"{{"model":{{"k":"{}"}}}}"#,
        "y".repeat(MAX_HELD_MODEL_BYTES)
    );
    assert_eq!(
        streamed(object.as_bytes(), "m", &[100]).0,
        object.as_bytes()
    );
}

#[test]
fn long_keys_and_values_are_not_held() {
    let key = "k".repeat(10_000);
    let text = "t\\\"".repeat(100_000);
    let body = format!(r#"{{"{key}":"{text}","model":"auto","{key}":[{{"model":"{text}"}}]}}"#);
    let mut rewrite = StreamRewrite::new();
    let mut out = Vec::new();
    let mut most_held = 0;
    for chunk in body.as_bytes().chunks(1000) {
        rewrite.feed(chunk, "gpt-4o", &mut out);
        most_held = most_held.max(rewrite.held_bytes());
    }
    rewrite.finish(&mut out);
    assert_eq!(out, rewrite_model(body.as_bytes(), "gpt-4o").unwrap());
    assert!(most_held <= 32, "held {most_held} bytes");
}

#[test]
fn nesting_past_the_limit_is_untouched() {
    let deep = format!(
        r#"{{"model":"a","x":{}{}}}"#,
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    let (out, rewrite) = streamed(deep.as_bytes(), "m", &[]);
    assert!(out.starts_with(br#"{"model":"m","x":[[["#));
    assert_eq!(&out[12..], &deep.as_bytes()[12..]);
    assert!(matches!(
        rewrite.skipped(),
        Some(Skip::NotJson {
            reason: "nesting too deep",
            ..
        })
    ));
    let fits = format!(
        r#"{{"x":{}{},"model":"a"}}"#,
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(
        streamed(fits.as_bytes(), "m", &[700]).0,
        rewrite_model(fits.as_bytes(), "m").unwrap()
    );
}

/// Random edits of valid bodies, split at random: the stream agrees with the whole-body
/// rewrite on every body it can rewrite, and never depends on the split.
#[test]
fn random_edits_and_splits() {
    const SEEDS: [&str; 3] = [
        r#"{"model":"a","messages":[{"role":"user","content":"x\"y\\z \u00e9 中"}],"t":-1.5e3,"b":[true,false,null],"o":{}}"#,
        " {\"n\": [0, -0.25, 1E+2, 3e-4], \"model\" : {\"model\": [\"m\"]}, \"s\": \"\\/\\n\"}\n",
        r#"{"mod\u0065l":null,"a":[[],[{}]],"model":7}"#,
    ];
    const ALPHABET: &[u8] = b"{}[]:,\"\\ \n0123456789-+.eEtrufalsn\x01u\xc3\xa9";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for round in 0..20_000 {
        let mut body = SEEDS[round % SEEDS.len()].as_bytes().to_vec();
        for _ in 0..next(4) {
            let at = next(body.len() + 1);
            let c = ALPHABET[next(ALPHABET.len())];
            match next(3) {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 if at < body.len() => body[at] = c,
                _ => body.insert(at, c),
            }
        }
        let (whole, rewrite) = streamed(&body, "new", &[]);
        match rewrite_model(&body, "new") {
            Ok(expected) => assert_eq!(whole, expected),
            Err(_) if rewrite.rewritten() == 0 => assert_eq!(whole, body),
            Err(_) => {}
        }
        let mut cuts: Vec<usize> = (0..next(5)).map(|_| next(body.len() + 1)).collect();
        cuts.sort_unstable();
        assert_eq!(
            streamed(&body, "new", &cuts).0,
            whole,
            "{} cut at {cuts:?}",
            String::from_utf8_lossy(&body)
        );
    }
}
