//! Health in a request's life: which backends may be picked (ejected providers are skipped;
//! when every one is out, the one back first), claiming a half-open trial, the API token a
//! request uses, and what its response says about the provider.

use log::{info, warn};

use super::{rate_limits, RequestHost, Stat};
use crate::config::{BalancerConfig, Pool, Provider};
use crate::health::tokens::ApiToken;
use crate::health::{Availability, Change, ProviderHealth, Verdict};
use crate::ratelimit::{Floor, RateRecord};
use crate::rng::Rng;
use crate::strategy::{pick, Backend, Inputs, Reason};

/// The backend a request goes to, and what its health said when it was picked.
pub(super) struct HealthyPick<'a> {
    /// Index in the pool's backends.
    pub index: usize,
    pub reason: Reason,
    /// Every candidate was out: this one comes back first.
    pub all_out: bool,
    /// This request is the provider's half-open trial, claimed at that time.
    pub trial_since: Option<u64>,
    /// Its record as read for this pick (before any trial claim).
    pub health: &'a ProviderHealth,
    /// Its rate-limit record as read for this pick, and the pool's floors (`None`: off): the
    /// key it uses prefers one that is not low.
    pub rate_limits: RateRecord,
    pub floor: Option<Floor>,
}

/// Each backend's provider health, read once per request (a missing record is healthy).
pub(super) fn read_health(
    host: &dyn RequestHost,
    config: &BalancerConfig,
    pool: &Pool,
) -> Vec<ProviderHealth> {
    let mut health = Vec::with_capacity(pool.backends.len());
    for backend in &pool.backends {
        let key = config
            .providers
            .get(backend.provider)
            .map(|p| &p.health_key);
        health.push(ProviderHealth::read(
            key.and_then(|key| host.shared_data(key)).as_deref(),
        ));
    }
    health
}

/// What a pick may choose from.
pub(super) struct Candidates<'a> {
    pub config: &'a BalancerConfig,
    pub pool: &'a Pool,
    pub health: &'a [ProviderHealth],
    /// Providers this request must not go to (already tried, or unreachable for a retry).
    pub excluded: &'a dyn Fn(usize) -> bool,
    /// When nothing is available: the candidate back first (a first pick), or nothing (a
    /// retry: going to a provider known out is not worth the client's wait).
    pub fall_back_to_out: bool,
}

/// Picks with the pool's strategy among the available backends, claiming the trial of a
/// provider whose cooldown is over (a claim lost to another request means pick again). A
/// backend whose budget is below the pool's rate-limit floor is held back while any other is
/// available (a soft ejection).
pub(super) fn pick_healthy<'a>(
    host: &mut dyn RequestHost,
    candidates: &Candidates<'a>,
    backends: &mut [Backend],
    inputs: &Inputs,
    rng: &mut Rng,
) -> Option<HealthyPick<'a>> {
    let now_ms = host.now_ms();
    let pool = candidates.pool;
    let mut rate_limits = rate_limits::read(host, candidates.config, pool);
    let mut availability: Vec<Option<Availability>> = Vec::with_capacity(backends.len());
    let mut held_back = vec![false; backends.len()];
    for (index, ((pool_backend, health), backend)) in pool
        .backends
        .iter()
        .zip(candidates.health)
        .zip(backends.iter_mut())
        .enumerate()
    {
        let provider = candidates.config.providers.get(pool_backend.provider);
        let now = match provider {
            Some(provider) if !(candidates.excluded)(pool_backend.provider) => {
                Some(health.availability(now_ms, &provider.token_fingerprints()))
            }
            _ => None,
        };
        backend.available = matches!(now, Some(Availability::Available | Availability::TrialDue));
        if let (Some(provider), Some(record), Some(held)) =
            (provider, rate_limits.get(index), held_back.get_mut(index))
        {
            *held = backend.available
                && pool.rate_limits.is_some_and(|floor| {
                    rate_limits::is_low(provider, health, record, floor, now_ms)
                });
            backend.available &= !*held;
        }
        availability.push(now);
    }
    let mut used_held_back = false;
    // Each round either returns, marks one more backend unavailable, or (once) lets the held
    // back ones in.
    for _ in 0..=backends.len() + 1 {
        if !backends.iter().any(|backend| backend.available) {
            if held_back.contains(&true) {
                for (backend, held) in backends.iter_mut().zip(held_back.iter_mut()) {
                    backend.available = std::mem::take(held);
                }
                used_held_back = true;
                continue;
            }
            if !candidates.fall_back_to_out {
                return None;
            }
            let index = back_first(&availability, now_ms)?;
            return Some(HealthyPick {
                index,
                reason: Reason::Strategy,
                all_out: true,
                trial_since: None,
                health: candidates.health.get(index)?,
                rate_limits: rate_limits
                    .get_mut(index)
                    .map(std::mem::take)
                    .unwrap_or_default(),
                floor: pool.rate_limits,
            });
        }
        let picked = pick(&pool.strategy, backends, pool.ring.as_ref(), inputs, rng)?;
        let mut trial_since = None;
        if availability.get(picked.index) == Some(&Some(Availability::TrialDue)) {
            let provider = pool
                .backends
                .get(picked.index)
                .and_then(|b| candidates.config.providers.get(b.provider))?;
            if !claim_trial(host, provider, now_ms) {
                if let Some(backend) = backends.get_mut(picked.index) {
                    backend.available = false;
                }
                continue;
            }
            trial_since = Some(now_ms);
        }
        if used_held_back {
            if let Some(provider) = pool
                .backends
                .get(picked.index)
                .and_then(|b| candidates.config.providers.get(b.provider))
            {
                host.count(Stat::Provider(provider.name.clone(), "rate_limited_picked"));
            }
        }
        return Some(HealthyPick {
            index: picked.index,
            reason: picked.reason,
            all_out: false,
            trial_since,
            health: candidates.health.get(picked.index)?,
            rate_limits: rate_limits
                .get_mut(picked.index)
                .map(std::mem::take)
                .unwrap_or_default(),
            floor: pool.rate_limits,
        });
    }
    None
}

/// The candidate whose cooldown ends first.
fn back_first(availability: &[Option<Availability>], now_ms: u64) -> Option<usize> {
    let mut first: Option<(u64, usize)> = None;
    for (index, availability) in availability.iter().enumerate() {
        let back_at = match availability {
            None => continue,
            Some(Availability::Out { until_ms }) => *until_ms,
            Some(Availability::Available | Availability::TrialDue) => now_ms,
        };
        if first.is_none_or(|(earliest, _)| back_at < earliest) {
            first = Some((back_at, index));
        }
    }
    first.map(|(_, index)| index)
}

fn claim_trial(host: &mut dyn RequestHost, provider: &Provider, now_ms: u64) -> bool {
    let mut claimed = false;
    // A claim changes the record; a lost one leaves it as it is, unwritten.
    let written = update_record(host, provider, &mut |record| {
        claimed = record.claim_trial(now_ms);
    });
    claimed && written
}

/// Read-modify-write of a provider's shared record, written only when `change` changed it.
fn update_record(
    host: &mut dyn RequestHost,
    provider: &Provider,
    change: &mut dyn FnMut(&mut ProviderHealth),
) -> bool {
    host.update_shared(&provider.health_key, &mut |current| {
        let mut record = ProviderHealth::read(current);
        let before = record.clone();
        change(&mut record);
        (record != before).then(|| record.encode())
    })
}

/// The token a request to `provider` uses, if it has a pool: one whose budget is not low, if
/// there is one.
pub(super) fn choose_token<'a>(
    provider: &'a Provider,
    picked: &HealthyPick<'_>,
    now_ms: u64,
    rng: &mut Rng,
) -> Option<&'a ApiToken> {
    let record = &picked.rate_limits;
    let low = |fingerprint: u64| {
        picked
            .floor
            .is_some_and(|floor| record.is_below(Some(fingerprint), floor, now_ms))
    };
    provider
        .tokens
        .as_ref()?
        .choose(picked.health, &low, now_ms, rng)
}

/// Folds a response's verdict into the provider's shared record (read on every response, written
/// only when it changes: a success on a clean record costs one read), and reports a change.
pub(super) fn record_verdict(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    provider: usize,
    token: Option<u64>,
    verdict: Verdict,
) {
    let Some(provider) = config.providers.get(provider) else {
        return;
    };
    if verdict != Verdict::Success && removed_since(host, &provider.name) {
        // A newer configuration removed this provider while this request was out: writing
        // would bring back the record the reload cleared.
        return;
    }
    let now_ms = host.now_ms();
    let rules = config.health.rules(provider.upstream.is_some());
    let mut change = None;
    let written = update_record(host, provider, &mut |record| {
        change = record.record(verdict, token, now_ms, &rules);
    });
    // A dropped update changed nothing: nothing to count or say.
    if let (Some(change), true) = (change, written) {
        report(
            &mut |stat| host.count(stat),
            provider,
            change,
            token,
            now_ms,
        );
    }
}

/// Whether the providers' registry (written by each configuration update) no longer names
/// `provider`. A failure costs this one extra read; a success writes nothing to a clean record
/// and needs no check.
fn removed_since(host: &dyn RequestHost, provider: &str) -> bool {
    let Some(registry) = host.shared_data(crate::health::REGISTRY_KEY) else {
        return false;
    };
    !registry
        .split(|byte| *byte == b'\n')
        .any(|name| name == provider.as_bytes())
}

/// A trial that ended without a verdict: let another request try.
pub(super) fn abandon_trial(host: &mut dyn RequestHost, provider: &Provider, since_ms: u64) {
    update_record(host, provider, &mut |record| record.abandon_trial(since_ms));
}

/// Counts a health change and says it once, in the log (tokens masked).
pub fn report(
    count: &mut dyn FnMut(Stat),
    provider: &Provider,
    change: Change,
    token: Option<u64>,
    now_ms: u64,
) {
    let name = &provider.name;
    let masked = || {
        provider
            .token(token)
            .map_or_else(|| "?".to_string(), ApiToken::masked)
    };
    let event = match change {
        Change::Ejected { until_ms } => {
            warn!(
                "ai-load-balancer: provider {name} ejected for {} ms (failures in a row, or \
                 Retry-After); requests go to the others",
                until_ms.saturating_sub(now_ms)
            );
            "ejected"
        }
        Change::Restored => {
            info!("ai-load-balancer: provider {name} restored");
            "restored"
        }
        Change::TokenUnavailable => {
            warn!(
                "ai-load-balancer: provider {name}: API token {} unavailable",
                masked()
            );
            "token_unavailable"
        }
        Change::TokenRestored => {
            info!(
                "ai-load-balancer: provider {name}: API token {} restored",
                masked()
            );
            "token_restored"
        }
    };
    count(Stat::Provider(name.clone(), event));
}
