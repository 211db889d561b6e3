//! Gathering what the pool's strategy needs (loads, from the store or not; latencies; a
//! round-robin ticket) and acting on its pick: routing headers, route re-match, stats.

use log::{debug, info, warn};

use super::phase::{Basis, Sent};
use super::{accounting, backends, RequestHost, Stat, Worker};
use crate::background::{fnv1a_64, fresh_loads};
use crate::config::{BalancerConfig, ConfigRef, LoadSource, Pool, Refresh};
use crate::load::Loads;
use crate::store::{StoreError, Transition};
use crate::strategy::latency::LatencyStats;
use crate::strategy::{Backend, Inputs, Reason, Session, Strategy};

/// The loads a choice goes on.
pub(super) enum LoadsNow {
    /// The store was asked: its reply comes through `RequestFlow::on_store_reply`.
    Asked,
    /// Read now, or why not.
    Read(Result<Loads, StoreError>),
}

/// Reads the loads the configuration's source gives: now, or by asking the store.
pub(super) fn loads(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    which: ConfigRef,
    config: &BalancerConfig,
) -> LoadsNow {
    let providers = config.providers.len();
    LoadsNow::Read(match (&config.loads, config.store()) {
        (_, Some(read)) => match read.config.refresh {
            Refresh::Background { max_age_ms, .. } => {
                // Requests never wait for the store: they use what background refresh
                // published.
                let published = host.shared_data(&read.shared_keys.loads);
                fresh_loads(
                    published.as_deref(),
                    providers,
                    host.now_ms(),
                    u64::from(max_age_ms),
                )
                .map_err(|stale| StoreError::Stale(stale.to_string()))
            }
            Refresh::PerRequest { down } => {
                let timeout_ms = read.config.timeout_ms;
                let now_ms = host.now_ms();
                if !worker
                    .store_outages()
                    .may_ask(which, &down, timeout_ms, now_ms)
                {
                    Err(StoreError::KnownDown)
                } else {
                    match host.send_store_query(&read.query, timeout_ms) {
                        Ok(()) => return LoadsNow::Asked,
                        Err(why) => {
                            debug!("ai-load-balancer: store call not sent: {why}");
                            store_outcome(host, worker, which, config, false);
                            Err(StoreError::Unavailable(why))
                        }
                    }
                }
            }
        },
        (LoadSource::Engines(scrape), None) => Ok(engine_loads(host, config, scrape.max_age_ms)),
        (LoadSource::InFlight(_), None) => Ok(accounting::in_flight_loads(host, config)),
        (LoadSource::None | LoadSource::Store(_), None) => Ok(vec![None; providers]),
    })
}

/// The loads in the store's reply (`Ok(body)`), or why there are none.
pub(super) fn read_reply(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    which: ConfigRef,
    config: &BalancerConfig,
    reply: Result<Vec<u8>, StoreError>,
) -> Result<Loads, StoreError> {
    let Some(read) = config.store() else {
        return Err(StoreError::BadReply("no store configured".into()));
    };
    let reachable = !matches!(reply, Err(StoreError::Unavailable(_)));
    store_outcome(host, worker, which, config, reachable);
    reply.and_then(|body| crate::store::parse_reply(&read.format, &body, config.providers.len()))
}

/// Tells the worker's record of the store how this request's ask went, and logs when the
/// store goes down or comes back (once per change, not per request).
fn store_outcome(
    host: &dyn RequestHost,
    worker: &mut dyn Worker,
    which: ConfigRef,
    config: &BalancerConfig,
    reachable: bool,
) {
    let Some(read) = config.store() else { return };
    let Refresh::PerRequest { down } = read.config.refresh else {
        return;
    };
    let now_ms = host.now_ms();
    match worker
        .store_outages()
        .record(which, &down, reachable, now_ms)
    {
        Some(Transition::WentDown) => warn!(
            "ai-load-balancer: store {} known down after {} failures in a row; requests \
             choose by weight, and one asks again every {} ms",
            read.config.cluster, down.after_failures, down.retry_ms
        ),
        Some(Transition::CameBack) => {
            info!(
                "ai-load-balancer: store {} answers again",
                read.config.cluster
            )
        }
        None => {}
    }
}

/// Picks a backend of the request's pool with its strategy, and routes the request there
/// (headers, token, in-flight count, stats). `None` when nothing could be picked.
pub(super) fn send(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    which: ConfigRef,
    config: &BalancerConfig,
    basis: &Basis,
    loads: Result<Loads, StoreError>,
) -> Option<Sent> {
    let pool_index = basis.pool();
    let pool = config.pools.pools.get(pool_index)?;
    let facts = basis.facts();
    let prefix_hash = facts.and_then(|facts| facts.prefix_hash);
    let streaming = facts.is_some_and(|facts| facts.streaming);
    if let Err(err) = &loads {
        debug!("ai-load-balancer: {err}; choosing without loads");
    }
    let now_ms = host.now_ms();
    let known = loads.as_ref().ok();
    let mut backends = backends_now(host, pool, known, streaming, now_ms);
    let session_hash = session_key_hash(host, pool, facts.and_then(|facts| facts.session_hash));
    let inputs = Inputs {
        round_robin_ticket: match pool.strategy {
            Strategy::RoundRobin => next_ticket(host, &pool.round_robin_key),
            _ => None,
        },
        prefix_hash,
        spillover: pool.spillover,
        session: session(pool, session_hash),
    };
    let health = backends::read_health(host, config, pool);
    let candidates = backends::Candidates {
        config,
        pool,
        health: &health,
        excluded: &|_| false,
        fall_back_to_out: true,
    };
    let rng = worker.rng();
    let picked = backends::pick_healthy(host, &candidates, &mut backends, &inputs, rng)?;
    let backend = pool.backends.get(picked.index)?;
    let provider = config.providers.get(backend.provider)?;
    // The client's copies of these headers were removed when its headers arrived.
    host.set_request_header(&config.selected_provider_header, &provider.name);
    if let Some(model) = &backend.model {
        host.set_request_header(&config.rewrite_model_header, model);
    }
    let token = backends::choose_token(provider, &picked, now_ms, rng);
    if let Some(pool) = &provider.tokens {
        let names = pool.client_credential_headers();
        for (index, name) in names.iter().enumerate() {
            if !names[..index].contains(name) {
                host.remove_request_header(name);
            }
        }
        if let Some(token) = token {
            host.set_request_header(&pool.header, &pool.header_value(token));
        }
    }
    host.clear_route_cache();
    if picked.reason == Reason::NothingKnown {
        host.count(match loads {
            Ok(_) => Stat::FallbackAllUnknown,
            Err(StoreError::Stale(_)) => Stat::FallbackStaleLoads,
            Err(StoreError::KnownDown) => Stat::FallbackStoreDown,
            Err(_) => Stat::FallbackStoreError,
        });
    }
    if matches!(&loads, Err(err) if !matches!(err, StoreError::Stale(_))) {
        // The store failed (or is known down) for a request sent here.
        host.count(Stat::Provider(provider.name.clone(), "store_error"));
    }
    if picked.all_out {
        host.count(Stat::Provider(provider.name.clone(), "fallback"));
    }
    if let Reason::Session { moved } = picked.reason {
        host.count(Stat::SessionRouted);
        if moved {
            host.count(Stat::SessionMoved);
        }
    }
    if pool.spillover.is_some() && pool.past_first_tier(picked.index) {
        host.count(Stat::Spillover);
    }
    host.count(Stat::Selected(provider.name.clone()));
    let counted_in_flight = matches!(config.loads, LoadSource::InFlight(_));
    if counted_in_flight {
        accounting::count_in_flight(host, worker, config, backend.provider, 1);
    }
    Some(Sent {
        config: which,
        pool: pool_index,
        backend: picked.index,
        provider: backend.provider,
        at_ms: now_ms,
        prefix_hash,
        session_hash,
        streaming,
        counted_in_flight,
        token: token.map(|token| token.fingerprint),
        trial_since: picked.trial_since,
        first_byte_ms: None,
        verdict: None,
        status: None,
    })
}

/// The pool's backends as the strategies see them now (all available: health decides that).
pub(super) fn backends_now(
    host: &dyn RequestHost,
    pool: &Pool,
    loads: Option<&Loads>,
    streaming: bool,
    now_ms: u64,
) -> Vec<Backend> {
    let mut backends = Vec::with_capacity(pool.backends.len());
    for backend in &pool.backends {
        backends.push(Backend {
            weight: backend.weight,
            priority: backend.priority,
            tier: backend.tier,
            available: true,
            load: loads.and_then(|loads| loads.get(backend.provider).copied().flatten()),
            latency_ms: match pool.strategy {
                Strategy::LeastLatency => {
                    latency_estimate(host, &backend.id, streaming, now_ms, pool)
                }
                _ => None,
            },
        });
    }
    backends
}

/// The request's session key, for a pool with session affinity: the header's value when it is
/// there, else the body field's (`body_hash`, read with the body's other facts).
fn session_key_hash(host: &dyn RequestHost, pool: &Pool, body_hash: Option<u64>) -> Option<u64> {
    let session = pool.session.as_ref()?;
    let header = session
        .header
        .as_deref()
        .and_then(|name| host.request_header(name))
        .filter(|value| !value.is_empty());
    header.map(|value| fnv1a_64(value.as_bytes())).or(body_hash)
}

/// The strategy's input for a request with this session key's hash, in a pool with session
/// affinity.
pub(super) fn session(pool: &Pool, key_hash: Option<u64>) -> Option<Session> {
    Some(Session {
        key_hash: key_hash?,
        load_factor: pool.session.as_ref()?.load_factor,
    })
}

/// Each provider's engine load as the scrape last published it, if recent enough.
pub(super) fn engine_loads(
    host: &dyn RequestHost,
    config: &BalancerConfig,
    max_age_ms: u32,
) -> Loads {
    let now_ms = host.now_ms();
    let mut loads = Vec::with_capacity(config.providers.len());
    for provider in &config.providers {
        loads.push(provider.metrics.as_ref().and_then(|target| {
            let published = host.shared_data(&target.shared_keys.loads);
            let loads = fresh_loads(published.as_deref(), 1, now_ms, u64::from(max_age_ms)).ok()?;
            loads.into_iter().next().flatten()
        }));
    }
    loads
}

pub fn latency_key(backend_id: &str) -> String {
    format!("ai_lb/latency/{backend_id}")
}

fn latency_estimate(
    host: &dyn RequestHost,
    backend_id: &str,
    streaming: bool,
    now_ms: u64,
    pool: &Pool,
) -> Option<f64> {
    let bytes = host.shared_data(&latency_key(backend_id))?;
    let stats = LatencyStats::decode(&bytes).ok()?;
    stats.estimate(streaming, now_ms, u64::from(pool.latency_max_age_ms))
}

/// Takes the next ticket of a shared counter; `None` when shared data kept refusing.
fn next_ticket(host: &mut dyn RequestHost, key: &str) -> Option<u64> {
    let mut taken = None;
    let written = host.update_shared(key, &mut |current| {
        let ticket = current
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0);
        taken = Some(ticket);
        Some(ticket.wrapping_add(1).to_string().into_bytes())
    });
    taken.filter(|_| written)
}
