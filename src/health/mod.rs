//! Provider health, decided without the host: what a response says about a provider (and the
//! API token it used), the state machine that ejects a provider after consecutive failures and
//! brings it back (a half-open trial after the cooldown, or successful probes), and which
//! providers a request may use now.
//!
//! One record per provider lives in the host's shared data (`ai_lb/health/<name>`), shared by
//! every worker and written under compare-and-swap; tokens are kept by fingerprint, never by
//! value, so a reloaded token list keeps its state and no secret reaches shared data.

#[cfg(test)]
mod address_tests;
pub mod probe;
mod record;
pub mod status;
#[cfg(test)]
mod tests;
pub mod tokens;

pub use record::{ProviderHealth, State, TokenHealth};

/// Where a provider's health record lives in shared data.
pub fn health_key(provider: &str) -> String {
    format!("ai_lb/health/{provider}")
}

/// Every provider name with a health record, for pruning on reload.
pub const REGISTRY_KEY: &str = "ai_lb/health/providers";

/// The probe lease: only its holder's VM probes.
pub const PROBE_LEASE_KEY: &str = "ai_lb/health/probe_lease";

/// A half-open trial that has not reported after this long (its client vanished, its stream
/// hangs) is given to another request.
pub const TRIAL_TIMEOUT_MS: u64 = 30_000;

/// The rules a configuration sets (see `config::HealthPolicy`), as the state machine needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Consecutive failures that eject; 0 never ejects.
    pub failure_threshold: u32,
    pub cooldown_ms: u64,
    /// Successful probes in a row that bring an ejected provider or a token back.
    pub success_threshold: u32,
    /// How long an unavailable token stays out when no probe can bring it back sooner;
    /// `None`: until a probe succeeds.
    pub token_cooldown_ms: Option<u64>,
}

/// What one response (or failed call) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The provider answered usefully (a client error like 400 counts: the provider is up).
    Success,
    /// The provider failed; `retry_after_ms` when it said how long to stay away (a 429).
    Failure { retry_after_ms: Option<u64> },
    /// The token was refused or rate-limited (401, 403, 429 for a provider with tokens).
    TokenFailure { retry_after_ms: Option<u64> },
}

/// A change worth a stat and a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Ejected { until_ms: u64 },
    Restored,
    TokenUnavailable,
    TokenRestored,
}

/// Whether a request may go to a provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Its cooldown is over: the request that claims the trial decides.
    TrialDue,
    /// Out until `until_ms` (`u64::MAX`: until a probe brings it or its tokens back).
    Out {
        until_ms: u64,
    },
}

impl ProviderHealth {
    /// Whether a request may use this provider now, given the fingerprints of its tokens (none:
    /// the provider has no token pool).
    pub fn availability(&self, now_ms: u64, tokens: &[u64]) -> Availability {
        let own = match self.state {
            State::Healthy => Availability::Available,
            State::Ejected { until_ms } if now_ms < until_ms => Availability::Out { until_ms },
            State::Ejected { .. } => Availability::TrialDue,
            State::Trial { since_ms } if now_ms < since_ms.saturating_add(TRIAL_TIMEOUT_MS) => {
                Availability::Out {
                    until_ms: since_ms.saturating_add(TRIAL_TIMEOUT_MS),
                }
            }
            State::Trial { .. } => Availability::TrialDue,
        };
        if tokens.is_empty() || own != Availability::Available {
            return own;
        }
        match self.tokens_back_at(now_ms, tokens) {
            None => Availability::Available,
            Some(until_ms) => Availability::Out { until_ms },
        }
    }

    /// `None` while one of `tokens` is usable; otherwise when the first comes back.
    fn tokens_back_at(&self, now_ms: u64, tokens: &[u64]) -> Option<u64> {
        let back_at = |fingerprint: &u64| self.token(*fingerprint).map_or(0, |t| t.until_ms);
        if tokens
            .iter()
            .any(|fingerprint| back_at(fingerprint) <= now_ms)
        {
            return None;
        }
        Some(tokens.iter().map(back_at).min().unwrap_or(u64::MAX))
    }

    /// Claims the half-open trial: the caller's request decides. False when the trial is not
    /// due (another request claimed it first).
    pub fn claim_trial(&mut self, now_ms: u64) -> bool {
        if self.availability(now_ms, &[]) != Availability::TrialDue {
            return false;
        }
        self.state = State::Trial { since_ms: now_ms };
        true
    }

    /// A trial request ended without a verdict (its client went away): another may try now.
    pub fn abandon_trial(&mut self, since_ms: u64) {
        if self.state == (State::Trial { since_ms }) {
            self.state = State::Ejected { until_ms: since_ms };
        }
    }

    /// Folds one request's verdict in; `token` is the fingerprint of the token it used.
    pub fn record(
        &mut self,
        verdict: Verdict,
        token: Option<u64>,
        now_ms: u64,
        rules: &Rules,
    ) -> Option<Change> {
        match verdict {
            Verdict::Success => {
                if let Some(fingerprint) = token {
                    if let Some(entry) = self
                        .tokens
                        .iter_mut()
                        .find(|t| t.fingerprint == fingerprint)
                    {
                        entry.failures = 0;
                    }
                }
                self.failures = 0;
                match self.state {
                    State::Healthy => None,
                    // A success from an ejected provider: a trial, or a request that was
                    // already on its way when it was ejected. Either way it is up.
                    _ => {
                        self.state = State::Healthy;
                        self.probe_successes = 0;
                        Some(Change::Restored)
                    }
                }
            }
            Verdict::Failure { retry_after_ms } => self.fail(retry_after_ms, now_ms, rules),
            Verdict::TokenFailure { retry_after_ms } => {
                let fingerprint = token?;
                self.fail_token(fingerprint, retry_after_ms, now_ms, rules)
            }
        }
    }

    fn fail(&mut self, retry_after_ms: Option<u64>, now_ms: u64, rules: &Rules) -> Option<Change> {
        if rules.failure_threshold == 0 {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        self.probe_successes = 0;
        let eject_for = match (retry_after_ms, self.state) {
            // The provider said how long: believe it (capped when the value was read).
            (Some(wait_ms), _) => wait_ms,
            // A failed trial: back out for another cooldown.
            (None, State::Trial { .. } | State::Ejected { .. }) => rules.cooldown_ms,
            (None, State::Healthy) if self.failures >= rules.failure_threshold => rules.cooldown_ms,
            (None, State::Healthy) => return None,
        };
        let until_ms = now_ms.saturating_add(eject_for);
        let was_healthy = self.state == State::Healthy;
        self.state = State::Ejected { until_ms };
        self.failures = 0;
        was_healthy.then_some(Change::Ejected { until_ms })
    }

    fn fail_token(
        &mut self,
        fingerprint: u64,
        retry_after_ms: Option<u64>,
        now_ms: u64,
        rules: &Rules,
    ) -> Option<Change> {
        if rules.failure_threshold == 0 {
            return None;
        }
        let entry = self.token_mut(fingerprint);
        if entry.until_ms > now_ms {
            return None; // already out
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.successes = 0;
        let out_for = match retry_after_ms {
            Some(wait_ms) => wait_ms,
            None if entry.failures >= rules.failure_threshold => {
                rules.token_cooldown_ms.unwrap_or(u64::MAX)
            }
            None => return None,
        };
        entry.until_ms = now_ms.saturating_add(out_for);
        entry.failures = 0;
        Some(Change::TokenUnavailable)
    }

    /// Folds a probe's result in. A probe with a token judges that token; one without judges
    /// the provider. `success_threshold` successes in a row bring either back.
    pub fn record_probe(
        &mut self,
        ok: bool,
        token: Option<u64>,
        now_ms: u64,
        rules: &Rules,
    ) -> Option<Change> {
        let threshold = rules.success_threshold.max(1);
        if let Some(fingerprint) = token {
            let entry = self.token_mut(fingerprint);
            if !ok {
                entry.successes = 0;
                return None;
            }
            entry.successes = entry.successes.saturating_add(1);
            if entry.until_ms <= now_ms || entry.successes < threshold {
                return None;
            }
            *entry = TokenHealth::new(fingerprint);
            return Some(Change::TokenRestored);
        }
        if self.state == State::Healthy {
            return None;
        }
        if !ok {
            self.probe_successes = 0;
            return None;
        }
        self.probe_successes = self.probe_successes.saturating_add(1);
        if self.probe_successes < threshold {
            return None;
        }
        self.state = State::Healthy;
        self.failures = 0;
        self.probe_successes = 0;
        Some(Change::Restored)
    }

    /// Whether a probe is worth sending: the provider is out, or one of its tokens is.
    pub fn needs_probe(&self, now_ms: u64) -> bool {
        self.state != State::Healthy || self.tokens.iter().any(|t| t.until_ms > now_ms)
    }

    /// Whether the token with this fingerprint may be used now.
    pub fn token_usable(&self, fingerprint: u64, now_ms: u64) -> bool {
        self.token(fingerprint).is_none_or(|t| t.until_ms <= now_ms)
    }

    /// Forgets tokens no longer configured (their secrets were removed from the config).
    pub fn keep_tokens(&mut self, fingerprints: &[u64]) {
        self.tokens
            .retain(|t| fingerprints.contains(&t.fingerprint));
    }

    fn token(&self, fingerprint: u64) -> Option<&TokenHealth> {
        self.tokens.iter().find(|t| t.fingerprint == fingerprint)
    }

    fn token_mut(&mut self, fingerprint: u64) -> &mut TokenHealth {
        let index = match self
            .tokens
            .iter()
            .position(|t| t.fingerprint == fingerprint)
        {
            Some(index) => index,
            None => {
                self.tokens.push(TokenHealth::new(fingerprint));
                self.tokens.len() - 1
            }
        };
        &mut self.tokens[index]
    }
}

/// Reads a `Retry-After` value in seconds (the HTTP-date form is not used by LLM providers and
/// counts as absent), capped at `max_ms`.
pub fn retry_after_ms(value: Option<&str>, max_ms: u64) -> Option<u64> {
    let seconds: f64 = value?.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(((seconds * 1000.0) as u64).min(max_ms))
}
