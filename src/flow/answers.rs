//! The answers the filter gives itself, in OpenAI's formats: the model list and the error for a
//! model no pool serves.

use serde_json::{json, Value};

use super::RequestHost;
use crate::config::Pools;

/// `GET …/v1/models` (any prefix, any query).
pub fn is_models_list(host: &dyn RequestHost) -> bool {
    let path = host.request_header(":path").unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    path.ends_with("/v1/models") && host.request_header(":method").as_deref() == Some("GET")
}

pub fn models_list(pools: &Pools) -> Vec<u8> {
    let data: Vec<Value> = pools
        .names()
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "ai-load-balancer"}))
        .collect();
    json!({"object": "list", "data": data})
        .to_string()
        .into_bytes()
}

pub fn unknown_model(model: Option<&str>, pools: &Pools) -> Vec<u8> {
    let available = pools.names().collect::<Vec<_>>().join(", ");
    let message = match model {
        Some(model) => format!("The model `{model}` does not exist. Available models: {available}"),
        None => format!("The request names no model. Available models: {available}"),
    };
    json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }})
    .to_string()
    .into_bytes()
}
