//! The one validation pass: what one field of a document says about another (duplicates, a
//! strategy needing loads, sections of a source not chosen, …), checked as the document becomes
//! the runtime `BalancerConfig`. Errors name the field's path, as serde's do.

mod pools;
mod resilience;
mod sources;

use super::balancer::{
    BalancerConfig, MetricsTarget, Provider, DEFAULT_MAX_BODY_BYTES, DEFAULT_REWRITE_MODEL_HEADER,
    DEFAULT_SELECTED_PROVIDER_HEADER,
};
use super::document::{self, Text, Whole};
use super::pools::Pools;
use super::scope::{PathPattern, Scope};
use super::sources::{LoadSource, DEFAULT_KEY_PREFIX, DEFAULT_METRICS_PATH};
use super::{Build, ConfigError};
use crate::background::engine_keys;
use crate::health::health_key;
use crate::strategy::Strategy;

/// Most entries a configuration list may hold (providers, a pool's backends, a provider's
/// `api_tokens`, `_rules_`). Far beyond any gateway's need, it keeps the checks that compare
/// each entry with the ones before it (duplicates) from growing with the square of an
/// arbitrary input.
pub const MAX_LIST_ITEMS: usize = 1024;

/// A configuration (the top level, or a rule at `at`) as the filter runs it.
pub fn balancer(
    doc: &document::Balancer,
    at: &str,
    build: Build,
) -> Result<BalancerConfig, ConfigError> {
    let key_prefix = doc
        .redis
        .as_ref()
        .and_then(|redis| redis.key_prefix.as_deref())
        .unwrap_or(DEFAULT_KEY_PREFIX);
    let mut providers = providers(doc, at, key_prefix)?;
    let loads = sources::load_source(doc, at, &providers, build)?;
    let selected_provider_header = header_name(
        doc.selected_provider_header.as_ref(),
        &join(at, "selected_provider_header"),
        DEFAULT_SELECTED_PROVIDER_HEADER,
    )?;
    let rewrite_model_header = header_name(
        doc.rewrite_model_header.as_ref(),
        &join(at, "rewrite_model_header"),
        DEFAULT_REWRITE_MODEL_HEADER,
    )?;
    if rewrite_model_header == selected_provider_header {
        return Err(ConfigError::at(
            &join(at, "rewrite_model_header"),
            format!("must differ from selected_provider_header ({selected_provider_header:?})"),
        ));
    }
    let own_headers = [
        selected_provider_header.as_str(),
        rewrite_model_header.as_str(),
    ];
    let pools = pools::pools(doc, at, &providers, &own_headers)?;
    pools::watch_rate_limits(&mut providers, &pools);
    check_strategies_have_loads(&pools, &loads, at)?;
    let list_models = doc.list_models.unwrap_or(false);
    if list_models && !pools.by_model {
        return Err(ConfigError::at(
            &join(at, "list_models"),
            "lists the names in models; set models too".into(),
        ));
    }
    let retry = doc.retry.as_ref().map(resilience::retry);
    if retry.is_some() && providers.iter().all(|p| p.upstream.is_none()) {
        return Err(ConfigError::at(
            &join(at, "retry"),
            "needs providers[].cluster on the providers a request may be retried on (the \
             filter sends retries to that Envoy cluster itself)"
                .into(),
        ));
    }
    Ok(BalancerConfig {
        providers,
        loads,
        pools,
        list_models,
        selected_provider_header,
        rewrite_model_header,
        max_body_bytes: doc
            .max_body_bytes
            .map_or(DEFAULT_MAX_BODY_BYTES, |bytes| bytes.0 as usize),
        health: resilience::health(doc.health.as_ref(), &join(at, "health"))?,
        retry,
        status_endpoint: resilience::status_endpoint(doc.status_endpoint.as_ref(), at)?,
        scope: scope(doc, at)?,
    })
}

/// `path.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Refuses a list longer than `MAX_LIST_ITEMS`, naming it.
pub fn check_list_length(length: usize, path: &str) -> Result<(), ConfigError> {
    if length > MAX_LIST_ITEMS {
        return Err(ConfigError::at(
            path,
            format!("{length} entries; at most {MAX_LIST_ITEMS} are accepted"),
        ));
    }
    Ok(())
}

/// A strategy that ranks by load, with no source of loads, would always fall back to weights:
/// refuse it rather than run it blind.
fn check_strategies_have_loads(
    pools: &Pools,
    loads: &LoadSource,
    at: &str,
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
            join(at, "strategy")
        } else {
            join(&join(at, "models"), &pool.name)
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

fn providers(
    doc: &document::Balancer,
    at: &str,
    key_prefix: &str,
) -> Result<Vec<Provider>, ConfigError> {
    let path = join(at, "providers");
    let items = doc
        .providers
        .as_deref()
        .ok_or_else(|| ConfigError::at(&path, "required".into()))?;
    if items.is_empty() {
        return Err(ConfigError::at(
            &path,
            "must list at least one provider".into(),
        ));
    }
    check_list_length(items.len(), &path)?;
    let mut providers: Vec<Provider> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let name = item.name.as_str();
        check_header_value(name, &join(&item_path, "name"))?;
        if providers.iter().any(|p| p.name == name) {
            return Err(ConfigError::at(
                &join(&item_path, "name"),
                format!("duplicate {name:?}"),
            ));
        }
        // Without a key of its own, a provider's Redis key is its name.
        let key = item.key.as_ref().map_or(name, Text::as_str);
        if let Some(model) = &item.model {
            check_header_value(model.as_str(), &join(&item_path, "model"))?;
        }
        providers.push(Provider {
            name: name.to_string(),
            key: format!("{key_prefix}{key}"),
            model: item.model.as_ref().map(|model| model.0.clone()),
            weight: item.weight.map_or(1, |weight| weight.u32()),
            tier: item.tier.map_or(0, Whole::u32),
            metrics: metrics_target(item.metrics.as_ref(), &join(&item_path, "metrics"))?,
            upstream: resilience::upstream(item, &item_path)?,
            tokens: resilience::tokens(item, &item_path)?,
            health_key: health_key(name),
            rate_limits: None,
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

fn metrics_target(
    metrics: Option<&document::Metrics>,
    path: &str,
) -> Result<Option<MetricsTarget>, ConfigError> {
    let Some(metrics) = metrics else {
        return Ok(None);
    };
    let url_path = metrics
        .path
        .as_ref()
        .map_or(DEFAULT_METRICS_PATH, Text::as_str);
    check_absolute(url_path, &join(path, "path"))?;
    let cluster = metrics.cluster.as_str();
    Ok(Some(MetricsTarget {
        cluster: cluster.to_string(),
        path: url_path.to_string(),
        shared_keys: engine_keys(cluster, url_path),
    }))
}

/// A header name the filter writes: an HTTP token, stored lowercase, never one the gateway
/// itself depends on.
fn header_name(name: Option<&Text>, path: &str, default: &str) -> Result<String, ConfigError> {
    let Some(name) = name.map(Text::as_str) else {
        return Ok(default.to_string());
    };
    let lower = name.to_ascii_lowercase();
    if !is_header_token(&lower) {
        return Err(ConfigError::at(
            path,
            format!("{name:?} is not a valid header name"),
        ));
    }
    if matches!(
        lower.as_str(),
        "host" | "content-length" | "content-type" | "transfer-encoding" | "connection"
    ) {
        return Err(ConfigError::at(
            path,
            format!("{name:?} is a header the gateway relies on; choose another name"),
        ));
    }
    Ok(lower)
}

fn is_header_token(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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

/// A URL path the filter requests itself.
fn check_absolute(url_path: &str, path: &str) -> Result<(), ConfigError> {
    if !url_path.starts_with('/') {
        return Err(ConfigError::at(
            path,
            format!("{url_path:?} must start with /"),
        ));
    }
    Ok(())
}

/// `paths` and `route_names`: the requests a configuration balances.
pub(super) fn scope(doc: &document::Balancer, at: &str) -> Result<Scope, ConfigError> {
    let mut scope = Scope::default();
    if let Some(items) = doc.paths.as_deref() {
        let path = join(at, "paths");
        check_names(items, &path)?;
        scope.paths = Vec::with_capacity(items.len());
        for (index, text) in items.iter().enumerate() {
            let pattern = PathPattern::parse(text)
                .map_err(|why| ConfigError::at(&format!("{path}[{index}]"), why))?;
            scope.paths.push(pattern);
        }
    }
    if let Some(items) = doc.route_names.as_deref() {
        check_names(items, &join(at, "route_names"))?;
        scope.route_names = Some(items.to_vec());
    }
    Ok(scope)
}

/// A list that, when set, must hold something, and no blank entry.
fn check_names(items: &[String], path: &str) -> Result<(), ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::at(
            path,
            "must not be empty (it would balance nothing); leave it out for the default".into(),
        ));
    }
    match items.iter().position(|item| item.trim().is_empty()) {
        Some(index) => Err(ConfigError::at(
            &format!("{path}[{index}]"),
            "must be a non-empty string".into(),
        )),
        None => Ok(()),
    }
}
