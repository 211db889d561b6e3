//! Model pools: the names clients send (`auto`, `gpt-4`, …), each mapped to backends (a provider
//! and the model that provider expects) and the strategy that picks among them. Without `models`
//! every request uses one pool of all providers, as before pools existed.

use serde_json::Value;

use super::balancer::Provider;
use super::fields::{kind, Fields};
use super::ConfigError;
use crate::background::fnv1a_64;
use crate::strategy::{Affinity, Ring, ScoreWeights, Strategy};

pub const POOL_FIELDS: &[&str] = &["strategy", "backends"];
pub(crate) const BACKEND_FIELDS: &[&str] = &["provider", "model", "weight", "priority"];
pub(crate) const STRATEGY_FIELDS: &[&str] = &[
    "name",
    "cache_ratio_weight",
    "request_load_weight",
    "prefill_load_weight",
    "candidate_percent",
    "prefix_bytes",
    "load_factor",
    "max_age_ms",
];
pub(crate) const STRATEGY_NAMES: &str =
    "least_load, weighted_random, random, round_robin, failover, least_latency, \
     inference_score, prefix_affinity";
/// Latency samples older than this count as none, so a slow provider is tried again.
pub const DEFAULT_LATENCY_MAX_AGE_MS: u32 = 30_000;
const MAX_WEIGHT: u64 = 1_000_000;
const REJECT: &str = "reject";
const PASS_THROUGH: &str = "pass_through";

#[derive(Debug, Clone, PartialEq)]
pub struct PoolBackend {
    /// Index into `providers`.
    pub provider: usize,
    /// The model this provider expects for this pool; `None` leaves the body's model as sent.
    pub model: Option<String>,
    pub weight: u32,
    /// Failover order: the lowest number first.
    pub priority: u32,
    /// `provider/model`: the backend's identity on the affinity ring and in latency keys.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// The name clients send; empty for the one pool of a configuration without `models`.
    pub name: String,
    pub strategy: Strategy,
    /// How long a latency sample counts (`least_latency`).
    pub latency_max_age_ms: u32,
    pub backends: Vec<PoolBackend>,
    /// The consistent-hash ring (`prefix_affinity` only).
    pub ring: Option<Ring>,
    /// The shared-data counter of its round-robin sequence: the pool's name and backends name
    /// it, so one sequence serves every worker.
    pub round_robin_key: String,
}

impl Pool {
    /// How much of the prompt its strategy hashes (0: none).
    pub fn prefix_bytes(&self) -> usize {
        match self.strategy {
            Strategy::PrefixAffinity(affinity) => affinity.prefix_bytes,
            _ => 0,
        }
    }
}

/// What happens to a request whose model names no pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownModel {
    /// 404 in OpenAI's error format, listing the names there are.
    Reject,
    /// Forwarded untouched, unbalanced.
    PassThrough,
    /// Balanced over this pool.
    Pool(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pools {
    pub pools: Vec<Pool>,
    /// True when the configuration has `models`: the pool depends on the body's model.
    pub by_model: bool,
    pub unknown_model: UnknownModel,
    /// The prompt prefix length hashed while the body is read, before the pool is known: the
    /// first affinity pool's (0: no pool hashes).
    pub common_prefix_bytes: usize,
}

impl Pools {
    fn new(pools: Vec<Pool>, by_model: bool, unknown_model: UnknownModel) -> Self {
        let mut common_prefix_bytes = 0;
        for pool in &pools {
            common_prefix_bytes = pool.prefix_bytes();
            if common_prefix_bytes > 0 {
                break;
            }
        }
        Self {
            pools,
            by_model,
            unknown_model,
            common_prefix_bytes,
        }
    }

    /// The pool for a request's model (`None`: no model in the body).
    pub fn for_model(&self, model: Option<&str>) -> Result<usize, UnknownModel> {
        if !self.by_model {
            return Ok(0);
        }
        model
            .and_then(|model| self.pools.iter().position(|pool| pool.name == model))
            .ok_or(self.unknown_model)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools
            .iter()
            .filter(|pool| !pool.name.is_empty())
            .map(|pool| pool.name.as_str())
    }

    /// Whether choosing a pool or a backend needs the request body read first.
    pub fn need_body(&self) -> bool {
        self.by_model
            || self.pools.iter().any(|pool| {
                matches!(
                    pool.strategy,
                    Strategy::PrefixAffinity(_) | Strategy::LeastLatency
                )
            })
    }
}

/// `models`, `strategy` and `unknown_model` of one configuration.
pub fn parse_pools(fields: &Fields<'_>, providers: &[Provider]) -> Result<Pools, ConfigError> {
    let Some(models) = fields.value("models") else {
        if fields.value("unknown_model").is_some() {
            return Err(fields.error("unknown_model", "only used with models".into()));
        }
        let (strategy, latency_max_age_ms) =
            parse_strategy(fields.value("strategy"), &fields.path("strategy"))?;
        let mut backends: Vec<PoolBackend> = Vec::with_capacity(providers.len());
        for (index, provider) in providers.iter().enumerate() {
            backends.push(PoolBackend {
                provider: index,
                model: provider.model.clone(),
                weight: provider.weight,
                priority: index as u32 + 1,
                id: backend_id(provider, provider.model.as_deref()),
            });
        }
        let only = pool(String::new(), strategy, latency_max_age_ms, backends);
        return Ok(Pools::new(vec![only], false, UnknownModel::Reject));
    };
    if fields.value("strategy").is_some() {
        return Err(fields.error(
            "strategy",
            "with models, each pool sets its own strategy (models.<name>.strategy)".into(),
        ));
    }
    let path = fields.path("models");
    let entries = match models {
        Value::Object(entries) if !entries.is_empty() => entries,
        Value::Object(_) => {
            return Err(ConfigError::at(
                &path,
                "must name at least one model".into(),
            ))
        }
        other => {
            return Err(ConfigError::at(
                &path,
                format!(
                    "must be a mapping of model names to pools, got {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut pools = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let pool_path = super::fields::join(&path, name);
        if name.trim().is_empty() || name == REJECT || name == PASS_THROUGH {
            return Err(ConfigError::at(
                &pool_path,
                format!("{name:?} cannot name a model"),
            ));
        }
        pools.push(parse_pool(name, value, &pool_path, providers)?);
    }
    let unknown_model = match fields.non_empty_string("unknown_model")? {
        None | Some(REJECT) => UnknownModel::Reject,
        Some(PASS_THROUGH) => UnknownModel::PassThrough,
        Some(name) => pools
            .iter()
            .position(|pool| pool.name == name)
            .map(UnknownModel::Pool)
            .ok_or_else(|| {
                fields.error(
                    "unknown_model",
                    format!(
                        "{name:?} is neither \"reject\", \"pass_through\" nor a name in models"
                    ),
                )
            })?,
    };
    Ok(Pools::new(pools, true, unknown_model))
}

fn parse_pool(
    name: &str,
    value: &Value,
    path: &str,
    providers: &[Provider],
) -> Result<Pool, ConfigError> {
    let fields = Fields::new(value, path, POOL_FIELDS, false)?;
    let (strategy, latency_max_age_ms) =
        parse_strategy(fields.value("strategy"), &fields.path("strategy"))?;
    let backends_path = fields.path("backends");
    let items = match fields.value("backends") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None => {
            return Err(ConfigError::at(
                &backends_path,
                "must list at least one backend".into(),
            ))
        }
        Some(other) => {
            return Err(ConfigError::at(
                &backends_path,
                format!("must be a list, got {}", kind(other)),
            ))
        }
    };
    super::fields::check_list_length(items, &backends_path)?;
    let mut backends: Vec<PoolBackend> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let entry = Fields::new(
            item,
            &format!("{backends_path}[{index}]"),
            BACKEND_FIELDS,
            false,
        )?;
        let provider_name = entry.required_string("provider")?;
        let provider = providers
            .iter()
            .position(|p| p.name == provider_name)
            .ok_or_else(|| {
                entry.error("provider", format!("{provider_name:?} is not in providers"))
            })?;
        let model = match entry.non_empty_string("model")? {
            Some(model) => {
                super::balancer::check_header_value(model, &entry.path("model"))?;
                Some(model.to_string())
            }
            None => providers[provider].model.clone(),
        };
        let id = backend_id(&providers[provider], model.as_deref());
        if backends.iter().any(|b| b.id == id) {
            return Err(entry.error("provider", format!("{id:?} is listed twice in this pool")));
        }
        backends.push(PoolBackend {
            provider,
            model,
            weight: entry
                .integer("weight", 0, MAX_WEIGHT)?
                .map_or(providers[provider].weight, |w| w as u32),
            priority: entry
                .integer("priority", 0, 1_000_000)?
                .map_or(index as u32 + 1, |p| p as u32),
            id,
        });
    }
    if backends.iter().all(|b| b.weight == 0) {
        return Err(ConfigError::at(
            &backends_path,
            "every weight is 0; at least one backend needs a weight above 0".into(),
        ));
    }
    Ok(pool(
        name.to_string(),
        strategy,
        latency_max_age_ms,
        backends,
    ))
}

fn pool(
    name: String,
    strategy: Strategy,
    latency_max_age_ms: u32,
    backends: Vec<PoolBackend>,
) -> Pool {
    let ring = matches!(strategy, Strategy::PrefixAffinity(_)).then(|| {
        let mut ids: Vec<&str> = Vec::with_capacity(backends.len());
        for backend in &backends {
            ids.push(&backend.id);
        }
        Ring::new(&ids)
    });
    let mut identity = name.clone().into_bytes();
    for backend in &backends {
        identity.push(0);
        identity.extend_from_slice(backend.id.as_bytes());
    }
    Pool {
        round_robin_key: format!("ai_lb/rr/{:016x}", fnv1a_64(&identity)),
        name,
        strategy,
        latency_max_age_ms,
        backends,
        ring,
    }
}

fn backend_id(provider: &Provider, model: Option<&str>) -> String {
    format!("{}/{}", provider.name, model.unwrap_or(""))
}

/// `strategy: <name>` or `strategy: {name: <name>, <its options>}`.
fn parse_strategy(value: Option<&Value>, path: &str) -> Result<(Strategy, u32), ConfigError> {
    let (name, options) = match value {
        None => return Ok((Strategy::LeastLoad, DEFAULT_LATENCY_MAX_AGE_MS)),
        Some(Value::String(name)) => (name.as_str(), None),
        Some(object @ Value::Object(_)) => {
            let options = Fields::new(object, path, STRATEGY_FIELDS, false)?;
            (options.required_string("name")?, Some(options))
        }
        Some(other) => {
            return Err(ConfigError::at(
                path,
                format!("must be a strategy name or a mapping, got {}", kind(other)),
            ))
        }
    };
    let name_path = if options.is_some() {
        super::fields::join(path, "name")
    } else {
        path.to_string()
    };
    let allowed: &[&str] = match name {
        "inference_score" => &[
            "cache_ratio_weight",
            "request_load_weight",
            "prefill_load_weight",
            "candidate_percent",
        ],
        "prefix_affinity" => &["prefix_bytes", "load_factor"],
        "least_latency" => &["max_age_ms"],
        _ => &[],
    };
    if let Some(options) = &options {
        for key in STRATEGY_FIELDS.iter().filter(|key| **key != "name") {
            if options.value(key).is_some() && !allowed.contains(key) {
                return Err(options.error(key, format!("not an option of strategy {name:?}")));
            }
        }
    }
    let float = |key: &str, default: f64, max: f64| -> Result<f64, ConfigError> {
        match &options {
            Some(options) => Ok(options.float(key, 0.0, max)?.unwrap_or(default)),
            None => Ok(default),
        }
    };
    let int = |key: &str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
        match &options {
            Some(options) => options.integer(key, min, max),
            None => Ok(None),
        }
    };
    let mut latency_max_age_ms = DEFAULT_LATENCY_MAX_AGE_MS;
    let strategy = match name {
        "least_load" => Strategy::LeastLoad,
        "weighted_random" => Strategy::WeightedRandom,
        "random" => Strategy::Random,
        "round_robin" => Strategy::RoundRobin,
        "failover" => Strategy::Failover,
        "least_latency" => {
            if let Some(ms) = int("max_age_ms", 100, 3_600_000)? {
                latency_max_age_ms = ms as u32;
            }
            Strategy::LeastLatency
        }
        "inference_score" => {
            let defaults = ScoreWeights::default();
            Strategy::InferenceScore(ScoreWeights {
                cache_ratio: float("cache_ratio_weight", defaults.cache_ratio, 1e6)?,
                request_load: float("request_load_weight", defaults.request_load, 1e6)?,
                prefill_load: float("prefill_load_weight", defaults.prefill_load, 1e6)?,
                candidate_percent: int("candidate_percent", 1, 100)?
                    .map_or(defaults.candidate_percent, |p| p as u32),
            })
        }
        "prefix_affinity" => {
            let defaults = Affinity::default();
            Strategy::PrefixAffinity(Affinity {
                prefix_bytes: int("prefix_bytes", 1, 1 << 20)?
                    .map_or(defaults.prefix_bytes, |b| b as usize),
                load_factor: float("load_factor", defaults.load_factor, 100.0)?,
            })
        }
        other => {
            return Err(ConfigError::at(
                &name_path,
                format!("unknown strategy {other:?}; expected one of {STRATEGY_NAMES}"),
            ))
        }
    };
    Ok((strategy, latency_max_age_ms))
}
