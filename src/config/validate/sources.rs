//! `load_source` and its sections: which source is chosen, that no other source's section is
//! set, and each section's settings.

use super::{check_absolute, join};
use crate::background::shared_keys;
use crate::config::balancer::Provider;
use crate::config::document::{
    self, LoadFormat, LoadSourceName, RefreshMode, ReplicaScope, Text, Whole,
};
use crate::config::sources::{
    DownPolicy, EngineScrape, InFlightScope, LoadSource, Protocol, Refresh, ReplicaCounters,
    ReplyFormat, StoreConfig, StoreRead, DEFAULT_DOWN_AFTER_FAILURES, DEFAULT_DOWN_RETRY_MS,
    DEFAULT_KEY_PREFIX, DEFAULT_MAX_AGE_INTERVALS, DEFAULT_REFRESH_INTERVAL_MS,
    DEFAULT_SCRAPE_INTERVAL_MS, DEFAULT_SCRAPE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS,
};
use crate::config::{Build, ConfigError};
use crate::inflight::replicas;
use crate::store::{str_refs, StoreQuery};

fn source_name(source: LoadSourceName) -> &'static str {
    match source {
        LoadSourceName::Redis => "redis",
        LoadSourceName::Endpoint => "endpoint",
        LoadSourceName::EngineMetrics => "engine_metrics",
        LoadSourceName::InFlight => "in_flight",
        LoadSourceName::None => "none",
    }
}

/// The chosen source. A source's section that is set while another source is chosen is
/// refused: it would be silently ignored.
pub fn load_source(
    doc: &document::Balancer,
    at: &str,
    providers: &[Provider],
    build: Build,
) -> Result<LoadSource, ConfigError> {
    let chosen = doc.load_source.unwrap_or(if doc.redis.is_some() {
        LoadSourceName::Redis
    } else {
        LoadSourceName::None
    });
    let replica_scope = doc.in_flight.as_ref().and_then(|in_flight| in_flight.scope);
    let needs_redis =
        chosen == LoadSourceName::InFlight && replica_scope == Some(ReplicaScope::Replicas);
    let sections = [
        (LoadSourceName::Redis, doc.redis.is_some()),
        (LoadSourceName::Endpoint, doc.endpoint.is_some()),
        (LoadSourceName::EngineMetrics, doc.engine_metrics.is_some()),
        (LoadSourceName::InFlight, doc.in_flight.is_some()),
    ];
    for (source, set) in sections {
        let used = source == chosen || (source == LoadSourceName::Redis && needs_redis);
        if set && !used {
            let key = source_name(source);
            return Err(ConfigError::at(
                &join(at, key),
                format!(
                    "only used with load_source \"{key}\" (load_source is \"{}\")",
                    source_name(chosen)
                ),
            ));
        }
    }
    let providers_path = join(at, "providers");
    if chosen != LoadSourceName::EngineMetrics && providers.iter().any(|p| p.metrics.is_some()) {
        return Err(ConfigError::at(
            &providers_path,
            "providers[].metrics is only used with load_source \"engine_metrics\"".into(),
        ));
    }
    let redis_path = join(at, "redis");
    match chosen {
        LoadSourceName::Redis => {
            let redis = doc
                .redis
                .as_ref()
                .ok_or_else(|| ConfigError::at(&redis_path, "required".into()))?;
            redis_loads(redis, &redis_path, providers, build)
        }
        LoadSourceName::Endpoint => {
            let path = join(at, "endpoint");
            let endpoint = doc
                .endpoint
                .as_ref()
                .ok_or_else(|| ConfigError::at(&path, "required".into()))?;
            endpoint_loads(endpoint, &path, providers)
        }
        LoadSourceName::EngineMetrics => {
            // A provider with no engine to scrape (a paid API) has its place in a spillover
            // tier above the engines': there an unknown load is what it should be.
            let unscraped = providers
                .iter()
                .find(|p| p.metrics.is_none() && p.tier == 0);
            if let Some(provider) = unscraped {
                return Err(ConfigError::at(
                    &providers_path,
                    format!(
                        "provider {:?} has no metrics (cluster and path of its engine's \
                         /metrics), which load_source \"engine_metrics\" needs (a provider \
                         without an engine, such as a paid API, goes in a spillover tier above \
                         0)",
                        provider.name
                    ),
                ));
            }
            let scrape = doc.engine_metrics.clone().unwrap_or_default();
            engine_scrape(&scrape, &join(at, "engine_metrics"))
        }
        LoadSourceName::InFlight => match replica_scope {
            None | Some(ReplicaScope::Gateway) => Ok(LoadSource::InFlight(InFlightScope::Gateway)),
            Some(ReplicaScope::Replicas) => {
                let redis = doc.redis.as_ref().ok_or_else(|| {
                    ConfigError::at(
                        &redis_path,
                        "required with in_flight scope \"replicas\"".into(),
                    )
                })?;
                replica_counters(
                    redis,
                    &redis_path,
                    &join(at, "in_flight.scope"),
                    providers,
                    build,
                )
            }
        },
        LoadSourceName::None => Ok(LoadSource::None),
    }
}

fn redis_loads(
    redis: &document::Redis,
    path: &str,
    providers: &[Provider],
    build: Build,
) -> Result<LoadSource, ConfigError> {
    let store = store(redis, path, build)?;
    let keys: Vec<&str> = providers.iter().map(|p| p.key.as_str()).collect();
    let (query, format) = match load_format(redis, path)? {
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

fn endpoint_loads(
    endpoint: &document::Endpoint,
    path: &str,
    providers: &[Provider],
) -> Result<LoadSource, ConfigError> {
    let cluster = endpoint.cluster.0.clone();
    let url_path = endpoint.path.as_str();
    check_absolute(url_path, &join(path, "path"))?;
    let store = StoreConfig {
        cluster: cluster.clone(),
        username: None,
        password: None,
        database: None,
        timeout_ms: endpoint.timeout_ms.map_or(DEFAULT_TIMEOUT_MS, Whole::u32),
        protocol: Protocol::Webdis,
        refresh: refresh(
            &RefreshSettings {
                mode: endpoint.refresh,
                interval_ms: endpoint.refresh_interval_ms,
                max_age_ms: endpoint.max_age_ms,
                down_after_failures: endpoint.down_after_failures,
                down_retry_ms: endpoint.down_retry_ms,
            },
            path,
        )?,
    };
    let query = StoreQuery::Webdis {
        cluster,
        path: url_path.to_string(),
        authorization: None,
    };
    let names = providers.iter().map(|p| p.name.clone()).collect();
    Ok(store_source(store, query, ReplyFormat::Endpoint(names)))
}

fn engine_scrape(scrape: &document::EngineMetrics, path: &str) -> Result<LoadSource, ConfigError> {
    let interval_ms = scrape
        .interval_ms
        .map_or(DEFAULT_SCRAPE_INTERVAL_MS, Whole::u32);
    let max_age_ms = scrape
        .max_age_ms
        .map_or(interval_ms * DEFAULT_MAX_AGE_INTERVALS, Whole::u32);
    if max_age_ms < interval_ms {
        return Err(ConfigError::at(
            &join(path, "max_age_ms"),
            format!("{max_age_ms} is shorter than interval_ms ({interval_ms})"),
        ));
    }
    Ok(LoadSource::Engines(EngineScrape {
        interval_ms,
        timeout_ms: scrape
            .timeout_ms
            .map_or(DEFAULT_SCRAPE_TIMEOUT_MS, Whole::u32),
        max_age_ms,
    }))
}

fn replica_counters(
    redis: &document::Redis,
    redis_path: &str,
    scope_path: &str,
    providers: &[Provider],
    build: Build,
) -> Result<LoadSource, ConfigError> {
    let store = store(redis, redis_path, build)?;
    if store.protocol != Protocol::Resp {
        return Err(ConfigError::at(
            scope_path,
            "\"replicas\" counts in Redis with INCR/DECR through Higress's Redis calls: it \
             needs the Higress build (ai-load-balancer.wasm) and protocol \"resp\""
                .into(),
        ));
    }
    let prefix = redis.key_prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX);
    let heartbeats_key = replicas::heartbeats_key(prefix);
    let provider_keys: Vec<String> = providers
        .iter()
        .map(|provider| replicas::provider_key(prefix, &provider.name))
        .collect();
    let args = replicas::read_args(&heartbeats_key, &provider_keys);
    let query = StoreQuery::command(&store, &str_refs(&args));
    let StoreQuery::Resp { upstream, .. } = &query else {
        return Err(ConfigError::at(
            redis_path,
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

fn store_source(config: StoreConfig, query: StoreQuery, format: ReplyFormat) -> LoadSource {
    LoadSource::Store(Box::new(StoreRead {
        shared_keys: shared_keys(&query),
        config,
        query,
        format,
    }))
}

/// `None` for one key per provider (the default), else the hash field names to read.
fn load_format(redis: &document::Redis, path: &str) -> Result<Option<Vec<String>>, ConfigError> {
    match redis.load_format {
        None | Some(LoadFormat::Key) => {
            if redis.hash_fields.is_some() {
                return Err(ConfigError::at(
                    &join(path, "hash_fields"),
                    "only used with load_format \"hash\"".into(),
                ));
            }
            Ok(None)
        }
        Some(LoadFormat::Hash) => {
            let given = redis.hash_fields.as_ref();
            let names = [
                given.and_then(|fields| fields.running.as_ref()),
                given.and_then(|fields| fields.waiting.as_ref()),
                given.and_then(|fields| fields.cache_ratio.as_ref()),
            ];
            Ok(Some(
                names
                    .into_iter()
                    .zip(crate::engine::DEFAULT_HASH_FIELDS)
                    .map(|(name, default)| name.map_or(default, Text::as_str).to_string())
                    .collect(),
            ))
        }
    }
}

fn store(redis: &document::Redis, path: &str, build: Build) -> Result<StoreConfig, ConfigError> {
    let cluster = match (&redis.cluster, &redis.service_name) {
        (Some(cluster), _) => cluster.0.clone(),
        (None, Some(service)) => {
            let port = redis.service_port.ok_or_else(|| {
                ConfigError::at(
                    &join(path, "service_port"),
                    "required with service_name".into(),
                )
            })?;
            format!("outbound|{}||{}", port.0, service.as_str())
        }
        (None, None) => {
            return Err(ConfigError::at(
                path,
                "needs cluster, or service_name and service_port".into(),
            ))
        }
    };
    let protocol = match (redis.protocol, build) {
        (None | Some(Protocol::Resp), Build::Higress) => Protocol::Resp,
        (None | Some(Protocol::Webdis), _) => Protocol::Webdis,
        (Some(Protocol::Resp), Build::Envoy) => {
            return Err(ConfigError::at(
                &join(path, "protocol"),
                "\"resp\" needs the Higress build (ai-load-balancer.wasm); this Envoy build \
                 (ai-load-balancer-envoy.wasm) reads Redis through Webdis: use \"webdis\""
                    .into(),
            ))
        }
    };
    Ok(StoreConfig {
        cluster,
        username: redis.username.as_ref().map(|name| name.0.clone()),
        password: redis.password.as_ref().map(|secret| secret.0.clone()),
        database: redis.database.map(Whole::u32),
        timeout_ms: redis.timeout_ms.map_or(DEFAULT_TIMEOUT_MS, Whole::u32),
        protocol,
        refresh: refresh(
            &RefreshSettings {
                mode: redis.refresh,
                interval_ms: redis.refresh_interval_ms,
                max_age_ms: redis.max_age_ms,
                down_after_failures: redis.down_after_failures,
                down_retry_ms: redis.down_retry_ms,
            },
            path,
        )?,
    })
}

/// The refresh settings `redis` and `endpoint` share.
struct RefreshSettings {
    mode: Option<RefreshMode>,
    interval_ms: Option<Whole<10, 60_000>>,
    max_age_ms: Option<Whole<10, 600_000>>,
    down_after_failures: Option<Whole<1, 1000>>,
    down_retry_ms: Option<Whole<10, 600_000>>,
}

fn refresh(settings: &RefreshSettings, path: &str) -> Result<Refresh, ConfigError> {
    // A setting for a mode that is not on would be silently ignored: refuse it.
    let refuse_set = |mode: &str, set: [(&str, bool); 2]| match set.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(ConfigError::at(
            &join(path, key),
            format!("only used with refresh \"{mode}\""),
        )),
        None => Ok(()),
    };
    match settings.mode {
        None | Some(RefreshMode::PerRequest) => {
            refuse_set(
                "background",
                [
                    ("refresh_interval_ms", settings.interval_ms.is_some()),
                    ("max_age_ms", settings.max_age_ms.is_some()),
                ],
            )?;
            Ok(Refresh::PerRequest {
                down: DownPolicy {
                    after_failures: settings
                        .down_after_failures
                        .map_or(DEFAULT_DOWN_AFTER_FAILURES, Whole::u32),
                    retry_ms: settings
                        .down_retry_ms
                        .map_or(DEFAULT_DOWN_RETRY_MS, Whole::u32),
                },
            })
        }
        Some(RefreshMode::Background) => {
            refuse_set(
                "per_request",
                [
                    (
                        "down_after_failures",
                        settings.down_after_failures.is_some(),
                    ),
                    ("down_retry_ms", settings.down_retry_ms.is_some()),
                ],
            )?;
            let interval_ms = settings
                .interval_ms
                .map_or(DEFAULT_REFRESH_INTERVAL_MS, Whole::u32);
            let max_age_ms = settings
                .max_age_ms
                .map_or(interval_ms * DEFAULT_MAX_AGE_INTERVALS, Whole::u32);
            if max_age_ms < interval_ms {
                return Err(ConfigError::at(
                    &join(path, "max_age_ms"),
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
    }
}
