//! The field names of each configuration object, by the module paths `schema.rs` reads them
//! from (`super::balancer::FIELDS`, `super::health::RETRY_FIELDS`, …), until the schema is
//! generated from the document types. A test keeps them equal to those types' fields.

pub const FIELDS: &[&str] = &[
    "providers",
    "redis",
    "selected_provider_header",
    "rewrite_model_header",
    "max_body_bytes",
    "models",
    "strategy",
    "unknown_model",
    "list_models",
    "load_source",
    "endpoint",
    "engine_metrics",
    "in_flight",
    "health",
    "retry",
    "status_endpoint",
    "paths",
    "route_names",
];
pub const PROVIDER_FIELDS: &[&str] = &[
    "name",
    "key",
    "model",
    "weight",
    "metrics",
    "cluster",
    "prefix_rewrite",
    "probe",
    "api_tokens",
    "token_header",
];
pub const METRICS_FIELDS: &[&str] = &["cluster", "path"];
pub const REDIS_FIELDS: &[&str] = &[
    "service_name",
    "service_port",
    "cluster",
    "username",
    "password",
    "database",
    "timeout_ms",
    "key_prefix",
    "protocol",
    "refresh",
    "refresh_interval_ms",
    "max_age_ms",
    "down_after_failures",
    "down_retry_ms",
    "load_format",
    "hash_fields",
];
pub const ENDPOINT_FIELDS: &[&str] = &[
    "cluster",
    "path",
    "timeout_ms",
    "refresh",
    "refresh_interval_ms",
    "max_age_ms",
    "down_after_failures",
    "down_retry_ms",
];
pub const ENGINE_FIELDS: &[&str] = &["interval_ms", "timeout_ms", "max_age_ms"];
pub const IN_FLIGHT_FIELDS: &[&str] = &["scope"];
pub const HASH_FIELDS: [&str; 3] = crate::engine::DEFAULT_HASH_FIELDS;
pub const POOL_FIELDS: &[&str] = &["strategy", "backends"];
pub const BACKEND_FIELDS: &[&str] = &["provider", "model", "weight", "priority"];
pub const STRATEGY_FIELDS: &[&str] = &[
    "name",
    "cache_ratio_weight",
    "request_load_weight",
    "prefill_load_weight",
    "candidate_percent",
    "prefix_bytes",
    "load_factor",
    "max_age_ms",
];
pub const STRATEGY_NAMES: &str = "least_load, weighted_random, random, round_robin, failover, \
     least_latency, inference_score, prefix_affinity";

/// `super::health::…` in `schema.rs`.
pub mod health {
    pub const HEALTH_FIELDS: &[&str] = &[
        "failure_threshold",
        "failure_statuses",
        "cooldown_ms",
        "max_retry_after_ms",
        "success_threshold",
        "probe",
    ];
    pub const PROBE_SCHEDULE_FIELDS: &[&str] = &["interval_ms", "timeout_ms"];
    pub const RETRY_FIELDS: &[&str] = &["max_retries", "budget_ms"];
    pub const STATUS_FIELDS: &[&str] = &["path", "allowed_sources", "trust_forwarded_for"];
    pub const PROBE_FIELDS: &[&str] = &["method", "path", "body", "expected_statuses"];
    pub const REWRITE_FIELDS: &[&str] = &["from", "to"];
}

#[cfg(test)]
mod tests {
    use schemars::{schema_for, JsonSchema};
    use serde_json::Value;

    use super::health::*;
    use super::*;
    use crate::config::document::{
        Backend, Balancer, Endpoint, EngineMetrics, HashFields, Health, InFlight, Metrics, Pool,
        PrefixRewrite, Probe, ProbeSchedule, Provider, Redis, Retry, StatusEndpoint, StrategyName,
        StrategyOptions,
    };

    fn fields_of<T: JsonSchema>() -> Vec<String> {
        let schema = serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null);
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = list.iter().map(|name| name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_lists_are_the_document_types_fields() {
        let pairs = [
            (fields_of::<Balancer>(), FIELDS),
            (fields_of::<Provider>(), PROVIDER_FIELDS),
            (fields_of::<Metrics>(), METRICS_FIELDS),
            (fields_of::<Redis>(), REDIS_FIELDS),
            (fields_of::<HashFields>(), &HASH_FIELDS[..]),
            (fields_of::<Endpoint>(), ENDPOINT_FIELDS),
            (fields_of::<EngineMetrics>(), ENGINE_FIELDS),
            (fields_of::<InFlight>(), IN_FLIGHT_FIELDS),
            (fields_of::<Pool>(), POOL_FIELDS),
            (fields_of::<Backend>(), BACKEND_FIELDS),
            (fields_of::<StrategyOptions>(), STRATEGY_FIELDS),
            (fields_of::<Health>(), HEALTH_FIELDS),
            (fields_of::<ProbeSchedule>(), PROBE_SCHEDULE_FIELDS),
            (fields_of::<Retry>(), RETRY_FIELDS),
            (fields_of::<StatusEndpoint>(), STATUS_FIELDS),
            (fields_of::<Probe>(), PROBE_FIELDS),
            (fields_of::<PrefixRewrite>(), REWRITE_FIELDS),
        ];
        for (typed, listed) in pairs {
            assert_eq!(typed, sorted(listed));
        }
        let names = serde_json::to_value(schema_for!(StrategyName)).unwrap_or(Value::Null);
        let listed: Vec<&str> = STRATEGY_NAMES.split(',').map(str::trim).collect();
        assert_eq!(names["enum"], serde_json::json!(listed));
    }
}
