//! Passive health on the controlled clock: failures one worker sees eject the provider for every
//! worker; after the cooldown exactly one request, on whichever worker comes first, is the
//! half-open trial; its success restores the provider, its failure ejects it again. With every
//! provider out, the one back first serves, never a response of the filter's own.

use std::time::Duration;

use serde_json::json;

use super::{eject, failover, gateway, health, open, provider, record, respond, routed_to, send};
use super::{Build, Host, Value, MINMAX_MODEL, QIANWEN_MODEL};

const COOLDOWN_MS: u64 = 10_000;

/// No clusters: no probes, so only trials bring a provider back.
fn config() -> Value {
    failover(
        json!([
            provider("minmax", MINMAX_MODEL),
            provider("qianwen", QIANWEN_MODEL)
        ]),
        json!({"health": {"cooldown_ms": COOLDOWN_MS}}),
    )
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub fn an_ejection_holds_on_every_worker_until_one_trial_restores_it(build: Build) {
    let mut host = gateway(build, &config(), 2, &[]);
    // Worker 0 sees three 503s in a row.
    eject(&mut host, 0, "minmax");
    let ejected_until = host.wall_clock_ms() + COOLDOWN_MS;
    assert_eq!(record(&host, "minmax"), format!("h1 E{ejected_until} 0 0"));

    // Worker 1 never saw a failure: its requests go to qianwen all the same, as worker 0's do.
    for vm in [1, 1, 0, 1] {
        assert_eq!(send(host.vm(vm), "200"), "qianwen");
    }
    host.advance(ms(COOLDOWN_MS - 1));
    assert_eq!(send(host.vm(1), "200"), "qianwen", "1 ms before the end");

    // The cooldown is over: worker 1's next request is the trial; the requests that come while
    // it is out, on either worker, are not.
    host.advance(ms(1));
    let trial = open(host.vm(1));
    assert_eq!(routed_to(host.vm(1), trial), "minmax");
    assert_eq!(
        record(&host, "minmax"),
        format!("h1 T{} 0 0", host.wall_clock_ms())
    );
    let concurrent = open(host.vm(0));
    assert_eq!(routed_to(host.vm(0), concurrent), "qianwen");
    assert_eq!(send(host.vm(1), "200"), "qianwen");
    assert_eq!(
        host.metric("ai_lb.selected.minmax"),
        4,
        "3 failures and the trial"
    );

    // The trial succeeds: minmax is restored for both workers.
    respond(host.vm(1), trial, "200");
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
    assert_eq!(health(&host, "minmax"), ('H', 0));
    respond(host.vm(0), concurrent, "200");
    for vm in [0, 1] {
        assert_eq!(send(host.vm(vm), "200"), "minmax");
    }
    assert_eq!(host.metric("ai_lb.provider.minmax.fallback"), 0);
}

pub fn a_failed_trial_ejects_again_and_with_all_out_the_one_back_first_serves(build: Build) {
    let mut host = gateway(build, &config(), 2, &[]);
    eject(&mut host, 0, "minmax"); // out until 10 s
    host.advance(ms(1_000));
    eject(&mut host, 1, "qianwen"); // out until 11 s

    // Both out: minmax comes back first, so it serves (counted), and no request is refused.
    let vm = host.vm(1);
    let request = open(vm);
    assert_eq!(routed_to(vm, request), "minmax");
    vm.finish(request); // the client went away: no verdict
    assert_eq!(host.metric("ai_lb.provider.minmax.fallback"), 1);

    // At 10 s minmax's trial is due; worker 0 claims it; the trial fails.
    host.advance(ms(9_000));
    let trial = open(host.vm(0));
    assert_eq!(routed_to(host.vm(0), trial), "minmax");
    respond(host.vm(0), trial, "503");
    let until = host.wall_clock_ms() + COOLDOWN_MS;
    assert_eq!(
        record(&host, "minmax"),
        format!("h1 E{until} 0 0"),
        "out for another cooldown"
    );
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 0);

    // Now qianwen (back at 11 s) comes back before minmax (20 s): it serves both workers.
    for vm in [1, 0] {
        let vm = host.vm(vm);
        let request = open(vm);
        assert_eq!(routed_to(vm, request), "qianwen");
        assert!(vm.stream(request).local_response.is_none());
        vm.finish(request);
    }
    assert_eq!(host.metric("ai_lb.provider.qianwen.fallback"), 2);
    assert_eq!(host.metric("ai_lb.provider.minmax.fallback"), 1);
    assert_eq!(health(&host, "minmax").0, 'E');
    assert_eq!(health(&host, "qianwen").0, 'E');
}

pub fn a_trial_that_loses_its_client_or_hangs_is_given_to_another_request(build: Build) {
    let mut host = gateway(build, &config(), 2, &[]);
    eject(&mut host, 0, "minmax");
    host.advance(ms(COOLDOWN_MS));

    // Worker 0's trial loses its client before any response: the trial is released.
    let trial = open(host.vm(0));
    assert_eq!(routed_to(host.vm(0), trial), "minmax");
    assert_eq!(send(host.vm(1), "200"), "qianwen", "while it is out");
    host.vm(0).finish(trial);
    assert_eq!(
        health(&host, "minmax").0,
        'E',
        "{}",
        record(&host, "minmax")
    );

    // So worker 1's next request is the trial; it hangs (no response).
    let hanging = open(host.vm(1));
    assert_eq!(routed_to(host.vm(1), hanging), "minmax");
    host.advance(ms(29_999));
    assert_eq!(send(host.vm(0), "200"), "qianwen", "the trial is still out");

    // After 30 s without a verdict another request gets the trial, and its success decides.
    host.advance(ms(1));
    let second = open(host.vm(0));
    assert_eq!(routed_to(host.vm(0), second), "minmax");
    respond(host.vm(0), second, "200");
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
    assert_eq!(send(host.vm(1), "200"), "minmax");
    host.vm(1).finish(hanging);
    assert_eq!(
        health(&host, "minmax"),
        ('H', 0),
        "the late end changes nothing"
    );
}

pub fn a_429_with_retry_after_ejects_at_once_for_that_long_capped(build: Build) {
    let mut config = config();
    config["health"]["max_retry_after_ms"] = json!(20_000);
    let mut host = gateway(build, &config, 2, &[]);
    // One 429 saying "come back in 5 s" is enough (no threshold of failures in a row).
    let rate_limited = |host: &mut Host, vm: usize, seconds: &str| {
        let vm = host.vm(vm);
        let request = open(vm);
        assert_eq!(routed_to(vm, request), "minmax");
        let headers = [(":status", "429"), ("retry-after", seconds)];
        vm.send_response_headers(request, &headers, false);
        vm.send_response_body(request, b"{}", true);
        vm.finish(request);
    };
    rate_limited(&mut host, 0, "5");
    let until = host.wall_clock_ms() + 5_000;
    assert_eq!(record(&host, "minmax"), format!("h1 E{until} 0 0"));
    assert_eq!(send(host.vm(1), "200"), "qianwen");
    host.advance(ms(5_000));
    assert_eq!(send(host.vm(1), "200"), "minmax", "the trial, after 5 s");

    // A provider asking for 2 minutes is believed up to max_retry_after_ms.
    rate_limited(&mut host, 1, "120");
    let until = host.wall_clock_ms() + 20_000;
    assert_eq!(record(&host, "minmax"), format!("h1 E{until} 0 0"));
    assert_eq!(host.metric("ai_lb.provider.minmax.ejected"), 2);
}
