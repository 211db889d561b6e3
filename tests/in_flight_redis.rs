#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should stop the test loudly
//! In-flight counting across gateway replicas (Higress build): the counts live in a real Redis,
//! so one worker's open requests steer another worker's picks, a finished request stops
//! counting, and a dead worker's leaked counts are dropped.

mod host;

use host::{reading, redis_section, BodyDelivery, Build, Host, RedisServer};
use serde_json::json;

const BODY: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

fn config() -> String {
    json!({
        "providers": [{"name": "a", "model": "ma"}, {"name": "b", "model": "mb"}],
        "load_source": "in_flight",
        "in_flight": {"scope": "replicas"},
        "redis": redis_section(Build::Higress),
    })
    .to_string()
}

/// Sends one chat request on `vm` and returns (stream id, chosen provider).
fn chat(host: &mut Host, vm: usize) -> (u32, String) {
    let (request, provider) = host.vm(vm).chat(BODY);
    (request, provider.expect("routed"))
}

fn field_count(redis: &RedisServer, key: &str) -> usize {
    let reply = redis.command(&["HLEN", key]);
    String::from_utf8_lossy(&reply)
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn open_requests_on_one_worker_steer_the_other_until_they_end() {
    let redis = RedisServer::start();
    let (host, _) = reading(Build::Higress, &redis);
    let mut host = host.body_delivery(BodyDelivery::WhileHeadersPaused);
    let first_vm = host.start_vm(&config()).expect("configured");
    let second_vm = host.start_vm(&config()).expect("configured");
    let (open, busy) = chat(&mut host, first_vm);
    // The other worker sees the open request in Redis and goes to the idle provider, three times.
    let mut others = Vec::new();
    for _ in 0..3 {
        let (request, provider) = chat(&mut host, second_vm);
        assert_ne!(
            provider, busy,
            "the busy provider is avoided while the request is open"
        );
        host.vm(second_vm).finish(request);
        host.vm(second_vm).deliver_redis_replies();
        others.push(provider);
    }
    // Once the first request ends, its provider is idle again: a tie, so both get picked.
    host.vm(first_vm).finish(open);
    host.vm(first_vm).deliver_redis_replies();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (request, provider) = chat(&mut host, second_vm);
        host.vm(second_vm).finish(request);
        host.vm(second_vm).deliver_redis_replies();
        seen.insert(provider);
    }
    assert_eq!(
        seen.len(),
        2,
        "both providers are picked once nothing is open"
    );
}

#[test]
fn a_dead_workers_counts_are_dropped_on_read() {
    let redis = RedisServer::start();
    // A worker that died with 50 requests open on `a`, last seen at the epoch.
    redis.command(&["HSET", "ai_metric:inflight:a", "00000000000dead0", "50"]);
    redis.command(&[
        "HSET",
        "ai_metric:inflight:workers",
        "00000000000dead0",
        "0",
    ]);
    let (host, _) = reading(Build::Higress, &redis);
    let mut host = host.body_delivery(BodyDelivery::WhileHeadersPaused);
    let vm = host.start_vm(&config()).expect("configured");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (request, provider) = chat(&mut host, vm);
        host.vm(vm).finish(request);
        host.vm(vm).deliver_redis_replies();
        seen.insert(provider);
    }
    assert_eq!(seen.len(), 2, "the dead worker's 50 on `a` do not count");
    assert_eq!(
        field_count(&redis, "ai_metric:inflight:a"),
        1,
        "only this worker's field is left on a"
    );
}
