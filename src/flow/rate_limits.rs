//! Rate-limit headers in a request's life: the budgets each answer tells go into the provider's
//! shared record (only while low), and a pick reads the records of its pool's providers to keep
//! away from low ones while anything else is available.

use log::info;

use super::{RequestHost, Stat};
use crate::config::{BalancerConfig, Pool, Provider};
use crate::health::tokens::ApiToken;
use crate::health::ProviderHealth;
use crate::ratelimit::{observe, Floor, RateRecord};

/// Each backend's provider record, read once per pick; empty when the pool has no floors.
pub(super) fn read(
    host: &dyn RequestHost,
    config: &BalancerConfig,
    pool: &Pool,
) -> Vec<RateRecord> {
    if pool.rate_limits.is_none() {
        return Vec::new();
    }
    let mut records = Vec::with_capacity(pool.backends.len());
    for backend in &pool.backends {
        let watch = config
            .providers
            .get(backend.provider)
            .and_then(|provider| provider.rate_limits.as_ref());
        records.push(RateRecord::read(
            watch
                .and_then(|watch| host.shared_data(&watch.key))
                .as_deref(),
        ));
    }
    records
}

/// Whether a backend is low: its provider is, or every key its health lets it use is.
pub(super) fn is_low(
    provider: &Provider,
    health: &ProviderHealth,
    record: &RateRecord,
    floor: Floor,
    now_ms: u64,
) -> bool {
    if record.entries.is_empty() {
        return false;
    }
    if record.is_below(None, floor, now_ms) {
        return true;
    }
    let Some(pool) = &provider.tokens else {
        return false;
    };
    let mut any_usable = false;
    for token in &pool.tokens {
        if health.token_usable(token.fingerprint, now_ms) {
            if !record.is_below(Some(token.fingerprint), floor, now_ms) {
                return false;
            }
            any_usable = true;
        }
    }
    any_usable
}

/// The budgets the upstream's response tells, for the provider (and key) a request used.
pub(super) fn record_response(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    provider: usize,
    token: Option<u64>,
) {
    let watched = config
        .providers
        .get(provider)
        .is_some_and(|p| p.rate_limits.is_some());
    if watched {
        let headers = host.response_headers();
        record_answer(host, config, provider, token, &headers);
    }
}

/// Folds what an answer's `headers` tell into the provider's record (read on every answer,
/// written only when it changes), and reports a budget that has just gone low.
pub(super) fn record_answer(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    provider: usize,
    token: Option<u64>,
    headers: &[(String, String)],
) {
    let Some(provider) = config.providers.get(provider) else {
        return;
    };
    let Some(watch) = &provider.rate_limits else {
        return;
    };
    let now_ms = host.now_ms();
    let observed = observe(headers, now_ms);
    if observed.is_empty() {
        // A provider that tells nothing costs nothing more (its entries age out on their own).
        return;
    }
    let mut went_low = None;
    let written = host.update_shared(&watch.key, &mut |current| {
        let mut record = RateRecord::read(current);
        let before = record.clone();
        let low = record.observe(token, &observed, watch.floor, now_ms);
        went_low = low.then(|| record.entry(token).copied()).flatten();
        (record != before).then(|| record.encode())
    });
    let Some(entry) = went_low.filter(|_| written) else {
        return;
    };
    let key = provider
        .token(token)
        .map_or_else(String::new, |token: &ApiToken| {
            format!(" API token {}", token.masked())
        });
    info!(
        "ai-load-balancer: provider {}{key} is below its rate-limit floor; avoided for {} ms \
         unless nothing else is available",
        provider.name,
        entry.low_until(watch.floor, now_ms).saturating_sub(now_ms)
    );
    host.count(Stat::Provider(provider.name.clone(), "rate_limited"));
}
