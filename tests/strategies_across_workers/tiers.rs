//! Spillover tiers and session affinity, two workers: the in-flight counts that fill a tier and
//! the health records that move a session live in shared data, so both workers route alike.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::{exchange, open, routed_to, two_workers, Build, Host, Vm, CHAT};

/// Two engines in tier 0 and an API in tier 1, counted in flight; a tier is full at 2.
fn tiered() -> Value {
    json!({
        "providers": [
            {"name": "gpu-a", "model": "llama"},
            {"name": "gpu-b", "model": "llama"},
            {"name": "api", "model": "gpt-4o-mini", "tier": 1}
        ],
        "strategy": "least_load",
        "load_source": "in_flight",
        "spillover": {"max_load": 2}
    })
}

/// Opens a request on worker `vm`: it and where it went.
fn open_on(host: &mut Host, vm: usize) -> (u32, String) {
    let request = open(host.vm(vm), CHAT);
    (request, routed_to(host.vm(vm), request))
}

fn complete(vm: &mut Vm, request: u32, status: &str) {
    vm.send_response_headers(request, &[(":status", status)], false);
    vm.send_response_body(request, b"{}", true);
    vm.finish(request);
}

pub fn requests_spill_to_the_next_tier_only_while_the_first_is_full(build: Build) {
    let mut host = two_workers(build, &tiered(), &[]);
    // Four requests open on alternate workers fill both engines to 2 in flight.
    let mut open_requests = Vec::new();
    for turn in 0..4 {
        let (request, to) = open_on(&mut host, turn % 2);
        assert_ne!(to, "api", "turn {turn}: the engines have room");
        open_requests.push((turn % 2, request, to));
    }
    assert_eq!(host.metric("ai_lb.spillover.spilled"), 0);
    // Both at the threshold: the API takes the next, from either worker.
    let (_, spilled) = open_on(&mut host, 1);
    assert_eq!(spilled, "api");
    assert_eq!(exchange(host.vm(0), CHAT), "api");
    assert_eq!(host.metric("ai_lb.spillover.spilled"), 2);
    // One engine request ends: that engine is under the threshold again and takes the next ones.
    let (vm, request, freed) = open_requests.remove(0);
    complete(host.vm(vm), request, "200");
    for turn in 0..4 {
        assert_eq!(exchange(host.vm(turn % 2), CHAT), freed, "turn {turn}");
    }
    assert_eq!(host.metric("ai_lb.spillover.spilled"), 2);
}

pub fn an_ejected_first_tier_fails_over_to_the_next(build: Build) {
    let config = json!({
        "providers": [
            {"name": "gpu-a", "model": "llama"},
            {"name": "api", "model": "gpt-4o-mini", "tier": 1}
        ],
        "strategy": "least_load",
        "load_source": "in_flight",
        "spillover": {"max_load": 8}
    });
    let mut host = two_workers(build, &config, &[]);
    for turn in 0..3 {
        let request = open(host.vm(turn % 2), CHAT);
        assert_eq!(routed_to(host.vm(turn % 2), request), "gpu-a");
        complete(host.vm(turn % 2), request, "503");
    }
    // Three failures in a row ejected gpu-a: its tier has no backend left.
    for turn in 0..4 {
        assert_eq!(exchange(host.vm(turn % 2), CHAT), "api", "turn {turn}");
    }
}

/// Round robin, so that requests without a key visibly spread; sessions by header or `user`.
fn sessions() -> Value {
    json!({
        "providers": [
            {"name": "a", "model": "m"},
            {"name": "b", "model": "m"},
            {"name": "c", "model": "m"}
        ],
        "strategy": "round_robin",
        "session_affinity": {"header": "x-session-id", "body_field": "user"}
    })
}

/// A chat request with these extra headers and `body`, completed with `status`: where it went.
fn session_exchange(vm: &mut Vm, headers: &[(&str, &str)], body: &[u8], status: &str) -> String {
    let length = body.len().to_string();
    let mut all = vec![
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "gateway.local"),
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
    ];
    all.extend_from_slice(headers);
    let request = vm.request(&all, &[]);
    vm.send_headers(request, false);
    vm.send_body(request, body, true);
    let to = routed_to(vm, request);
    complete(vm, request, status);
    to
}

fn with_session(vm: &mut Vm, session: &str) -> String {
    session_exchange(vm, &[("x-session-id", session)], CHAT, "200")
}

pub fn a_session_stays_on_one_backend_on_every_worker(build: Build) {
    let mut host = two_workers(build, &sessions(), &[]);
    // Without a key, round robin spreads the requests.
    let keyless: BTreeSet<String> = (0..6)
        .map(|turn| exchange(host.vm(turn % 2), CHAT))
        .collect();
    assert_eq!(keyless.len(), 3, "{keyless:?}");
    let home = with_session(host.vm(0), "conversation-1");
    for turn in 0..10 {
        assert_eq!(with_session(host.vm(turn % 2), "conversation-1"), home);
    }
    // The same key in the body's `user` goes to the same backend.
    let body = br#"{"model":"auto","user":"conversation-1","messages":[]}"#;
    for vm in 0..2 {
        assert_eq!(session_exchange(host.vm(vm), &[], body, "200"), home);
    }
    // Different sessions spread.
    let homes: Vec<String> = (0..12)
        .map(|n| with_session(host.vm(n % 2), &format!("conversation-{n}")))
        .collect();
    let spread: BTreeSet<&String> = homes.iter().collect();
    assert!(spread.len() >= 2, "{spread:?}");
    // Header and body both: the header wins.
    let elsewhere = homes
        .iter()
        .position(|to| *to != home)
        .expect("a session elsewhere");
    let body = format!(r#"{{"model":"auto","user":"conversation-{elsewhere}","messages":[]}}"#);
    let headers = [("x-session-id", "conversation-1")];
    assert_eq!(
        session_exchange(host.vm(1), &headers, body.as_bytes(), "200"),
        home
    );
    assert_eq!(
        session_exchange(host.vm(1), &[], body.as_bytes(), "200"),
        homes[elsewhere]
    );
    assert_eq!(host.metric("ai_lb.session.routed"), 11 + 2 + 12 + 2);
    assert_eq!(host.metric("ai_lb.session.moved"), 0);
}

pub fn a_session_moves_while_its_backend_is_ejected_and_comes_back(build: Build) {
    let mut host = two_workers(build, &sessions(), &[]);
    let home = with_session(host.vm(0), "conversation-1");
    // Three failures in a row eject the session's backend (default failure_threshold).
    for turn in 0..3 {
        let to = session_exchange(
            host.vm(turn % 2),
            &[("x-session-id", "conversation-1")],
            CHAT,
            "503",
        );
        assert_eq!(to, home);
    }
    let away = with_session(host.vm(1), "conversation-1");
    assert_ne!(away, home);
    for turn in 0..4 {
        assert_eq!(
            with_session(host.vm(turn % 2), "conversation-1"),
            away,
            "always the same stand-in"
        );
    }
    assert_eq!(host.metric("ai_lb.session.moved"), 5);
    // Past the cooldown the session's own backend gets its trial, succeeds, and keeps it.
    host.advance(Duration::from_secs(11));
    for turn in 0..4 {
        assert_eq!(
            with_session(host.vm(turn % 2), "conversation-1"),
            home,
            "turn {turn}"
        );
    }
    assert_eq!(host.metric("ai_lb.session.moved"), 5);
}
