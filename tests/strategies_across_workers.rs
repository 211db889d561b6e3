#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! What one worker's requests leave for the others, both builds, two VMs (two Envoy workers) of
//! one host: the round-robin sequence, latency averages, the engine metrics scrape and
//! in-flight counts, and the health records that move a session or fail a tier over, all live
//! in shared data, so every worker balances by the same picture.
//! Each scenario asserts where requests went (the upstream's routing header), the calls the
//! gateway made and its stats.

mod host;

#[path = "strategies_across_workers/engine.rs"]
mod engine;
#[path = "strategies_across_workers/in_flight.rs"]
mod in_flight;
#[path = "strategies_across_workers/latency.rs"]
mod latency;
#[path = "strategies_across_workers/tiers.rs"]
mod tiers;

use engine::*;
use host::{both_builds, BodyDelivery, Build, Host, Vm};
use in_flight::*;
use latency::*;
use serde_json::{json, Value};
use tiers::*;

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hello"}]}"#;
const MINMAX_MODEL: &str = "MiniMax-M2.1";
const QIANWEN_MODEL: &str = "qwen3-max-preview";

/// The seed's two providers (no store keys: these scenarios need none).
fn providers() -> Value {
    json!([
        {"name": "minmax", "model": MINMAX_MODEL},
        {"name": "qianwen", "model": QIANWEN_MODEL}
    ])
}

/// A gateway with two workers (VMs 0 and 1) on `config`, delivering body to paused headers as
/// Higress does and `envoy/envoy.yaml` configures (pools and latency read the body first).
fn two_workers(build: Build, config: &Value, clusters: &[&str]) -> Host {
    let mut host = Host::new(build).body_delivery(BodyDelivery::WhileHeadersPaused);
    for cluster in clusters {
        host = host.cluster(cluster, None);
    }
    for _ in 0..2 {
        host.start_vm(&config.to_string())
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
    }
    host
}

/// Sends a chat request with `body` whole through `vm`; it stays open (no response yet).
fn open(vm: &mut Vm, body: &[u8]) -> u32 {
    vm.send_chat(body)
}

/// The provider the request was routed to; checks that it went whole, its model rewritten to
/// the one the routing header names.
fn routed_to(vm: &Vm, request: u32) -> String {
    let stream = vm.stream(request);
    stream.assert_forwarded_whole();
    let provider = stream
        .upstream_header("x-selected-provider")
        .unwrap_or_else(|| panic!("request {request} was not routed: {:?}", stream.actions));
    let model = stream
        .upstream_header("x-rewrite-target-model")
        .expect("a target model");
    assert_eq!(stream.upstream_json()["model"], model);
    provider.to_string()
}

/// A whole request and its response, on `vm`: where it went.
fn exchange(vm: &mut Vm, body: &[u8]) -> String {
    let request = open(vm, body);
    let provider = routed_to(vm, request);
    vm.send_response_headers(request, &[(":status", "200")], false);
    vm.send_response_body(request, b"{}", true);
    vm.finish(request);
    provider
}

fn other(provider: &str) -> &'static str {
    match provider {
        "minmax" => "qianwen",
        "qianwen" => "minmax",
        _ => panic!("unknown provider {provider:?}"),
    }
}

both_builds!(
    round_robin_is_one_sequence_for_every_worker,
    each_pool_keeps_its_own_round_robin_sequence,
    a_slow_backend_seen_by_one_worker_is_avoided_by_the_other,
    streaming_requests_compare_time_to_first_byte,
    a_request_without_response_teaches_nothing,
    a_slow_backend_that_recovered_wins_again,
    one_worker_scrapes_and_every_worker_routes_by_the_loads,
    another_worker_scrapes_when_the_holder_stops,
    an_open_request_counts_on_every_worker_until_it_ends,
    a_long_request_keeps_counting_while_its_worker_beats,
    a_stopped_workers_requests_stop_counting,
    requests_spill_to_the_next_tier_only_while_the_first_is_full,
    an_ejected_first_tier_fails_over_to_the_next,
    a_session_stays_on_one_backend_on_every_worker,
    a_session_moves_while_its_backend_is_ejected_and_comes_back,
);

fn round_robin_is_one_sequence_for_every_worker(build: Build) {
    let config = json!({"providers": providers(), "strategy": "round_robin"});
    let mut host = two_workers(build, &config, &[]);
    // Per worker, this order would give minmax, minmax, qianwen, qianwen, ...
    let order = [0, 1, 0, 1, 1, 1, 0, 0];
    let sent: Vec<String> = order
        .iter()
        .map(|&vm| exchange(host.vm(vm), CHAT))
        .collect();
    assert_eq!(
        sent,
        ["minmax", "qianwen", "minmax", "qianwen", "minmax", "qianwen", "minmax", "qianwen"]
    );
    assert_eq!(host.metric("ai_lb.selected.minmax"), 4);
    assert_eq!(host.metric("ai_lb.selected.qianwen"), 4);
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 0);
}

fn each_pool_keeps_its_own_round_robin_sequence(build: Build) {
    let backends = |first: &str, second: &str| json!({"strategy": "round_robin", "backends": [{"provider": first}, {"provider": second}]});
    let config = json!({
        "providers": providers(),
        "models": {"auto": backends("minmax", "qianwen"), "chat": backends("qianwen", "minmax")}
    });
    let mut host = two_workers(build, &config, &[]);
    let auto = CHAT;
    let chat = br#"{"model":"chat","messages":[]}"#.as_slice();
    let requests = [
        (0, auto),
        (1, chat),
        (1, auto),
        (0, chat),
        (0, auto),
        (1, chat),
    ];
    let sent: Vec<String> = requests
        .iter()
        .map(|&(vm, body)| exchange(host.vm(vm), body))
        .collect();
    // auto: minmax, qianwen, minmax; chat: qianwen, minmax, qianwen; interleaved as sent.
    assert_eq!(
        sent,
        ["minmax", "qianwen", "qianwen", "minmax", "minmax", "qianwen"]
    );
}
