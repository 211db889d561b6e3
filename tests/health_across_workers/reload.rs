//! Hot reload as Envoy applies a configuration update to running VMs: a new root context in
//! each VM (`Vm::reconfigure`); new requests use it, requests already open finish on the old
//! one. Health records of providers still configured survive; removed providers' are cleared.

use std::time::Duration;

use serde_json::json;

use super::{eject, failover, gateway, health, open, provider, record, respond, routed_to, send};
use super::{Action, Build, Host, Value, ANSWER, MINMAX_MODEL, QIANWEN_MODEL};

const NEW_QIANWEN_MODEL: &str = "qwen-plus";

fn config(providers: Value) -> Value {
    failover(providers, json!({"health": {"cooldown_ms": 10_000}}))
}

fn both() -> Value {
    config(json!([
        provider("minmax", MINMAX_MODEL),
        provider("qianwen", QIANWEN_MODEL)
    ]))
}

/// The same providers, qianwen serving another model: a request shows which configuration
/// it ran with.
fn both_updated() -> Value {
    config(json!([
        provider("minmax", MINMAX_MODEL),
        provider("qianwen", NEW_QIANWEN_MODEL)
    ]))
}

/// Reloads every worker with `config`; returns their new root contexts.
fn reload(host: &mut Host, workers: usize, config: &Value) -> Vec<u32> {
    (0..workers)
        .map(|vm| {
            let before = host.vm(vm).root_context();
            let root = host
                .vm(vm)
                .reconfigure(&config.to_string())
                .unwrap_or_else(|refused| panic!("reload refused: {}", refused.message()));
            assert_ne!(root, before, "a new root context");
            root
        })
        .collect()
}

fn model_sent(host: &mut Host, vm: usize, request: u32) -> String {
    let stream = host.vm(vm).stream(request);
    stream.upstream_json()["model"]
        .as_str()
        .expect("a model")
        .to_string()
}

pub fn a_reload_keeps_ejections_and_new_requests_use_the_new_configuration(build: Build) {
    let mut host = gateway(build, &both(), 2, &[]);
    eject(&mut host, 0, "minmax");
    let ejected = record(&host, "minmax");

    let roots = reload(&mut host, 2, &both_updated());
    assert_eq!(record(&host, "minmax"), ejected, "a reload restores no one");
    for vm in [0, 1, 1] {
        let request = open(host.vm(vm));
        assert_eq!(
            routed_to(host.vm(vm), request),
            "qianwen",
            "minmax still out"
        );
        assert_eq!(host.vm(vm).stream(request).root_context, roots[vm]);
        assert_eq!(model_sent(&mut host, vm, request), NEW_QIANWEN_MODEL);
        respond(host.vm(vm), request, "200");
    }
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 0);
    // Nor does it eject anyone again or move the cooldown: minmax's trial comes on time.
    host.advance(Duration::from_millis(10_000));
    assert_eq!(send(host.vm(1), "200"), "minmax");
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
}

pub fn a_reload_clears_the_records_of_removed_providers(build: Build) {
    let mut host = gateway(build, &both(), 2, &[]);
    assert_eq!(
        host.shared_data("ai_lb/health/providers")
            .map(|(names, _)| names),
        Some(b"minmax\nqianwen".to_vec())
    );
    eject(&mut host, 0, "minmax");

    // minmax is no longer configured: its record goes.
    let only_qianwen = config(json!([provider("qianwen", QIANWEN_MODEL)]));
    reload(&mut host, 2, &only_qianwen);
    assert_eq!(record(&host, "minmax"), "", "cleared");
    assert_eq!(
        host.shared_data("ai_lb/health/providers")
            .map(|(names, _)| names),
        Some(b"qianwen".to_vec())
    );
    for vm in [0, 1] {
        assert_eq!(send(host.vm(vm), "200"), "qianwen");
    }

    // Configured again later, it starts afresh: healthy, first in line.
    reload(&mut host, 2, &both());
    for vm in [0, 1] {
        assert_eq!(send(host.vm(vm), "200"), "minmax");
    }
    assert_eq!(health(&host, "minmax"), ('H', 0));
}

pub fn requests_in_flight_during_a_reload_complete(build: Build) {
    let mut host = gateway(build, &both(), 2, &[]);
    eject(&mut host, 0, "minmax");
    host.advance(Duration::from_millis(10_000));
    let old_root = host.vm(1).root_context();
    // Worker 1 has two requests open: minmax's half-open trial, and one to qianwen.
    let trial = open(host.vm(1));
    assert_eq!(routed_to(host.vm(1), trial), "minmax");
    let plain = open(host.vm(1));
    assert_eq!(routed_to(host.vm(1), plain), "qianwen");
    assert_eq!(model_sent(&mut host, 1, plain), QIANWEN_MODEL);

    let roots = reload(&mut host, 2, &both_updated());
    assert_eq!(health(&host, "minmax").0, 'T', "the trial is still out");
    let during = open(host.vm(0));
    assert_eq!(routed_to(host.vm(0), during), "qianwen");
    assert_eq!(model_sent(&mut host, 0, during), NEW_QIANWEN_MODEL);
    respond(host.vm(0), during, "200");

    // The request to qianwen gets its response through the old configuration's context.
    let vm = host.vm(1);
    assert_eq!(vm.stream(plain).root_context, old_root);
    assert_eq!(
        vm.send_response_headers(plain, &[(":status", "200")], false),
        Action::Continue
    );
    assert_eq!(vm.send_response_body(plain, ANSWER, true), Action::Continue);
    assert_eq!(vm.stream(plain).downstream_body, ANSWER);
    vm.finish(plain);

    // The trial's client goes away: its end (on_done) releases the trial, so the next request,
    // on the new configuration, takes it over and restores minmax.
    vm.finish(trial);
    assert_eq!(
        health(&host, "minmax").0,
        'E',
        "{}",
        record(&host, "minmax")
    );
    let next = open(host.vm(1));
    assert_eq!(host.vm(1).stream(next).root_context, roots[1]);
    assert_eq!(routed_to(host.vm(1), next), "minmax");
    respond(host.vm(1), next, "200");
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
    assert_eq!(send(host.vm(0), "200"), "minmax");
}
