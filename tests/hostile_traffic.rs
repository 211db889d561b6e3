#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Requests a client shapes to get around the balancer, both builds, in the test host: request
//! trailers that would let held headers go before the choice (Envoy continues the whole stream
//! when a filter lets trailers through), control headers a client sends to pick its own
//! provider, paths and routes that are not inference traffic, credentials the client sends next
//! to the pooled key, and a forged `x-forwarded-for` asking for the status page. Each scenario
//! asserts what the upstream got, byte for byte, or what the client was answered.

mod host;

#[path = "hostile_traffic/control_headers.rs"]
mod control_headers;
#[path = "hostile_traffic/credentials.rs"]
mod credentials;
#[path = "hostile_traffic/scope.rs"]
mod scope;
#[path = "hostile_traffic/status_page.rs"]
mod status_page;
#[path = "hostile_traffic/trailers.rs"]
mod trailers;

use control_headers::*;
use credentials::*;
use host::{
    both_builds, reading, redis_section, BodyDelivery, Build, Host, RedisServer, Stream, Vm, Webdis,
};
use scope::*;
use serde_json::{json, Value};
use status_page::*;
use trailers::*;

const MINMAX_MODEL: &str = "MiniMax-M2.1";
const QIANWEN_MODEL: &str = "qwen3-max-preview";
/// The client's body. `"model":"auto"` also appears inside a message, which must stay as sent.
const CHAT: &[u8] =
    br#"{"model":"auto","messages":[{"role":"user","content":"say \"model\":\"auto\""}],"stream":false}"#;
/// What a client sends to choose its own provider: minmax, which the loads make the loser.
const CLIENT_CONTROL_HEADERS: [(&str, &str); 2] = [
    ("x-selected-provider", "minmax"),
    ("x-rewrite-target-model", "evil"),
];
const DELIVERIES: [BodyDelivery; 2] = [
    BodyDelivery::AfterHeadersResume,
    BodyDelivery::WhileHeadersPaused,
];

/// The seed's two providers, least load from the store; `extra` top-level fields merged in.
fn seed_config(build: Build, extra: Value) -> Value {
    let mut config = json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": MINMAX_MODEL},
            {"name": "qianwen", "key": "qwen_1", "model": QIANWEN_MODEL}
        ],
        "redis": redis_section(build)
    });
    merge(&mut config, extra);
    config
}

/// `providers` with `strategy: failover` (the first provider wins while it is healthy) and no
/// store; `extra` top-level fields merged in.
fn failover_config(providers: Value, extra: Value) -> Value {
    let mut config = json!({"providers": providers, "strategy": "failover"});
    merge(&mut config, extra);
    config
}

fn merge(config: &mut Value, extra: Value) {
    let Value::Object(extra) = extra else {
        panic!("extra fields must be an object")
    };
    for (field, value) in extra {
        config[field.as_str()] = value;
    }
}

/// One VM on `config`, reading a real store whose loads make qianwen win (minmax 90, qianwen 10).
struct Gateway {
    host: Host,
    _webdis: Option<Webdis>,
    _redis: RedisServer,
}

impl Gateway {
    fn start(build: Build, delivery: BodyDelivery, config: &Value) -> Self {
        let redis = RedisServer::start();
        redis.set("ai_metric:minimax_1", "90");
        redis.set("ai_metric:qwen_1", "10");
        let (host, webdis) = reading(build, &redis);
        let mut host = host.body_delivery(delivery);
        host.start_vm(&config.to_string())
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
        Self {
            host,
            _webdis: webdis,
            _redis: redis,
        }
    }

    fn vm(&mut self) -> &mut Vm {
        self.host.vm(0)
    }
}

/// One VM on `config`, which reads no store; `clusters` are answered by hand.
fn storeless_gateway(
    build: Build,
    delivery: BodyDelivery,
    config: &Value,
    clusters: &[&str],
) -> Host {
    let mut host = Host::new(build).body_delivery(delivery);
    for cluster in clusters {
        host = host.cluster(cluster, None);
    }
    host.start_vm(&config.to_string())
        .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
    host
}

/// A client's request on `vm`, its headers not sent yet: `:method`, `:path`, `:authority`,
/// then (for a `body`) its JSON content type and length, then `extra`.
fn request(
    vm: &mut Vm,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    extra: &[(&str, &str)],
    properties: &[(&str, &str)],
) -> u32 {
    let length = body.map(|body| body.len().to_string());
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", "gateway.local"),
    ];
    if let Some(length) = &length {
        headers.push(("content-type", "application/json"));
        headers.push(("content-length", length.as_str()));
    }
    headers.extend_from_slice(extra);
    vm.request(&headers, properties)
}

/// A `POST` of `body` sent whole (headers, then the body) with `extra` headers, store replies
/// delivered.
fn post_whole(
    vm: &mut Vm,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    properties: &[(&str, &str)],
) -> u32 {
    let id = request(vm, "POST", path, Some(body), extra, properties);
    vm.send_headers(id, false);
    vm.send_body(id, body, true);
    vm.deliver_store_replies();
    id
}

/// Every value of request header `name` as the upstream got it.
fn upstream_values<'a>(stream: &'a Stream, name: &str) -> Vec<&'a str> {
    stream
        .upstream
        .headers
        .iter()
        .flatten()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .collect()
}

/// `body` as the client sent it, with only the top-level model's value replaced by `model`.
fn with_model(body: &[u8], model: &str) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("a text body");
    let rewritten = text.replacen(r#""model":"auto""#, &format!(r#""model":"{model}""#), 1);
    assert_ne!(rewritten, text, "the body has a top-level model to rewrite");
    rewritten.into_bytes()
}

/// The request reached the upstream whole, routed to `provider` and `model` (one routing header
/// of each, whatever the client sent), its body the client's `body` with only the model's value
/// replaced.
fn assert_routed(stream: &Stream, provider: &str, model: &str, body: &[u8]) {
    stream.assert_forwarded_whole();
    assert_eq!(
        upstream_values(stream, "x-selected-provider"),
        [provider],
        "the upstream's routing header (client sent {:?})",
        CLIENT_CONTROL_HEADERS
    );
    assert_eq!(upstream_values(stream, "x-rewrite-target-model"), [model]);
    let expected = if body.is_empty() {
        Vec::new()
    } else {
        with_model(body, model)
    };
    assert_eq!(
        String::from_utf8_lossy(stream.upstream_body()),
        String::from_utf8_lossy(&expected),
        "the upstream's body"
    );
}

/// The request reached the upstream whole and unbalanced: no routing header (the client's
/// removed), `body` byte for byte.
fn assert_unbalanced(stream: &Stream, body: &[u8]) {
    stream.assert_forwarded_whole();
    for (name, _) in CLIENT_CONTROL_HEADERS {
        assert_eq!(
            upstream_values(stream, name),
            Vec::<&str>::new(),
            "{name} reached the upstream of an unbalanced request"
        );
    }
    assert_eq!(
        String::from_utf8_lossy(stream.upstream_body()),
        String::from_utf8_lossy(body),
        "an unbalanced request's body is forwarded as sent"
    );
}

both_builds!(
    trailers_never_release_headers_before_the_choice,
    trailers_end_the_body_a_model_pool_reads,
    trailers_without_a_body_wait_for_the_choice,
    a_body_still_held_when_its_trailer_comes_is_not_lost,
    control_headers_are_removed_when_headers_arrive,
    configured_control_header_names_are_removed_too,
    only_inference_paths_are_balanced_by_default,
    a_star_path_balances_every_path,
    a_prefix_path_balances_only_below_it,
    route_names_limit_balancing_to_their_routes,
    a_rule_sets_its_own_paths,
    a_pooled_api_key_replaces_every_client_credential,
    a_pooled_bearer_token_replaces_every_client_credential,
    without_api_tokens_client_credentials_pass_unchanged,
    a_retry_carries_only_the_retried_providers_token,
    a_forwarded_request_is_not_served_the_status_page,
    a_direct_request_from_an_allowed_source_is_served_the_status_page,
    trusting_forwarded_for_serves_a_forwarded_request,
);
