//! Retry on another provider (`retry`): a failing upstream response is held; the client's
//! request goes again, by a call the filter dispatches itself, to another provider's cluster
//! (path through that provider's `prefix_rewrite`, model rewritten for it, its own token); a
//! useful reply answers the client; when retries run out, the original response goes on.

use std::time::Duration;

use serde_json::json;

use super::{failover, gateway, health, open_with, provider, routed_to, Action, Build, Host};
use super::{Value, Vm, CHAT, MINMAX_MODEL, QIANWEN_MODEL};
use crate::host::HttpReply;

const MINMAX_CLUSTER: &str = "outbound|80||minmax";
const QIANWEN_CLUSTER: &str = "outbound|80||qianwen";
const MINMAX_TOKEN: &str = "sk-minmax-token-0001";
const QIANWEN_TOKEN: &str = "sk-qianwen-token-002";
const CLIENT_CREDENTIALS: &str = "Bearer sk-client-own-key";
const FAILED: &[u8] = br#"{"error":{"message":"overloaded"}}"#;

/// minmax first; both reachable by the filter, each behind its own path prefix and token.
fn config() -> Value {
    let mut minmax = provider("minmax", MINMAX_MODEL);
    minmax["cluster"] = json!(MINMAX_CLUSTER);
    minmax["prefix_rewrite"] = json!({"from": "/masgod/", "to": "/"});
    minmax["api_tokens"] = json!([MINMAX_TOKEN]);
    let mut qianwen = provider("qianwen", QIANWEN_MODEL);
    qianwen["cluster"] = json!(QIANWEN_CLUSTER);
    qianwen["prefix_rewrite"] = json!({"from": "/masgod/", "to": "/compatible-mode/"});
    qianwen["api_tokens"] = json!([QIANWEN_TOKEN]);
    qianwen["token_header"] = json!("x-api-key");
    failover(
        json!([minmax, qianwen]),
        json!({"retry": {"max_retries": 1}, "health": {"probe": false}}),
    )
}

fn gateway_with_retry(build: Build) -> Host {
    gateway(build, &config(), 2, &[MINMAX_CLUSTER, QIANWEN_CLUSTER])
}

/// A client's request through `vm`, answered by minmax with a 503 that the filter holds;
/// returns the request and the retry's token.
fn failed_at_minmax(vm: &mut Vm) -> (u32, u32) {
    let request = open_with(
        vm,
        "/masgod/v1/chat/completions",
        &[
            ("authorization", CLIENT_CREDENTIALS),
            ("x-request-id", "req-7"),
        ],
    );
    assert_eq!(routed_to(vm, request), "minmax");
    assert_eq!(
        vm.stream(request).upstream_header("authorization"),
        Some(format!("Bearer {MINMAX_TOKEN}").as_str())
    );
    let headers = [(":status", "503"), ("content-type", "application/json")];
    assert_eq!(
        vm.send_response_headers(request, &headers, false),
        Action::Pause,
        "the failed response is held"
    );
    assert_eq!(vm.send_response_body(request, FAILED, true), Action::Pause);
    assert!(vm.stream(request).downstream_body.is_empty());
    let calls = vm.http_calls();
    assert_eq!(calls.len(), 1, "one retry out: {calls:?}");
    (request, calls[0].token)
}

pub fn a_failed_response_is_held_and_answered_by_another_provider(build: Build) {
    let mut host = gateway_with_retry(build);
    let vm = host.vm(0);
    let (request, retry) = failed_at_minmax(vm);

    let call = vm.http_calls()[0].clone();
    assert_eq!(call.cluster, QIANWEN_CLUSTER);
    assert_eq!(call.header(":method"), Some("POST"));
    assert_eq!(
        call.header(":path"),
        Some("/compatible-mode/v1/chat/completions")
    );
    assert_eq!(call.header(":authority"), Some("gateway.local"));
    assert_eq!(call.header("x-api-key"), Some(QIANWEN_TOKEN));
    assert_eq!(
        call.header("authorization"),
        None,
        "a pooled provider gets neither the client's credential nor minmax's token"
    );
    assert_eq!(call.header("x-request-id"), Some("req-7"));
    assert_eq!(call.header("content-type"), Some("application/json"));
    for routing in [
        "x-selected-provider",
        "x-rewrite-target-model",
        "content-length",
    ] {
        assert_eq!(call.header(routing), None, "{routing} is not re-sent");
    }
    let body: Value = serde_json::from_slice(&call.body).expect("a JSON body");
    let mut expected: Value = serde_json::from_slice(CHAT).expect("JSON");
    expected["model"] = json!(QIANWEN_MODEL);
    assert_eq!(
        body, expected,
        "the model rewritten for qianwen, the rest as sent"
    );
    assert_eq!(
        call.timeout,
        Duration::from_secs(30),
        "the whole budget is left"
    );

    let answer = br#"{"id":"chatcmpl-9","choices":[{"message":{"content":"from qianwen"}}]}"#;
    let mut reply = HttpReply::new(200, answer);
    reply.headers = vec![
        ("content-type".into(), "application/json".into()),
        ("x-mock-provider".into(), "qianwen".into()),
        ("connection".into(), "close".into()),
    ];
    vm.answer_http_call(retry, Some(reply));
    let stream = vm.stream(request);
    let response = stream
        .local_response
        .as_ref()
        .expect("the retry's reply answers the client");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, answer);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(header("x-mock-provider"), Some("qianwen"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("connection"), None, "hop-by-hop headers stay behind");
    assert!(stream.downstream_body.is_empty(), "nothing of minmax's 503");
    vm.finish(request);

    assert_eq!(host.metric("ai_lb.retry.sent"), 1);
    assert_eq!(host.metric("ai_lb.retry.recovered"), 1);
    assert_eq!(host.metric("ai_lb.provider.qianwen.retried"), 1);
    assert_eq!(
        health(&host, "minmax"),
        ('H', 1),
        "minmax's failure counted"
    );
    assert_eq!(health(&host, "qianwen"), ('H', 0));
}

pub fn when_the_retry_fails_too_the_original_response_goes_on(build: Build) {
    let mut host = gateway_with_retry(build);
    // qianwen answers the retry with a 503 too: with max_retries 1 the client gets minmax's.
    let vm = host.vm(0);
    let (request, retry) = failed_at_minmax(vm);
    vm.answer_http_call(retry, Some(HttpReply::new(503, b"{}")));
    let stream = vm.stream(request);
    assert!(
        stream.local_response.is_none(),
        "{:?}",
        stream.local_response
    );
    assert_eq!(
        stream.downstream_body, FAILED,
        "the original response, resumed"
    );
    vm.finish(request);
    assert_eq!(host.metric("ai_lb.retry.exhausted"), 1);
    assert_eq!(host.metric("ai_lb.retry.recovered"), 0);
    assert_eq!(health(&host, "qianwen"), ('H', 1), "qianwen's 503 counted");

    // On worker 1, the retry gets no response at all (reset): a failure of qianwen too.
    for round in 2..=3 {
        let vm = host.vm(1);
        let (request, retry) = failed_at_minmax(vm);
        vm.answer_http_call(retry, None);
        let stream = vm.stream(request);
        assert!(stream.local_response.is_none());
        assert_eq!(stream.downstream_body, FAILED);
        vm.finish(request);
        assert_eq!(host.metric("ai_lb.retry.exhausted"), round);
    }
    // Three failures in a row each: both ejected, the third of each by those two requests.
    assert_eq!(health(&host, "minmax").0, 'E');
    assert_eq!(health(&host, "qianwen").0, 'E');
    assert_eq!(host.metric("ai_lb.provider.qianwen.ejected"), 1);
    assert_eq!(host.metric("ai_lb.provider.qianwen.retried"), 3);
}
