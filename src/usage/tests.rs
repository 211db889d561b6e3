use super::{TokenUsage, UsageScanner, MAX_TOKENS};

// Fixtures in the shape of each server's output (values and ids made up).

const OPENAI_CHAT: &str = concat!(
    r#"{"id":"chatcmpl-7","object":"chat.completion","created":1733300000,"model":"gpt-4o-mini","#,
    r#""choices":[{"index":0,"message":{"role":"assistant","content":"Four.","refusal":null},"#,
    r#""logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":3,"#,
    r#""total_tokens":24,"prompt_tokens_details":{"cached_tokens":16,"audio_tokens":0},"#,
    r#""completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"#,
    r#""accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"#,
    r#""service_tier":"default","system_fingerprint":"fp_1b2c"}"#,
);

/// Pretty-printed, as some engines and proxies answer.
const OPENAI_CHAT_PRETTY: &str =
    "{\n  \"id\" : \"cmpl-9\",\n  \"choices\" : [ {\n    \"message\" : \
    { \"content\" : \"ok\" }\n  } ],\n  \"usage\" : {\n    \"prompt_tokens\" : 12 ,\n    \
    \"total_tokens\" : 17,\n    \"completion_tokens\"\t:\r\n5\n  }\n}\n";

/// `stream_options.include_usage`: `"usage":null` in every chunk but the last, which has no
/// choices. Also an SSE comment line.
const OPENAI_STREAM: &str = concat!(
    ": keep-alive\n\n",
    r#"data: {"id":"chatcmpl-8","object":"chat.completion.chunk","created":1,"model":"m","#,
    r#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"#,
    r#""usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-8","object":"chat.completion.chunk","created":1,"model":"m","#,
    r#""choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-8","object":"chat.completion.chunk","created":1,"model":"m","#,
    r#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-8","object":"chat.completion.chunk","created":1,"model":"m","#,
    r#""choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"#,
    r#""prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// vLLM's `continuous_usage_stats`: cumulative usage in every chunk.
const VLLM_STREAM_EVERY_CHUNK: &str = concat!(
    r#"data: {"id":"cmpl-a","object":"chat.completion.chunk","created":2,"model":"qwen","#,
    r#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"#,
    r#""finish_reason":null}],"usage":{"prompt_tokens":30,"total_tokens":30,"completion_tokens":0}}"#,
    "\n\n",
    r#"data: {"id":"cmpl-a","object":"chat.completion.chunk","created":2,"model":"qwen","#,
    r#""choices":[{"index":0,"delta":{"content":"Yes"},"logprobs":null,"finish_reason":null}],"#,
    r#""usage":{"prompt_tokens":30,"total_tokens":31,"completion_tokens":1}}"#,
    "\n\n",
    r#"data: {"id":"cmpl-a","object":"chat.completion.chunk","created":2,"model":"qwen","#,
    r#""choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":"stop","#,
    r#""stop_reason":null}],"usage":{"prompt_tokens":30,"total_tokens":32,"completion_tokens":2}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// SGLang (and vLLM without continuous stats): usage only in the final chunk, after choices.
const SGLANG_STREAM_LAST_CHUNK: &str = concat!(
    r#"data: {"id":"5f1","object":"chat.completion.chunk","created":3,"model":"llama","#,
    r#""choices":[{"index":0,"delta":{"role":null,"content":"Sure"},"logprobs":null,"#,
    r#""finish_reason":null,"matched_stop":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"5f1","object":"chat.completion.chunk","created":3,"model":"llama","#,
    r#""choices":[],"usage":{"prompt_tokens":44,"total_tokens":50,"completion_tokens":6,"#,
    r#""prompt_tokens_details":null}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

const ANTHROPIC_MESSAGE: &str = concat!(
    r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-x","#,
    r#""content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","#,
    r#""stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"#,
    r#""cache_read_input_tokens":100,"output_tokens":6,"service_tier":"standard"}}"#,
);

/// `message_start` nests usage in `message`; `message_delta` carries cumulative output.
const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_02","type":"message","#,
    r#""role":"assistant","content":[],"model":"claude-x","stop_reason":null,"#,
    r#""stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"#,
    r#""cache_read_input_tokens":0,"output_tokens":1}}}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    "\n\n",
    "event: ping\n",
    r#"data: {"type": "ping"}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\n",
    "event: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"#,
    r#""usage":{"output_tokens":15}}"#,
    "\n\n",
    "event: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

const LEGACY_COMPLETION: &str = concat!(
    r#"{"id":"cmpl-3","object":"text_completion","created":4,"model":"davinci-002","#,
    r#""choices":[{"text":" there","index":0,"logprobs":null,"finish_reason":"length"}],"#,
    r#""usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
);

const EMBEDDINGS: &str = concat!(
    r#"{"object":"list","data":[{"object":"embedding","index":0,"#,
    r#""embedding":[-0.0069,0.0053,-2.1e-5]}],"model":"text-embedding-3-small","#,
    r#""usage":{"prompt_tokens":8,"total_tokens":8}}"#,
);

fn usage(input: Option<u64>, output: Option<u64>) -> TokenUsage {
    TokenUsage { input, output }
}

fn read_whole(body: &[u8]) -> TokenUsage {
    let mut scanner = UsageScanner::default();
    scanner.feed(body);
    scanner.usage()
}

/// `body` read whole, asserted to read the same cut in two at every byte and fed byte by byte.
fn read_any_split(body: &str) -> TokenUsage {
    let body = body.as_bytes();
    let whole = read_whole(body);
    for cut in 0..=body.len() {
        let mut scanner = UsageScanner::default();
        scanner.feed(&body[..cut]);
        scanner.feed(&body[cut..]);
        assert_eq!(scanner.usage(), whole, "cut at {cut}");
    }
    let mut scanner = UsageScanner::default();
    body.chunks(1).for_each(|byte| scanner.feed(byte));
    assert_eq!(scanner.usage(), whole, "byte by byte");
    whole
}

#[test]
fn each_format_reads_the_same_however_split() {
    let cases = [
        (OPENAI_CHAT, usage(Some(21), Some(3))),
        (OPENAI_CHAT_PRETTY, usage(Some(12), Some(5))),
        (OPENAI_STREAM, usage(Some(9), Some(2))),
        (VLLM_STREAM_EVERY_CHUNK, usage(Some(30), Some(2))),
        (SGLANG_STREAM_LAST_CHUNK, usage(Some(44), Some(6))),
        (ANTHROPIC_MESSAGE, usage(Some(12), Some(6))),
        (ANTHROPIC_STREAM, usage(Some(25), Some(15))),
        (LEGACY_COMPLETION, usage(Some(5), Some(7))),
        (EMBEDDINGS, usage(Some(8), None)),
    ];
    for (body, expected) in cases {
        assert_eq!(read_any_split(body), expected, "{body}");
    }
}

#[test]
fn a_stream_reads_its_latest_counts_as_it_goes() {
    let mut scanner = UsageScanner::default();
    let (start, rest) = ANTHROPIC_STREAM.split_at(ANTHROPIC_STREAM.find("event: content").unwrap());
    scanner.feed(start.as_bytes());
    assert_eq!(scanner.usage(), usage(Some(25), Some(1)));
    scanner.feed(rest.as_bytes());
    assert_eq!(scanner.usage(), usage(Some(25), Some(15)));
}

#[test]
fn nothing_reported_reads_nothing() {
    for body in [
        "",
        "{}",
        r#"{"usage":null}"#,
        r#"{"usage":{}}"#,
        r#"{"usage":12}"#,
        r#"{"usage":"prompt_tokens"}"#,
        r#"{"usage":[{"prompt_tokens":3}]}"#,
        "data: [DONE]\n\n",
        // Count keys outside a usage object.
        r#"{"prompt_tokens":3,"completion_tokens":4,"input_tokens":5,"output_tokens":6}"#,
        // A body cut inside its last count: it never ended.
        r#"{"usage":{"prompt_tokens":5"#,
    ] {
        assert_eq!(read_any_split(body), TokenUsage::default(), "{body}");
    }
}

#[test]
fn text_inside_strings_is_never_a_key() {
    for body in [
        // A model's answer quoting a usage object: escaped in the JSON string.
        r#"{"choices":[{"message":{"content":"\"usage\": {\"prompt_tokens\": 9}"}}]}"#,
        // An escaped backslash, then an escaped quote: still inside the string.
        r#"{"content":"\\\"usage\":{\"prompt_tokens\":9}}"}"#,
        // `usage` as a value, then an object: no `:` after it.
        r#"{"name":"usage","x":{"prompt_tokens":4}}"#,
        r#"["usage",{"prompt_tokens":4}]"#,
        r#"{"usage" "x":{"prompt_tokens":4}}"#,
    ] {
        assert_eq!(read_any_split(body), TokenUsage::default(), "{body}");
    }
}

#[test]
fn backslashes_right_before_a_real_key() {
    for body in [
        r#"{"content":"C:\\","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        r#"{"content":"\\\\","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        r#"{"content":"\"","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        r#"{"content":"\u005c","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        r#"{"\\":"\\\\\\","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
    ] {
        assert_eq!(read_any_split(body), usage(Some(3), Some(1)), "{body}");
    }
}

#[test]
fn nested_objects_inside_usage_are_ignored() {
    let body = concat!(
        r#"{"usage":{"prompt_tokens_details":{"prompt_tokens":99,"input_tokens":98},"#,
        r#""x":[{"completion_tokens":97}],"prompt_tokens":5,"#,
        r#""details":{"usage":{"output_tokens":96}},"output_tokens":6}}"#,
    );
    assert_eq!(read_any_split(body), usage(Some(5), Some(6)));
    // After the usage object closes, its count keys mean nothing again.
    let body = r#"{"usage":{"prompt_tokens":5},"x":{"prompt_tokens":7}}"#;
    assert_eq!(read_any_split(body), usage(Some(5), None));
}

#[test]
fn only_integer_counts_up_to_the_ceiling_are_believed() {
    let ceiling = MAX_TOKENS.to_string();
    let above = (MAX_TOKENS + 1).to_string();
    let cases = [
        ("null", None),
        ("-1", None),
        ("-0", None),
        ("1.5", None),
        ("2.0", None),
        ("1e3", None),
        ("1E3", None),
        (r#""12""#, None),
        ("true", None),
        ("{}", None),
        ("[7]", None),
        ("7x", None),
        ("0", Some(0)),
        ("42", Some(42)),
        (ceiling.as_str(), Some(MAX_TOKENS)),
        (above.as_str(), None),
        ("18446744073709551616", None),
        ("99999999999999999999999999999999999999", None),
    ];
    for (value, expected) in cases {
        let body = format!(r#"{{"usage":{{"prompt_tokens":{value} ,"output_tokens":{value}}}}}"#);
        assert_eq!(read_any_split(&body), usage(expected, expected), "{body}");
    }
}

#[test]
fn an_ignored_value_keeps_the_last_believed_one() {
    let body = concat!(
        r#"data: {"usage":{"prompt_tokens":10,"completion_tokens":4}}"#,
        "\n\n",
        r#"data: {"usage":{"prompt_tokens":null,"completion_tokens":-1}}"#,
        "\n\n",
        r#"data: {"usage":null}"#,
        "\n\n",
    );
    assert_eq!(read_any_split(body), usage(Some(10), Some(4)));
}

#[test]
fn the_latest_value_wins_even_when_smaller() {
    let body = r#"{"usage":{"input_tokens":10,"output_tokens":9}}{"usage":{"output_tokens":2}}"#;
    assert_eq!(read_any_split(body), usage(Some(10), Some(2)));
}

#[test]
fn keys_are_compared_raw() {
    for body in [
        // Escaped spellings (no server writes them) and near misses.
        r#"{"us\u0061ge":{"prompt_tokens":3}}"#,
        r#"{"usage":{"prompt_t\u006fkens":3}}"#,
        r#"{"Usage":{"prompt_tokens":3}}"#,
        r#"{"usages":{"prompt_tokens":3}}"#,
        r#"{"usage":{"prompt_tokens_":3,"completion_tokens_total":4,"xoutput_tokens":5}}"#,
    ] {
        assert_eq!(read_any_split(body), TokenUsage::default(), "{body}");
    }
    // A key longer than any wanted one, then a wanted one: the buffer starts over.
    let long_key = format!(
        r#"{{"{}":1,"usage":{{"input_tokens":3}}}}"#,
        "k".repeat(100)
    );
    assert_eq!(read_any_split(&long_key), usage(Some(3), None));
}

#[test]
fn a_control_byte_ends_a_string_cut_short() {
    // An event cut inside a string: the newline ends it, so the next event reads right.
    let body = concat!(
        r#"data: {"choices":[{"delta":{"content":"cut sho"#,
        "\n\n",
        r#"data: {"usage":{"prompt_tokens":2,"completion_tokens":3}}"#,
        "\n\n",
    );
    assert_eq!(read_any_split(body), usage(Some(2), Some(3)));
    // Cut right after a backslash: the newline is not an escaped character.
    let body = concat!(
        r#"data: {"choices":[{"delta":{"content":"cut \"#,
        "\n",
        r#"data: {"usage":{"prompt_tokens":2,"completion_tokens":3}}"#,
        "\n\n",
    );
    assert_eq!(read_any_split(body), usage(Some(2), Some(3)));
}

#[test]
fn malformed_bodies_read_nothing_or_what_came_before() {
    let html = "<html><head><title>502 Bad Gateway</title></head>\r\n<body><center>\
        <h1>502 Bad \"Gateway\"</h1></center><hr><center>nginx</center></body></html>\r\n";
    assert_eq!(read_any_split(html), TokenUsage::default());
    let every_byte: Vec<u8> = (0..=255).chain((0..=255).rev()).collect();
    assert_eq!(read_whole(&every_byte), TokenUsage::default());
    for body in [
        "}}}]]]",
        "{{{{[[[",
        "\"",
        "\\",
        ":",
        r#"{"usage":{"#,
        r#""usage":"#,
    ] {
        assert_eq!(read_any_split(body), TokenUsage::default(), "{body}");
    }
    // What was read before garbage stays.
    let mut scanner = UsageScanner::default();
    scanner.feed(ANTHROPIC_STREAM.as_bytes());
    scanner.feed(&every_byte);
    scanner.feed(html.as_bytes());
    assert_eq!(scanner.usage(), usage(Some(25), Some(15)));
}

#[test]
fn closes_beyond_any_open_do_not_stop_a_later_usage() {
    let body = r#"]]]}}}{"usage":{"prompt_tokens":4,"completion_tokens":5}}"#;
    assert_eq!(read_any_split(body), usage(Some(4), Some(5)));
    let deep = format!(
        r#"{}{{"usage":{{"prompt_tokens":4}}}}{}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(read_whole(deep.as_bytes()), usage(Some(4), None));
}
