//! The answers the filter gives itself, in OpenAI's formats: the model list and the error for a
//! model no pool serves. Written by hand rather than through `json!` (a `Value` tree built to
//! be printed once) to keep the module small; keys sorted, as the module's serde_json prints a
//! `json!` mapping.

use super::RequestHost;
use crate::config::Pools;

/// `GET …/v1/models` (any prefix, any query).
pub fn is_models_list(host: &dyn RequestHost) -> bool {
    let path = host.request_header(":path").unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    path.ends_with("/v1/models") && host.request_header(":method").as_deref() == Some("GET")
}

pub fn models_list(pools: &Pools) -> Vec<u8> {
    let mut body = b"{\"data\":[".to_vec();
    for (index, name) in pools.names().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"created\":0,\"id\":");
        push_json_string(&mut body, name);
        body.extend_from_slice(b",\"object\":\"model\",\"owned_by\":\"ai-load-balancer\"}");
    }
    body.extend_from_slice(b"],\"object\":\"list\"}");
    body
}

pub fn unknown_model(model: Option<&str>, pools: &Pools) -> Vec<u8> {
    let mut available = String::new();
    for name in pools.names() {
        if !available.is_empty() {
            available.push_str(", ");
        }
        available.push_str(name);
    }
    let message = match model {
        Some(model) => format!("The model `{model}` does not exist. Available models: {available}"),
        None => format!("The request names no model. Available models: {available}"),
    };
    let mut body = b"{\"error\":{\"code\":\"model_not_found\",\"message\":".to_vec();
    push_json_string(&mut body, &message);
    body.extend_from_slice(b",\"param\":\"model\",\"type\":\"invalid_request_error\"}}");
    body
}

/// The 503 for a request the gateway would not let the filter resume: nothing else can answer
/// it, and a client waiting for its stream's timeout is worse off than one told at once.
pub const NOT_RESUMED: &[u8] = b"{\"error\":{\"code\":\"gateway_error\",\"message\":\"The gateway \
could not resume the request after choosing its provider.\",\"param\":null,\"type\":\"server_error\"}}";

/// `text` as a quoted JSON string, escaped as serde_json escapes it.
fn push_json_string(body: &mut Vec<u8>, text: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(body, text);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{Pool, UnknownModel};
    use crate::strategy::Strategy;

    fn pools(names: &[&str]) -> Pools {
        let pool = |name: &str| Pool {
            name: name.to_string(),
            strategy: Strategy::RoundRobin,
            latency_max_age_ms: 0,
            backends: Vec::new(),
            spillover: None,
            session: None,
            ring: None,
            round_robin_key: String::new(),
            rate_limits: None,
        };
        Pools {
            pools: names.iter().map(|name| pool(name)).collect(),
            by_model: true,
            unknown_model: UnknownModel::Reject,
            common_prefix_bytes: 0,
            common_session_field: None,
        }
    }

    /// `bytes` read as JSON (key order aside: natively serde_json keeps `json!`'s order).
    fn parsed(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn answers_are_the_bytes_json_printed() {
        let pools = pools(&["gpt-4", "q\"\u{1}é"]);
        let names: Vec<&str> = pools.names().collect();
        let data: Vec<serde_json::Value> = names
            .iter()
            .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "ai-load-balancer"}))
            .collect();
        let list = json!({"object": "list", "data": data});
        assert_eq!(parsed(&models_list(&pools)), list);
        // The bytes as the module's serde_json prints them: compact, keys sorted.
        assert_eq!(
            models_list(&self::pools(&["gpt-4"])),
            br#"{"data":[{"created":0,"id":"gpt-4","object":"model","owned_by":"ai-load-balancer"}],"object":"list"}"#
        );

        for (model, message) in [
            (
                Some("x\"\n"),
                "The model `x\"\n` does not exist. Available models: gpt-4, q\"\u{1}é",
            ),
            (
                None,
                "The request names no model. Available models: gpt-4, q\"\u{1}é",
            ),
        ] {
            let error = json!({"error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }});
            assert_eq!(parsed(&unknown_model(model, &pools)), error);
        }
        assert_eq!(
            unknown_model(Some("x"), &self::pools(&["a"])),
            br#"{"error":{"code":"model_not_found","message":"The model `x` does not exist. Available models: a","param":"model","type":"invalid_request_error"}}"#
        );
    }

    #[test]
    fn an_empty_model_list_is_still_a_list() {
        let pools = pools(&[]);
        assert_eq!(
            models_list(&pools),
            br#"{"data":[],"object":"list"}"#.to_vec()
        );
    }
}
