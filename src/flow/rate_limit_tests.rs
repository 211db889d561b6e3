//! Rate-limit headers in the request flow: a low budget told by one answer steers the next
//! pick away (softly), a key pool prefers keys with budget, and a budget with room costs no
//! write.

use super::*;
use crate::ratelimit::rate_limit_key;

const CONFIG: &str = r#"
providers:
- {name: a, model: ma}
- {name: b, model: mb}
load_source: none
strategy: failover
rate_limits: {min_remaining_requests: 2}
"#;

const KEYS: &str = r#"
providers:
- {name: a, model: ma, api_tokens: [sk-a-key-number-one, sk-a-key-number-two]}
- {name: b, model: mb}
load_source: none
strategy: failover
rate_limits: {min_remaining_requests: 1}
"#;

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
const NOW: u64 = 1_000_000;

/// One request on `shared` at `now_ms`, answered 200 with `answer` headers: the host after.
fn exchange(
    config: &str,
    shared: &BTreeMap<String, Vec<u8>>,
    now_ms: u64,
    answer: &[(&str, &str)],
) -> FakeHost {
    let mut flow = flow(config);
    let mut host = post(CHAT);
    host.shared = shared.clone();
    host.now_ms = now_ms;
    let worker = &mut FakeWorker::new(3);
    send_whole(&mut flow, &mut host, worker);
    host.response_headers.insert(":status".into(), "200".into());
    for (name, value) in answer {
        host.response_headers
            .insert(name.to_string(), value.to_string());
    }
    flow.on_response_headers(&mut host, false, worker);
    host
}

fn to(host: &FakeHost) -> &str {
    host.header("x-selected-provider").unwrap_or_default()
}

#[test]
fn a_low_budget_steers_the_next_pick_away_until_its_reset() {
    let shared = BTreeMap::new();
    let plenty = [("x-ratelimit-remaining-requests", "40")];
    let host = exchange(CONFIG, &shared, NOW, &plenty);
    assert_eq!(to(&host), "a");
    assert!(host.shared.is_empty(), "plenty of budget: nothing written");
    let low = [
        ("x-ratelimit-remaining-requests", "1"),
        ("x-ratelimit-reset-requests", "2s"),
    ];
    let host = exchange(CONFIG, &shared, NOW, &low);
    assert_eq!(host.counted("ai_lb.provider.a.rate_limited"), 1);
    assert!(host.shared.contains_key(&rate_limit_key("a")));
    let next = exchange(CONFIG, &host.shared, NOW + 1_000, &[]);
    assert_eq!(to(&next), "b", "a is below its floor");
    assert_eq!(next.counted("ai_lb.provider.b.rate_limited_picked"), 0);
    let after_reset = exchange(CONFIG, &host.shared, NOW + 2_000, &[]);
    assert_eq!(to(&after_reset), "a", "its reset has passed");
}

#[test]
fn when_every_backend_is_low_the_pool_still_picks_and_counts_it() {
    let low = [
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "1m"),
    ];
    let mut shared = BTreeMap::new();
    for _ in 0..2 {
        let host = exchange(CONFIG, &shared, NOW, &low);
        shared = host.shared;
    }
    let record = |name: &str| shared.contains_key(&rate_limit_key(name));
    assert!(record("a") && record("b"), "{shared:?}");
    let host = exchange(CONFIG, &shared, NOW + 1, &[]);
    assert_eq!(
        to(&host),
        "a",
        "the strategy's own choice among the low ones"
    );
    assert_eq!(host.counted("ai_lb.provider.a.rate_limited_picked"), 1);
}

#[test]
fn a_key_pool_prefers_keys_with_budget_and_the_provider_is_low_only_when_all_are() {
    let low = [
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "30s"),
    ];
    let first = exchange(KEYS, &BTreeMap::new(), NOW, &low);
    assert_eq!(to(&first), "a");
    let spent = first
        .header("authorization")
        .unwrap_or_default()
        .to_string();
    for at in 1..20 {
        let host = exchange(KEYS, &first.shared, NOW + at, &[]);
        assert_eq!(to(&host), "a", "another key still has budget");
        assert_ne!(host.header("authorization"), Some(spent.as_str()));
    }
    let second = exchange(KEYS, &first.shared, NOW + 1, &low);
    assert_eq!(second.counted("ai_lb.provider.a.rate_limited"), 1);
    let host = exchange(KEYS, &second.shared, NOW + 2, &[]);
    assert_eq!(to(&host), "b", "every key of a is low");
}

#[test]
fn without_rate_limits_the_headers_are_not_read() {
    let config = CONFIG.replace("rate_limits: {min_remaining_requests: 2}\n", "");
    let low = [("x-ratelimit-remaining-requests", "0")];
    let host = exchange(&config, &BTreeMap::new(), NOW, &low);
    assert!(host.shared.is_empty());
    let next = exchange(&config, &host.shared, NOW + 1, &[]);
    assert_eq!(to(&next), "a");
}

#[test]
fn a_retry_reply_tells_its_provider_budget_too() {
    let config = r#"
providers:
- {name: a, model: ma, cluster: a_cluster}
- {name: b, model: mb, cluster: b_cluster}
load_source: none
strategy: failover
rate_limits: {min_remaining_requests: 1}
retry: {max_retries: 1}
"#;
    let mut flow = flow(config);
    let mut host = post(CHAT);
    host.now_ms = NOW;
    let worker = &mut FakeWorker::new(3);
    send_whole(&mut flow, &mut host, worker);
    assert_eq!(to(&host), "a");
    for (name, value) in [
        (":status", "429"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "20s"),
    ] {
        host.response_headers
            .insert(name.to_string(), value.to_string());
    }
    assert_eq!(
        flow.on_response_headers(&mut host, false, worker),
        Verdict::Pause
    );
    assert_eq!(host.dispatched.len(), 1, "retried on b");
    let reply = crate::call::CallReply {
        status: Some(200),
        headers: vec![
            (":status".into(), "200".into()),
            ("anthropic-ratelimit-requests-remaining".into(), "0".into()),
            (
                "anthropic-ratelimit-requests-reset".into(),
                "2099-01-01T00:00:00Z".into(),
            ),
        ],
        body: b"{}".to_vec(),
    };
    flow.on_call_reply(&mut host, reply, worker);
    assert_eq!(host.responded.len(), 1, "the retry's reply answered");
    for provider in ["a", "b"] {
        assert_eq!(
            host.counted(&format!("ai_lb.provider.{provider}.rate_limited")),
            1
        );
        assert!(host.shared.contains_key(&rate_limit_key(provider)));
    }
}
