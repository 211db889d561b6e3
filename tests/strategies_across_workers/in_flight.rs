//! load_source in_flight: each worker counts the requests it has open per provider in its own
//! slot of shared data; every worker's picks sum the live slots. A slot whose worker stopped
//! beating (on the tick) stops counting after 10 s.
//!
//! Equal counts are a coin toss, so each check is a run of requests that must all go one way.

use std::time::Duration;

use serde_json::{json, Value};

use super::{exchange, open, other, providers, routed_to, two_workers, Build, Host, CHAT};

const RUN: usize = 4;

fn in_flight() -> Value {
    json!({"providers": providers(), "load_source": "in_flight", "strategy": "least_load"})
}

/// Opens a request on worker `vm`; returns it, still open, and where it went.
fn open_on(host: &mut Host, vm: usize) -> (u32, String) {
    let request = open(host.vm(vm), CHAT);
    (request, routed_to(host.vm(vm), request))
}

/// Where `RUN` requests in a row on worker `vm` went, each completed before the next.
fn run_on(host: &mut Host, vm: usize) -> Vec<String> {
    (0..RUN).map(|_| exchange(host.vm(vm), CHAT)).collect()
}

fn all(provider: &str) -> Vec<String> {
    vec![provider.to_string(); RUN]
}

pub fn an_open_request_counts_on_every_worker_until_it_ends(build: Build) {
    let mut host = two_workers(build, &in_flight(), &[]);
    let (first, busy) = open_on(&mut host, 0);
    let idle = other(&busy);
    assert_eq!(run_on(&mut host, 1), all(idle), "worker 0's open request");
    let (second, _) = open_on(&mut host, 1);

    // The first request completes: its provider has one open request fewer than the other.
    let worker_0 = host.vm(0);
    worker_0.send_response_headers(first, &[(":status", "200")], false);
    worker_0.send_response_body(first, b"{}", true);
    worker_0.finish(first);
    assert_eq!(
        run_on(&mut host, 1),
        all(&busy),
        "the ended request no longer counts"
    );

    // A request reset before any response gives its count back too.
    let (_third, to) = open_on(&mut host, 0);
    assert_eq!(to, busy);
    host.vm(1).finish(second);
    assert_eq!(run_on(&mut host, 0), all(idle));
    assert_eq!(run_on(&mut host, 1), all(idle));
}

pub fn a_long_request_keeps_counting_while_its_worker_beats(build: Build) {
    let mut host = two_workers(build, &in_flight(), &[]);
    let (_long, busy) = open_on(&mut host, 0);
    // Past the 10 s after which a silent worker's counts are ignored; worker 0 beats on the
    // tick meanwhile.
    host.advance(Duration::from_secs(15));
    assert_eq!(run_on(&mut host, 1), all(other(&busy)));
}

pub fn a_stopped_workers_requests_stop_counting(build: Build) {
    let mut host = two_workers(build, &in_flight(), &[]);
    let (_lost, busy) = open_on(&mut host, 0);
    let (_open, idle) = open_on(&mut host, 1);
    assert_eq!(idle, other(&busy));
    // Worker 0 hangs with its request open: no more ticks, no more heartbeats.
    host.vm(0).halted = true;
    host.advance(Duration::from_secs(11));
    // Its count is ignored; worker 1's own open request still counts.
    assert_eq!(run_on(&mut host, 1), all(&busy));
}
