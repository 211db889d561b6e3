//! Scope, safe by default: only inference paths (and, with `route_names`, only the routes
//! listed) are balanced. Any other request goes on as the client sent it, with two exceptions:
//! its control headers are removed, and it never gets a pooled API key, so a client cannot
//! have the gateway add a provider's key to a request of its own making.

use serde_json::{json, Value};

use super::{assert_routed, assert_unbalanced, post_whole, seed_config, upstream_values, Gateway};
use super::{Build, Stream, CHAT, CLIENT_CONTROL_HEADERS, DELIVERIES, QIANWEN_MODEL};

const MINMAX_TOKEN: &str = "sk-minmax-pooled-0001";
const QIANWEN_TOKEN: &str = "sk-qianwen-pooled-002";
const CLIENT_CREDENTIALS: (&str, &str) = ("authorization", "Bearer sk-client-own");

/// The seed's providers, each with a pooled key; `extra` top-level fields merged in.
fn config_with_keys(build: Build, extra: Value) -> Value {
    let mut config = seed_config(build, extra);
    config["providers"][0]["api_tokens"] = json!([MINMAX_TOKEN]);
    config["providers"][1]["api_tokens"] = json!([QIANWEN_TOKEN]);
    config
}

/// A chat body `POST`ed whole to `path` with the client's control headers and credentials.
fn post(gateway: &mut Gateway, path: &str, properties: &[(&str, &str)]) -> u32 {
    let mut extra = CLIENT_CONTROL_HEADERS.to_vec();
    extra.push(CLIENT_CREDENTIALS);
    post_whole(gateway.vm(), path, CHAT, &extra, properties)
}

/// Not balanced: as the client sent it, minus its control headers, and no pooled key anywhere.
fn assert_left_alone(stream: &Stream, what: &str) {
    eprintln!("checking {what}");
    assert_unbalanced(stream, CHAT);
    for (name, value) in stream.upstream.headers.iter().flatten() {
        for token in [MINMAX_TOKEN, QIANWEN_TOKEN] {
            assert!(
                !value.contains(token),
                "{what}: a pooled key in {name}: {value}"
            );
        }
    }
    assert_eq!(
        upstream_values(stream, CLIENT_CREDENTIALS.0),
        [CLIENT_CREDENTIALS.1],
        "{what}: the client's own credentials pass"
    );
}

/// Balanced: routed to qianwen (the loads say so) with its pooled key.
fn assert_balanced(stream: &Stream, what: &str) {
    eprintln!("checking {what}");
    assert_routed(stream, "qianwen", QIANWEN_MODEL, CHAT);
    let bearer = format!("Bearer {QIANWEN_TOKEN}");
    assert_eq!(
        upstream_values(stream, "authorization"),
        [bearer.as_str()],
        "{what}: the pooled key"
    );
}

pub fn only_inference_paths_are_balanced_by_default(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery, &config_with_keys(build, json!({})));
        let id = post(&mut gateway, "/internal/jobs", &[]);
        assert_left_alone(gateway.vm().stream(id), "POST /internal/jobs");
        // The query is not part of the path matched.
        let id = post(&mut gateway, "/internal/jobs?to=/chat/completions", &[]);
        assert_left_alone(gateway.vm().stream(id), "a query naming an inference path");
        for path in ["/v1/chat/completions", "/v1/chat/completions?trace=1"] {
            let id = post(&mut gateway, path, &[]);
            assert_balanced(gateway.vm().stream(id), path);
        }
    }
}

pub fn a_star_path_balances_every_path(build: Build) {
    let config = config_with_keys(build, json!({"paths": ["*"]}));
    let mut gateway = Gateway::start(build, DELIVERIES[0], &config);
    let id = post(&mut gateway, "/internal/jobs", &[]);
    assert_balanced(gateway.vm().stream(id), "/internal/jobs with paths [*]");
}

pub fn a_prefix_path_balances_only_below_it(build: Build) {
    let config = config_with_keys(build, json!({"paths": ["/internal/*"]}));
    let mut gateway = Gateway::start(build, DELIVERIES[1], &config);
    let id = post(&mut gateway, "/internal/jobs", &[]);
    assert_balanced(gateway.vm().stream(id), "/internal/jobs under /internal/*");
    let id = post(&mut gateway, "/v1/chat/completions", &[]);
    assert_left_alone(
        gateway.vm().stream(id),
        "/v1/chat/completions outside /internal/*",
    );
}

pub fn route_names_limit_balancing_to_their_routes(build: Build) {
    for delivery in DELIVERIES {
        let config = config_with_keys(build, json!({"route_names": ["r1"]}));
        let mut gateway = Gateway::start(build, delivery, &config);
        let id = post(
            &mut gateway,
            "/v1/chat/completions",
            &[("route_name", "r1")],
        );
        assert_balanced(gateway.vm().stream(id), "route r1");
        let id = post(
            &mut gateway,
            "/v1/chat/completions",
            &[("route_name", "r2")],
        );
        assert_left_alone(gateway.vm().stream(id), "route r2");
        let id = post(&mut gateway, "/v1/chat/completions", &[]);
        assert_left_alone(gateway.vm().stream(id), "a host that names no route");
    }
}

pub fn a_rule_sets_its_own_paths(build: Build) {
    let config = config_with_keys(
        build,
        json!({"_rules_": [{"_match_route_": ["jobs"], "paths": ["/internal/*"]}]}),
    );
    let mut gateway = Gateway::start(build, DELIVERIES[1], &config);
    let id = post(&mut gateway, "/internal/jobs", &[("route_name", "jobs")]);
    assert_balanced(
        gateway.vm().stream(id),
        "/internal/jobs on the rule's route",
    );
    let id = post(&mut gateway, "/internal/jobs", &[("route_name", "other")]);
    assert_left_alone(gateway.vm().stream(id), "/internal/jobs on another route");
}
