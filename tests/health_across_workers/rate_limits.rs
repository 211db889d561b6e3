//! Rate-limit headers across workers: a low budget one worker reads in an answer steers another
//! worker's next pick away until its reset, without a write while budgets are plentiful; with
//! a key pool, a low key is avoided by every worker and the provider only once all keys are low.

use std::time::Duration;

use serde_json::json;

use super::{failover, gateway, open, open_with, provider, routed_to};
use super::{Action, Build, Host, Vm, MINMAX_MODEL, QIANWEN_MODEL};

const TOKEN_A: &str = "sk-aaaaaaaaaaaa1111";
const TOKEN_B: &str = "sk-bbbbbbbbbbbb2222";

/// minmax first (failover), then qianwen; pools watch remaining requests below 1.
fn config(minmax_tokens: Option<[&str; 2]>) -> serde_json::Value {
    let mut minmax = provider("minmax", MINMAX_MODEL);
    if let Some(tokens) = minmax_tokens {
        minmax["api_tokens"] = json!(tokens);
    }
    failover(
        json!([minmax, provider("qianwen", QIANWEN_MODEL)]),
        json!({"rate_limits": {"min_remaining_requests": 1}}),
    )
}

/// The upstream answers 200 with `headers`; the client gets it and the stream ends.
fn answer(vm: &mut Vm, request: u32, headers: &[(&str, &str)]) {
    let mut all = vec![(":status", "200")];
    all.extend_from_slice(headers);
    assert_eq!(
        vm.send_response_headers(request, &all, false),
        Action::Continue
    );
    assert_eq!(
        vm.send_response_body(request, super::ANSWER, true),
        Action::Continue
    );
    vm.finish(request);
}

/// A whole exchange on worker `vm`: where it went, and the credential it carried.
fn exchange(host: &mut Host, vm: usize, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let vm = host.vm(vm);
    let request = open(vm);
    let provider = routed_to(vm, request);
    let token = vm
        .stream(request)
        .upstream_header("authorization")
        .map(|value| value.trim_start_matches("Bearer ").to_string());
    answer(vm, request, headers);
    (provider, token)
}

fn record(host: &Host, provider: &str) -> Option<String> {
    host.shared_data(&format!("ai_lb/ratelimit/{provider}"))
        .map(|(bytes, _)| String::from_utf8(bytes).expect("a text record"))
}

pub fn a_low_budget_read_by_one_worker_steers_another_until_its_reset(build: Build) {
    let mut host = gateway(build, &config(None), 2, &[]);
    let plenty = [
        ("x-ratelimit-remaining-requests", "99"),
        ("x-ratelimit-reset-requests", "1s"),
    ];
    assert_eq!(exchange(&mut host, 0, &plenty).0, "minmax");
    assert_eq!(record(&host, "minmax"), None, "plenty: nothing written");

    let last = [
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "2m0s"),
        ("x-ratelimit-remaining-tokens", "5000"),
    ];
    assert_eq!(exchange(&mut host, 0, &last).0, "minmax");
    assert_eq!(host.metric("ai_lb.provider.minmax.rate_limited"), 1);
    let text = record(&host, "minmax").expect("a record");
    assert!(text.starts_with("r1;- 0 "), "{text}");

    for vm in [1, 0, 1] {
        assert_eq!(exchange(&mut host, vm, &[]).0, "qianwen", "minmax is low");
    }
    assert_eq!(host.metric("ai_lb.provider.qianwen.rate_limited_picked"), 0);

    // qianwen runs low too: the pool still answers, on its strategy's first choice.
    assert_eq!(exchange(&mut host, 1, &last).0, "qianwen");
    assert_eq!(exchange(&mut host, 0, &[]).0, "minmax");
    assert_eq!(host.metric("ai_lb.provider.minmax.rate_limited_picked"), 1);

    host.advance(Duration::from_secs(121));
    assert_eq!(exchange(&mut host, 1, &plenty).0, "minmax", "reset passed");
    assert_eq!(host.metric("ai_lb.provider.minmax.rate_limited_picked"), 1);
    let text = record(&host, "minmax").unwrap_or_default();
    assert_eq!(text, "r1", "the budget came back: its entry is gone");
}

pub fn a_low_key_is_avoided_by_every_worker_and_its_provider_once_all_are(build: Build) {
    let mut host = gateway(build, &config(Some([TOKEN_A, TOKEN_B])), 2, &[]);
    // Anthropic's form; a reset years away is read as an hour.
    let low = [
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2099-01-01T00:00:00Z"),
    ];
    let (provider, first) = exchange(&mut host, 0, &low);
    assert_eq!(provider, "minmax");
    let first = first.expect("a pooled key");
    assert_eq!(host.metric("ai_lb.provider.minmax.rate_limited"), 1);
    for index in 0..10 {
        let (provider, token) = exchange(&mut host, index % 2, &[]);
        assert_eq!(provider, "minmax", "the other key has budget");
        assert_ne!(
            token.as_deref(),
            Some(first.as_str()),
            "the low key is left"
        );
    }
    let (_, second) = exchange(&mut host, 1, &low);
    assert_ne!(second, Some(first));
    assert_eq!(host.metric("ai_lb.provider.minmax.rate_limited"), 2);
    let vm = host.vm(0);
    let request = open_with(vm, "/v1/chat/completions", &[]);
    assert_eq!(
        routed_to(vm, request),
        "qianwen",
        "every key of minmax is low"
    );
    answer(vm, request, &[]);
    host.advance(Duration::from_secs(3_601));
    assert_eq!(exchange(&mut host, 1, &[]).0, "minmax", "capped at an hour");
}
