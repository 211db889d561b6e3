//! Credentials. When the chosen provider has `api_tokens`, the pooled key is the only
//! credential the upstream sees: every credential header the client sent (`authorization`,
//! `api-key`, `x-api-key`, the provider's `token_header`) is removed, so that a client cannot
//! reach the provider with a key of its own choosing next to the gateway's, nor read which
//! header wins. Retries likewise carry only the retried provider's key. Providers without
//! `api_tokens` see the client's credentials unchanged.

use serde_json::{json, Value};

use super::{
    assert_routed, failover_config, post_whole, storeless_gateway, BodyDelivery, Build, CHAT,
    DELIVERIES, MINMAX_MODEL, QIANWEN_MODEL,
};
use crate::host::{Action, HttpReply};

const MINMAX_TOKEN: &str = "sk-minmax-pooled-0001";
const QIANWEN_TOKEN: &str = "sk-qianwen-pooled-002";
const CLIENT_CREDENTIALS: [(&str, &str); 3] = [
    ("authorization", "Bearer client"),
    ("api-key", "client"),
    ("x-api-key", "client"),
];

/// minmax (first, so chosen) with `minmax_keys` merged in, and qianwen.
fn config(minmax_keys: Value) -> Value {
    let mut minmax = json!({"name": "minmax", "model": MINMAX_MODEL});
    if let (Some(minmax), Value::Object(keys)) = (minmax.as_object_mut(), minmax_keys) {
        minmax.extend(keys);
    }
    failover_config(
        json!([minmax, {"name": "qianwen", "model": QIANWEN_MODEL}]),
        json!({}),
    )
}

type Credentials = Vec<(&'static str, Vec<String>)>;

/// What `headers` carry in each credential header a client can send.
fn credentials(headers: &[(String, String)]) -> Credentials {
    CLIENT_CREDENTIALS
        .iter()
        .map(|(name, _)| {
            let values = headers.iter().filter(|(key, _)| key == name);
            (*name, values.map(|(_, value)| value.clone()).collect())
        })
        .collect()
}

fn expected(pairs: [(&'static str, &[&str]); 3]) -> Credentials {
    pairs
        .into_iter()
        .map(|(name, values)| (name, values.iter().map(|value| value.to_string()).collect()))
        .collect()
}

/// The chat request sent whole with every client credential, on `delivery`; checks it was
/// routed to minmax and returns what the upstream got in each credential header.
fn send(build: Build, delivery: BodyDelivery, config: &Value) -> Credentials {
    let mut host = storeless_gateway(build, delivery, config, &[]);
    let vm = host.vm(0);
    let id = post_whole(vm, "/v1/chat/completions", CHAT, &CLIENT_CREDENTIALS, &[]);
    let stream = vm.stream(id);
    eprintln!("checking {delivery:?}");
    assert_routed(stream, "minmax", MINMAX_MODEL, CHAT);
    credentials(stream.upstream.headers.as_deref().unwrap_or_default())
}

pub fn a_pooled_api_key_replaces_every_client_credential(build: Build) {
    let keys = json!({"api_tokens": [MINMAX_TOKEN], "token_header": "api-key"});
    for delivery in DELIVERIES {
        assert_eq!(
            send(build, delivery, &config(keys.clone())),
            expected([
                ("authorization", &[]),
                ("api-key", &[MINMAX_TOKEN]),
                ("x-api-key", &[])
            ])
        );
    }
}

pub fn a_pooled_bearer_token_replaces_every_client_credential(build: Build) {
    let keys = json!({"api_tokens": [MINMAX_TOKEN]});
    let bearer = format!("Bearer {MINMAX_TOKEN}");
    for delivery in DELIVERIES {
        assert_eq!(
            send(build, delivery, &config(keys.clone())),
            expected([
                ("authorization", &[&bearer]),
                ("api-key", &[]),
                ("x-api-key", &[])
            ])
        );
    }
}

pub fn without_api_tokens_client_credentials_pass_unchanged(build: Build) {
    for delivery in DELIVERIES {
        assert_eq!(
            send(build, delivery, &config(json!({}))),
            expected([
                ("authorization", &["Bearer client"]),
                ("api-key", &["client"]),
                ("x-api-key", &["client"])
            ])
        );
    }
}

/// minmax answers 503; the filter retries on qianwen by a call of its own, to qianwen's
/// cluster: that call carries qianwen's key in qianwen's header and nothing else, neither the
/// client's credentials nor minmax's key.
pub fn a_retry_carries_only_the_retried_providers_token(build: Build) {
    const MINMAX_CLUSTER: &str = "outbound|80||minmax";
    const QIANWEN_CLUSTER: &str = "outbound|80||qianwen";
    let minmax = json!({"name": "minmax", "model": MINMAX_MODEL, "cluster": MINMAX_CLUSTER,
                        "api_tokens": [MINMAX_TOKEN]});
    let qianwen = json!({"name": "qianwen", "model": QIANWEN_MODEL, "cluster": QIANWEN_CLUSTER,
                         "api_tokens": [QIANWEN_TOKEN], "token_header": "x-api-key"});
    let config = failover_config(
        json!([minmax, qianwen]),
        json!({"retry": {"max_retries": 1}, "health": {"probe": false}}),
    );
    let clusters = [MINMAX_CLUSTER, QIANWEN_CLUSTER];
    let mut host = storeless_gateway(build, BodyDelivery::WhileHeadersPaused, &config, &clusters);
    let vm = host.vm(0);
    let id = post_whole(vm, "/v1/chat/completions", CHAT, &CLIENT_CREDENTIALS, &[]);
    let upstream = vm.stream(id).upstream.headers.clone().unwrap_or_default();
    let bearer = format!("Bearer {MINMAX_TOKEN}");
    assert_eq!(
        credentials(&upstream),
        expected([
            ("authorization", &[&bearer]),
            ("api-key", &[]),
            ("x-api-key", &[])
        ]),
        "the first try's credentials"
    );
    let failed = [(":status", "503"), ("content-type", "application/json")];
    assert_eq!(vm.send_response_headers(id, &failed, false), Action::Pause);
    vm.send_response_body(id, br#"{"error":"overloaded"}"#, true);
    let calls = vm.http_calls();
    assert_eq!(calls.len(), 1, "one retry: {calls:?}");
    let retry = calls[0].clone();
    assert_eq!(retry.cluster, QIANWEN_CLUSTER);
    assert_eq!(
        credentials(&retry.headers),
        expected([
            ("authorization", &[]),
            ("api-key", &[]),
            ("x-api-key", &[QIANWEN_TOKEN])
        ]),
        "the retry's credentials"
    );
    vm.answer_http_call(retry.token, Some(HttpReply::new(200, b"{}")));
    let answer = vm
        .stream(id)
        .local_response
        .as_ref()
        .map(|r| (r.status, r.body.as_slice()));
    assert_eq!(
        answer,
        Some((200, b"{}".as_slice())),
        "the retry's reply answers the client"
    );
}
