//! The request flow against a recording host: what would reach the upstream, in both orders of
//! body and store reply.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::fake_host::{FakeHost, FakeWorker};
use super::*;
use crate::config::{Build, PluginConfig};
use crate::rng::Rng;
use crate::store::{StoreError, StoreOutages, StoreQuery};

pub(super) const CONFIG: &str = r#"
providers:
- {name: minmax, key: minimax_1, model: MiniMax-M2.1}
- {name: qianwen, key: qwen_1, model: qwen3-max-preview}
- {name: raw, key: raw_1}
redis: {cluster: webdis, protocol: webdis}
max_body_bytes: 64
"#;

pub(super) const BODY: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

pub(super) fn flow(config: &str) -> RequestFlow {
    RequestFlow::new(Rc::new(
        PluginConfig::from_yaml(config, Build::Envoy).unwrap(),
    ))
}

pub(super) fn post(body: &[u8]) -> FakeHost {
    let length = body.len().to_string();
    let mut host = FakeHost::request(&[
        (":method", "POST"),
        (":path", "/masgod/v1/chat/completions"),
        ("content-length", &length),
    ]);
    host.body = body.to_vec();
    host
}

/// The host's request through the flow: its headers, then its whole body when the flow holds
/// the headers for it (a choice that reads the body).
pub(super) fn send_whole(flow: &mut RequestFlow, host: &mut FakeHost, worker: &mut FakeWorker) {
    if flow.on_request_headers(host, false, worker) == Verdict::Pause {
        let size = host.body.len();
        flow.on_request_body(host, size, true, worker);
    }
}

/// RESP for an MGET reply with these values (None = nil).
pub(super) fn mget(values: &[Option<&str>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", values.len()).into_bytes();
    for value in values {
        match value {
            Some(v) => out.extend(format!("${}\r\n{v}\r\n", v.len()).into_bytes()),
            None => out.extend(b"$-1\r\n"),
        }
    }
    out
}

/// A balanced POST whose headers have been seen: the store query is out, headers paused.
pub(super) fn awaiting_store(body: &[u8]) -> (RequestFlow, FakeHost, FakeWorker) {
    let mut flow = flow(CONFIG);
    let mut host = post(body);
    let mut worker = FakeWorker::new(1);
    assert_eq!(
        flow.on_request_headers(&mut host, false, &mut worker),
        Verdict::Pause
    );
    assert_eq!(host.sent.len(), 1, "one store round trip");
    (flow, host, worker)
}

pub(super) fn oversized_body() -> String {
    format!(r#"{{"model":"auto","pad":"{}"}}"#, "x".repeat(100))
}

pub(super) fn expected_body(model: &str) -> Vec<u8> {
    String::from_utf8(BODY.to_vec())
        .unwrap()
        .replacen("\"auto\"", &format!("\"{model}\""), 1)
        .into_bytes()
}

#[test]
fn body_before_reply_rewrites_then_resumes() {
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    let worker = &mut FakeWorker::new(1);
    assert_eq!(
        flow.on_request_headers(&mut host, false, worker),
        Verdict::Pause
    );
    assert_eq!(host.sent.len(), 1, "one store round trip");
    assert_eq!(
        flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1)),
        Verdict::Pause
    );
    assert_eq!(host.resumed, 0);
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("90"), Some("10"), Some("50")])),
        worker,
    );
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(
        host.header("x-rewrite-target-model"),
        Some("qwen3-max-preview")
    );
    assert_eq!(host.body, expected_body("qwen3-max-preview"));
    assert_eq!(
        host.header("content-length"),
        Some(host.body.len().to_string().as_str())
    );
    assert_eq!((host.route_cache_cleared, host.resumed), (1, 1));
    assert_eq!(host.counted("ai_lb.selected.qianwen"), 1);
    assert_eq!(host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn reply_after_part_of_the_body_rewrites_it_and_streams_the_rest() {
    // Higress (and Envoy with allow_on_headers_stop_iteration) deliver body to paused headers:
    // what came is rewritten in place before the headers go, the rest as it passes, so the
    // gateway never holds the whole body.
    let (mut flow, mut host, mut worker) = awaiting_store(BODY);
    let worker = &mut worker;
    let cut = BODY.len() - 20; // past the model
    host.body = BODY[..cut].to_vec();
    assert_eq!(
        flow.on_request_body(&mut host, cut, false, &mut FakeWorker::new(1)),
        Verdict::Pause
    );
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("10"), Some("90"), Some("50")])),
        worker,
    );
    assert_eq!(host.resumed, 1, "released once what it held is rewritten");
    assert_eq!(
        host.header("content-length"),
        None,
        "the gateway re-frames it"
    );
    let expected = expected_body("MiniMax-M2.1");
    let rewritten_part = expected.len() - 20;
    assert_eq!(host.body, expected[..rewritten_part]);
    // The rest passes as it comes, untouched.
    host.body = BODY[cut..].to_vec();
    assert_eq!(
        flow.on_request_body(&mut host, 20, true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert_eq!(host.body, BODY[cut..]);
    assert_eq!(host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn reply_after_part_of_the_body_cut_inside_the_model_holds_the_headers_until_it_closes() {
    let (mut flow, mut host, mut worker) = awaiting_store(BODY);
    let worker = &mut worker;
    host.body = BODY[..13].to_vec(); // {"model":"au
    flow.on_request_body(&mut host, 13, false, &mut FakeWorker::new(1));
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("10"), Some("90"), Some("50")])),
        worker,
    );
    assert_eq!(host.resumed, 0, "the model's value is not whole yet");
    assert_eq!(host.header("content-length"), None);
    // The host holds what the filter wrote, then what came since.
    host.body.extend_from_slice(&BODY[13..]);
    let size = host.body.len();
    assert_eq!(
        flow.on_request_body(&mut host, size, true, &mut FakeWorker::new(1)),
        Verdict::Continue,
        "the chunk that closes it lets everything go"
    );
    assert_eq!(host.body, expected_body("MiniMax-M2.1"));
    assert_eq!(host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn client_sent_control_headers_are_replaced() {
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    host.set_request_header("x-selected-provider", "minmax");
    host.set_request_header("x-rewrite-target-model", "evil");
    let worker = &mut FakeWorker::new(1);
    // Removed when the headers arrive; the filter writes its own once it has chosen.
    assert_eq!(
        flow.on_request_headers(&mut host, false, worker),
        Verdict::Pause
    );
    flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1));
    flow.on_store_reply(&mut host, Ok(mget(&[Some("90"), Some("10"), None])), worker);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(
        host.header("x-rewrite-target-model"),
        Some("qwen3-max-preview")
    );
}

#[test]
fn provider_without_model_leaves_body_and_releases_at_once() {
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    host.set_request_header("x-rewrite-target-model", "evil");
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("9"), Some("9"), Some("1")])),
        worker,
    );
    assert_eq!(host.header("x-selected-provider"), Some("raw"));
    assert_eq!(host.header("x-rewrite-target-model"), None);
    assert_eq!(host.resumed, 1, "nothing to rewrite: the body streams");
    assert_eq!(
        flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert_eq!(host.body, BODY);
}

#[test]
fn store_failures_fall_back_to_weights_and_are_counted() {
    let worker = &mut FakeWorker::new(1);
    for reply in [
        Err(StoreError::Unavailable("timeout".into())),
        Ok(b"-ERR nope\r\n".to_vec()),
        Ok(b"<html>".to_vec()),
        Ok(mget(&[Some("1")])),
    ] {
        let mut flow = flow(CONFIG);
        let mut host = post(BODY);
        flow.on_request_headers(&mut host, false, worker);
        flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1));
        flow.on_store_reply(&mut host, reply, worker);
        assert!(host.header("x-selected-provider").is_some());
        assert_eq!(host.counted("ai_lb.fallback.store_error"), 1);
        assert_eq!(host.resumed, 1);
    }
}

/// One request on `worker` (its store record kept for the next request), at `now_ms`; when it
/// asks the store, `reply` answers. Returns the request's host.
fn request_on_worker(
    worker: &mut FakeWorker,
    now_ms: u64,
    reply: Result<Vec<u8>, StoreError>,
) -> FakeHost {
    worker.rng = Rng::new(now_ms);
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    host.now_ms = now_ms;
    if flow.on_request_headers(&mut host, false, worker) == Verdict::Pause {
        flow.on_store_reply(&mut host, reply, worker);
    }
    flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1));
    assert!(
        host.header("x-selected-provider").is_some(),
        "always routed"
    );
    host
}

#[test]
fn a_store_known_down_is_not_asked_until_one_request_retries_it() {
    let down = || Err(StoreError::Unavailable("connection refused".into()));
    let worker = &mut FakeWorker::new(0);
    // Three failures in a row (the default) each cost one ask.
    for now_ms in 0..3 {
        let host = request_on_worker(worker, now_ms, down());
        assert_eq!(host.sent.len(), 1);
        assert_eq!(host.counted("ai_lb.fallback.store_error"), 1);
    }
    // Then requests choose by weight at once, without pausing, until the retry is due.
    for now_ms in [3, 500, 1001] {
        let host = request_on_worker(worker, now_ms, down());
        assert!(
            host.sent.is_empty(),
            "asked a store known down at {now_ms} ms"
        );
        assert_eq!(host.counted("ai_lb.fallback.store_down"), 1);
        assert_eq!(host.resumed, 0);
    }
    // At 1002 ms one request asks; the store answers, and the next requests use loads again.
    let host = request_on_worker(worker, 1002, Ok(mget(&[Some("9"), Some("1"), Some("5")])));
    assert_eq!(host.sent.len(), 1);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    let host = request_on_worker(worker, 1003, Ok(mget(&[Some("1"), Some("9"), Some("5")])));
    assert_eq!(host.sent.len(), 1);
    assert_eq!(host.header("x-selected-provider"), Some("minmax"));
}

#[test]
fn an_unreadable_reply_does_not_count_the_store_down() {
    let worker = &mut FakeWorker::new(0);
    for now_ms in 0..10 {
        let host = request_on_worker(worker, now_ms, Ok(b"<html>".to_vec()));
        assert_eq!(host.sent.len(), 1, "asked at {now_ms} ms");
    }
}

#[test]
fn all_unknown_loads_fall_back_to_weights() {
    let (mut flow, mut host, mut worker) = awaiting_store(BODY);
    let worker = &mut worker;
    flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1));
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[None, Some("NaN"), Some("-3")])),
        worker,
    );
    assert_eq!(host.counted("ai_lb.fallback.all_unknown"), 1);
    let chosen = host.header("x-selected-provider").unwrap().to_string();
    let model = host.header("x-rewrite-target-model").map(str::to_string);
    match chosen.as_str() {
        "minmax" => assert_eq!(model.as_deref(), Some("MiniMax-M2.1")),
        "qianwen" => assert_eq!(model.as_deref(), Some("qwen3-max-preview")),
        _ => assert_eq!(model, None),
    }
}

#[test]
fn store_call_refused_at_once_picks_by_weight_without_pausing() {
    let worker = &mut FakeWorker::new(2);
    for _ in 0..20 {
        // A worker that has not yet seen the store fail (after three it stops asking).
        worker.store_outages = StoreOutages::default();
        let mut flow = flow(CONFIG);
        let mut host = post(BODY);
        host.refuse_send = true;
        assert_eq!(
            flow.on_request_headers(&mut host, false, worker),
            Verdict::Continue
        );
        assert!(host.sent.is_empty());
        assert_eq!(host.counted("ai_lb.fallback.store_error"), 1);
        let provider = host.header("x-selected-provider").map(str::to_string);
        assert_eq!(
            flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1)),
            Verdict::Continue
        );
        match provider.as_deref() {
            Some("minmax") => assert_eq!(host.body, expected_body("MiniMax-M2.1")),
            Some("qianwen") => assert_eq!(host.body, expected_body("qwen3-max-preview")),
            other => assert_eq!(other, Some("raw")),
        }
    }
}

#[test]
fn bad_bodies_are_forwarded_untouched_and_still_routed() {
    for body in [
        &br#"{"model":"auto","#[..],
        b"not json",
        br#"{"messages":[]}"#,
        br#"["model"]"#,
    ] {
        let mut flow = flow(CONFIG);
        let mut host = post(body);
        let worker = &mut FakeWorker::new(1);
        flow.on_request_headers(&mut host, false, worker);
        flow.on_request_body(&mut host, body.len(), true, &mut FakeWorker::new(1));
        flow.on_store_reply(
            &mut host,
            Ok(mget(&[Some("1"), Some("2"), Some("3")])),
            worker,
        );
        assert_eq!(host.header("x-selected-provider"), Some("minmax"));
        assert_eq!(host.body, body);
        assert_eq!(
            host.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(host.counted("ai_lb.rewrite.skipped"), 1);
        assert_eq!(host.resumed, 1);
    }
}

#[test]
fn requests_without_body_pass_untouched_without_a_store_read() {
    let mut flow = flow(CONFIG);
    let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/v1/models")]);
    let worker = &mut FakeWorker::new(1);
    assert_eq!(
        flow.on_request_headers(&mut host, true, worker),
        Verdict::Continue
    );
    assert!(host.sent.is_empty());
    assert_eq!(host.route_cache_cleared, 0);
    assert_eq!(host.counted("ai_lb.requests.passthrough"), 1);
}

#[test]
fn unbalanced_request_still_loses_client_routing_header() {
    let mut flow = flow(CONFIG);
    let mut host = FakeHost::request(&[(":method", "GET"), ("x-selected-provider", "minmax")]);
    flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1));
    assert_eq!(host.header("x-selected-provider"), None);
    assert_eq!(
        host.route_cache_cleared, 1,
        "re-match without the client's header"
    );
}

const RULES: &str = r#"{
  "redis": {"cluster": "webdis", "protocol": "webdis"},
  "_rules_": [{"_match_route_": ["chat"], "providers": [{"name": "a", "key": "ka", "model": "m"}]}]
}"#;

#[test]
fn rules_pick_the_configuration_and_unmatched_requests_pass_through() {
    let worker = &mut FakeWorker::new(1);
    let mut flow_chat = flow(RULES);
    let mut chat = post(BODY);
    chat.properties.insert("route_name".into(), "chat".into());
    assert_eq!(
        flow_chat.on_request_headers(&mut chat, false, worker),
        Verdict::Pause
    );
    assert_eq!(chat.sent.len(), 1);

    let mut flow_other = flow(RULES);
    let mut other = post(BODY);
    other
        .properties
        .insert("route_name".into(), "embeddings".into());
    assert_eq!(
        flow_other.on_request_headers(&mut other, false, worker),
        Verdict::Continue
    );
    assert!(other.sent.is_empty());
    assert_eq!(
        flow_other.on_request_body(&mut other, BODY.len(), true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert_eq!(other.body, BODY);
}

#[test]
fn another_configurations_control_headers_are_removed_from_a_balanced_request() {
    let config = r#"{
      "providers": [{"name": "g", "key": "kg", "model": "mg"}],
      "redis": {"cluster": "webdis", "protocol": "webdis"},
      "_rules_": [{"_match_route_": ["chat"], "selected_provider_header": "x-pool",
                   "rewrite_model_header": "x-pool-model",
                   "providers": [{"name": "a", "key": "ka"}]}]
    }"#;
    let worker = &mut FakeWorker::new(1);
    let mut flow = flow(config);
    let mut host = post(BODY);
    host.set_request_header("x-pool", "a");
    host.set_request_header("x-pool-model", "evil");
    host.set_request_header("x-rewrite-target-model", "evil");
    assert_eq!(
        flow.on_request_headers(&mut host, false, worker),
        Verdict::Pause
    );
    assert_eq!(host.header("x-pool"), None);
    assert_eq!(host.header("x-pool-model"), None);
    flow.on_store_reply(&mut host, Ok(mget(&[Some("1")])), worker);
    assert_eq!(host.header("x-selected-provider"), Some("g"));
    assert_eq!(host.header("x-rewrite-target-model"), Some("mg"));

    // The rule's provider has no model: a client's model header is removed, not kept.
    let mut flow = self::flow(config);
    let mut host = post(BODY);
    host.properties.insert("route_name".into(), "chat".into());
    host.set_request_header("x-pool-model", "evil");
    flow.on_request_headers(&mut host, false, worker);
    flow.on_store_reply(&mut host, Ok(mget(&[Some("1")])), worker);
    assert_eq!(host.header("x-pool"), Some("a"));
    assert_eq!(host.header("x-pool-model"), None);
}

#[test]
fn late_reply_after_release_changes_nothing() {
    let (mut flow, mut host, mut worker) = awaiting_store(BODY);
    let worker = &mut worker;
    flow.on_request_body(&mut host, BODY.len(), true, &mut FakeWorker::new(1));
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("1"), Some("2"), Some("3")])),
        worker,
    );
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("9"), Some("1"), Some("3")])),
        worker,
    );
    assert_eq!(host.header("x-selected-provider"), Some("minmax"));
    assert_eq!(host.resumed, 1);
}

#[test]
fn body_over_the_limit_before_the_reply_is_held_then_released_untouched() {
    let big = oversized_body();
    let (mut flow, mut host, mut worker) = awaiting_store(big.as_bytes());
    let worker = &mut worker;
    // No provider yet: even past the limit the body is held, so nothing leaves unrouted.
    assert_eq!(
        flow.on_request_body(&mut host, 80, false, &mut FakeWorker::new(1)),
        Verdict::Pause
    );
    flow.on_store_reply(
        &mut host,
        Ok(mget(&[Some("5"), Some("2"), Some("3")])),
        worker,
    );
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(host.resumed, 1);
    assert_eq!(
        flow.on_request_body(&mut host, big.len(), true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert_eq!(host.body, big.as_bytes());
    assert_eq!(
        host.header("content-length"),
        Some(big.len().to_string().as_str())
    );
}

const BACKGROUND: &str = r#"
providers:
- {name: minmax, key: minimax_1, model: MiniMax-M2.1}
- {name: qianwen, key: qwen_1, model: qwen3-max-preview}
redis: {cluster: webdis, protocol: webdis, refresh: background, refresh_interval_ms: 100, max_age_ms: 300}
"#;

/// A POST under background refresh, with `loads` published at `published_at_ms` (if any).
fn background_post(loads: Option<(u64, Vec<Option<f64>>)>, now_ms: u64) -> (RequestFlow, FakeHost) {
    let loads = loads.map(|(at, loads)| {
        let loads = loads.into_iter().map(|l| l.map(crate::load::Load::running));
        (at, loads.collect())
    });
    let flow = flow(BACKGROUND);
    let mut host = post(BODY);
    host.now_ms = now_ms;
    if let Some((fetched_at_ms, loads)) = loads {
        let config = flow.plugin.global.as_ref().unwrap();
        let snapshot = crate::background::Snapshot {
            fetched_at_ms,
            loads,
        };
        host.shared.insert(
            config.store().unwrap().shared_keys.loads.clone(),
            snapshot.encode(),
        );
    }
    (flow, host)
}

#[test]
fn background_refresh_decides_at_the_headers_without_asking_the_store() {
    let (mut flow, mut host) = background_post(Some((1_000, vec![Some(90.0), Some(10.0)])), 1_300);
    let verdict = flow.on_request_headers(&mut host, false, &mut FakeWorker::new(1));
    assert_eq!(
        verdict,
        Verdict::Continue,
        "headers go at once; the body is buffered"
    );
    assert!(host.sent.is_empty(), "no store call on the request path");
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(
        host.header("content-length"),
        None,
        "the rewrite may change the length"
    );
    let size = host.body.len();
    assert_eq!(
        flow.on_request_body(&mut host, size, true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert!(host.body.starts_with(br#"{"model":"qwen3-max-preview""#));
    assert_eq!(host.counted("ai_lb.fallback.stale_loads"), 0);
}

#[test]
fn background_loads_too_old_or_never_published_fall_back_to_weights() {
    for (published, now_ms) in [
        (Some((1_000, vec![Some(90.0), Some(10.0)])), 1_301),
        (None, 5),
    ] {
        let (mut flow, mut host) = background_post(published, now_ms);
        flow.on_request_headers(&mut host, false, &mut FakeWorker::new(1));
        assert!(host.sent.is_empty());
        assert!(host.header("x-selected-provider").is_some(), "still routed");
        assert_eq!(host.counted("ai_lb.fallback.stale_loads"), 1);
        assert_eq!(host.counted("ai_lb.fallback.store_error"), 0);
    }
}

#[path = "pool_tests.rs"]
mod pools;

#[path = "backends_tests.rs"]
mod backends_in_flow;

#[path = "rate_limit_tests.rs"]
mod rate_limit_tests;
