//! Gathering what the pool's strategy needs (loads, latencies, a round-robin ticket) and acting
//! on its pick: routing headers, route re-match, stats.

use std::rc::Rc;

use log::debug;

use super::{accounting, backends, Phase, RequestFlow, RequestHost, Sent, Stat, Verdict};
use crate::background::fresh_loads;
use crate::config::{BalancerConfig, LoadSource, Pool, Refresh};
use crate::load::Loads;
use crate::rng::Rng;
use crate::store::StoreError;
use crate::strategy::latency::LatencyStats;
use crate::strategy::{Backend, Inputs, Reason, Strategy};

impl RequestFlow {
    /// Reads the loads the configuration's source gives (now, or by pausing for the store),
    /// then chooses.
    pub(super) fn start_choice(&mut self, host: &mut dyn RequestHost, rng: &mut Rng) -> Verdict {
        let plugin = Rc::clone(&self.plugin);
        let Some((which, config)) = self
            .config
            .and_then(|which| plugin.get(which).map(|config| (which, config)))
        else {
            return self.pass_through(host, "no configuration");
        };
        let providers = config.providers.len();
        let loads = match (&config.loads, config.store()) {
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
                    if !host.store_may_be_asked(which, &down, read.config.timeout_ms) {
                        Err(StoreError::KnownDown)
                    } else {
                        match host.send_store_query(&read.query, read.config.timeout_ms) {
                            Ok(()) => {
                                self.phase = Phase::AwaitingStore;
                                return Verdict::Pause;
                            }
                            Err(why) => {
                                debug!("ai-load-balancer: store call not sent: {why}");
                                self.store_outcome(host, false);
                                Err(StoreError::Unavailable(why))
                            }
                        }
                    }
                }
            },
            (LoadSource::Engines(scrape), None) => {
                Ok(engine_loads(host, config, scrape.max_age_ms))
            }
            (LoadSource::InFlight(_), None) => Ok(accounting::in_flight_loads(host, config)),
            (LoadSource::None | LoadSource::Store(_), None) => Ok(vec![None; providers]),
        };
        self.choose(host, loads, rng)
    }

    /// Picks a backend of the request's pool with its strategy, and sends the request there.
    pub(super) fn choose(
        &mut self,
        host: &mut dyn RequestHost,
        loads: Result<Loads, StoreError>,
        rng: &mut Rng,
    ) -> Verdict {
        let plugin = Rc::clone(&self.plugin);
        let Some(config) = self.config.and_then(|which| plugin.get(which)) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        let Some(pool) = config.pools.pools.get(self.pool) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        if let Err(err) = &loads {
            debug!("ai-load-balancer: {err}; choosing without loads");
        }
        let now_ms = host.now_ms();
        let known = loads.as_ref().ok();
        let mut backends = backends_now(host, pool, known, self.facts.streaming, now_ms);
        let inputs = Inputs {
            round_robin_ticket: match pool.strategy {
                Strategy::RoundRobin => next_ticket(host, &pool.round_robin_key),
                _ => None,
            },
            prefix_hash: self.facts.prefix_hash,
        };
        let health = backends::read_health(host, config, pool);
        let candidates = backends::Candidates {
            config,
            pool,
            health: &health,
            excluded: &|_| false,
            fall_back_to_out: true,
        };
        let Some(picked) = backends::pick_healthy(host, &candidates, &mut backends, &inputs, rng)
        else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        let Some(backend) = pool.backends.get(picked.index) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        let Some(provider) = config.providers.get(backend.provider) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        if let Some(retry) = &mut self.retry {
            retry.tried.push(backend.provider);
        }
        // The client's copies of these headers were removed when its headers arrived.
        host.set_request_header(&config.selected_provider_header, &provider.name);
        if let Some(model) = &backend.model {
            host.set_request_header(&config.rewrite_model_header, model);
        }
        let token = backends::choose_token(provider, picked.health, now_ms, rng);
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
        host.count(Stat::Selected(provider.name.clone()));
        let counted_in_flight = matches!(config.loads, LoadSource::InFlight(_));
        if counted_in_flight {
            accounting::count_in_flight(host, config, backend.provider, 1);
        }
        let token = token.map(|token| token.fingerprint);
        self.sent = Some(Sent {
            pool: self.pool,
            backend: picked.index,
            provider: backend.provider,
            at_ms: now_ms,
            counted_in_flight,
            token,
            trial_since: picked.trial_since,
            verdict: None,
        });
        self.release(host)
    }
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
