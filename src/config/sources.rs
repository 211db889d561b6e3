//! Where providers' loads come from, and how each source is read: Redis keys or hashes and an
//! HTTP JSON endpoint (one read for every provider, per request or in the background), engines'
//! Prometheus `/metrics` (scraped on the tick), or the filter's own in-flight counts.

use serde_json::Value;

use super::balancer::Provider;
use super::fields::Fields;
use super::{Build, ConfigError};
use crate::background::{shared_keys, SharedKeys};
use crate::inflight::replicas;
use crate::store::{str_refs, StoreQuery};

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
pub(crate) const ENDPOINT_FIELDS: &[&str] = &[
    "cluster",
    "path",
    "timeout_ms",
    "refresh",
    "refresh_interval_ms",
    "max_age_ms",
    "down_after_failures",
    "down_retry_ms",
];
pub(crate) const ENGINE_FIELDS: &[&str] = &["interval_ms", "timeout_ms", "max_age_ms"];
pub(crate) const IN_FLIGHT_FIELDS: &[&str] = &["scope"];
pub(crate) const HASH_FIELDS: [&str; 3] = ["running", "waiting", "cache_ratio"];
pub const SOURCE_SECTIONS: [(&str, &str); 4] = [
    ("redis", "redis"),
    ("endpoint", "endpoint"),
    ("engine_metrics", "engine_metrics"),
    ("in_flight", "in_flight"),
];

pub const DEFAULT_TIMEOUT_MS: u32 = 100;
pub const DEFAULT_KEY_PREFIX: &str = "ai_metric:";
pub const DEFAULT_REFRESH_INTERVAL_MS: u32 = 500;
/// Loads older than this many refresh intervals count as unknown, by default.
const DEFAULT_MAX_AGE_INTERVALS: u32 = 3;
/// Three failures in a row, not one: a single lost reply should not cost a second of loads.
pub const DEFAULT_DOWN_AFTER_FAILURES: u32 = 3;
/// One request per second per worker asks a store known down; it is back within a second.
pub const DEFAULT_DOWN_RETRY_MS: u32 = 1000;
pub const DEFAULT_SCRAPE_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_SCRAPE_TIMEOUT_MS: u32 = 500;
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The configuration's `load_source` and the section it names. A source's section that is set
/// while another source is chosen is refused: it would be silently ignored.
pub fn parse_load_source(
    fields: &Fields<'_>,
    providers: &[Provider],
    build: Build,
) -> Result<LoadSource, ConfigError> {
    let chosen = match fields.non_empty_string("load_source")? {
        Some(name) => name,
        None if fields.value("redis").is_some() => "redis",
        None => "none",
    };
    let section = match chosen {
        "redis" | "endpoint" | "engine_metrics" | "in_flight" | "none" => chosen,
        other => {
            return Err(fields.error(
                "load_source",
                format!(
                    "unknown load source {other:?}; expected \"redis\", \"endpoint\", \
                     \"engine_metrics\", \"in_flight\" or \"none\""
                ),
            ))
        }
    };
    let needs_redis = chosen == "in_flight"
        && fields
            .value("in_flight")
            .and_then(|v| v.get("scope"))
            .and_then(Value::as_str)
            == Some("replicas");
    for (key, _) in SOURCE_SECTIONS {
        let used = key == section || (key == "redis" && needs_redis);
        if !used && fields.value(key).is_some() {
            return Err(fields.error(
                key,
                format!("only used with load_source \"{key}\" (load_source is \"{chosen}\")"),
            ));
        }
    }
    let providers_with_metrics = providers.iter().filter(|p| p.metrics.is_some()).count();
    if chosen != "engine_metrics" && providers_with_metrics > 0 {
        return Err(fields.error(
            "providers",
            "providers[].metrics is only used with load_source \"engine_metrics\"".into(),
        ));
    }
    match chosen {
        "redis" => {
            let path = fields.path("redis");
            let redis = fields
                .value("redis")
                .ok_or_else(|| ConfigError::at(&path, "required".into()))?;
            let redis_fields = Fields::new(redis, &path, REDIS_FIELDS, false)?;
            let store = parse_store(&redis_fields, &path, build)?;
            let mut keys: Vec<&str> = Vec::with_capacity(providers.len());
            for provider in providers {
                keys.push(&provider.key);
            }
            let (query, format) = match parse_load_format(&redis_fields)? {
                None => (StoreQuery::mget(&store, &keys), ReplyFormat::Keys),
                Some(hash_fields) => {
                    let args = crate::engine::hash_eval_args(&keys, &str_refs(&hash_fields));
                    (
                        StoreQuery::command(&store, &str_refs(&args)),
                        ReplyFormat::Hashes,
                    )
                }
            };
            Ok(store_source(store, query, format))
        }
        "endpoint" => {
            let path = fields.path("endpoint");
            let value = fields
                .value("endpoint")
                .ok_or_else(|| ConfigError::at(&path, "required".into()))?;
            let endpoint = Fields::new(value, &path, ENDPOINT_FIELDS, false)?;
            let cluster = endpoint.required_string("cluster")?.to_string();
            let url_path = endpoint.required_string("path")?;
            if !url_path.starts_with('/') {
                return Err(endpoint.error("path", format!("{url_path:?} must start with /")));
            }
            let store = StoreConfig {
                cluster: cluster.clone(),
                username: None,
                password: None,
                database: None,
                timeout_ms: timeout(&endpoint, DEFAULT_TIMEOUT_MS)?,
                protocol: Protocol::Webdis,
                refresh: parse_refresh(&endpoint)?,
            };
            let query = StoreQuery::Webdis {
                cluster,
                path: url_path.to_string(),
                authorization: None,
            };
            let mut names = Vec::with_capacity(providers.len());
            for provider in providers {
                names.push(provider.name.clone());
            }
            Ok(store_source(store, query, ReplyFormat::Endpoint(names)))
        }
        "engine_metrics" => {
            if let Some(provider) = providers.iter().find(|p| p.metrics.is_none()) {
                return Err(fields.error(
                    "providers",
                    format!(
                        "provider {:?} has no metrics (cluster and path of its engine's \
                         /metrics), which load_source \"engine_metrics\" needs",
                        provider.name
                    ),
                ));
            }
            let path = fields.path("engine_metrics");
            let empty = Value::Object(Default::default());
            let value = fields.value("engine_metrics").unwrap_or(&empty);
            let scrape = Fields::new(value, &path, ENGINE_FIELDS, false)?;
            let interval_ms = scrape
                .integer("interval_ms", 100, 60_000)?
                .map_or(DEFAULT_SCRAPE_INTERVAL_MS, |ms| ms as u32);
            let max_age_ms = scrape
                .integer("max_age_ms", 100, 600_000)?
                .map_or(interval_ms * DEFAULT_MAX_AGE_INTERVALS, |ms| ms as u32);
            if max_age_ms < interval_ms {
                return Err(scrape.error(
                    "max_age_ms",
                    format!("{max_age_ms} is shorter than interval_ms ({interval_ms})"),
                ));
            }
            Ok(LoadSource::Engines(EngineScrape {
                interval_ms,
                timeout_ms: timeout(&scrape, DEFAULT_SCRAPE_TIMEOUT_MS)?,
                max_age_ms,
            }))
        }
        "in_flight" => {
            let path = fields.path("in_flight");
            let empty = Value::Object(Default::default());
            let value = fields.value("in_flight").unwrap_or(&empty);
            let in_flight = Fields::new(value, &path, IN_FLIGHT_FIELDS, false)?;
            match in_flight.string("scope")? {
                None | Some("gateway") => Ok(LoadSource::InFlight(InFlightScope::Gateway)),
                Some("replicas") => {
                    let redis_path = fields.path("redis");
                    let redis = fields.value("redis").ok_or_else(|| {
                        ConfigError::at(
                            &redis_path,
                            "required with in_flight scope \"replicas\"".into(),
                        )
                    })?;
                    let redis_fields = Fields::new(redis, &redis_path, REDIS_FIELDS, false)?;
                    let store = parse_store(&redis_fields, &redis_path, build)?;
                    if store.protocol != Protocol::Resp {
                        return Err(in_flight.error("scope", "\"replicas\" counts in Redis with INCR/DECR through Higress's Redis \
                             calls: it needs the Higress build (ai-load-balancer.wasm) and protocol \
                             \"resp\""
                                .into(),
                        ));
                    }
                    let prefix = redis_fields
                        .string("key_prefix")?
                        .unwrap_or(DEFAULT_KEY_PREFIX);
                    let heartbeats_key = replicas::heartbeats_key(prefix);
                    let mut provider_keys: Vec<String> = Vec::with_capacity(providers.len());
                    for provider in providers {
                        provider_keys.push(replicas::provider_key(prefix, &provider.name));
                    }
                    let args = replicas::read_args(&heartbeats_key, &provider_keys);
                    let query = StoreQuery::command(&store, &str_refs(&args));
                    let StoreQuery::Resp { upstream, .. } = &query else {
                        return Err(ConfigError::at(
                            &redis_path,
                            "needs protocol \"resp\"".into(),
                        ));
                    };
                    let upstream = upstream.clone();
                    Ok(LoadSource::InFlight(InFlightScope::Replicas(Box::new(
                        ReplicaCounters {
                            read: StoreRead {
                                shared_keys: shared_keys(&query),
                                config: store,
                                query,
                                format: ReplyFormat::Keys,
                            },
                            upstream,
                            heartbeats_key,
                            provider_keys,
                        },
                    ))))
                }
                Some(other) => Err(in_flight.error(
                    "scope",
                    format!("unknown scope {other:?}; expected \"gateway\" or \"replicas\""),
                )),
            }
        }
        _ => Ok(LoadSource::None),
    }
}

fn store_source(config: StoreConfig, query: StoreQuery, format: ReplyFormat) -> LoadSource {
    LoadSource::Store(Box::new(StoreRead {
        shared_keys: shared_keys(&query),
        config,
        query,
        format,
    }))
}

fn timeout(fields: &Fields<'_>, default: u32) -> Result<u32, ConfigError> {
    Ok(fields
        .integer("timeout_ms", 1, 60_000)?
        .map_or(default, |ms| ms as u32))
}

/// `None` for one key per provider (the default), else the hash field names to read.
fn parse_load_format(redis: &Fields<'_>) -> Result<Option<Vec<String>>, ConfigError> {
    let hash_fields = redis.value("hash_fields");
    match redis.string("load_format")? {
        None | Some("key") => {
            if hash_fields.is_some() {
                return Err(
                    redis.error("hash_fields", "only used with load_format \"hash\"".into())
                );
            }
            Ok(None)
        }
        Some("hash") => {
            let mut names: Vec<String> = Vec::with_capacity(HASH_FIELDS.len());
            for field in HASH_FIELDS {
                names.push(field.to_string());
            }
            if let Some(value) = hash_fields {
                let path = redis.path("hash_fields");
                let given = Fields::new(value, &path, &HASH_FIELDS, false)?;
                for (slot, field) in names.iter_mut().zip(HASH_FIELDS) {
                    if let Some(name) = given.non_empty_string(field)? {
                        *slot = name.to_string();
                    }
                }
            }
            Ok(Some(names))
        }
        Some(other) => Err(redis.error(
            "load_format",
            format!("unknown load format {other:?}; expected \"key\" or \"hash\""),
        )),
    }
}

fn parse_store(fields: &Fields<'_>, path: &str, build: Build) -> Result<StoreConfig, ConfigError> {
    let cluster = match (
        fields.non_empty_string("cluster")?,
        fields.non_empty_string("service_name")?,
    ) {
        (Some(cluster), _) => cluster.to_string(),
        (None, Some(service)) => {
            let port = fields
                .integer("service_port", 1, 65535)?
                .ok_or_else(|| fields.error("service_port", "required with service_name".into()))?;
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
            return Err(fields.error(
                "protocol",
                "\"resp\" needs the Higress build (ai-load-balancer.wasm); this Envoy build \
                 (ai-load-balancer-envoy.wasm) reads Redis through Webdis: use \"webdis\""
                    .into(),
            ))
        }
        (Some(other), _) => {
            return Err(fields.error(
                "protocol",
                format!("unknown protocol {other:?}; expected \"resp\" or \"webdis\""),
            ))
        }
    };
    Ok(StoreConfig {
        cluster,
        username: fields.non_empty_string("username")?.map(str::to_string),
        password: fields.string("password")?.map(str::to_string),
        database: fields.integer("database", 0, 65535)?.map(|db| db as u32),
        timeout_ms: timeout(fields, DEFAULT_TIMEOUT_MS)?,
        protocol,
        refresh: parse_refresh(fields)?,
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
        Some((key, _)) => Err(fields.error(key, format!("only used with refresh \"{mode}\""))),
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
                return Err(fields.error(
                    "max_age_ms",
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
        Some(other) => Err(fields.error(
            "refresh",
            format!("unknown mode {other:?}; expected \"per_request\" or \"background\""),
        )),
    }
}
