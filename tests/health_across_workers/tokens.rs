//! API-key pools: each request carries a random usable token of its provider; a token refused
//! `failure_threshold` times is left out by every worker until a probe sent with it succeeds;
//! no secret ever reaches a log line, a stat name or shared data.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{failover, gateway_logging, open_with, provider, respond, routed_to};
use super::{Build, Host, Value, MINMAX_MODEL, QIANWEN_MODEL};
use crate::host::HttpReply;

const TOKEN_A: &str = "sk-aaaaaaaaaaaa1111";
const TOKEN_B: &str = "sk-bbbbbbbbbbbb2222";

/// minmax has the two tokens and a cluster (probes every second); qianwen has neither.
fn config(token_header: Option<&str>) -> Value {
    let mut minmax = provider("minmax", MINMAX_MODEL);
    minmax["cluster"] = json!("minmax");
    minmax["api_tokens"] = json!([TOKEN_A, TOKEN_B]);
    if let Some(header) = token_header {
        minmax["token_header"] = json!(header);
    }
    failover(
        json!([minmax, provider("qianwen", QIANWEN_MODEL)]),
        json!({"health": {"probe": {"interval_ms": 1000, "timeout_ms": 500}}}),
    )
}

/// A request through worker `vm` with the client's own credentials: the token minmax got
/// (the request must go to minmax). It stays open.
fn request_token(host: &mut Host, vm: usize) -> (u32, String) {
    let vm = host.vm(vm);
    let request = open_with(
        vm,
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-client-own-key")],
    );
    assert_eq!(routed_to(vm, request), "minmax");
    let credentials = vm
        .stream(request)
        .upstream_header("authorization")
        .expect("credentials");
    let token = credentials
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("{credentials:?} is not a bearer token"));
    assert!(
        token == TOKEN_A || token == TOKEN_B,
        "the client's token is overwritten"
    );
    (request, token.to_string())
}

/// How many of `count` requests (alternating workers, each answered 200) used each token.
fn token_use(host: &mut Host, count: usize) -> BTreeMap<String, usize> {
    let mut used = BTreeMap::new();
    for index in 0..count {
        let (request, token) = request_token(host, index % 2);
        super::respond(host.vm(index % 2), request, "200");
        *used.entry(token).or_insert(0) += 1;
    }
    used
}

pub fn each_request_uses_a_random_token_and_a_refused_one_is_probed_back(build: Build) {
    // Trace logs on, so that every line the filter can write is searched for the secrets.
    let mut host = gateway_logging(build, &config(None), 2, &["minmax"], 0);
    let used = token_use(&mut host, 40);
    assert!(
        used.get(TOKEN_A) >= Some(&10) && used.get(TOKEN_B) >= Some(&10),
        "both tokens in use: {used:?}"
    );

    // minmax refuses token A (401); B keeps working. A's third refusal makes it unavailable.
    let mut refusals = 0;
    for index in 0..60 {
        if host.metric("ai_lb.provider.minmax.token_unavailable") == 1 {
            break;
        }
        let (request, token) = request_token(&mut host, index % 2);
        let refused = token == TOKEN_A;
        refusals += usize::from(refused);
        respond(
            host.vm(index % 2),
            request,
            if refused { "401" } else { "200" },
        );
    }
    assert_eq!(refusals, 3, "failure_threshold refusals");
    assert_eq!(host.metric("ai_lb.provider.minmax.token_unavailable"), 1);
    let used = token_use(&mut host, 20);
    assert_eq!(used.get(TOKEN_A), None, "no worker uses A: {used:?}");
    assert_eq!(
        host.metric("ai_lb.provider.minmax.ejected"),
        0,
        "B still works"
    );

    // On the tick the lease holder probes with token A (the provider itself needs no probe).
    host.advance(Duration::from_millis(1000));
    let holders: Vec<usize> = (0..2)
        .filter(|&vm| !host.vm(vm).http_calls().is_empty())
        .collect();
    assert_eq!(holders.len(), 1, "one prober");
    let vm = host.vm(holders[0]);
    let calls = vm.http_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let probe = calls[0].clone();
    assert_eq!(probe.cluster, "minmax");
    assert_eq!(probe.header(":path"), Some("/v1/models"));
    let expected = format!("Bearer {TOKEN_A}");
    assert_eq!(probe.header("authorization"), Some(expected.as_str()));
    vm.answer_http_call(probe.token, Some(HttpReply::new(200, b"{\"data\":[]}")));
    assert_eq!(host.metric("ai_lb.provider.minmax.token_restored"), 1);
    assert_eq!(host.metric("ai_lb.probe.ok"), 1);

    let used = token_use(&mut host, 40);
    assert!(
        used.get(TOKEN_A) >= Some(&10) && used.get(TOKEN_B) >= Some(&10),
        "A is back in use: {used:?}"
    );

    // The secrets appear nowhere the operator looks: logs, stat names, shared health records.
    let secrets = [TOKEN_A, TOKEN_B, "aaaaaaaaaaaa", "bbbbbbbbbbbb"];
    let mut said = |text: &str| (0..2).any(|vm| host.vm(vm).logged(2, text));
    assert!(said("API token sk-…1111 unavailable") && said("API token sk-…1111 restored"));
    for vm in 0..2 {
        for line in host.vm(vm).logs() {
            for secret in secrets {
                assert!(
                    !line.message.contains(secret),
                    "worker {vm} logged a secret: {line:?}"
                );
            }
        }
    }
    for (name, _) in host.metrics() {
        assert!(
            secrets.iter().all(|secret| !name.contains(secret)),
            "{name}"
        );
    }
    let record = super::record(&host, "minmax");
    assert!(
        secrets.iter().all(|secret| !record.contains(secret)),
        "{record}"
    );
}

pub fn a_token_header_other_than_authorization_carries_the_bare_token(build: Build) {
    let mut host = gateway_logging(build, &config(Some("X-Api-Key")), 2, &["minmax"], 2);
    let mut seen = Vec::new();
    for index in 0..20 {
        let vm = host.vm(index % 2);
        let request = open_with(
            vm,
            "/v1/chat/completions",
            &[("x-api-key", "client-own-key")],
        );
        assert_eq!(routed_to(vm, request), "minmax");
        let token = vm
            .stream(request)
            .upstream_header("x-api-key")
            .expect("a token")
            .to_string();
        assert!(
            token == TOKEN_A || token == TOKEN_B,
            "{token:?} is a bare token of the pool, over the client's"
        );
        respond(vm, request, "200");
        if !seen.contains(&token) {
            seen.push(token);
        }
    }
    assert_eq!(seen.len(), 2, "both tokens in use");
}
