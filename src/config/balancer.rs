//! One complete balancing configuration: the providers, where their loads come from, the model
//! pools and their strategies, and the headers the filter writes.

use serde_json::Value;

use super::fields::Fields;
use super::health::{
    parse_tokens, parse_upstream, HealthPolicy, RetryPolicy, StatusEndpoint, Upstream,
};
use super::pools::{parse_pools, Pools};
use super::scope::Scope;
use super::sources::{parse_load_source, LoadSource, StoreRead, DEFAULT_KEY_PREFIX, REDIS_FIELDS};
use super::{Build, ConfigError};
use crate::background::{engine_keys, SharedKeys};
use crate::health::health_key;
use crate::health::tokens::TokenPool;
use crate::strategy::Strategy;

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
pub(crate) const PROVIDER_FIELDS: &[&str] = &[
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
pub(crate) const METRICS_FIELDS: &[&str] = &["cluster", "path"];

pub const DEFAULT_SELECTED_PROVIDER_HEADER: &str = "x-selected-provider";
pub const DEFAULT_REWRITE_MODEL_HEADER: &str = "x-rewrite-target-model";
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A worker's wasm32 heap is at most 4 GiB, and a request holding a body of this size costs
/// about twice that while it is rewritten (the copy read, the rewritten copy): 128 MiB leaves
/// room for 16 such requests at once on one worker (README, "Gateway buffer limit").
const MAX_BODY_BYTES_CEILING: u64 = 128 * 1024 * 1024;
const MAX_WEIGHT: u64 = 1_000_000;

/// Where a provider's engine serves its Prometheus `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsTarget {
    pub cluster: String,
    pub path: String,
    /// Where its scrape is published for every worker, and the scrape's lease.
    pub shared_keys: SharedKeys,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The routing header's value: the gateway's route table maps it to a cluster.
    pub name: String,
    /// The Redis key (or hash) holding this provider's load, prefix included.
    pub key: String,
    /// The model name this provider expects; `None` leaves the body's model as sent.
    pub model: Option<String>,
    /// Share of traffic when loads are unknown.
    pub weight: u32,
    /// Its engine's `/metrics` (load_source "engine_metrics").
    pub metrics: Option<MetricsTarget>,
    /// Where the filter reaches it itself: retries and probes.
    pub upstream: Option<Upstream>,
    /// Its API keys, one per request, written into the request.
    pub tokens: Option<TokenPool>,
    /// Its health record in shared data.
    pub health_key: String,
}

impl Provider {
    pub fn token_fingerprints(&self) -> Vec<u64> {
        self.tokens
            .as_ref()
            .map(TokenPool::fingerprints)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct BalancerConfig {
    pub providers: Vec<Provider>,
    pub loads: LoadSource,
    pub pools: Pools,
    /// Answer `GET …/v1/models` from the pools, without a provider.
    pub list_models: bool,
    pub selected_provider_header: String,
    pub rewrite_model_header: String,
    pub max_body_bytes: usize,
    pub health: HealthPolicy,
    /// Retry on another provider; `None`: off.
    pub retry: Option<RetryPolicy>,
    pub status_endpoint: Option<StatusEndpoint>,
    /// The requests it balances (paths, routes); every other one passes untouched.
    pub scope: Scope,
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
        let loads = parse_load_source(&fields, &providers, build)?;
        let pools = parse_pools(&fields, &providers)?;
        check_strategies_have_loads(&pools, &loads, &fields)?;
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
            return Err(fields.error(
                "rewrite_model_header",
                format!("must differ from selected_provider_header ({selected_provider_header:?})"),
            ));
        }
        let max_body_bytes = fields
            .integer("max_body_bytes", 1, MAX_BODY_BYTES_CEILING)?
            .map_or(DEFAULT_MAX_BODY_BYTES, |bytes| bytes as usize);
        let list_models = fields.boolean("list_models")?.unwrap_or(false);
        if list_models && !pools.by_model {
            return Err(fields.error(
                "list_models",
                "lists the names in models; set models too".into(),
            ));
        }
        let health = HealthPolicy::parse(&fields)?;
        let retry = RetryPolicy::parse(&fields)?;
        if retry.is_some() && providers.iter().all(|p| p.upstream.is_none()) {
            return Err(fields.error(
                "retry",
                "needs providers[].cluster on the providers a request may be retried on (the \
                 filter sends retries to that Envoy cluster itself)"
                    .into(),
            ));
        }
        let status_endpoint = StatusEndpoint::parse(&fields)?;
        let scope = Scope::parse(&fields)?;
        Ok(Self {
            providers,
            loads,
            pools,
            list_models,
            selected_provider_header,
            rewrite_model_header,
            max_body_bytes,
            health,
            retry,
            status_endpoint,
            scope,
        })
    }

    /// The store read once for every provider's load, when the loads come from one.
    pub fn store(&self) -> Option<&StoreRead> {
        self.loads.store()
    }

    /// Whether a request's body must be read before the choice: its pool or strategy needs it,
    /// or a retry may have to send it again.
    pub fn needs_body(&self) -> bool {
        self.pools.need_body() || self.retry.is_some()
    }
}

/// A strategy that ranks by load, with no source of loads, would always fall back to weights:
/// refuse it rather than run it blind.
fn check_strategies_have_loads(
    pools: &Pools,
    loads: &LoadSource,
    fields: &Fields<'_>,
) -> Result<(), ConfigError> {
    if !matches!(loads, LoadSource::None) {
        return Ok(());
    }
    for pool in &pools.pools {
        let name = match pool.strategy {
            Strategy::LeastLoad => "least_load",
            Strategy::InferenceScore(_) => "inference_score",
            _ => continue,
        };
        let path = if pool.name.is_empty() {
            fields.path("strategy")
        } else {
            super::fields::join(&fields.path("models"), &pool.name)
        };
        return Err(ConfigError::at(
            &path,
            format!(
                "strategy {name} ranks providers by load, and no load source is set: set redis, \
                 or load_source \"endpoint\", \"engine_metrics\" or \"in_flight\""
            ),
        ));
    }
    Ok(())
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
    super::fields::check_list_length(items, &path)?;
    let mut providers: Vec<Provider> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let entry = Fields::new(item, &item_path, PROVIDER_FIELDS, false)?;
        let name = entry.required_string("name")?;
        check_header_value(name, &entry.path("name"))?;
        if providers.iter().any(|p| p.name == name) {
            return Err(entry.error("name", format!("duplicate {name:?}")));
        }
        // Without a key of its own, a provider's Redis key is its name.
        let key = entry.non_empty_string("key")?.unwrap_or(name);
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
            metrics: parse_metrics_target(&entry)?,
            upstream: parse_upstream(&entry)?,
            tokens: parse_tokens(&entry)?,
            health_key: health_key(name),
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
        return Err(fields.error(key, format!("{name:?} is not a valid header name")));
    }
    if matches!(
        lower.as_str(),
        "host" | "content-length" | "content-type" | "transfer-encoding" | "connection"
    ) {
        return Err(fields.error(
            key,
            format!("{name:?} is a header the gateway relies on; choose another name"),
        ));
    }
    Ok(lower)
}

/// Provider names and models travel in request headers: no control characters.
pub fn check_header_value(value: &str, path: &str) -> Result<(), ConfigError> {
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

fn parse_metrics_target(entry: &Fields<'_>) -> Result<Option<MetricsTarget>, ConfigError> {
    let Some(value) = entry.value("metrics") else {
        return Ok(None);
    };
    let metrics = Fields::new(value, &entry.path("metrics"), METRICS_FIELDS, false)?;
    let path = metrics
        .non_empty_string("path")?
        .unwrap_or(super::sources::DEFAULT_METRICS_PATH);
    if !path.starts_with('/') {
        return Err(metrics.error("path", format!("{path:?} must start with /")));
    }
    let cluster = metrics.required_string("cluster")?;
    Ok(Some(MetricsTarget {
        cluster: cluster.to_string(),
        path: path.to_string(),
        shared_keys: engine_keys(cluster, path),
    }))
}
