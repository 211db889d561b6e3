//! The probe lease: on the tick only the worker holding the lease in shared data probes; it
//! renews the lease on each tick; when it stops ticking, another worker takes the lease over
//! once it has expired (3 probe intervals plus a probe's timeout) and probes in its place.

use std::time::Duration;

use serde_json::json;

use super::{eject, failover, gateway, health, provider, send, Build, Host, MINMAX_MODEL};
use super::{Value, QIANWEN_MODEL};
use crate::host::HttpReply;

const INTERVAL: Duration = Duration::from_millis(1000);
/// 3 intervals plus the 500 ms probe timeout.
const LEASE_TTL_MS: u64 = 3 * 1000 + 500;

/// Both providers reachable by the filter itself; probes every second; a cooldown far longer
/// than the test, so only a probe can bring minmax back.
fn probed_config() -> Value {
    let mut minmax = provider("minmax", MINMAX_MODEL);
    minmax["cluster"] = json!("minmax");
    let mut qianwen = provider("qianwen", QIANWEN_MODEL);
    qianwen["cluster"] = json!("qianwen");
    failover(
        json!([minmax, qianwen]),
        json!({"health": {
            "cooldown_ms": 600_000,
            "probe": {"interval_ms": 1000, "timeout_ms": 500}
        }}),
    )
}

/// The probe lease as (holder, expires at in ms).
fn lease(host: &Host) -> (String, u64) {
    let (bytes, _) = host
        .shared_data("ai_lb/health/probe_lease")
        .expect("a probe lease");
    let text = String::from_utf8(bytes).expect("a text lease");
    let (holder, expires) = text.split_once(' ').expect("\"<holder> <expires>\"");
    assert_eq!(holder.len(), 16, "holder {holder:?} is 16 hex digits");
    (holder.to_string(), expires.parse().expect("expiry in ms"))
}

/// The workers with probes out; each probe checked to be the default `GET /v1/models` of
/// minmax, the only provider out (a healthy provider is not probed).
fn probing(host: &mut Host, workers: usize) -> Vec<usize> {
    (0..workers)
        .filter(|&index| {
            let calls = host.vm(index).http_calls();
            for call in &calls {
                assert_eq!(
                    call.cluster, "minmax",
                    "only the ejected provider is probed"
                );
                assert_eq!(call.header(":method"), Some("GET"));
                assert_eq!(call.header(":path"), Some("/v1/models"));
                assert_eq!(call.header("user-agent"), Some("ai-load-balancer-probe"));
                assert_eq!(call.timeout, Duration::from_millis(500));
            }
            assert!(
                calls.len() <= 1,
                "one probe per provider and tick: {calls:?}"
            );
            !calls.is_empty()
        })
        .collect()
}

/// Answers every probe `vm` has out with `status`.
fn answer_probes(host: &mut Host, vm: usize, status: u16) {
    let vm = host.vm(vm);
    let tokens: Vec<u32> = vm.http_calls().iter().map(|call| call.token).collect();
    for token in tokens {
        vm.answer_http_call(token, Some(HttpReply::new(status, b"{\"data\":[]}")));
    }
}

pub fn the_first_worker_to_tick_probes_alone_until_its_lease_lapses(build: Build) {
    let mut host = gateway(build, &probed_config(), 2, &["minmax", "qianwen"]);
    eject(&mut host, 0, "minmax");
    assert!(probing(&mut host, 2).is_empty(), "no probe before a tick");

    // Worker 1's timer fires first (a tick of its own, out of step with worker 0's): it takes
    // the lease and probes.
    host.vm(1).tick();
    assert_eq!(probing(&mut host, 2), [1]);
    let (holder, expires) = lease(&host);
    assert_eq!(expires, host.wall_clock_ms() + LEASE_TTL_MS);
    answer_probes(&mut host, 1, 503);
    assert_eq!(host.metric("ai_lb.probe.failed"), 1);

    // Both workers tick every second (worker 0 first at each instant): worker 1 renews and
    // stays the only prober.
    for round in 1..=3 {
        host.advance(INTERVAL);
        assert_eq!(probing(&mut host, 2), [1], "round {round}");
        assert_eq!(
            lease(&host),
            (holder.clone(), host.wall_clock_ms() + LEASE_TTL_MS),
            "round {round}: renewed by the same holder"
        );
        answer_probes(&mut host, 1, 503);
    }
    assert_eq!(host.metric("ai_lb.probe.failed"), 4);
    assert_eq!(health(&host, "minmax").0, 'E', "failed probes keep it out");

    // Worker 1 stops ticking. Worker 0 ticks at +1, +2 and +3 s: the lease (3.5 s) still holds.
    host.vm(1).halted = true;
    let renewed_at = host.wall_clock_ms();
    for _ in 0..3 {
        host.advance(INTERVAL);
        assert!(
            probing(&mut host, 2).is_empty(),
            "the lease has not expired"
        );
    }
    // At +4 s it has: worker 0 takes it over and probes.
    host.advance(INTERVAL);
    assert!(host.wall_clock_ms() > renewed_at + LEASE_TTL_MS);
    assert_eq!(probing(&mut host, 2), [0]);
    let (new_holder, expires) = lease(&host);
    assert_ne!(new_holder, holder, "worker 0 holds the lease now");
    assert_eq!(expires, host.wall_clock_ms() + LEASE_TTL_MS);

    // Its probe succeeds: minmax is back for every worker (success_threshold 1).
    answer_probes(&mut host, 0, 200);
    assert_eq!(host.metric("ai_lb.probe.ok"), 1);
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
    assert_eq!(health(&host, "minmax"), ('H', 0));
    assert_eq!(send(host.vm(0), "200"), "minmax");
    host.advance(INTERVAL);
    assert!(
        probing(&mut host, 2).is_empty(),
        "a healthy provider is not probed"
    );
}

pub fn a_reloaded_lease_holder_keeps_its_lease_and_probes_on(build: Build) {
    let mut host = gateway(build, &probed_config(), 2, &["minmax", "qianwen"]);
    eject(&mut host, 0, "minmax");
    host.vm(1).tick();
    assert_eq!(probing(&mut host, 2), [1]);
    let (holder, _) = lease(&host);
    answer_probes(&mut host, 1, 503);

    // A configuration update gives worker 1 a new root context in the same VM: the worker is
    // the same, so it renews its own lease at once rather than waiting 3.5 s for it to lapse.
    host.vm(1)
        .reconfigure(&probed_config().to_string())
        .unwrap_or_else(|refused| panic!("reload refused: {}", refused.message()));
    host.advance(INTERVAL);
    assert_eq!(probing(&mut host, 2), [1], "the reloaded holder probes on");
    assert_eq!(lease(&host).0, holder);
    answer_probes(&mut host, 1, 200);
    assert_eq!(host.metric("ai_lb.provider.minmax.restored"), 1);
}
