//! Where providers' loads come from, and how each source is read: Redis keys or hashes and an
//! HTTP JSON endpoint (one read for every provider, per request or in the background), engines'
//! Prometheus `/metrics` (scraped on the tick), or the filter's own in-flight counts.

use serde::Deserialize;

use crate::background::SharedKeys;
use crate::store::StoreQuery;

pub const DEFAULT_TIMEOUT_MS: u32 = 100;
pub const DEFAULT_KEY_PREFIX: &str = "ai_metric:";
pub const DEFAULT_REFRESH_INTERVAL_MS: u32 = 500;
/// Loads older than this many refresh intervals count as unknown, by default.
pub const DEFAULT_MAX_AGE_INTERVALS: u32 = 3;
/// Three failures in a row, not one: a single lost reply should not cost a second of loads.
pub const DEFAULT_DOWN_AFTER_FAILURES: u32 = 3;
/// One request per second per worker asks a store known down; it is back within a second.
pub const DEFAULT_DOWN_RETRY_MS: u32 = 1000;
pub const DEFAULT_SCRAPE_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_SCRAPE_TIMEOUT_MS: u32 = 500;
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum Protocol {
    /// RESP through Higress's `proxy_redis_call` (Higress build only).
    Resp,
    /// HTTP GET through the gateway (`dispatch_http_call`): Webdis, or a JSON endpoint.
    Webdis,
}

/// When the filter reads the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Every balanced request reads the store and waits for its reply (the seed's behaviour, and
    /// the freshest loads), unless the store is known down (see `store::outage`).
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

/// How a store's reply lists the loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyFormat {
    /// One number per provider (`MGET` of `providers[].key`).
    Keys,
    /// Running, waiting and cache ratio per provider (a Redis hash each, read by one `EVAL`).
    Hashes,
    /// A JSON object keyed by these provider names (the HTTP endpoint).
    Endpoint(Vec<String>),
}

/// One read that returns every provider's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRead {
    pub config: StoreConfig,
    /// The request, built once: every read sends the same bytes.
    pub query: StoreQuery,
    /// Where background refresh publishes this store's loads, and its lease.
    pub shared_keys: SharedKeys,
    pub format: ReplyFormat,
}

/// Engines' `/metrics`, scraped by the VM holding the lease, published for every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineScrape {
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub max_age_ms: u32,
}

/// Where in-flight counts are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InFlightScope {
    /// Shared data: every worker of one gateway.
    Gateway,
    /// Redis counters: every replica of the gateway (Higress build).
    Replicas(Box<ReplicaCounters>),
}

/// In-flight counts in Redis (see `inflight::replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// The per-request read of every provider's total.
    pub read: StoreRead,
    /// The RESP upstream (cluster and database) the counters live in.
    pub upstream: String,
    pub heartbeats_key: String,
    /// One hash per provider, in configuration order.
    pub provider_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadSource {
    /// No loads: for strategies that need none.
    None,
    Store(Box<StoreRead>),
    Engines(EngineScrape),
    InFlight(InFlightScope),
}

impl LoadSource {
    /// The read a request waits for, when the loads come from one.
    pub fn store(&self) -> Option<&StoreRead> {
        match self {
            LoadSource::Store(read) => Some(read),
            LoadSource::InFlight(InFlightScope::Replicas(counters)) => Some(&counters.read),
            _ => None,
        }
    }
}
