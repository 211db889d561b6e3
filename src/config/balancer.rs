//! One complete balancing configuration: the providers, the store holding their loads, and the
//! headers the filter writes.

use serde_json::Value;

use super::fields::Fields;
use super::{Build, ConfigError};
use crate::refresh::{shared_keys, SharedKeys};
use crate::store::StoreQuery;

pub const FIELDS: &[&str] = &[
    "providers",
    "redis",
    "selected_provider_header",
    "rewrite_model_header",
    "max_body_bytes",
];
const PROVIDER_FIELDS: &[&str] = &["name", "key", "model", "weight"];
const REDIS_FIELDS: &[&str] = &[
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
];

pub const DEFAULT_SELECTED_PROVIDER_HEADER: &str = "x-selected-provider";
pub const DEFAULT_REWRITE_MODEL_HEADER: &str = "x-rewrite-target-model";
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_MS: u32 = 100;
pub const DEFAULT_KEY_PREFIX: &str = "ai_metric:";
pub const DEFAULT_REFRESH_INTERVAL_MS: u32 = 500;
/// Loads older than this many refresh intervals count as unknown, by default.
const DEFAULT_MAX_AGE_INTERVALS: u32 = 3;
/// Three failures in a row, not one: a single lost reply should not cost a second of loads.
pub const DEFAULT_DOWN_AFTER_FAILURES: u32 = 3;
/// One request per second per worker asks a store known down; it is back within a second.
pub const DEFAULT_DOWN_RETRY_MS: u32 = 1000;
const MAX_WEIGHT: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The routing header's value: the gateway's route table maps it to a cluster.
    pub name: String,
    /// The Redis key holding this provider's load, prefix included.
    pub key: String,
    /// The model name this provider expects; `None` leaves the body's model as sent.
    pub model: Option<String>,
    /// Share of traffic when loads are unknown.
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RESP through Higress's `proxy_redis_call` (Higress build only).
    Resp,
    /// HTTP `GET /MGET/<keys>.json` through a Webdis cluster.
    Webdis,
}

/// When the filter reads the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Every balanced request reads the store and waits for its reply (the seed's behaviour, and
    /// the freshest loads), unless the store is known down (see `store::health`).
    PerRequest { down: DownPolicy },
    /// One worker, holding a lease in shared data, reads the store every `interval_ms` and
    /// publishes the loads for all workers; requests never wait. Loads older than `max_age_ms`
    /// count as unknown, and weights decide.
    Background { interval_ms: u32, max_age_ms: u32 },
}

/// When a store counts as down for per-request reads, and how often it is asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownPolicy {
    /// Consecutive unreachable replies (refused, failed, timed out) before it counts as down.
    pub after_failures: u32,
    /// While down, one request asks again this often.
    pub retry_ms: u32,
}

impl Default for DownPolicy {
    fn default() -> Self {
        Self {
            after_failures: DEFAULT_DOWN_AFTER_FAILURES,
            retry_ms: DEFAULT_DOWN_RETRY_MS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub cluster: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: Option<u32>,
    pub timeout_ms: u32,
    pub protocol: Protocol,
    pub refresh: Refresh,
}

#[derive(Debug, Clone)]
pub struct BalancerConfig {
    pub providers: Vec<Provider>,
    /// `providers[].weight`, in order, for the weighted pick.
    weights: Vec<u32>,
    pub store: StoreConfig,
    /// The store request, built once: every balanced request sends the same bytes.
    pub query: StoreQuery,
    /// Where background refresh publishes this store's loads, and its lease.
    pub shared_keys: SharedKeys,
    pub selected_provider_header: String,
    pub rewrite_model_header: String,
    pub max_body_bytes: usize,
}

impl BalancerConfig {
    pub fn parse(value: &Value, path: &str, build: Build) -> Result<Self, ConfigError> {
        let fields = Fields::new(value, path, FIELDS, false)?;
        let redis_path = fields.path("redis");
        let key_prefix = match fields.value("redis") {
            Some(redis) => {
                Fields::new(redis, &redis_path, REDIS_FIELDS, false)?.string("key_prefix")?
            }
            None => None,
        };
        let providers = parse_providers(&fields, key_prefix.unwrap_or(DEFAULT_KEY_PREFIX))?;
        let redis = fields
            .value("redis")
            .ok_or_else(|| ConfigError::at(&redis_path, "required".into()))?;
        let store = parse_store(redis, &redis_path, build)?;
        let selected_provider_header = header_name(
            &fields,
            "selected_provider_header",
            DEFAULT_SELECTED_PROVIDER_HEADER,
        )?;
        let rewrite_model_header = header_name(
            &fields,
            "rewrite_model_header",
            DEFAULT_REWRITE_MODEL_HEADER,
        )?;
        if rewrite_model_header == selected_provider_header {
            return Err(ConfigError::at(
                &fields.path("rewrite_model_header"),
                format!("must differ from selected_provider_header ({selected_provider_header:?})"),
            ));
        }
        let max_body_bytes = fields
            .integer("max_body_bytes", 1, 1 << 30)?
            .map_or(DEFAULT_MAX_BODY_BYTES, |bytes| bytes as usize);
        let keys: Vec<&str> = providers.iter().map(|p| p.key.as_str()).collect();
        let query = StoreQuery::mget(&store, &keys);
        Ok(Self {
            weights: providers.iter().map(|p| p.weight).collect(),
            providers,
            store,
            shared_keys: shared_keys(&query),
            query,
            selected_provider_header,
            rewrite_model_header,
            max_body_bytes,
        })
    }

    pub fn weights(&self) -> &[u32] {
        &self.weights
    }
}

fn parse_providers(fields: &Fields<'_>, key_prefix: &str) -> Result<Vec<Provider>, ConfigError> {
    let path = fields.path("providers");
    let items = match fields.value("providers") {
        None => return Err(ConfigError::at(&path, "required".into())),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(ConfigError::at(
                &path,
                "must list at least one provider".into(),
            ))
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::at(
                &path,
                format!("must be a list, got {}", super::fields::kind(other)),
            ))
        }
    };
    let mut providers: Vec<Provider> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let entry = Fields::new(item, &item_path, PROVIDER_FIELDS, false)?;
        let name = entry.required_string("name")?;
        check_header_value(name, &entry.path("name"))?;
        if providers.iter().any(|p| p.name == name) {
            return Err(ConfigError::at(
                &entry.path("name"),
                format!("duplicate {name:?}"),
            ));
        }
        let key = entry.required_string("key")?;
        let model = entry.non_empty_string("model")?;
        if let Some(model) = model {
            check_header_value(model, &entry.path("model"))?;
        }
        let weight = entry.integer("weight", 0, MAX_WEIGHT)?.unwrap_or(1) as u32;
        providers.push(Provider {
            name: name.to_string(),
            key: format!("{key_prefix}{key}"),
            model: model.map(str::to_string),
            weight,
        });
    }
    if providers.iter().all(|p| p.weight == 0) {
        return Err(ConfigError::at(
            &path,
            "every weight is 0; at least one provider needs a weight above 0 for when loads are unknown"
                .into(),
        ));
    }
    Ok(providers)
}

fn parse_store(value: &Value, path: &str, build: Build) -> Result<StoreConfig, ConfigError> {
    let fields = Fields::new(value, path, REDIS_FIELDS, false)?;
    let cluster = match (
        fields.non_empty_string("cluster")?,
        fields.non_empty_string("service_name")?,
    ) {
        (Some(cluster), _) => cluster.to_string(),
        (None, Some(service)) => {
            let port = fields.integer("service_port", 1, 65535)?.ok_or_else(|| {
                ConfigError::at(
                    &fields.path("service_port"),
                    "required with service_name".into(),
                )
            })?;
            format!("outbound|{port}||{service}")
        }
        (None, None) => {
            return Err(ConfigError::at(
                path,
                "needs cluster, or service_name and service_port".into(),
            ))
        }
    };
    let protocol = match (fields.string("protocol")?, build) {
        (None, Build::Higress) | (Some("resp"), Build::Higress) => Protocol::Resp,
        (None, Build::Envoy) | (Some("webdis"), _) => Protocol::Webdis,
        (Some("resp"), Build::Envoy) => {
            return Err(ConfigError::at(
                &fields.path("protocol"),
                "\"resp\" needs the Higress build (ai-load-balancer.wasm); this Envoy build \
                 (ai-load-balancer-envoy.wasm) reads Redis through Webdis: use \"webdis\""
                    .into(),
            ))
        }
        (Some(other), _) => {
            return Err(ConfigError::at(
                &fields.path("protocol"),
                format!("unknown protocol {other:?}; expected \"resp\" or \"webdis\""),
            ))
        }
    };
    Ok(StoreConfig {
        cluster,
        username: fields.non_empty_string("username")?.map(str::to_string),
        password: fields.string("password")?.map(str::to_string),
        database: fields.integer("database", 0, 65535)?.map(|db| db as u32),
        timeout_ms: fields
            .integer("timeout_ms", 1, 60_000)?
            .map_or(DEFAULT_TIMEOUT_MS, |ms| ms as u32),
        protocol,
        refresh: parse_refresh(&fields)?,
    })
}

fn parse_refresh(fields: &Fields<'_>) -> Result<Refresh, ConfigError> {
    let interval = fields.integer("refresh_interval_ms", 10, 60_000)?;
    let max_age = fields.integer("max_age_ms", 10, 600_000)?;
    let after_failures = fields.integer("down_after_failures", 1, 1000)?;
    let retry = fields.integer("down_retry_ms", 10, 600_000)?;
    // A setting for a mode that is not on would be silently ignored: refuse it.
    let refuse_unless = |mode: &str, settings: [(&str, Option<u64>); 2]| match settings
        .iter()
        .find(|(_, value)| value.is_some())
    {
        Some((key, _)) => Err(ConfigError::at(
            &fields.path(key),
            format!("only used with refresh \"{mode}\""),
        )),
        None => Ok(()),
    };
    match fields.string("refresh")? {
        None | Some("per_request") => {
            refuse_unless(
                "background",
                [("refresh_interval_ms", interval), ("max_age_ms", max_age)],
            )?;
            Ok(Refresh::PerRequest {
                down: DownPolicy {
                    after_failures: after_failures
                        .map_or(DEFAULT_DOWN_AFTER_FAILURES, |n| n as u32),
                    retry_ms: retry.map_or(DEFAULT_DOWN_RETRY_MS, |ms| ms as u32),
                },
            })
        }
        Some("background") => {
            refuse_unless(
                "per_request",
                [
                    ("down_after_failures", after_failures),
                    ("down_retry_ms", retry),
                ],
            )?;
            let interval_ms = interval.map_or(DEFAULT_REFRESH_INTERVAL_MS, |ms| ms as u32);
            let max_age_ms =
                max_age.map_or(interval_ms * DEFAULT_MAX_AGE_INTERVALS, |ms| ms as u32);
            if max_age_ms < interval_ms {
                return Err(ConfigError::at(
                    &fields.path("max_age_ms"),
                    format!(
                        "{max_age_ms} is shorter than refresh_interval_ms ({interval_ms}): \
                         every load would count as unknown between refreshes"
                    ),
                ));
            }
            Ok(Refresh::Background {
                interval_ms,
                max_age_ms,
            })
        }
        Some(other) => Err(ConfigError::at(
            &fields.path("refresh"),
            format!("unknown mode {other:?}; expected \"per_request\" or \"background\""),
        )),
    }
}

/// A header name the filter writes: an HTTP token, stored lowercase, never one the gateway
/// itself depends on.
fn header_name(fields: &Fields<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let Some(name) = fields.non_empty_string(key)? else {
        return Ok(default.to_string());
    };
    let lower = name.to_ascii_lowercase();
    let is_token = lower
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(ConfigError::at(
            &fields.path(key),
            format!("{name:?} is not a valid header name"),
        ));
    }
    if matches!(
        lower.as_str(),
        "host" | "content-length" | "content-type" | "transfer-encoding" | "connection"
    ) {
        return Err(ConfigError::at(
            &fields.path(key),
            format!("{name:?} is a header the gateway relies on; choose another name"),
        ));
    }
    Ok(lower)
}

/// Provider names and models travel in request headers: no control characters.
fn check_header_value(value: &str, path: &str) -> Result<(), ConfigError> {
    if value.chars().any(|c| c.is_control()) || value.trim() != value {
        return Err(ConfigError::at(
            path,
            format!(
                "{value:?} cannot be sent in a header (control characters or surrounding spaces)"
            ),
        ));
    }
    Ok(())
}
