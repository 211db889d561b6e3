//! Compare-and-swap conflicts on a provider's health record, as another worker's writes cause
//! them (`Host::conflict_on`): the filter reads again and retries, up to 8 tries; past them the
//! update is dropped, and the request it came from is served all the same.

use std::time::Duration;

use serde_json::json;

use super::{failover, gateway_logging, health, open, provider, record, routed_to, send};
use super::{Action, Build, ANSWER, MINMAX_MODEL, QIANWEN_MODEL};

const MINMAX_RECORD: &str = "ai_lb/health/minmax";

fn config() -> serde_json::Value {
    failover(
        json!([
            provider("minmax", MINMAX_MODEL),
            provider("qianwen", QIANWEN_MODEL)
        ]),
        json!({"health": {"cooldown_ms": 10_000}}),
    )
}

pub fn a_verdict_lands_through_conflicts_and_past_the_bound_is_dropped(build: Build) {
    // Debug logs on: the dropped update is said at debug level.
    let mut host = gateway_logging(build, &config(), 2, &[], 1);
    // A first failure creates the record (a write to a missing key carries no CAS, so nothing
    // can conflict with it).
    assert_eq!(send(host.vm(0), "503"), "minmax");
    assert_eq!(health(&host, "minmax"), ('H', 1));

    // Another worker wins the next 7 writes: worker 1's 8th try lands.
    host.conflict_on(MINMAX_RECORD, 7);
    assert_eq!(send(host.vm(1), "503"), "minmax");
    assert_eq!(host.conflicts_left(MINMAX_RECORD), 0);
    assert_eq!(
        health(&host, "minmax"),
        ('H', 2),
        "the second failure landed"
    );

    // It wins more writes than the filter tries: the third failure is dropped after 8 tries,
    // and the response still reaches the client.
    host.conflict_on(MINMAX_RECORD, 20);
    let vm = host.vm(1);
    let request = open(vm);
    assert_eq!(routed_to(vm, request), "minmax");
    assert_eq!(
        vm.send_response_headers(request, &[(":status", "503")], false),
        Action::Continue
    );
    assert_eq!(
        vm.send_response_body(request, ANSWER, true),
        Action::Continue
    );
    assert_eq!(vm.stream(request).downstream_body, ANSWER);
    vm.finish(request);
    assert!(vm.logged(1, "update dropped"), "the drop is said");
    assert_eq!(host.conflicts_left(MINMAX_RECORD), 12, "8 tries, no more");
    assert_eq!(
        health(&host, "minmax"),
        ('H', 2),
        "dropped: {}",
        record(&host, "minmax")
    );
    let counted = host.metric("ai_lb.provider.minmax.ejected");

    // The other worker stops writing: a success clears the failures; then three failures in
    // a row eject minmax as usual.
    host.conflict_on(MINMAX_RECORD, 0);
    assert_eq!(send(host.vm(0), "200"), "minmax", "minmax was not ejected");
    assert_eq!(health(&host, "minmax"), ('H', 0));
    for vm in [0, 1, 0] {
        assert_eq!(send(host.vm(vm), "503"), "minmax");
    }
    assert_eq!(health(&host, "minmax").0, 'E');
    assert_eq!(host.metric("ai_lb.provider.minmax.ejected"), counted + 1);
    assert_eq!(send(host.vm(1), "200"), "qianwen");
}

pub fn a_dropped_update_is_neither_counted_nor_logged_as_an_ejection(build: Build) {
    let mut host = gateway_logging(build, &config(), 2, &[], 2);
    for vm in [0, 1] {
        assert_eq!(send(host.vm(vm), "503"), "minmax");
    }
    // The third failure in a row would eject minmax, but its update is lost to other writes.
    host.conflict_on(MINMAX_RECORD, 8);
    assert_eq!(send(host.vm(1), "503"), "minmax");
    assert_eq!(host.conflicts_left(MINMAX_RECORD), 0);
    assert_eq!(health(&host, "minmax"), ('H', 2), "not ejected");
    assert_eq!(send(host.vm(0), "200"), "minmax", "not ejected");
    let warned = (0..2)
        .filter(|&vm| host.vm(vm).logged(3, "provider minmax ejected"))
        .count();
    assert_eq!(
        (host.metric("ai_lb.provider.minmax.ejected"), warned),
        (0, 0),
        "an ejection that was never written is neither counted nor logged as one"
    );
}

pub fn a_trial_claim_lost_to_conflicts_sends_the_request_elsewhere(build: Build) {
    let mut host = gateway_logging(build, &config(), 2, &[], 2);
    for _ in 0..3 {
        assert_eq!(send(host.vm(0), "503"), "minmax");
    }
    let ejected = record(&host, "minmax");
    host.advance(Duration::from_millis(10_000));

    // The trial is due, but every try to claim it loses to another worker: the request does
    // not go to the ejected provider unclaimed.
    host.conflict_on(MINMAX_RECORD, 8);
    assert_eq!(send(host.vm(1), "200"), "qianwen");
    assert_eq!(host.conflicts_left(MINMAX_RECORD), 0);
    assert_eq!(record(&host, "minmax"), ejected, "nothing claimed");

    // The next request claims it and its success restores minmax.
    let vm = host.vm(0);
    let trial = open(vm);
    assert_eq!(routed_to(vm, trial), "minmax");
    assert_eq!(health(&host, "minmax").0, 'T');
    super::respond(host.vm(0), trial, "200");
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
    assert_eq!(send(host.vm(1), "200"), "minmax");
}
