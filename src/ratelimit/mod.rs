//! Steering away before the 429, decided without the host: providers tell their remaining
//! requests and tokens on every answer (`headers`); a provider, or an API key of a pool, whose
//! budget is below a pool's floor is avoided until the budget's reset, unless nothing else is
//! available (a soft ejection). One record per provider lives in shared data
//! (`ai_lb/ratelimit/<name>`, `record`), holding only the budgets that are low, so a provider
//! with plenty costs a read per answer and no write.

pub mod headers;
mod record;
#[cfg(test)]
mod tests;

pub use headers::{observe, Observed, Remaining};
pub use record::{Entry, RateRecord};

/// How long a budget below its floor is avoided when the provider did not say when it refills
/// (Mistral sends no reset): the health cooldown's default, short enough that a provider whose
/// budget came back is soon tried again.
pub const UNKNOWN_RESET_MS: u64 = 10_000;

/// Where a provider's rate-limit record lives in shared data.
pub fn rate_limit_key(provider: &str) -> String {
    format!("ai_lb/ratelimit/{provider}")
}

/// A pool's floors: fewer remaining requests or tokens than these is low. 0: not watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Floor {
    pub requests: u64,
    pub tokens: u64,
}

/// A provider some pool watches: its record's key, and the highest floors of those pools
/// (what its record must keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateWatch {
    pub key: String,
    pub floor: Floor,
}

impl Floor {
    /// The higher of each floor: what a provider in several pools must remember.
    pub fn max(self, other: Floor) -> Floor {
        Floor {
            requests: self.requests.max(other.requests),
            tokens: self.tokens.max(other.tokens),
        }
    }
}

impl Entry {
    /// Whether a budget not yet refilled is below `floor`.
    pub fn is_below(&self, floor: Floor, now_ms: u64) -> bool {
        let low = |left: Option<u64>, reset_ms: u64, floor: u64| {
            left.is_some_and(|left| left < floor) && reset_ms > now_ms
        };
        low(self.requests, self.requests_reset_ms, floor.requests)
            || low(self.tokens, self.tokens_reset_ms, floor.tokens)
    }

    /// When the budgets below `floor` have refilled (`now_ms` when none is).
    pub fn low_until(&self, floor: Floor, now_ms: u64) -> u64 {
        let mut until = now_ms;
        if self.requests.is_some_and(|left| left < floor.requests) {
            until = until.max(self.requests_reset_ms);
        }
        if self.tokens.is_some_and(|left| left < floor.tokens) {
            until = until.max(self.tokens_reset_ms);
        }
        until
    }

    /// When every budget it holds has refilled.
    pub fn back_at(&self) -> u64 {
        self.requests_reset_ms.max(self.tokens_reset_ms)
    }
}

impl RateRecord {
    /// Whether the provider itself (`None`) or the key with this fingerprint is below `floor`.
    pub fn is_below(&self, token: Option<u64>, floor: Floor, now_ms: u64) -> bool {
        self.entry(token)
            .is_some_and(|entry| entry.is_below(floor, now_ms))
    }

    /// Folds in what one answer told of the budgets of the provider or key `token`, kept while
    /// below `floor` (the highest any pool sets) and dropped once above. Entries whose every
    /// budget has refilled go too. True when that budget has just gone below.
    pub fn observe(
        &mut self,
        token: Option<u64>,
        observed: &Observed,
        floor: Floor,
        now_ms: u64,
    ) -> bool {
        self.entries.retain(|entry| entry.back_at() > now_ms);
        if observed.is_empty() {
            return false;
        }
        let reset = |budget: Option<Remaining>| {
            budget.map_or(0, |b| {
                b.reset_at_ms
                    .unwrap_or(now_ms.saturating_add(UNKNOWN_RESET_MS))
            })
        };
        let told = Entry {
            token,
            requests: observed.requests.map(|b| b.left),
            requests_reset_ms: reset(observed.requests),
            tokens: observed.tokens.map(|b| b.left),
            tokens_reset_ms: reset(observed.tokens),
        };
        let was_below = self.is_below(token, floor, now_ms);
        let at = self.entries.iter().position(|entry| entry.token == token);
        match (at, told.is_below(floor, now_ms)) {
            // In place: the same budgets leave the record as it was, and unwritten.
            (Some(at), true) => {
                if let Some(entry) = self.entries.get_mut(at) {
                    *entry = told;
                }
            }
            (None, true) => self.entries.push(told),
            (Some(at), false) => {
                self.entries.remove(at);
            }
            (None, false) => {}
        }
        told.is_below(floor, now_ms) && !was_below
    }
}
