#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn rw(body: &str, model: &str) -> Result<String, Skip> {
    rewrite_model(body.as_bytes(), model).map(|out| String::from_utf8(out).unwrap())
}

/// Asserts the exact output bytes.
fn ok(body: &str, model: &str, want: &str) {
    assert_eq!(rw(body, model).as_deref(), Ok(want), "body: {body}");
}

fn not_json(body: &[u8]) -> (usize, &'static str) {
    match rewrite_model(body, "m") {
        Err(Skip::NotJson { offset, reason }) => (offset, reason),
        other => panic!(
            "{:?}: expected NotJson, got {other:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[test]
fn plain() {
    ok(
        r#"{"model":"auto","stream":true}"#,
        "gpt-4o",
        r#"{"model":"gpt-4o","stream":true}"#,
    );
}

#[test]
fn key_order_and_spacing_preserved() {
    ok(
        r#"{ "messages" : [] ,  "model"  :  "auto" }"#,
        "qwen-max",
        r#"{ "messages" : [] ,  "model"  :  "qwen-max" }"#,
    );
    ok(
        "{\n\t\"model\"\r\n:\n\t\"auto\"\n,\"n\":1}",
        "x",
        "{\n\t\"model\"\r\n:\n\t\"x\"\n,\"n\":1}",
    );
}

#[test]
fn whitespace_around_document_kept() {
    ok(
        " \r\n\t{\"model\":1}\n\n ",
        "x",
        " \r\n\t{\"model\":\"x\"}\n\n ",
    );
}

#[test]
fn model_text_inside_strings_untouched() {
    ok(
        r#"{"messages":[{"role":"user","content":"\"model\":\"auto\" and model"}],"model":"a"}"#,
        "b",
        r#"{"messages":[{"role":"user","content":"\"model\":\"auto\" and model"}],"model":"b"}"#,
    );
    ok(
        r#"{"content":"say \"model\":\"x\"","model":"a","tail":"\\"}"#,
        "b",
        r#"{"content":"say \"model\":\"x\"","model":"b","tail":"\\"}"#,
    );
    // A value that is exactly the text "model" is not a key.
    ok(
        r#"{"x":"model","model":"model"}"#,
        "y",
        r#"{"x":"model","model":"y"}"#,
    );
    // Text "model" only in strings, no top-level key.
    assert_eq!(
        rw(r#"{"content":"\"model\":\"a\""}"#, "b"),
        Err(Skip::NoModel)
    );
}

#[test]
fn nested_model_keys_untouched() {
    let body = r#"{"messages":[{"role":"user","model":"m1","content":[{"model":"m2"}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"model":{"type":"string"}}}}],"metadata":{"model":"m3"},"model":"auto","extra":{"model":[{"model":null}]}}"#;
    let want = body.replace(r#""model":"auto""#, r#""model":"new""#);
    ok(body, "new", &want);
    assert_eq!(
        rw(r#"{"metadata":{"model":"a"},"tools":[{"model":1}]}"#, "b"),
        Err(Skip::NoModel)
    );
}

#[test]
fn escaped_key_matches() {
    ok(r#"{"mod\u0065l":"a"}"#, "b", r#"{"mod\u0065l":"b"}"#);
    ok(
        r#"{"\u006D\u006f\u0064\u0065\u006C":"a"}"#,
        "b",
        r#"{"\u006D\u006f\u0064\u0065\u006C":"b"}"#,
    );
}

#[test]
fn near_miss_keys_not_matched() {
    for key in [
        r#""model ""#,
        r#"" model""#,
        r#""Model""#,
        r#""mode""#,
        r#""models""#,
        r#""mod\u0065l\u0000""#,
        r#""mod\nl""#,
        r#""mo\\del""#,
        r#""\u006d\u006f\u0064\u0065\u006c\u006c""#,
        r#""""#,
    ] {
        let body = format!("{{{key}:\"a\"}}");
        assert_eq!(rw(&body, "b"), Err(Skip::NoModel), "{body}");
    }
}

#[test]
fn model_value_of_any_type() {
    for value in [
        "42",
        "-1.5e3",
        "null",
        "true",
        "false",
        r#"{"a":[1,{"model":"x"}]}"#,
        "[]",
        "{}",
        r#"["a",["b"]]"#,
        r#""""#,
    ] {
        ok(
            &format!(r#"{{"a":1, "model": {value} ,"z":[]}}"#),
            "new",
            r#"{"a":1, "model": "new" ,"z":[]}"#,
        );
        // Also as the last member, right before the closing brace.
        ok(
            &format!(r#"{{"model":{value}}}"#),
            "new",
            r#"{"model":"new"}"#,
        );
    }
}

#[test]
fn utf8_around_and_in_model() {
    ok(
        r#"{"messages":[{"content":"你好，世界 🚀"}],"model":"通义千问-🤖","x":"é"}"#,
        "模型🦀",
        r#"{"messages":[{"content":"你好，世界 🚀"}],"model":"模型🦀","x":"é"}"#,
    );
    ok(
        r#"{"模型":"a","model":"🚀"}"#,
        "b",
        r#"{"模型":"a","model":"b"}"#,
    );
}

#[test]
fn huge_values() {
    let content = "lorem \\\"ipsum\\\" 中文 ".repeat(1 << 16);
    assert!(content.len() >= 1 << 20);
    let body =
        format!(r#"{{"messages":[{{"role":"user","content":"{content}"}}],"model":"auto"}}"#);
    let want =
        format!(r#"{{"messages":[{{"role":"user","content":"{content}"}}],"model":"big-one"}}"#);
    ok(&body, "big-one", &want);

    let big_model = "m".repeat(100 * 1024);
    ok(
        &format!(r#"{{"model":"{big_model}","n":1}}"#),
        "small",
        r#"{"model":"small","n":1}"#,
    );
    ok(
        r#"{"model":"small"}"#,
        &big_model,
        &format!(r#"{{"model":"{big_model}"}}"#),
    );
}

#[test]
fn numbers_pass_through_exactly() {
    let nums = "[-0,0,-0.0,1e-7,1E+2,0.5,-12.50e010,123456789012345678901234567890,1.0E-0,9007199254740993]";
    let body = format!(r#"{{"n":{nums},"model":"a","t":-0E5}}"#);
    ok(
        &body,
        "b",
        &format!(r#"{{"n":{nums},"model":"b","t":-0E5}}"#),
    );
}

#[test]
fn every_truncation_is_not_json() {
    let body =
        r#"{"a":[1,-2.5e+3,true,false,null,{}],"model" : "x\"\\\u00e9y","s":"中","o":{"k":[]}}"#;
    for len in 0..body.len() {
        let prefix = &body.as_bytes()[..len];
        if std::str::from_utf8(prefix).is_err() {
            assert_eq!(rewrite_model(prefix, "m"), Err(Skip::NotUtf8));
        } else {
            not_json(prefix);
        }
    }
    assert!(rewrite_model(body.as_bytes(), "m").is_ok());
}

#[test]
fn trailing_garbage() {
    assert_eq!(
        not_json(br#"{"model":"a"}x"#),
        (13, "trailing characters after the JSON value")
    );
    not_json(br#"{"model":"a"} {}"#);
    not_json(br#"{"model":"a"}}"#);
    not_json(b"{\"model\":\"a\"}\x00");
    not_json("{\"model\":\"a\"}\u{a0}".as_bytes()); // NBSP is not JSON whitespace
}

#[test]
fn strict_syntax_errors() {
    let cases: &[(&[u8], usize, &str)] = &[
        (br#"{"model":"a",}"#, 13, "expected a string key"),
        (br#"{"model":[1,]}"#, 12, "expected a value"),
        (br#"{"model":01}"#, 10, "leading zero in number"),
        (br#"{"model":-01}"#, 11, "leading zero in number"),
        (br#"{"model":1.}"#, 11, "expected a digit"),
        (br#"{"model":.5}"#, 9, "expected a value"),
        (br#"{"model":1e}"#, 11, "expected a digit"),
        (br#"{"model":+1}"#, 9, "expected a value"),
        (br#"{"model":-}"#, 10, "expected a digit"),
        (br#"{"model":NaN}"#, 9, "expected a value"),
        (br#"{"model":Infinity}"#, 9, "expected a value"),
        (br#"{"model":nul}"#, 9, "invalid literal"),
        (br#"{"model":True}"#, 9, "expected a value"),
        (br#"{"model":"\x"}"#, 10, "invalid escape"),
        (br#"{"model":"\'"}"#, 10, "invalid escape"),
        (br#"{"model":"\u12G4"}"#, 10, "invalid \\u escape"),
        (br#"{"model":"\u12"}"#, 10, "invalid \\u escape"),
        (b"{\"model\":\"a\nb\"}", 11, "control character in string"),
        (b"{\"model\":\"a\tb\"}", 11, "control character in string"),
        (b"{\"mo\x01del\":\"a\"}", 4, "control character in string"),
        (br#"{"model" "a"}"#, 9, "expected ':'"),
        (br#"{model:"a"}"#, 1, "expected a string key"),
        (br#"{'model':'a'}"#, 1, "expected a string key"),
        (br#"{"model":"a" "b":1}"#, 13, "expected ',' or '}'"),
        (br#"{"a":[1 2],"model":"a"}"#, 8, "expected ',' or ']'"),
        (br#"{"a":[1},"model":"a"}"#, 7, "expected ',' or ']'"),
        (br#"{"a":{"b":1],"model":"a"}"#, 11, "expected ',' or '}'"),
        (br#"{"model":"a"/*c*/}"#, 12, "expected ',' or '}'"),
        (
            br#"// c
{"model":"a"}"#,
            0,
            "expected a value",
        ),
        (b"", 0, "unexpected end of input"),
        (b" \n\t\r ", 5, "unexpected end of input"),
        (b"\x0c{\"model\":1}", 0, "expected a value"), // form feed is not JSON whitespace
    ];
    for &(body, offset, reason) in cases {
        assert_eq!(
            not_json(body),
            (offset, reason),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn lone_surrogates_and_all_escapes_accepted() {
    ok(
        r#"{"s":"\ud800","t":"\uDFFF\ud83d\ude80","e":"\"\\\/\b\f\n\r\t","model":"\ud800"}"#,
        "x",
        r#"{"s":"\ud800","t":"\uDFFF\ud83d\ude80","e":"\"\\\/\b\f\n\r\t","model":"x"}"#,
    );
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        rewrite_model(b"{\"model\":\"\xff\"}", "x"),
        Err(Skip::NotUtf8)
    );
    assert_eq!(
        rewrite_model(b"{\"model\":\"\xe4\xb8\"}", "x"),
        Err(Skip::NotUtf8)
    );
    // Surrogate code point encoded as UTF-8 (CESU) is not UTF-8 either.
    assert_eq!(
        rewrite_model(b"{\"model\":\"\xed\xa0\x80\"}", "x"),
        Err(Skip::NotUtf8)
    );
    // Checked before syntax.
    assert_eq!(rewrite_model(b"\xff", "x"), Err(Skip::NotUtf8));
}

#[test]
fn not_an_object() {
    for body in [r#"[{"model":"a"}]"#, r#""model""#, "1", "null", " [] "] {
        assert_eq!(rw(body, "x"), Err(Skip::NotAnObject), "{body}");
    }
    // A malformed non-object is reported as malformed.
    not_json(br#"[{"model":"a"}"#);
}

#[test]
fn no_model() {
    assert_eq!(rw("{}", "x"), Err(Skip::NoModel));
    assert_eq!(rw(" { } ", "x"), Err(Skip::NoModel));
    assert_eq!(rw(r#"{"messages":[]}"#, "x"), Err(Skip::NoModel));
}

#[test]
fn duplicate_model_all_replaced() {
    ok(
        r#"{"model":"a","x":{"model":"n"},"model" : 2,"mod\u0065l":null}"#,
        "b",
        r#"{"model":"b","x":{"model":"n"},"model" : "b","mod\u0065l":"b"}"#,
    );
}

#[test]
fn a_body_repeating_model_past_the_limit_is_not_rewritten() {
    // `"model":1,` repeated would otherwise grow by a model name per repetition.
    let body = |count: usize| format!("{{{}\"end\":0}}", "\"model\":1,".repeat(count));
    let long_name = "m".repeat(100);
    let at_limit = rewrite_model(body(MAX_MODEL_MEMBERS).as_bytes(), &long_name).unwrap();
    assert_eq!(
        at_limit.len(),
        body(MAX_MODEL_MEMBERS).len() + MAX_MODEL_MEMBERS * 101
    );
    assert_eq!(
        rewrite_model(body(MAX_MODEL_MEMBERS + 1).as_bytes(), &long_name),
        Err(Skip::TooManyModels {
            count: MAX_MODEL_MEMBERS + 1
        })
    );
    assert_eq!(
        rewrite_model(body(100_000).as_bytes(), &long_name),
        Err(Skip::TooManyModels { count: 100_000 })
    );
}

#[test]
fn new_model_is_escaped() {
    ok(
        r#"{"model":"a"}"#,
        "we\"ird\\na\u{1}me\n\u{1f}\u{7f}é",
        &(r#"{"model":"we\"ird\\na\u0001me\u000a\u001f"#.to_owned() + "\u{7f}é\"}"),
    );
    ok(r#"{"model":"a"}"#, "", r#"{"model":""}"#);
    // The output stays valid JSON and decodes back to the name.
    let name = "q\"\\\u{0}\t/\u{2028}🦀";
    let out = rewrite_model(br#"{"model":"a"}"#, name).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["model"], name);
}

#[test]
fn deep_nesting_refused_without_overflow() {
    let deep = "[".repeat(10_000);
    assert_eq!(not_json(deep.as_bytes()), (512, "nesting too deep"));
    let deep_obj = format!(r#"{{"model":"a","x":{}}}"#, "[".repeat(100_000));
    assert_eq!(not_json(deep_obj.as_bytes()).1, "nesting too deep");

    // Exactly MAX_DEPTH levels (the top-level object included) is fine.
    let inner = MAX_DEPTH - 1;
    let ok_body = format!(
        r#"{{"model":"a","x":{}{}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    );
    let want = format!(
        r#"{{"model":"b","x":{}{}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    );
    ok(&ok_body, "b", &want);
    let too_deep = format!(
        r#"{{"model":"a","x":{}{}}}"#,
        "[".repeat(inner + 1),
        "]".repeat(inner + 1)
    );
    assert_eq!(not_json(too_deep.as_bytes()).1, "nesting too deep");
}

#[test]
fn display() {
    assert_eq!(
        not_json_display(br#"{"model" "a"}"#),
        "not JSON at byte 9: expected ':'"
    );
    assert_eq!(Skip::NotUtf8.to_string(), "body is not valid UTF-8");
    assert_eq!(
        Skip::NotAnObject.to_string(),
        "top-level JSON value is not an object"
    );
    assert_eq!(Skip::NoModel.to_string(), "no top-level \"model\" member");
}

fn not_json_display(body: &[u8]) -> String {
    rewrite_model(body, "m").unwrap_err().to_string()
}

#[test]
fn string_scanner_finds_first_special_byte() {
    // Every position of every special byte, across and after the 8-byte chunks, with
    // non-ASCII and near-miss bytes (0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80+) around.
    let filler = "a !#[]\u{7f}é中".as_bytes();
    for len in 0..40 {
        let base: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
        assert_eq!(find_string_special(&base, 0), len);
        for at in 0..len {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut s = base.clone();
                s[at] = special;
                // Put more specials after it to catch borrow false positives.
                if at + 1 < len {
                    s[at + 1] = 0x00;
                }
                assert_eq!(find_string_special(&s, 0), at, "{s:?}");
                if at > 0 {
                    assert_eq!(find_string_special(&s, at), at);
                }
            }
        }
    }
}

#[test]
fn ascii_run_ends_at_a_special_or_non_ascii_byte() {
    // As above, with the ASCII run ending at whichever comes first: a special byte, or a byte
    // of a UTF-8 sequence (lead or continuation), wherever it falls in the 8-byte words.
    let filler = b"a !#[]\x7f~";
    for len in 0..40 {
        let base: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
        assert_eq!(find_ascii_run_end(&base, 0), len);
        for at in 0..len {
            for stop in [b'"', b'\\', 0x00, b'\n', 0x80, 0xc3, 0xe4, 0xff] {
                let mut s = base.clone();
                s[at] = stop;
                if at + 1 < len {
                    s[at + 1] = 0x00;
                }
                assert_eq!(find_ascii_run_end(&s, 0), at, "{s:?}");
                assert_eq!(find_ascii_run_end(&s, at), at);
            }
        }
    }
}

/// Parses output with serde_json: `model` is the new name and every other top-level value is
/// what the input had.
#[test]
fn property_other_members_unchanged() {
    let bodies = [
        r#"{"model":"auto","messages":[{"role":"system","content":"be \"brief\""},{"role":"user","content":"你好 🚀 \u00e9\n"}],"temperature":0.7,"max_tokens":100,"stream":false}"#,
        r#"  {"stream":true,"model":{"a":[1,2,{"model":"x"}]},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}],"n":-0,"x":1E+2,"y":1e-7}  "#,
        "{\n  \"metadata\": {\"model\": \"m\"},\n  \"mod\\u0065l\": null,\n  \"top_p\": 0.5\n}\n",
        r#"{"model":[],"e":{},"a":[[],[{}]],"s":"\/\b\f\r\t"}"#,
    ];
    for body in bodies {
        for name in ["gpt-4o", "q\"\\\u{1}", "模型"] {
            let out = rewrite_model(body.as_bytes(), name).unwrap();
            let before: serde_json::Value = serde_json::from_str(body).unwrap();
            let after: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let (before, after) = (before.as_object().unwrap(), after.as_object().unwrap());
            assert_eq!(before.len(), after.len());
            assert_eq!(after["model"], name, "{body}");
            for (k, v) in before {
                if k != "model" {
                    assert_eq!(after.get(k), Some(v), "{k} in {body}");
                }
            }
        }
    }
}

/// Throughput on ~1 MiB bodies: `cargo test --release --lib rewrite::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let chat = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "The quick brown fox says \\\"hi\\\" 你好. ".repeat(24_000)
    );
    let mut many = String::from(r#"{"model":"auto","messages":["#);
    while many.len() < 1 << 20 {
        many.push_str(
            r#"{"role":"user","content":"short message number 12345","n":[1.5,-2,3e4]},"#,
        );
    }
    many.push_str(r#"{}]}"#);
    let floats = format!(
        r#"{{"model":"auto","input":[{}0]}}"#,
        "-0.0123456789,".repeat(1 << 16)
    );
    for (name, body) in [
        ("one long string", chat),
        ("many small members", many),
        ("floats", floats),
    ] {
        let iters = 200;
        let start = std::time::Instant::now();
        for _ in 0..iters {
            std::hint::black_box(
                rewrite_model(std::hint::black_box(body.as_bytes()), "gpt-4o").unwrap(),
            );
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {} bytes, {:.0} MB/s",
            body.len(),
            (body.len() * iters) as f64 / secs / 1e6
        );
    }
}

/// Deterministic mini-fuzz: random edits of valid bodies must be accepted exactly when
/// serde_json accepts them, and accepted ones must keep every other top-level value.
#[test]
fn differential_against_serde_json() {
    const SEEDS: [&str; 3] = [
        r#"{"model":"a","messages":[{"role":"user","content":"x\"y\\z \u00e9 中"}],"t":-1.5e3,"b":[true,false,null],"o":{}}"#,
        " {\"n\": [0, -0.25, 1E+2, 3e-4], \"model\" : {\"model\": [\"m\"]}, \"s\": \"\\/\\n\"}\n",
        r#"{"mod\u0065l":null,"a":[[],[{}]],"model":7}"#,
    ];
    const ALPHABET: &[u8] = b"{}[]:,\"\\ \n0123456789-+.eEtrufalsn\x01u";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for round in 0..30_000 {
        let mut body = SEEDS[round % SEEDS.len()].as_bytes().to_vec();
        for _ in 0..1 + next(3) {
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
        let ours = rewrite_model(&body, "new");
        let theirs = serde_json::from_slice::<serde_json::Value>(&body);
        let text = String::from_utf8_lossy(&body);
        match (&ours, &theirs) {
            (Err(Skip::NotUtf8), _) => assert!(std::str::from_utf8(&body).is_err()),
            (Err(Skip::NotJson { .. }), Err(_)) => {}
            (Err(Skip::NotAnObject), Ok(v)) => assert!(!v.is_object(), "{text}"),
            (Err(Skip::NoModel), Ok(v)) => assert!(v.get("model").is_none(), "{text}"),
            (Ok(out), Ok(before)) => {
                let after: serde_json::Value = serde_json::from_slice(out).unwrap();
                assert_eq!(after["model"], "new", "{text}");
                for (k, v) in before.as_object().unwrap() {
                    if k != "model" {
                        assert_eq!(after.get(k), Some(v), "{text}");
                    }
                }
            }
            _ => panic!("{text}: ours {ours:?}, serde_json {theirs:?}"),
        }
    }
}
