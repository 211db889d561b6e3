#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The per-request load sources beyond one key per provider, in the test host: a Redis hash per
//! provider read by one EVAL (both builds: a real Redis through Higress's calls, or a real Webdis
//! with the script in its URL), and an HTTP JSON endpoint answering every provider at once.

mod host;

use host::{
    both_builds, reading, redis_section, BodyDelivery, Build, Host, HttpReply, RedisServer,
};
use serde_json::json;

const BODY: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

/// Sends one chat request and returns the provider it was routed to.
fn route(host: &mut Host, vm: usize) -> String {
    host.vm(vm).chat(BODY).1.expect("routed")
}

fn hashes_steer_inference_score(build: Build) {
    let redis = RedisServer::start();
    let (host, _webdis) = reading(build, &redis);
    let mut host = host.body_delivery(BodyDelivery::WhileHeadersPaused);
    let mut redis_section = redis_section(build);
    redis_section["load_format"] = json!("hash");
    redis_section["hash_fields"] = json!({"waiting": "queue"});
    let config = json!({
        "providers": [{"name": "a", "model": "ma"}, {"name": "b", "model": "mb"}],
        "strategy": {"name": "inference_score", "candidate_percent": 50},
        "redis": redis_section,
    });
    let vm = host.start_vm(&config.to_string()).expect("configured");
    // Same running requests; `a` has a long prefill queue, so seed 001's score prefers `b`.
    redis.command(&[
        "HSET",
        "ai_metric:a",
        "running",
        "4",
        "queue",
        "9",
        "cache_ratio",
        "0.1",
    ]);
    redis.command(&[
        "HSET",
        "ai_metric:b",
        "running",
        "4",
        "queue",
        "0",
        "cache_ratio",
        "0.1",
    ]);
    for _ in 0..5 {
        assert_eq!(route(&mut host, vm), "b");
    }
    // The queue moves to `b` and `a`'s prefix cache warms up: `a` wins.
    redis.command(&["HSET", "ai_metric:a", "queue", "0", "cache_ratio", "0.9"]);
    redis.command(&["HSET", "ai_metric:b", "queue", "9"]);
    for _ in 0..5 {
        assert_eq!(route(&mut host, vm), "a");
    }
    assert_eq!(host.metric("ai_lb.fallback.store_error"), 0);
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 0);
}

both_builds!(hashes_steer_inference_score);

#[test]
fn an_http_endpoint_gives_every_providers_load_in_one_get() {
    let mut host = Host::new(Build::Envoy)
        .body_delivery(BodyDelivery::AfterHeadersResume)
        .cluster("metadata-center", None);
    let config = json!({
        "providers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "load_source": "endpoint",
        "endpoint": {"cluster": "metadata-center", "path": "/v1/loads"},
    });
    let vm = host.start_vm(&config.to_string()).expect("configured");
    let answers = [
        (
            json!({"a": {"running": 9}, "b": {"running": 2, "waiting": 5}, "c": {"running": 3}}),
            "c",
        ),
        (
            json!({"providers": {"a": {"running_requests": 0}, "b": {"request_load": 1}}}),
            "a",
        ),
    ];
    for (answer, expected) in answers {
        let vm_ref = host.vm(vm);
        let request = vm_ref.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        vm_ref.send_headers(request, false);
        let calls: Vec<_> = vm_ref
            .http_calls()
            .iter()
            .map(|call| (call.token, call.cluster.clone(), call.headers.clone()))
            .collect();
        let (token, cluster, headers) = calls.last().cloned().expect("one GET");
        assert_eq!(cluster, "metadata-center");
        assert!(headers.contains(&(":path".to_string(), "/v1/loads".to_string())));
        let body = answer.to_string();
        vm_ref.answer_http_call(token, Some(HttpReply::new(200, body.as_bytes())));
        vm_ref.send_body(request, BODY, true);
        let routed = vm_ref
            .stream(request)
            .upstream_header("x-selected-provider");
        assert_eq!(routed, Some(expected), "{answer}");
    }
}
