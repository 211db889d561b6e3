//! No body, store reply or metrics page takes super-linear time: inputs of up to 4 MiB nested
//! to the limit, full of escapes, duplicate keys, long lines or many small values take ~4x as
//! long for 4x the input (`growth`).

use ai_load_balancer::engine::prometheus::samples;
use ai_load_balancer::engine::{engine_load, parse_hash_loads, parse_json_loads};
use ai_load_balancer::rewrite::{body_facts, rewrite_model, StreamRewrite};
use ai_load_balancer::store::{parse_json_reply, parse_mget_reply};

use crate::growth::{assert_linear_text, assert_linear_time, numbered, shape, Shape};

/// The largest input.
const LARGE: usize = 4 << 20;

const BODIES: &[Shape] = &[
    shape(
        "body escapes",
        r#"{"model":"auto","messages":[""#,
        r#"\u00e9\n\"\\\ud83d\ude00"#,
        r#""]}"#,
    ),
    shape(
        "body duplicate models",
        "{",
        r#""model":"a","mod\u0065l" : 1 ,"#,
        r#""stream":true}"#,
    ),
    shape(
        "body small values",
        r#"{"model":"a","input":["#,
        r#"0,-1.5e3,true,null,"x",{},[],{"k":[1]},"#,
        "0]}",
    ),
];

fn rewrite_and_facts(body: &str) -> usize {
    // A body repeating `model` past the limit is scanned whole, then refused.
    let rewritten = match rewrite_model(body.as_bytes(), "qwen-max") {
        Ok(out) => out.len(),
        Err(ai_load_balancer::rewrite::Skip::TooManyModels { count }) => count,
        Err(_) => 0,
    };
    let facts =
        body_facts(body.as_bytes(), 4096).map_or(0, |facts| facts.prefix_hash.is_some().into());
    rewritten + facts
}

#[test]
fn bodies_with_escapes_duplicate_models_and_small_values() {
    for shape in BODIES {
        assert!(rewrite_and_facts(&shape.build(1 << 10)) > 0, "{shape:?}");
        shape.assert_linear_time(LARGE, rewrite_and_facts);
    }
}

/// The streaming rewrite of `body` fed in `chunk`-byte pieces: output bytes plus replacements.
fn streamed_in_chunks(body: &str, chunk: usize) -> usize {
    let mut rewrite = StreamRewrite::new();
    let mut out = Vec::with_capacity(body.len() + 64);
    for piece in body.as_bytes().chunks(chunk) {
        rewrite.feed(piece, "qwen-max", &mut out);
    }
    rewrite.finish(&mut out);
    out.len() + rewrite.rewritten()
}

/// Bodies streamed in tiny and in large pieces: whatever it holds back between pieces (a key
/// or value cut in two), the work per byte stays the same.
#[test]
fn streamed_bodies_in_tiny_and_large_pieces() {
    // A `model` value longer than any piece, and one piece boundary inside every key.
    let long_model = shape(
        "streamed long model value",
        r#"{"messages":[],"model":""#,
        r#"\u0061bcdefghij"#,
        r#""}"#,
    );
    for shape in BODIES.iter().chain([&long_model]) {
        for chunk in [7, 64 << 10] {
            assert!(
                streamed_in_chunks(&shape.build(1 << 10), chunk) > 0,
                "{shape:?}"
            );
            shape.assert_linear_time(LARGE, |body| streamed_in_chunks(body, chunk));
        }
    }
}

#[test]
fn bodies_nested_to_the_depth_limit() {
    let depth = ai_load_balancer::rewrite::MAX_DEPTH - 2;
    let unit = format!("{}1{},", "[".repeat(depth), "]".repeat(depth));
    let make = |size| {
        numbered(
            size,
            r#"{"model":"auto","messages":["#,
            |_| unit.clone(),
            "0]}",
        )
    };
    assert!(rewrite_and_facts(&make(1 << 10)) > 0);
    assert_linear_text("body nested", LARGE, make, rewrite_and_facts);
}

/// A RESP array of `unit` (which holds `values` values) repeated to about `size` bytes.
fn resp_reply(size: usize, unit: &str, values: usize) -> Vec<u8> {
    let units = size / unit.len();
    let mut reply = format!("*{}\r\n", units * values).into_bytes();
    for _ in 0..units {
        reply.extend_from_slice(unit.as_bytes());
    }
    reply
}

#[test]
fn resp_with_many_values_and_long_lines() {
    let values = |size| resp_reply(size, "$5\r\nhello\r\n:42\r\n$-1\r\n_\r\n+OK\r\n", 5);
    // One bulk string of line breaks, and one simple string whose line never ends.
    let bulk = |size: usize| {
        [
            format!("*1\r\n${size}\r\n").as_bytes(),
            &b"\r\n".repeat(size / 2),
            b"\r\n",
        ]
        .concat()
    };
    let unended = |size: usize| [b"*1\r\n+".as_slice(), &b"a\r".repeat(size / 2)].concat();
    assert!(parse_mget_reply(&values(1 << 10)).is_ok() && parse_mget_reply(&bulk(1 << 10)).is_ok());
    assert!(parse_mget_reply(&unended(1 << 10)).is_err());
    let read = |reply: &Vec<u8>| parse_mget_reply(reply);
    assert_linear_time("resp values", LARGE, values, read);
    assert_linear_time("resp long bulk", LARGE, bulk, read);
    assert_linear_time("resp unended line", LARGE, unended, read);
}

#[test]
fn hash_reply_with_many_providers() {
    const ROW: &str = "$1\r\n3\r\n$3\r\n0.5\r\n$-1\r\n";
    let make = |size| (resp_reply(size, ROW, 3), size / ROW.len());
    let read = |(reply, providers): &(Vec<u8>, usize)| parse_hash_loads(reply, *providers);
    assert!(read(&make(1 << 10)).is_ok());
    assert_linear_time("hash reply", LARGE, make, read);
}

const WEBDIS_REPLIES: &[Shape] = &[
    shape(
        "webdis values",
        r#"{"MGET":["#,
        r#""90",null,10,"\u00e9\n\"\\\ud83d\ude00","#,
        "null]}",
    ),
    shape(
        "webdis duplicate keys",
        "{",
        r#""MGET":["1",2,null],"#,
        r#""MGET":[]}"#,
    ),
];

#[test]
fn webdis_with_many_values_nesting_and_duplicate_keys() {
    let read = |body: &str| parse_json_reply(body.as_bytes());
    for shape in WEBDIS_REPLIES {
        assert!(read(&shape.build(1 << 10)).is_ok(), "{shape:?}");
        shape.assert_linear_time(LARGE, read);
    }
    // Nested lists (Webdis writes them as null) to 102 levels; serde_json's limit is 128.
    let nested = format!("{}{},", "[".repeat(100), "]".repeat(100));
    let make = |size| numbered(size, r#"{"MGET":["#, |_| nested.clone(), "null]}");
    assert!(read(&make(1 << 10)).is_ok());
    assert_linear_text("webdis nested", LARGE, make, read);
}

#[test]
fn endpoint_with_many_and_duplicate_providers() {
    let names = ["p1", "p7", "p100", "absent"];
    let read = |body: &str| parse_json_loads(body.as_bytes(), &names);
    let many = |size| {
        let provider = |i| {
            format!(r#""p{i}":{{"running":{i},"waiting":"1","cache_ratio":0.5,"kv_usage":null}},"#)
        };
        numbered(size, "{", provider, r#""p0":{}}"#)
    };
    let duplicates = shape(
        "endpoint duplicate keys",
        r#"{"providers":{"#,
        r#""p1":{"running":1,"\u0070":[[[[0]]]]},"#,
        r#""p7":{}}}"#,
    );
    assert!(read(&many(1 << 10)).is_ok() && read(&duplicates.build(1 << 10)).is_ok());
    assert_linear_text("endpoint providers", LARGE, many, read);
    duplicates.assert_linear_time(LARGE, read);
}

const PAGES: &[Shape] = &[
    shape(
        "prometheus lines",
        "",
        concat!(
            "# HELP vllm:num_requests_running Requests.\n\r\n",
            "   vllm:num_requests_running{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 3.0 1712345678901\r\n",
            "broken line\n",
        ),
        "",
    ),
    shape(
        "prometheus long line",
        "vllm:num_requests_running{",
        r#"a="x",model_name="\"\\\n\é","#,
        "} 1\n",
    ),
    shape(
        "prometheus unended label",
        "vllm:num_requests_running{a=\"",
        r#"\"\\"#,
        "",
    ),
];

fn read_page(page: &str) -> usize {
    let labels: usize = samples(page)
        .map(|sample| {
            sample.label("model_name").map_or(0, |name| name.len()) + sample.label_pairs().count()
        })
        .sum();
    labels + usize::from(engine_load(page, None).0.is_some())
}

#[test]
fn prometheus_with_many_lines_labels_and_escapes() {
    for shape in PAGES {
        read_page(&shape.build(1 << 10));
        shape.assert_linear_time(LARGE, read_page);
    }
}
