//! The opt-in status page: a `GET` of its path from an allowed source address is answered by
//! the filter with each provider's health, cooldown, load and tokens (masked); from any other
//! address, or by another method, the request goes on as if the page did not exist.

use std::time::Duration;

use serde_json::json;

use super::{eject, failover, gateway, provider, respond, routed_to, Action, Build, Host};
use super::{Value, MINMAX_MODEL, QIANWEN_MODEL};

const TOKEN_A: &str = "sk-aaaaaaaaaaaa1111";
const TOKEN_B: &str = "sk-bbbbbbbbbbbb2222";
const PATH: &str = "/ai-lb/status";

fn config() -> Value {
    let mut minmax = provider("minmax", MINMAX_MODEL);
    minmax["api_tokens"] = json!([TOKEN_A, TOKEN_B]);
    failover(
        json!([minmax, provider("qianwen", QIANWEN_MODEL)]),
        json!({
            "health": {"cooldown_ms": 10_000},
            "status_endpoint": {"path": PATH, "allowed_sources": ["127.0.0.1", "10.0.0.0/8"]}
        }),
    )
}

/// A `method` of `path` from `source` on worker `vm`: the request and what the headers got.
fn ask(host: &mut Host, vm: usize, method: &str, path: &str, source: &str) -> (u32, Action) {
    let vm = host.vm(vm);
    let request = vm.request(
        &[
            (":method", method),
            (":path", path),
            (":authority", "gateway.local"),
        ],
        &[("source.address", source)],
    );
    (request, vm.send_headers(request, true))
}

/// The page as JSON, checking it is a 200 of JSON.
fn page(host: &mut Host, vm: usize, source: &str) -> Value {
    let (request, action) = ask(host, vm, "GET", &format!("{PATH}?verbose=1"), source);
    assert_eq!(action, Action::Pause);
    let stream = host.vm(vm).stream(request);
    let response = stream.local_response.as_ref().expect("the page");
    assert!(stream.upstream.headers.is_none(), "nothing went upstream");
    assert_eq!(response.status, 200);
    assert!(response
        .headers
        .iter()
        .any(|(name, value)| name == "content-type" && value == "application/json"));
    let body = String::from_utf8(response.body.clone()).expect("text");
    for secret in [TOKEN_A, TOKEN_B, "aaaaaaaaaaaa", "bbbbbbbbbbbb"] {
        assert!(!body.contains(secret), "a secret on the page: {body}");
    }
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

pub fn the_status_page_answers_allowed_sources_only(build: Build) {
    let mut host = gateway(build, &config(), 2, &[]);
    // Token A is refused until it is out (no probe can reach minmax: out for the cooldown).
    for index in 0..60 {
        if host.metric("ai_lb.provider.minmax.token_unavailable") == 1 {
            break;
        }
        let vm = host.vm(index % 2);
        let request = super::open(vm);
        assert_eq!(routed_to(vm, request), "minmax");
        let refused = vm.stream(request).upstream_header("authorization")
            == Some(format!("Bearer {TOKEN_A}").as_str());
        respond(vm, request, if refused { "401" } else { "200" });
    }
    assert_eq!(host.metric("ai_lb.provider.minmax.token_unavailable"), 1);
    eject(&mut host, 0, "minmax");
    host.advance(Duration::from_millis(4_000));

    let status = page(&mut host, 1, "127.0.0.1:5555");
    assert_eq!(
        status,
        json!({"providers": [
            {"name": "minmax", "health": "ejected", "consecutive_failures": 0,
             "cooldown_remaining_ms": 6000, "load": null,
             "tokens": [{"token": "sk-…1111", "available": false},
                        {"token": "sk-…2222", "available": true}]},
            {"name": "qianwen", "health": "healthy", "consecutive_failures": 0,
             "cooldown_remaining_ms": 0, "load": null, "tokens": []}
        ]})
    );
    assert_eq!(host.metric("ai_lb.status.served"), 1);
    // A CIDR block allows a whole network; worker 0 shows the same shared picture.
    assert_eq!(page(&mut host, 0, "10.1.2.3:40000"), status);
    assert_eq!(host.metric("ai_lb.status.served"), 2);

    // Another address is not told the page exists: the request goes on, unbalanced.
    let (request, action) = ask(&mut host, 1, "GET", PATH, "192.168.1.9:5555");
    assert_eq!(action, Action::Continue);
    let stream = host.vm(1).stream(request);
    assert!(stream.local_response.is_none());
    assert_eq!(stream.upstream_header(":path"), Some(PATH));
    assert_eq!(stream.upstream_header("x-selected-provider"), None);
    // Nor is a POST of the path, from an allowed address: a request like any other, and, its
    // path being no inference API, one that passes untouched.
    let vm = host.vm(0);
    let request = vm.request(
        &[(":method", "POST"), (":path", PATH)],
        &[("source.address", "127.0.0.1:5555")],
    );
    vm.send_headers(request, false);
    vm.send_body(request, super::CHAT, true);
    let stream = vm.stream(request);
    stream.assert_forwarded_whole();
    assert!(stream.local_response.is_none());
    assert_eq!(stream.upstream_header("x-selected-provider"), None);
    assert_eq!(stream.upstream_body(), super::CHAT);
    assert_eq!(host.metric("ai_lb.status.served"), 2);
}
