#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Tokens and latency histograms, the built filter in the test host, both builds: a provider's
//! answer passes chunk by chunk, never held, and leaves its `usage` in the token counters and
//! its timings, on the host's clock, in the histograms; two workers add to the same metrics.

mod host;

use std::time::Duration;

use host::{both_builds, Action, BodyDelivery, Build, Host};
use serde_json::json;

const CHAT: &[u8] =
    br#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
/// An OpenAI-style stream with `include_usage`, cut mid-key where the chunks part.
const STREAM: [&[u8]; 4] = [
    b"data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":99}\"}}],\"usage\":null}\n\n",
    b"data: {\"choices\":[{\"delta\":{\"content\":\"!\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    b"data: {\"choices\":[],\"usage\":{\"prompt_tok",
    b"ens\":11,\"completion_tokens\":22,\"total_tokens\":33}}\n\ndata: [DONE]\n\n",
];
const PREFIX: &str = "ai_lb.gen_ai";

fn gateway(build: Build) -> Host {
    let mut host = Host::new(build).body_delivery(BodyDelivery::WhileHeadersPaused);
    let config = json!({
        "providers": [
            {"name": "minmax", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "model": "qwen3-max-preview"}
        ],
        "load_source": "none",
        "strategy": "failover"
    });
    for _ in 0..2 {
        host.start_vm(&config.to_string())
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
    }
    host
}

/// One streamed chat on worker `vm`: answered 200 after 30 ms, its chunks 100 ms apart.
fn streamed_chat(host: &mut Host, vm: usize) {
    let request = host.vm(vm).send_chat(CHAT);
    host.advance(Duration::from_millis(30));
    let headers = [(":status", "200"), ("content-type", "text/event-stream")];
    assert_eq!(
        host.vm(vm).send_response_headers(request, &headers, false),
        Action::Continue
    );
    for (index, chunk) in STREAM.iter().enumerate() {
        host.advance(Duration::from_millis(100));
        let end = index == STREAM.len() - 1;
        assert_eq!(
            host.vm(vm).send_response_body(request, chunk, end),
            Action::Continue,
            "chunk {index} is never held"
        );
    }
    assert_eq!(
        host.vm(vm).stream(request).downstream_body,
        STREAM.concat(),
        "the client gets the stream byte for byte"
    );
    host.vm(vm).finish(request);
}

fn a_stream_leaves_its_tokens_and_timings_on_every_worker(build: Build) {
    let mut host = gateway(build);
    streamed_chat(&mut host, 0);
    streamed_chat(&mut host, 1);
    let tokens = |kind: &str| {
        host.metric(&format!(
            "{PREFIX}.tokens.{kind}.provider.minmax.model.MiniMax-M2.1"
        ))
    };
    assert_eq!(
        (tokens("input"), tokens("output")),
        (22, 44),
        "the usage event counts, not the text that looks like one"
    );
    let samples = |metric: &str| host.samples(&format!("{PREFIX}.server.{metric}.provider.minmax"));
    assert_eq!(samples("time_to_first_byte_ms"), [30, 30]);
    assert_eq!(samples("time_to_first_token_ms"), [130, 130]);
    assert_eq!(samples("request.duration_ms"), [430, 430]);
    assert!(
        host.metrics()
            .iter()
            .all(|(name, _)| !name.contains("qianwen")),
        "nothing for a provider that answered nothing"
    );
}

fn a_failed_answer_is_not_metered(build: Build) {
    let mut host = gateway(build);
    let request = host.vm(0).send_chat(CHAT);
    let headers = [(":status", "503"), ("content-type", "application/json")];
    host.vm(0).send_response_headers(request, &headers, false);
    let body = br#"{"error":{"message":"busy"},"usage":{"prompt_tokens":5}}"#;
    assert_eq!(
        host.vm(0).send_response_body(request, body, true),
        Action::Continue
    );
    host.vm(0).finish(request);
    let metered: Vec<_> = host
        .metrics()
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    assert!(metered.is_empty(), "{metered:?}");
    assert_eq!(host.calls("proxy_record_metric"), 0);
}

both_builds!(
    a_stream_leaves_its_tokens_and_timings_on_every_worker,
    a_failed_answer_is_not_metered,
);
