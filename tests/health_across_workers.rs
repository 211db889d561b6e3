#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Provider health across the workers of one gateway, both builds, two or three VMs of one host
//! sharing shared data: the probe lease (one prober, renewed, taken over), compare-and-swap
//! conflicts on health records, ejection and half-open trials on the controlled clock, retry on
//! another provider, API-key pools, hot reload, and the status page. Each scenario asserts what
//! a gateway operator or client would see: where requests went (the upstream's routing and
//! credential headers), what the filter sent itself (probes, retries), responses, stats, and
//! the shared health records.

mod host;

#[path = "health_across_workers/conflicts.rs"]
mod conflicts;
#[path = "health_across_workers/ejection.rs"]
mod ejection;
#[path = "health_across_workers/probes.rs"]
mod probes;
#[path = "health_across_workers/rate_limits.rs"]
mod rate_limits;
#[path = "health_across_workers/reload.rs"]
mod reload;
#[path = "health_across_workers/retry.rs"]
mod retry;
#[path = "health_across_workers/status.rs"]
mod status;
#[path = "health_across_workers/tokens.rs"]
mod tokens;

use conflicts::*;
use ejection::*;
use host::{both_builds, Action, BodyDelivery, Build, Host, Vm};
use probes::*;
use rate_limits::*;
use reload::*;
use retry::*;
use serde_json::{json, Value};
use status::*;
use tokens::*;

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hello"}]}"#;
const MINMAX_MODEL: &str = "MiniMax-M2.1";
const QIANWEN_MODEL: &str = "qwen3-max-preview";
/// A response body the client should see when a response passes.
const ANSWER: &[u8] = br#"{"choices":[{"message":{"content":"hi"}}]}"#;

fn provider(name: &str, model: &str) -> Value {
    json!({"name": name, "model": model})
}

/// `minmax` then `qianwen` with `strategy: failover`: every request goes to minmax while it is
/// available, so where a request went says what health decided. `extra` is merged in.
fn failover(providers: Value, extra: Value) -> Value {
    let mut config = json!({"providers": providers, "strategy": "failover"});
    if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    config
}

/// A gateway with `workers` VMs on `config`, delivering body to paused headers as Higress does
/// and `envoy/envoy.yaml` configures; `clusters` are answered by hand.
fn gateway(build: Build, config: &Value, workers: usize, clusters: &[&str]) -> Host {
    gateway_logging(build, config, workers, clusters, 2)
}

/// [`gateway`] with the host reporting `log_level` (0 trace … 5 critical) to the filter.
fn gateway_logging(
    build: Build,
    config: &Value,
    workers: usize,
    clusters: &[&str],
    log_level: i32,
) -> Host {
    let mut host = Host::new(build)
        .body_delivery(BodyDelivery::WhileHeadersPaused)
        .log_level(log_level);
    for cluster in clusters {
        host = host.cluster(cluster, None);
    }
    for _ in 0..workers {
        host.start_vm(&config.to_string())
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
    }
    host
}

/// A chat request with `extra` headers, sent whole through `vm`; it stays open.
fn open_with(vm: &mut Vm, path: &str, extra: &[(&str, &str)]) -> u32 {
    let length = CHAT.len().to_string();
    let mut headers = vec![
        (":method", "POST"),
        (":path", path),
        (":authority", "gateway.local"),
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
    ];
    headers.extend_from_slice(extra);
    let request = vm.request(&headers, &[]);
    vm.send_headers(request, false);
    vm.send_body(request, CHAT, true);
    request
}

fn open(vm: &mut Vm) -> u32 {
    open_with(vm, "/v1/chat/completions", &[])
}

/// The provider the request was routed to; checks that it went whole, its model rewritten to
/// the one the routing header names.
fn routed_to(vm: &Vm, request: u32) -> String {
    let stream = vm.stream(request);
    assert!(
        stream.local_response.is_none(),
        "request {request} was answered by the filter: {:?}",
        stream.local_response
    );
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

/// The upstream answers `status` with [`ANSWER`]; checks the response reached the client
/// untouched, and ends the stream.
fn respond(vm: &mut Vm, request: u32, status: &str) {
    let action = vm.send_response_headers(request, &[(":status", status)], false);
    assert_eq!(
        action,
        Action::Continue,
        "the response of {request} was held"
    );
    assert_eq!(
        vm.send_response_body(request, ANSWER, true),
        Action::Continue
    );
    let stream = vm.stream(request);
    assert!(stream.local_response.is_none());
    assert_eq!(stream.downstream_body, ANSWER, "the client got the answer");
    vm.finish(request);
}

/// A whole exchange on `vm`, the upstream answering `status`: where the request went.
fn send(vm: &mut Vm, status: &str) -> String {
    let request = open(vm);
    let provider = routed_to(vm, request);
    respond(vm, request, status);
    provider
}

/// The text of a provider's shared health record ("" when it has none, or it was cleared).
fn record(host: &Host, provider: &str) -> String {
    host.shared_data(&format!("ai_lb/health/{provider}"))
        .map(|(bytes, _)| String::from_utf8(bytes).expect("a text record"))
        .unwrap_or_default()
}

/// A provider's state as its record says ('H' healthy, 'E' ejected, 'T' on trial) and its
/// failures in a row; no record is a healthy provider.
fn health(host: &Host, provider: &str) -> (char, u32) {
    let text = record(host, provider);
    if text.is_empty() {
        return ('H', 0);
    }
    let head: Vec<&str> = text
        .split(';')
        .next()
        .unwrap_or_default()
        .split(' ')
        .collect();
    assert_eq!(head.first(), Some(&"h1"), "record {text:?}");
    let state = head[1].chars().next().expect("a state");
    (state, head[2].parse().expect("failures"))
}

/// Ejects `provider` through `vm`: the default three failures in a row, each request sent there
/// (it must be the one the strategy picks first).
fn eject(host: &mut Host, vm: usize, provider: &str) {
    let before = host.metric(&format!("ai_lb.provider.{provider}.ejected"));
    for _ in 0..3 {
        assert_eq!(send(host.vm(vm), "503"), provider);
    }
    assert_eq!(health(host, provider).0, 'E', "{}", record(host, provider));
    assert_eq!(
        host.metric(&format!("ai_lb.provider.{provider}.ejected")),
        before + 1
    );
}

both_builds!(
    the_first_worker_to_tick_probes_alone_until_its_lease_lapses,
    a_reloaded_lease_holder_keeps_its_lease_and_probes_on,
    a_verdict_lands_through_conflicts_and_past_the_bound_is_dropped,
    a_dropped_update_is_neither_counted_nor_logged_as_an_ejection,
    a_trial_claim_lost_to_conflicts_sends_the_request_elsewhere,
    an_ejection_holds_on_every_worker_until_one_trial_restores_it,
    a_failed_trial_ejects_again_and_with_all_out_the_one_back_first_serves,
    a_trial_that_loses_its_client_or_hangs_is_given_to_another_request,
    a_429_with_retry_after_ejects_at_once_for_that_long_capped,
    a_failed_response_is_held_and_answered_by_another_provider,
    when_the_retry_fails_too_the_original_response_goes_on,
    each_request_uses_a_random_token_and_a_refused_one_is_probed_back,
    a_token_header_other_than_authorization_carries_the_bare_token,
    a_reload_keeps_ejections_and_new_requests_use_the_new_configuration,
    a_reload_clears_the_records_of_removed_providers,
    requests_in_flight_during_a_reload_complete,
    the_status_page_answers_allowed_sources_only,
    a_low_budget_read_by_one_worker_steers_another_until_its_reset,
    a_low_key_is_avoided_by_every_worker_and_its_provider_once_all_are,
);
