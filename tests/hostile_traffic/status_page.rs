//! The status page and `x-forwarded-for`. Under Envoy's default `use_remote_address: false`,
//! the `source.address` a filter reads comes from the client's `x-forwarded-for` (its last
//! entry, port 0): a client outside the allowed networks could name an allowed address. So a
//! request carrying `x-forwarded-for` is not served the page unless the operator says Envoy,
//! not the client, sets the source (`trust_forwarded_for: true`).

use serde_json::{json, Value};

use super::QIANWEN_MODEL;
use super::{failover_config, storeless_gateway, Build, Host, DELIVERIES, MINMAX_MODEL};

const PATH: &str = "/ai-lb/status";

fn config(status_endpoint: Value) -> Value {
    failover_config(
        json!([
            {"name": "minmax", "model": MINMAX_MODEL},
            {"name": "qianwen", "model": QIANWEN_MODEL}
        ]),
        json!({"status_endpoint": status_endpoint}),
    )
}

fn allowed_network(extra: Value) -> Value {
    let mut endpoint = json!({"path": PATH, "allowed_sources": ["10.0.0.0/8"]});
    if let (Some(endpoint), Value::Object(extra)) = (endpoint.as_object_mut(), extra) {
        endpoint.extend(extra);
    }
    endpoint
}

/// `GET` of the page with `extra` headers, the host giving `source` as `source.address`:
/// the status of the filter's own answer, or `None` when the request went on upstream.
fn ask(host: &mut Host, extra: &[(&str, &str)], source: &str) -> Option<u32> {
    let vm = host.vm(0);
    let mut headers = vec![
        (":method", "GET"),
        (":path", PATH),
        (":authority", "gateway.local"),
    ];
    headers.extend_from_slice(extra);
    let id = vm.request(&headers, &[("source.address", source)]);
    vm.send_headers(id, true);
    let stream = vm.stream(id);
    match &stream.local_response {
        Some(response) => {
            assert!(stream.upstream.headers.is_none(), "answered and forwarded");
            Some(response.status)
        }
        None => {
            stream.assert_forwarded_whole();
            assert_eq!(stream.upstream_header(":path"), Some(PATH));
            None
        }
    }
}

pub fn a_forwarded_request_is_not_served_the_status_page(build: Build) {
    let mut host = storeless_gateway(
        build,
        DELIVERIES[0],
        &config(allowed_network(json!({}))),
        &[],
    );
    // What Envoy makes of these with use_remote_address false: the last entry, port 0.
    for forwarded_for in ["10.1.2.3", "203.0.113.9, 10.1.2.3"] {
        assert_eq!(
            ask(
                &mut host,
                &[("x-forwarded-for", forwarded_for)],
                "10.1.2.3:0"
            ),
            None,
            "x-forwarded-for: {forwarded_for} was served the page"
        );
    }
    assert_eq!(host.metric("ai_lb.status.served"), 0);
}

pub fn a_direct_request_from_an_allowed_source_is_served_the_status_page(build: Build) {
    let mut host = storeless_gateway(
        build,
        DELIVERIES[0],
        &config(allowed_network(json!({}))),
        &[],
    );
    assert_eq!(ask(&mut host, &[], "10.1.2.3:5555"), Some(200));
    assert_eq!(
        ask(&mut host, &[], "192.168.1.9:5555"),
        None,
        "outside the network"
    );
    assert_eq!(host.metric("ai_lb.status.served"), 1);
}

pub fn trusting_forwarded_for_serves_a_forwarded_request(build: Build) {
    let endpoint = allowed_network(json!({"trust_forwarded_for": true}));
    let mut host = storeless_gateway(build, DELIVERIES[0], &config(endpoint), &[]);
    let forwarded = [("x-forwarded-for", "10.1.2.3")];
    assert_eq!(ask(&mut host, &forwarded, "10.1.2.3:0"), Some(200));
    // The source Envoy decided still has to be allowed.
    let outside = [("x-forwarded-for", "192.168.1.9")];
    assert_eq!(ask(&mut host, &outside, "192.168.1.9:0"), None);
    assert_eq!(host.metric("ai_lb.status.served"), 1);
}
