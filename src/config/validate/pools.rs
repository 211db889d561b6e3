//! `models`, `strategy`, `spillover`, `session_affinity` and `unknown_model`: the pools requests
//! are balanced over, the strategy each uses and the rules applied before it.

use super::{check_header_value, check_list_length, is_header_token, join};
use crate::config::balancer::Provider;
use crate::config::document::{self, Either, StrategyName, StrategyOptions, Text, UpTo, Whole};
use crate::config::pools::{
    backend_id, pool, PoolBackend, PoolRules, Pools, SessionAffinity, UnknownModel,
    DEFAULT_LATENCY_MAX_AGE_MS, PASS_THROUGH, REJECT,
};
use crate::config::ConfigError;
use crate::ratelimit::{rate_limit_key, Floor, RateWatch};
use crate::rewrite::is_fact_key;
use crate::strategy::{Affinity, ScoreWeights, Spillover, Strategy};

/// `own_headers`: the routing headers the filter sets (a session key cannot be read there: the
/// filter removes the client's copies).
pub fn pools(
    doc: &document::Balancer,
    at: &str,
    providers: &[Provider],
    own_headers: &[&str],
) -> Result<Pools, ConfigError> {
    let Some(models) = &doc.models else {
        if doc.unknown_model.is_some() {
            return Err(ConfigError::at(
                &join(at, "unknown_model"),
                "only used with models".into(),
            ));
        }
        let (strategy, latency_max_age_ms) =
            strategy(doc.strategy.as_ref(), &join(at, "strategy"))?;
        let backends: Vec<PoolBackend> = providers
            .iter()
            .enumerate()
            .map(|(index, provider)| PoolBackend {
                provider: index,
                model: provider.model.clone(),
                weight: provider.weight,
                priority: index as u32 + 1,
                tier: provider.tier,
                id: backend_id(provider, provider.model.as_deref()),
            })
            .collect();
        let spillover = spillover(doc.spillover.as_ref(), &backends, &join(at, "spillover"))?;
        check_tiers_read(doc, at, &|_| spillover.is_some())?;
        let rules = PoolRules {
            latency_max_age_ms,
            spillover,
            session: session_affinity(
                doc.session_affinity.as_ref(),
                &join(at, "session_affinity"),
                own_headers,
            )?,
        };
        let mut only = pool(String::new(), strategy, rules, backends);
        only.rate_limits = rate_limits(doc.rate_limits.as_ref(), &join(at, "rate_limits"))?;
        return Ok(Pools::new(vec![only], false, UnknownModel::Reject));
    };
    for (key, set) in [
        ("strategy", doc.strategy.is_some()),
        ("spillover", doc.spillover.is_some()),
        ("session_affinity", doc.session_affinity.is_some()),
        ("rate_limits", doc.rate_limits.is_some()),
    ] {
        if set {
            return Err(ConfigError::at(
                &join(at, key),
                format!("with models, each pool sets its own {key} (models.<name>.{key})"),
            ));
        }
    }
    let path = join(at, "models");
    if models.0.is_empty() {
        return Err(ConfigError::at(
            &path,
            "must name at least one model".into(),
        ));
    }
    let mut pools = Vec::with_capacity(models.0.len());
    let mut tier_read = Vec::new();
    for (name, entry) in &models.0 {
        let pool_path = join(&path, name);
        if name.trim().is_empty() || name == REJECT || name == PASS_THROUGH {
            return Err(ConfigError::at(
                &pool_path,
                format!("{name:?} cannot name a model"),
            ));
        }
        pools.push(model_pool(
            name,
            entry,
            &pool_path,
            providers,
            own_headers,
            &mut tier_read,
        )?);
    }
    check_tiers_read(doc, at, &|name| tier_read.contains(&name))?;
    let unknown_model = match doc.unknown_model.as_ref().map(Text::as_str) {
        None | Some(REJECT) => UnknownModel::Reject,
        Some(PASS_THROUGH) => UnknownModel::PassThrough,
        Some(name) => pools
            .iter()
            .position(|pool| pool.name == name)
            .map(UnknownModel::Pool)
            .ok_or_else(|| {
                ConfigError::at(
                    &join(at, "unknown_model"),
                    format!(
                        "{name:?} is neither \"reject\", \"pass_through\" nor a name in models"
                    ),
                )
            })?,
    };
    Ok(Pools::new(pools, true, unknown_model))
}

/// One pool of `models`; adds to `tier_read` the names of the providers whose `tier` it reads
/// (a spillover pool's backends without a tier of their own).
fn model_pool<'a>(
    name: &str,
    entry: &'a document::Pool,
    path: &str,
    providers: &[Provider],
    own_headers: &[&str],
    tier_read: &mut Vec<&'a str>,
) -> Result<crate::config::Pool, ConfigError> {
    let (strategy, latency_max_age_ms) =
        strategy(entry.strategy.as_ref(), &join(path, "strategy"))?;
    let backends_path = join(path, "backends");
    let items = match entry.backends.as_deref() {
        Some(items) if !items.is_empty() => items,
        _ => {
            return Err(ConfigError::at(
                &backends_path,
                "must list at least one backend".into(),
            ))
        }
    };
    check_list_length(items.len(), &backends_path)?;
    let mut backends: Vec<PoolBackend> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{backends_path}[{index}]");
        let provider_name = item.provider.as_str();
        let provider = providers
            .iter()
            .position(|p| p.name == provider_name)
            .ok_or_else(|| {
                ConfigError::at(
                    &join(&item_path, "provider"),
                    format!("{provider_name:?} is not in providers"),
                )
            })?;
        let model = match &item.model {
            Some(model) => {
                check_header_value(model.as_str(), &join(&item_path, "model"))?;
                Some(model.0.clone())
            }
            None => providers[provider].model.clone(),
        };
        let id = backend_id(&providers[provider], model.as_deref());
        if backends.iter().any(|b| b.id == id) {
            return Err(ConfigError::at(
                &join(&item_path, "provider"),
                format!("{id:?} is listed twice in this pool"),
            ));
        }
        let tier = match (item.tier, entry.spillover.as_ref()) {
            (Some(_), None) => {
                return Err(ConfigError::at(
                    &join(&item_path, "tier"),
                    "only used with spillover (models.<name>.spillover)".into(),
                ))
            }
            (Some(tier), Some(_)) => tier.u32(),
            (None, spillover) => {
                if spillover.is_some() {
                    tier_read.push(provider_name);
                }
                providers[provider].tier
            }
        };
        backends.push(PoolBackend {
            provider,
            model,
            weight: item.weight.map_or(providers[provider].weight, Whole::u32),
            priority: item.priority.map_or(index as u32 + 1, Whole::u32),
            tier,
            id,
        });
    }
    if backends.iter().all(|b| b.weight == 0) {
        return Err(ConfigError::at(
            &backends_path,
            "every weight is 0; at least one backend needs a weight above 0".into(),
        ));
    }
    let rules = PoolRules {
        latency_max_age_ms,
        spillover: spillover(
            entry.spillover.as_ref(),
            &backends,
            &join(path, "spillover"),
        )?,
        session: session_affinity(
            entry.session_affinity.as_ref(),
            &join(path, "session_affinity"),
            own_headers,
        )?,
    };
    let mut pool = pool(name.to_string(), strategy, rules, backends);
    pool.rate_limits = rate_limits(entry.rate_limits.as_ref(), &join(path, "rate_limits"))?;
    Ok(pool)
}

/// `spillover`, refused when every backend is in one tier (it would change nothing: a `tier`
/// forgotten, or set on the wrong provider).
fn spillover(
    doc: Option<&document::Spillover>,
    backends: &[PoolBackend],
    path: &str,
) -> Result<Option<Spillover>, ConfigError> {
    let Some(doc) = doc else {
        return Ok(None);
    };
    let max_load = doc.max_load;
    if let Some(first) = backends.first() {
        if backends.iter().all(|backend| backend.tier == first.tier) {
            return Err(ConfigError::at(
                path,
                "every backend is in one tier; spillover needs backends in two tiers or more \
                 (tier)"
                    .into(),
            ));
        }
    }
    Ok(Some(Spillover {
        max_load: f64::from(max_load.u32()),
    }))
}

/// A provider's `tier` that no spillover pool reads is refused, so that a forgotten
/// `spillover` shows.
fn check_tiers_read(
    doc: &document::Balancer,
    at: &str,
    tier_read: &dyn Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    let items = doc.providers.as_deref().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        if item.tier.is_some() && !tier_read(item.name.as_str()) {
            return Err(ConfigError::at(
                &format!("{}[{index}].tier", join(at, "providers")),
                "read by no pool with spillover: set spillover (with models, \
                 models.<name>.spillover), or remove it"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `session_affinity`: a header, a body field or both.
fn session_affinity(
    doc: Option<&document::SessionAffinity>,
    path: &str,
    own_headers: &[&str],
) -> Result<Option<SessionAffinity>, ConfigError> {
    let Some(doc) = doc else {
        return Ok(None);
    };
    if doc.header.is_none() && doc.body_field.is_none() {
        return Err(ConfigError::at(
            path,
            "needs header, body_field or both: where the session key is".into(),
        ));
    }
    if let Some(field) = doc.body_field.as_ref().filter(|f| is_fact_key(f.as_str())) {
        return Err(ConfigError::at(
            &join(path, "body_field"),
            format!(
                "{:?} is read for routing already (model, stream, messages, prompt, input); \
                 name the field holding the session key, e.g. user",
                field.as_str()
            ),
        ));
    }
    let header = doc
        .header
        .as_ref()
        .map(|name| name.as_str().to_ascii_lowercase());
    if let Some(header) = &header {
        // Only read, never written: any header name will do but the filter's own.
        let why = if !is_header_token(header) {
            "is not a valid header name"
        } else if own_headers.contains(&header.as_str()) {
            "is a routing header the filter sets; choose another"
        } else {
            ""
        };
        if !why.is_empty() {
            return Err(ConfigError::at(
                &join(path, "header"),
                format!("{header:?} {why}"),
            ));
        }
    }
    Ok(Some(SessionAffinity {
        header,
        body_field: doc.body_field.as_ref().map(|field| field.0.clone()),
        load_factor: doc
            .load_factor
            .map_or(Affinity::default().load_factor, |factor| factor.0),
    }))
}

/// `rate_limits`: the floors below which a budget is low (each 1 unless set).
fn rate_limits(
    doc: Option<&document::RateLimits>,
    path: &str,
) -> Result<Option<Floor>, ConfigError> {
    let Some(doc) = doc else {
        return Ok(None);
    };
    let floor = Floor {
        requests: doc.min_remaining_requests.map_or(1, |floor| floor.0),
        tokens: doc.min_remaining_tokens.map_or(1, |floor| floor.0),
    };
    if floor == Floor::default() {
        return Err(ConfigError::at(
            path,
            "both floors are 0, so nothing would be avoided; leave rate_limits out to turn it off"
                .into(),
        ));
    }
    Ok(Some(floor))
}

/// Each provider in a pool with `rate_limits` keeps its low budgets in shared data, against
/// the highest floors of those pools.
pub fn watch_rate_limits(providers: &mut [Provider], pools: &Pools) {
    for pool in &pools.pools {
        let Some(floor) = pool.rate_limits else {
            continue;
        };
        for backend in &pool.backends {
            if let Some(provider) = providers.get_mut(backend.provider) {
                let watch = provider.rate_limits.get_or_insert_with(|| RateWatch {
                    key: rate_limit_key(&provider.name),
                    floor,
                });
                watch.floor = watch.floor.max(floor);
            }
        }
    }
}

fn strategy_name(name: StrategyName) -> &'static str {
    match name {
        StrategyName::LeastLoad => "least_load",
        StrategyName::WeightedRandom => "weighted_random",
        StrategyName::Random => "random",
        StrategyName::RoundRobin => "round_robin",
        StrategyName::Failover => "failover",
        StrategyName::LeastLatency => "least_latency",
        StrategyName::InferenceScore => "inference_score",
        StrategyName::PrefixAffinity => "prefix_affinity",
    }
}

/// `strategy: <name>` or `strategy: {name: <name>, <its options>}`; each option belongs to one
/// strategy, and is refused on another.
fn strategy(
    choice: Option<&document::StrategyChoice>,
    path: &str,
) -> Result<(Strategy, u32), ConfigError> {
    let none = StrategyOptions {
        name: StrategyName::LeastLoad,
        cache_ratio_weight: None,
        request_load_weight: None,
        prefill_load_weight: None,
        candidate_percent: None,
        prefix_bytes: None,
        load_factor: None,
        max_age_ms: None,
    };
    let options = match choice {
        None => return Ok((Strategy::LeastLoad, DEFAULT_LATENCY_MAX_AGE_MS)),
        Some(Either::Short(name)) => StrategyOptions {
            name: *name,
            ..none
        },
        Some(Either::Long(options)) => options.clone(),
    };
    let name = options.name;
    let set = [
        (
            "cache_ratio_weight",
            options.cache_ratio_weight.is_some(),
            StrategyName::InferenceScore,
        ),
        (
            "request_load_weight",
            options.request_load_weight.is_some(),
            StrategyName::InferenceScore,
        ),
        (
            "prefill_load_weight",
            options.prefill_load_weight.is_some(),
            StrategyName::InferenceScore,
        ),
        (
            "candidate_percent",
            options.candidate_percent.is_some(),
            StrategyName::InferenceScore,
        ),
        (
            "prefix_bytes",
            options.prefix_bytes.is_some(),
            StrategyName::PrefixAffinity,
        ),
        (
            "load_factor",
            options.load_factor.is_some(),
            StrategyName::PrefixAffinity,
        ),
        (
            "max_age_ms",
            options.max_age_ms.is_some(),
            StrategyName::LeastLatency,
        ),
    ];
    if let Some((key, ..)) = set.iter().find(|(_, set, owner)| *set && *owner != name) {
        return Err(ConfigError::at(
            &join(path, key),
            format!("not an option of strategy {:?}", strategy_name(name)),
        ));
    }
    let fraction = |value: Option<UpTo<1_000_000>>, default: f64| value.map_or(default, |v| v.0);
    let strategy = match name {
        StrategyName::LeastLoad => Strategy::LeastLoad,
        StrategyName::WeightedRandom => Strategy::WeightedRandom,
        StrategyName::Random => Strategy::Random,
        StrategyName::RoundRobin => Strategy::RoundRobin,
        StrategyName::Failover => Strategy::Failover,
        StrategyName::LeastLatency => Strategy::LeastLatency,
        StrategyName::InferenceScore => {
            let defaults = ScoreWeights::default();
            Strategy::InferenceScore(ScoreWeights {
                cache_ratio: fraction(options.cache_ratio_weight, defaults.cache_ratio),
                request_load: fraction(options.request_load_weight, defaults.request_load),
                prefill_load: fraction(options.prefill_load_weight, defaults.prefill_load),
                candidate_percent: options
                    .candidate_percent
                    .map_or(defaults.candidate_percent, Whole::u32),
            })
        }
        StrategyName::PrefixAffinity => {
            let defaults = Affinity::default();
            Strategy::PrefixAffinity(Affinity {
                prefix_bytes: options
                    .prefix_bytes
                    .map_or(defaults.prefix_bytes, |bytes| bytes.0 as usize),
                load_factor: options.load_factor.map_or(defaults.load_factor, |f| f.0),
            })
        }
    };
    let latency_max_age_ms = options
        .max_age_ms
        .map_or(DEFAULT_LATENCY_MAX_AGE_MS, Whole::u32);
    Ok((strategy, latency_max_age_ms))
}
