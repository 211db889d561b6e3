//! One complete balancing configuration: the providers, where their loads come from, the model
//! pools and their strategies, and the headers the filter writes.

use super::pools::Pools;
use super::resilience::Upstream;
use super::resilience::{HealthPolicy, RetryPolicy, StatusEndpoint};
use super::scope::Scope;
use super::sources::{LoadSource, StoreRead};
use crate::background::SharedKeys;
use crate::health::tokens::{ApiToken, TokenPool};
use crate::ratelimit::RateWatch;

pub const DEFAULT_SELECTED_PROVIDER_HEADER: &str = "x-selected-provider";
pub const DEFAULT_REWRITE_MODEL_HEADER: &str = "x-rewrite-target-model";
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A worker's wasm32 heap is at most 4 GiB, and a request holding a body of this size costs
/// about twice that while it is rewritten (the copy read, the rewritten copy): 128 MiB leaves
/// room for 16 such requests at once on one worker (README, "Gateway buffer limit").
pub const MAX_BODY_BYTES_CEILING: u64 = 128 * 1024 * 1024;

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
    /// Its spillover tier, the default of its pool backends'.
    pub tier: u32,
    /// Its engine's `/metrics` (load_source "engine_metrics").
    pub metrics: Option<MetricsTarget>,
    /// Where the filter reaches it itself: retries and probes.
    pub upstream: Option<Upstream>,
    /// Its API keys, one per request, written into the request.
    pub tokens: Option<TokenPool>,
    /// Its health record in shared data.
    pub health_key: String,
    /// Where its low budgets are shared, and the highest floors of the pools it is in
    /// (`rate_limits`); `None`: no pool watches it.
    pub rate_limits: Option<RateWatch>,
}

impl Provider {
    pub fn token_fingerprints(&self) -> Vec<u64> {
        self.tokens
            .as_ref()
            .map(TokenPool::fingerprints)
            .unwrap_or_default()
    }

    /// The pooled token with this fingerprint (a request's `Sent.token`), if any.
    pub fn token(&self, fingerprint: Option<u64>) -> Option<&ApiToken> {
        let fingerprint = fingerprint?;
        self.tokens
            .as_ref()?
            .tokens
            .iter()
            .find(|token| token.fingerprint == fingerprint)
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
