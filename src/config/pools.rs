//! Model pools: the names clients send (`auto`, `gpt-4`, …), each mapped to backends (a provider
//! and the model that provider expects) and the strategy that picks among them. Without `models`
//! every request uses one pool of all providers, as before pools existed.

use super::balancer::Provider;
use crate::background::fnv1a_64;
use crate::ratelimit::Floor;
use crate::strategy::{Ring, Spillover, Strategy};

/// Latency samples older than this count as none, so a slow provider is tried again.
pub const DEFAULT_LATENCY_MAX_AGE_MS: u32 = 30_000;
pub const REJECT: &str = "reject";
pub const PASS_THROUGH: &str = "pass_through";

#[derive(Debug, Clone, PartialEq)]
pub struct PoolBackend {
    /// Index into `providers`.
    pub provider: usize,
    /// The model this provider expects for this pool; `None` leaves the body's model as sent.
    pub model: Option<String>,
    pub weight: u32,
    /// Failover order: the lowest number first.
    pub priority: u32,
    /// Spillover tier: the lowest first.
    pub tier: u32,
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
    /// Tiers of backends, the first kept while it has room; `None`: one tier.
    pub spillover: Option<Spillover>,
    pub session: Option<SessionAffinity>,
    /// The consistent-hash ring (`prefix_affinity` or session affinity only).
    pub ring: Option<Ring>,
    /// The shared-data counter of its round-robin sequence: the pool's name and backends name
    /// it, so one sequence serves every worker.
    pub round_robin_key: String,
    /// Its rate-limit floors (`rate_limits`); `None`: off.
    pub rate_limits: Option<Floor>,
}

/// Where a pool reads a request's session key: the header first, then the body's field.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAffinity {
    /// Lowercase.
    pub header: Option<String>,
    /// A top-level member of the JSON body.
    pub body_field: Option<String>,
    pub load_factor: f64,
}

impl Pool {
    /// The body field its session key may come from.
    pub fn session_field(&self) -> Option<&str> {
        self.session.as_ref()?.body_field.as_deref()
    }

    /// Whether the backend at `index` is in a higher tier than the pool's first (spillover).
    pub fn past_first_tier(&self, index: usize) -> bool {
        let first = self.backends.iter().map(|backend| backend.tier).min();
        let tier = self.backends.get(index).map(|backend| backend.tier);
        tier > first
    }

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
    /// Likewise, the session key's body field read before the pool is known: the first pool's.
    pub common_session_field: Option<String>,
}

impl Pools {
    pub(super) fn new(pools: Vec<Pool>, by_model: bool, unknown_model: UnknownModel) -> Self {
        let mut common_prefix_bytes = 0;
        for pool in &pools {
            common_prefix_bytes = pool.prefix_bytes();
            if common_prefix_bytes > 0 {
                break;
            }
        }
        let common_session_field = pools
            .iter()
            .find_map(|pool| pool.session_field())
            .map(str::to_string);
        Self {
            pools,
            by_model,
            unknown_model,
            common_prefix_bytes,
            common_session_field,
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
                pool.session_field().is_some()
                    || matches!(
                        pool.strategy,
                        Strategy::PrefixAffinity(_) | Strategy::LeastLatency
                    )
            })
    }
}

/// What a pool does besides its strategy and backends.
pub(super) struct PoolRules {
    pub latency_max_age_ms: u32,
    pub spillover: Option<Spillover>,
    pub session: Option<SessionAffinity>,
}

/// A pool of these backends: its affinity ring, if its strategy or session affinity needs one,
/// and its round-robin counter's key.
pub(super) fn pool(
    name: String,
    strategy: Strategy,
    rules: PoolRules,
    backends: Vec<PoolBackend>,
) -> Pool {
    let needs_ring = rules.session.is_some() || matches!(strategy, Strategy::PrefixAffinity(_));
    let ring = needs_ring.then(|| {
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
        latency_max_age_ms: rules.latency_max_age_ms,
        backends,
        spillover: rules.spillover,
        session: rules.session,
        ring,
        rate_limits: None,
    }
}

pub(super) fn backend_id(provider: &Provider, model: Option<&str>) -> String {
    format!("{}/{}", provider.name, model.unwrap_or(""))
}
