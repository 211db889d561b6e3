//! What a request leaves behind when it ends: its in-flight count taken back, and its latency
//! folded into the backend's average in shared data (so every worker of the gateway sees it).

use super::choose::latency_key;
use super::phase::Sent;
use super::{RequestHost, Worker};
use crate::config::{BalancerConfig, InFlightScope, LoadSource};
use crate::inflight::{register, slot_key, totals, workers, Slot, FORGET_AFTER_MS, REGISTRY_KEY};
use crate::load::{Load, Loads};
use crate::strategy::latency::{LatencyStats, DEFAULT_ALPHA};
use crate::strategy::Strategy;

/// The stream ended (completed, reset or aborted) after it was sent to a backend.
pub(super) fn request_ended(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    config: &BalancerConfig,
    sent: &Sent,
) {
    let Some(backend) = config
        .pools
        .pools
        .get(sent.pool)
        .and_then(|pool| pool.backends.get(sent.backend))
    else {
        return;
    };
    if sent.counted_in_flight {
        count_in_flight(host, worker, config, backend.provider, -1);
    }
    if let (Some(since_ms), None) = (sent.trial_since, sent.verdict) {
        if let Some(provider) = config.providers.get(sent.provider) {
            super::backends::abandon_trial(host, provider, since_ms);
        }
    }
    if !tracks_latency(config, sent.pool) {
        return;
    }
    // Without a response there is nothing to learn (a client that gave up says nothing
    // about the provider), and a failure's quick answer must not make a provider look fast.
    if sent.verdict != Some(crate::health::Verdict::Success) {
        return;
    }
    let Some(first_byte_ms) = sent.first_byte_ms else {
        return;
    };
    let now_ms = host.now_ms();
    let max_age_ms = config
        .pools
        .pools
        .get(sent.pool)
        .map_or(0, |pool| u64::from(pool.latency_max_age_ms));
    let ttfb = first_byte_ms.saturating_sub(sent.at_ms) as f64;
    let total = (!sent.streaming).then(|| now_ms.saturating_sub(sent.at_ms) as f64);
    host.update_shared(&latency_key(&backend.id), &mut |current| {
        let mut stats = current
            .and_then(|bytes| LatencyStats::decode(bytes).ok())
            .unwrap_or_default();
        // An average older than the pool's max age describes another time: start again.
        stats.restart_if_stale(now_ms, max_age_ms);
        stats.record(Some(ttfb), total, now_ms, DEFAULT_ALPHA);
        Some(stats.encode())
    });
}

/// Whether the pool learns its backends' latencies (the least-latency strategy).
pub(super) fn tracks_latency(config: &BalancerConfig, pool: usize) -> bool {
    config
        .pools
        .pools
        .get(pool)
        .is_some_and(|pool| matches!(pool.strategy, Strategy::LeastLatency))
}

/// Adds to this worker's in-flight count for a provider, where the configuration keeps them.
pub fn count_in_flight(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    config: &BalancerConfig,
    provider: usize,
    delta: i64,
) {
    match &config.loads {
        LoadSource::InFlight(InFlightScope::Replicas(counters)) => {
            worker.count_in_flight_in_redis(counters, provider, delta)
        }
        LoadSource::InFlight(InFlightScope::Gateway) => {
            if let Some(provider) = config.providers.get(provider) {
                in_flight_add(host, worker.id(), &provider.name, delta);
            }
        }
        _ => {}
    }
}

/// Adds to this worker's in-flight count for a provider (its own slot: no other writer).
fn in_flight_add(host: &mut dyn RequestHost, me: u64, provider: &str, delta: i64) {
    let now_ms = host.now_ms();
    let registry = host.shared_data(REGISTRY_KEY);
    let listed = workers(registry.as_deref());
    if !listed.contains(&me) {
        // Once per worker (the common case costs one read): register, and take the workers
        // whose slots stopped beating long ago off the registry, blanking their slots.
        let mut gone = Vec::new();
        for worker in listed {
            // A slot not written yet is a worker registering now: not gone.
            let slot = host.shared_data(&slot_key(worker));
            let beat_ms = slot
                .and_then(|bytes| Slot::decode(&bytes).ok())
                .map(|s| s.heartbeat_ms);
            if beat_ms.is_some_and(|beat_ms| beat_ms.saturating_add(FORGET_AFTER_MS) < now_ms) {
                gone.push(worker);
            }
        }
        host.update_shared(REGISTRY_KEY, &mut |current| register(current, me, &gone));
        for worker in gone {
            host.update_shared(&slot_key(worker), &mut |_| Some(Vec::new()));
        }
    }
    host.update_shared(&slot_key(me), &mut |current| {
        let mut slot = current
            .and_then(|bytes| Slot::decode(bytes).ok())
            .unwrap_or_default();
        slot.add(provider, delta, now_ms);
        Some(slot.encode())
    });
}

/// Requests in flight per provider, summed over the gateway's live workers.
pub fn in_flight_loads(host: &dyn RequestHost, config: &BalancerConfig) -> Loads {
    let registry = host.shared_data(REGISTRY_KEY);
    let mut slots: Vec<Slot> = Vec::new();
    for worker in workers(registry.as_deref()) {
        if let Some(slot) = host
            .shared_data(&slot_key(worker))
            .and_then(|bytes| Slot::decode(&bytes).ok())
        {
            slots.push(slot);
        }
    }
    let mut names: Vec<&str> = Vec::with_capacity(config.providers.len());
    for provider in &config.providers {
        names.push(&provider.name);
    }
    let mut loads = Vec::with_capacity(names.len());
    for count in totals(&slots, &names, host.now_ms()) {
        loads.push(Some(Load::count(count)));
    }
    loads
}
