//! The token usage scanner (`UsageScanner`): generated plain and SSE bodies in each server's
//! shape against an oracle that walks the same JSON as a tree, cut into random chunks; mutated
//! bodies, token soup and arbitrary bytes read the same however split; big adversarial bodies
//! take linear time, fed whole or in tiny chunks.

use ai_load_balancer::usage::{TokenUsage, UsageScanner, MAX_TOKENS};
use proptest::prelude::*;

use crate::growth::shape;
use crate::mutate::{any_bytes, mutated, token_soup};
use crate::runner::config;
use crate::values::{json_value, text};

/// JSON as written, members in order (duplicates kept): what the oracle walks and the body is.
#[derive(Debug, Clone)]
enum Json {
    /// A scalar as written: number, literal or quoted string.
    Scalar(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn string(text: &str) -> Json {
        Json::Scalar(serde_json::to_string(text).unwrap())
    }

    fn object(members: Vec<(&str, Json)>) -> Json {
        Json::Object(
            members
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        )
    }

    fn from_value(value: serde_json::Value) -> Json {
        match value {
            serde_json::Value::Array(items) => {
                Json::Array(items.into_iter().map(Json::from_value).collect())
            }
            serde_json::Value::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, Json::from_value(value)))
                    .collect(),
            ),
            scalar => Json::Scalar(scalar.to_string()),
        }
    }

    /// Written compact, or with `blank` after every `:` and `,` and before every close.
    fn write(&self, blank: &str, out: &mut String) {
        match self {
            Json::Scalar(text) => out.push_str(text),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                        out.push_str(blank);
                    }
                    item.write(blank, out);
                }
                out.push_str(blank);
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (index, (key, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                        out.push_str(blank);
                    }
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    out.push_str(blank);
                    value.write(blank, out);
                }
                out.push_str(blank);
                out.push('}');
            }
        }
    }

    /// The oracle: every `usage` object in document order, its direct integer counts up to
    /// the ceiling, the latest per field.
    fn read_usage(&self, usage: &mut TokenUsage) {
        match self {
            Json::Scalar(_) => {}
            Json::Array(items) => items.iter().for_each(|item| item.read_usage(usage)),
            Json::Object(members) => {
                for (key, value) in members {
                    match (key.as_str(), value) {
                        ("usage", Json::Object(counts)) => read_counts(counts, usage),
                        _ => value.read_usage(usage),
                    }
                }
            }
        }
    }
}

fn read_counts(counts: &[(String, Json)], usage: &mut TokenUsage) {
    for (key, value) in counts {
        let Json::Scalar(text) = value else { continue };
        let Some(count) = text.parse::<u64>().ok().filter(|&n| n <= MAX_TOKENS) else {
            continue;
        };
        match key.as_str() {
            "prompt_tokens" | "input_tokens" => usage.input = Some(count),
            "completion_tokens" | "output_tokens" => usage.output = Some(count),
            _ => {}
        }
    }
}

fn count_value() -> impl Strategy<Value = Json> {
    let written = prop_oneof![
        4 => (0..5000u64).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            MAX_TOKENS.to_string(),
            (MAX_TOKENS + 1).to_string(),
            u64::MAX.to_string(),
            "123456789012345678901234567890".to_string(),
            "null".to_string(),
            "-3".to_string(),
            "-0".to_string(),
            "1.5".to_string(),
            "2e3".to_string(),
            "\"7\"".to_string(),
            "true".to_string(),
        ]),
    ];
    written.prop_map(Json::Scalar)
}

fn count_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "prompt_tokens",
        "input_tokens",
        "completion_tokens",
        "output_tokens",
        "total_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "usage",
    ])
}

/// A usage object: counts of every kind, and `*_details` objects holding counts (ignored).
fn usage_object() -> impl Strategy<Value = Json> {
    let details = prop::collection::vec((count_key(), count_value()), 0..3)
        .prop_map(|counts| Json::object(counts.into_iter().collect()));
    let member = prop_oneof![
        4 => (count_key(), count_value()).prop_map(|(key, value)| (key, value)),
        1 => (prop::sample::select(vec!["prompt_tokens_details", "completion_tokens_details", "usage"]), details),
    ];
    prop::collection::vec(member, 0..6).prop_map(Json::object)
}

fn usage_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => usage_object(),
        1 => Just(Json::Scalar("null".to_string())),
    ]
}

/// Model text: anything, and text that quotes usage objects, backslashes and SSE framing.
fn content() -> impl Strategy<Value = Json> {
    let tricky = prop::sample::select(vec![
        r#""usage":{"prompt_tokens":5,"completion_tokens":6}"#,
        r#"usage": {"input_tokens": 9}"#,
        "C:\\",
        "\\",
        "\"",
        "\n\ndata: {\"usage\":{\"output_tokens\":4}}\n\n",
        "usage",
    ])
    .prop_map(str::to_string);
    prop_oneof![text(), tricky].prop_map(|text| Json::string(&text))
}

/// One JSON event or answer in a server's shape, with its SSE event name.
fn event() -> impl Strategy<Value = (&'static str, Json)> {
    let openai = (content(), usage_value()).prop_map(|(content, usage)| {
        let delta = Json::object(vec![("content", content)]);
        let choice = Json::object(vec![("index", Json::Scalar("0".into())), ("delta", delta)]);
        let chunk = Json::object(vec![
            ("id", Json::string("chatcmpl-1")),
            ("choices", Json::Array(vec![choice])),
            ("usage", usage),
        ]);
        ("completion", chunk)
    });
    let anthropic_start = (content(), usage_value()).prop_map(|(content, usage)| {
        let message = Json::object(vec![
            ("content", Json::Array(vec![content])),
            ("usage", usage),
        ]);
        let start = Json::object(vec![
            ("type", Json::string("message_start")),
            ("message", message),
        ]);
        ("message_start", start)
    });
    let anthropic_delta = (content(), usage_value()).prop_map(|(content, usage)| {
        let delta = Json::object(vec![
            ("type", Json::string("message_delta")),
            ("delta", Json::object(vec![("stop_sequence", content)])),
            ("usage", usage),
        ]);
        ("message_delta", delta)
    });
    let anything = (json_value(), usage_value()).prop_map(|(value, usage)| {
        let event = Json::object(vec![("x", Json::from_value(value)), ("usage", usage)]);
        ("other", event)
    });
    prop_oneof![openai, anthropic_start, anthropic_delta, anything]
}

/// A body and the usage the oracle reads from it.
#[derive(Debug, Clone)]
struct Body {
    bytes: Vec<u8>,
    expected: TokenUsage,
}

/// A plain answer (the first event), an OpenAI-style stream (`data:` lines, comments, `[DONE]`)
/// or an Anthropic-style one (`event:` and `data:` lines), compact or spaced.
fn body() -> impl Strategy<Value = Body> {
    let events = prop::collection::vec(event(), 1..6);
    let blank = prop::sample::select(vec!["", " ", "\n  ", "\r\n\t"]);
    (events, 0..3u8, blank).prop_map(|(events, framing, blank)| {
        let events = if framing == 0 {
            &events[..1]
        } else {
            &events[..]
        };
        let mut text = String::new();
        let mut expected = TokenUsage::default();
        for (name, json) in events {
            json.read_usage(&mut expected);
            match framing {
                0 => {}
                1 => text.push_str(": ping\n\ndata: "),
                _ => text.push_str(&["event: ", name, "\ndata: "].concat()),
            }
            json.write(blank, &mut text);
            if framing != 0 {
                text.push_str("\n\n");
            }
        }
        if framing == 1 {
            text.push_str("data: [DONE]\n\n");
        }
        Body {
            bytes: text.into_bytes(),
            expected,
        }
    })
}

/// What `body` reads fed in chunks cut at `cuts` (any values, reduced into the body).
fn read_in_chunks(body: &[u8], cuts: &[usize]) -> TokenUsage {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut scanner = UsageScanner::default();
    let mut from = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        scanner.feed(&body[from..cut]);
        from = cut;
    }
    scanner.usage()
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

const USAGE_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\\"",
    b"\\\\",
    b"\"usage\"",
    b"\"usage\":",
    b"\"usage\":{",
    b"\"prompt_tokens\":",
    b"\"output_tokens\":",
    b"12",
    b"-",
    b".5",
    b"e3",
    b"null",
    b" ",
    b"\n",
    b"\n\n",
    b"data: ",
    b"[DONE]",
    b": ping\n",
    b"event: message_delta\n",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn generated_bodies_read_like_the_oracle_however_split(body in body(), cuts in cuts()) {
        prop_assert_eq!(read_in_chunks(&body.bytes, &[]), body.expected);
        prop_assert_eq!(read_in_chunks(&body.bytes, &cuts), body.expected);
    }

    #[test]
    fn generated_bodies_byte_by_byte(body in body()) {
        let every_byte: Vec<usize> = (1..body.bytes.len()).collect();
        prop_assert_eq!(read_in_chunks(&body.bytes, &every_byte), body.expected);
    }

    #[test]
    fn mutated_bodies_read_the_same_however_split(
        body in mutated(body().prop_map(|body| body.bytes), USAGE_TOKENS),
        cuts in cuts(),
    ) {
        prop_assert_eq!(read_in_chunks(&body, &cuts), read_in_chunks(&body, &[]));
    }

    #[test]
    fn token_soup_reads_the_same_however_split(body in token_soup(USAGE_TOKENS), cuts in cuts()) {
        prop_assert_eq!(read_in_chunks(&body, &cuts), read_in_chunks(&body, &[]));
    }

    #[test]
    fn arbitrary_bytes_read_the_same_however_split(body in any_bytes(), cuts in cuts()) {
        prop_assert_eq!(read_in_chunks(&body, &cuts), read_in_chunks(&body, &[]));
    }
}

/// The largest input.
const LARGE: usize = 4 << 20;

/// Big bodies fed whole and in 7-byte pieces: many usage objects, one long string of escapes,
/// one long count, one long key, nesting that never closes.
#[test]
fn big_bodies_take_linear_time_whole_or_in_tiny_pieces() {
    let shapes = [
        shape(
            "usage many events",
            "",
            concat!(
                r#"data: {"choices":[{"delta":{"content":"a\"b\\"}}],"usage":{"prompt_tokens":12,"#,
                r#""completion_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}}"#,
                "\n\n",
            ),
            "data: [DONE]\n\n",
        ),
        shape(
            "usage long escaped string",
            r#"{"content":""#,
            r#"\u00e9\n\"\\x"usage":{"#,
            r#"","usage":{"prompt_tokens":1,"output_tokens":2}}"#,
        ),
        shape(
            "usage long count",
            r#"{"usage":{"output_tokens":2,"prompt_tokens":"#,
            "1234567890",
            "}}",
        ),
        shape(
            "usage long key",
            r#"{"usage":{""#,
            "prompt_tokens",
            r#"":1}}"#,
        ),
        shape("usage unclosed nesting", "", r#"{"usage":{"x":[{"y":"#, ""),
    ];
    let read = |body: &str, piece: usize| {
        let mut scanner = UsageScanner::default();
        body.as_bytes()
            .chunks(piece)
            .for_each(|chunk| scanner.feed(chunk));
        scanner.usage()
    };
    for shape in &shapes[..3] {
        assert_ne!(
            read(&shape.build(1 << 10), 7),
            TokenUsage::default(),
            "{shape:?}"
        );
    }
    for shape in shapes {
        for piece in [7, LARGE] {
            shape.assert_linear_time(LARGE, |body| read(body, piece));
        }
    }
}
