//! Tokens and timings of a provider's answer, read as it passes: counted for the provider and
//! the model the request was sent as, only for successful answers, and never held.

use super::fake_host::{FakeHost, FakeWorker};
use super::tests::{flow, post, send_whole};
use super::*;

const CONFIG: &str = r#"
providers:
- {name: a, model: ma}
- {name: b}
load_source: none
strategy: failover
"#;

const POOLS: &str = r#"
providers:
- {name: a}
- {name: b}
load_source: none
models:
  team-model: {strategy: failover, backends: [{provider: a}, {provider: b}]}
"#;

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
const SENT_AT: u64 = 50_000;

/// `body` sent whole at SENT_AT under `config`: the flow and the host after the choice.
fn sent(config: &str, body: &[u8]) -> (RequestFlow, FakeHost) {
    let mut flow = flow(config);
    let mut host = post(body);
    host.now_ms = SENT_AT;
    let worker = &mut FakeWorker::new(1);
    send_whole(&mut flow, &mut host, worker);
    (flow, host)
}

/// A request sent at SENT_AT, its response's headers arrived `after_ms` later with `status`
/// and `content_type`.
fn answered(
    config: &str,
    status: &str,
    content_type: &str,
    after_ms: u64,
) -> (RequestFlow, FakeHost) {
    let (mut flow, mut host) = sent(config, CHAT);
    let worker = &mut FakeWorker::new(1);
    host.now_ms = SENT_AT + after_ms;
    host.response_headers
        .insert(":status".into(), status.into());
    host.response_headers
        .insert("content-type".into(), content_type.into());
    assert_eq!(
        flow.on_response_headers(&mut host, false, worker),
        Verdict::Continue
    );
    (flow, host)
}

/// The response body's next chunk, `after_ms` after the request was sent.
fn chunk(flow: &mut RequestFlow, host: &mut FakeHost, bytes: &[u8], after_ms: u64, end: bool) {
    host.now_ms = SENT_AT + after_ms;
    host.response_body = Some(bytes.to_vec());
    assert_eq!(
        flow.on_response_body(host, bytes.len(), end),
        Verdict::Continue,
        "a response is never held"
    );
}

fn timings(host: &FakeHost) -> Vec<(&str, u64)> {
    host.timings
        .iter()
        .map(|(name, ms)| (name.as_str(), *ms))
        .collect()
}

fn total(host: &FakeHost, name: &str) -> u64 {
    host.totals.get(name).copied().unwrap_or(0)
}

#[test]
fn an_answer_counts_its_tokens_for_the_provider_and_model_it_was_sent_as() {
    let (mut flow, mut host) = answered(CONFIG, "200", "application/json", 700);
    chunk(
        &mut flow,
        &mut host,
        br#"{"id":"x","choices":[],"usage":{"prompt_"#,
        710,
        false,
    );
    chunk(
        &mut flow,
        &mut host,
        br#"tokens":12,"completion_tokens":34}}"#,
        730,
        true,
    );
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.input.provider.a.model.ma"),
        12
    );
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.output.provider.a.model.ma"),
        34
    );
    assert_eq!(
        timings(&host),
        [
            ("ai_lb.gen_ai.server.time_to_first_byte_ms.provider.a", 700),
            ("ai_lb.gen_ai.server.request.duration_ms.provider.a", 730),
        ],
        "no first token for an answer that is not a stream"
    );
    flow.on_done(&mut host, &mut FakeWorker::new(1));
    assert_eq!(host.timings.len(), 2, "counted once");
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.input.provider.a.model.ma"),
        12
    );
}

#[test]
fn a_stream_times_its_first_token_and_counts_the_usage_of_its_last_event() {
    let (mut flow, mut host) = answered(CONFIG, "200", "text/event-stream; charset=utf-8", 40);
    let first = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n";
    chunk(&mut flow, &mut host, first, 250, false);
    chunk(
        &mut flow,
        &mut host,
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,",
        900,
        false,
    );
    chunk(
        &mut flow,
        &mut host,
        b"\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
        901,
        true,
    );
    assert_eq!(
        timings(&host),
        [
            ("ai_lb.gen_ai.server.time_to_first_byte_ms.provider.a", 40),
            ("ai_lb.gen_ai.server.time_to_first_token_ms.provider.a", 250),
            ("ai_lb.gen_ai.server.request.duration_ms.provider.a", 901),
        ]
    );
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.input.provider.a.model.ma"),
        5
    );
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.output.provider.a.model.ma"),
        2
    );
}

#[test]
fn failed_answers_are_neither_timed_nor_read() {
    for status in ["500", "429", "404", "302"] {
        let (mut flow, mut host) = answered(CONFIG, status, "application/json", 10);
        chunk(
            &mut flow,
            &mut host,
            br#"{"usage":{"prompt_tokens":9}}"#,
            20,
            true,
        );
        flow.on_done(&mut host, &mut FakeWorker::new(1));
        assert!(host.timings.is_empty(), "{status}: {:?}", host.timings);
        assert!(
            host.totals.keys().all(|name| !name.contains("tokens")),
            "{status}"
        );
    }
}

#[test]
fn a_cut_stream_counts_what_it_reported_and_no_duration() {
    let (mut flow, mut host) = answered(CONFIG, "200", "text/event-stream", 30);
    chunk(
        &mut flow,
        &mut host,
        b"data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\n",
        60,
        false,
    );
    host.now_ms = SENT_AT + 5_000;
    flow.on_done(&mut host, &mut FakeWorker::new(1));
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.input.provider.a.model.ma"),
        7
    );
    assert!(
        host.timings
            .iter()
            .all(|(name, _)| !name.contains("duration")),
        "{:?}",
        host.timings
    );
}

#[test]
fn an_answer_without_body_ends_at_its_headers() {
    let (mut flow, mut host) = sent(CONFIG, CHAT);
    host.now_ms = SENT_AT + 15;
    host.response_headers.insert(":status".into(), "204".into());
    flow.on_response_headers(&mut host, true, &mut FakeWorker::new(1));
    assert_eq!(
        timings(&host),
        [
            ("ai_lb.gen_ai.server.time_to_first_byte_ms.provider.a", 15),
            ("ai_lb.gen_ai.server.request.duration_ms.provider.a", 15),
        ]
    );
}

#[test]
fn trailers_end_the_answer() {
    let (mut flow, mut host) = answered(CONFIG, "200", "application/json", 10);
    chunk(
        &mut flow,
        &mut host,
        br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#,
        20,
        false,
    );
    host.now_ms = SENT_AT + 25;
    flow.on_response_trailers(&mut host);
    assert_eq!(
        total(&host, "ai_lb.gen_ai.tokens.output.provider.a.model.ma"),
        4
    );
    assert_eq!(
        timings(&host).last(),
        Some(&("ai_lb.gen_ai.server.request.duration_ms.provider.a", 25))
    );
}

#[test]
fn the_model_label_never_comes_from_the_client() {
    // Provider b has no model: the client's `auto` goes on untouched, and is not a label.
    let only_b = "providers: [{name: b}]\nload_source: none\nstrategy: failover\n";
    let (mut flow, mut host) = answered(only_b, "200", "application/json", 5);
    assert_eq!(host.header("x-selected-provider"), Some("b"));
    let usage = br#"{"usage":{"prompt_tokens":1}}"#;
    chunk(&mut flow, &mut host, usage, 5, true);
    let as_sent = "ai_lb.gen_ai.tokens.input.provider.b.model.as_sent";
    assert_eq!(total(&host, as_sent), 1);

    // Pools by model: the pool's name, a model the configuration lists.
    let (mut flow, mut host) = sent(POOLS, br#"{"model":"team-model","messages":[]}"#);
    host.response_headers.insert(":status".into(), "200".into());
    flow.on_response_headers(&mut host, false, &mut FakeWorker::new(1));
    let usage = br#"{"usage":{"completion_tokens":8}}"#;
    chunk(&mut flow, &mut host, usage, 5, true);
    let pool_name = "ai_lb.gen_ai.tokens.output.provider.a.model.team-model";
    assert_eq!(total(&host, pool_name), 8);
}

#[test]
fn unbalanced_requests_are_not_metered() {
    let mut flow = flow(CONFIG);
    let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/v1/other")]);
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, true, worker);
    host.response_headers.insert(":status".into(), "200".into());
    flow.on_response_headers(&mut host, false, worker);
    chunk(
        &mut flow,
        &mut host,
        br#"{"usage":{"prompt_tokens":1}}"#,
        5,
        true,
    );
    assert!(host.timings.is_empty());
    assert!(host.totals.keys().all(|name| !name.contains("tokens")));
}
