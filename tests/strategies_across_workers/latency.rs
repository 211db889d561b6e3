//! least_latency: a response's time to first byte and total time, measured by the worker that
//! served it, steer every worker's next picks; a backend with no recent samples is tried first.

use std::time::Duration;

use serde_json::{json, Value};

use super::{open, other, providers, routed_to, two_workers, Build, Host, CHAT};

const MAX_AGE_MS: u64 = 5000;

fn least_latency() -> Value {
    json!({
        "providers": providers(),
        "strategy": {"name": "least_latency", "max_age_ms": MAX_AGE_MS}
    })
}

/// How long a backend takes: to its response headers, and to the end of the stream (both from
/// the moment the request went upstream).
#[derive(Clone, Copy)]
struct Timing {
    first_byte_ms: u64,
    total_ms: u64,
}

const fn timing(first_byte_ms: u64, total_ms: u64) -> Timing {
    Timing {
        first_byte_ms,
        total_ms,
    }
}

/// A request on worker `vm`, answered by the backend it went to after that backend's `timing`
/// on the host clock; returns where it went.
fn timed_exchange(
    host: &mut Host,
    vm: usize,
    body: &[u8],
    timing_of: impl Fn(&str) -> Timing,
) -> String {
    let request = open(host.vm(vm), body);
    let provider = routed_to(host.vm(vm), request);
    let Timing {
        first_byte_ms,
        total_ms,
    } = timing_of(&provider);
    host.advance(Duration::from_millis(first_byte_ms));
    host.vm(vm)
        .send_response_headers(request, &[(":status", "200")], false);
    host.advance(Duration::from_millis(total_ms - first_byte_ms));
    host.vm(vm).send_response_body(request, b"{}", true);
    host.vm(vm).finish(request);
    provider
}

/// minmax is slow (2 s), qianwen fast (200 ms).
fn slow_minmax(provider: &str) -> Timing {
    match provider {
        "minmax" => timing(1500, 2000),
        _ => timing(100, 200),
    }
}

/// Worker 0 tries both backends (the second request goes to the one without samples); returns
/// when minmax's only sample was recorded.
fn explore_both_on_worker_0(host: &mut Host, timing_of: impl Fn(&str) -> Timing) -> Duration {
    let first = timed_exchange(host, 0, CHAT, &timing_of);
    let first_ended = host.now();
    let second = timed_exchange(host, 0, CHAT, &timing_of);
    assert_eq!(
        second,
        other(&first),
        "the backend without samples is tried first"
    );
    if first == "minmax" {
        first_ended
    } else {
        host.now()
    }
}

pub fn a_slow_backend_seen_by_one_worker_is_avoided_by_the_other(build: Build) {
    let mut host = two_workers(build, &least_latency(), &[]);
    let minmax_sampled_at = explore_both_on_worker_0(&mut host, slow_minmax);
    assert!(
        host.shared_data("ai_lb/latency/minmax/MiniMax-M2.1")
            .is_some(),
        "latency is kept per backend in shared data"
    );
    // Worker 1 has served nothing yet, and still avoids the slow backend.
    for _ in 0..3 {
        assert_eq!(timed_exchange(&mut host, 1, CHAT, slow_minmax), "qianwen");
    }
    assert_eq!(timed_exchange(&mut host, 0, CHAT, slow_minmax), "qianwen");
    // 4.9 s after its sample minmax is still known slow...
    host.advance(minmax_sampled_at + Duration::from_millis(4900) - host.now());
    assert_eq!(timed_exchange(&mut host, 1, CHAT, slow_minmax), "qianwen");
    // ...200 ms later its sample is older than max_age_ms (5 s): it is tried again, though
    // qianwen has a fresh sample.
    assert!(host.now() > minmax_sampled_at + Duration::from_millis(MAX_AGE_MS));
    assert_eq!(timed_exchange(&mut host, 1, CHAT, slow_minmax), "minmax");
    assert_eq!(host.metric("ai_lb.selected.minmax"), 2);
}

pub fn a_slow_backend_that_recovered_wins_again(build: Build) {
    let mut host = two_workers(build, &least_latency(), &[]);
    let minmax_sampled_at = explore_both_on_worker_0(&mut host, slow_minmax);
    // qianwen keeps a fresh sample; minmax's ages out and it is tried again.
    host.advance(minmax_sampled_at + Duration::from_millis(4900) - host.now());
    assert_eq!(timed_exchange(&mut host, 1, CHAT, slow_minmax), "qianwen");
    let recovered = |provider: &str| match provider {
        "minmax" => timing(30, 50),
        _ => timing(100, 200),
    };
    assert_eq!(timed_exchange(&mut host, 1, CHAT, recovered), "minmax");
    // Its new sample (50 ms) is what counts, not a blend with the 2 s one that aged out:
    // minmax now beats qianwen (200 ms), on both workers.
    assert_eq!(timed_exchange(&mut host, 0, CHAT, recovered), "minmax");
    assert_eq!(timed_exchange(&mut host, 1, CHAT, recovered), "minmax");
}

pub fn streaming_requests_compare_time_to_first_byte(build: Build) {
    let mut host = two_workers(build, &least_latency(), &[]);
    // minmax starts answering at once but takes long to finish; qianwen is the other way round.
    let quick_start = |provider: &str| match provider {
        "minmax" => timing(100, 3000),
        _ => timing(400, 500),
    };
    explore_both_on_worker_0(&mut host, quick_start);
    assert_eq!(
        timed_exchange(&mut host, 1, CHAT, quick_start),
        "qianwen",
        "a non-streaming client waits for the whole answer"
    );
    let streaming = br#"{"model":"auto","stream":true,"messages":[]}"#;
    assert_eq!(
        timed_exchange(&mut host, 1, streaming, quick_start),
        "minmax",
        "a streaming client waits for the first byte"
    );
}

pub fn a_request_without_response_teaches_nothing(build: Build) {
    let mut host = two_workers(build, &least_latency(), &[]);
    let close_race = |provider: &str| match provider {
        "minmax" => timing(200, 300),
        _ => timing(100, 200),
    };
    explore_both_on_worker_0(&mut host, close_race);
    // A qianwen request the client gives up on after 4 s (within max_age_ms of both samples),
    // before any response.
    let request = open(host.vm(0), CHAT);
    assert_eq!(routed_to(host.vm(0), request), "qianwen");
    host.advance(Duration::from_secs(4));
    host.vm(0).finish(request);
    // Counted as a 4 s response, it would send the next request to minmax.
    assert_eq!(timed_exchange(&mut host, 1, CHAT, close_race), "qianwen");
}
