//! Health, retry and status settings (runtime form): `health`, `retry`, `status_endpoint`, and each
//! provider's `cluster` (where retries and probes go), `probe` and `api_tokens`.

use crate::health::status::AddressRange;
use crate::health::{retry_after_ms, Rules, Verdict};

/// Statuses that mean a provider failed, unless the configuration says otherwise.
pub const DEFAULT_FAILURE_STATUSES: &[(u16, u16)] = &[(429, 429), (500, 599)];
/// Statuses that, for a provider with an API-key pool, blame the token rather than the provider.
const TOKEN_STATUSES: [u32; 3] = [401, 403, 429];

/// A set of HTTP statuses: numbers and `"4xx"`-style classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub(super) Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u32) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (u32::from(*low)..=u32::from(*high)).contains(&status))
    }
}

/// How often the probe lease holder probes, and how long a probe may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSchedule {
    pub interval_ms: u32,
    pub timeout_ms: u32,
}

/// Passive and active health rules (`health`); always on, with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    pub failure_threshold: u32,
    pub failure_statuses: StatusSet,
    pub cooldown_ms: u64,
    pub max_retry_after_ms: u64,
    pub success_threshold: u32,
    /// `None`: `probe: false`, no active checks.
    pub probe: Option<ProbeSchedule>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            failure_statuses: StatusSet(DEFAULT_FAILURE_STATUSES.to_vec()),
            cooldown_ms: 10_000,
            max_retry_after_ms: 60_000,
            success_threshold: 1,
            probe: Some(ProbeSchedule {
                interval_ms: 5_000,
                timeout_ms: 2_000,
            }),
        }
    }
}

impl HealthPolicy {
    /// What a response (`status`; `None`: no response, the call failed) says about a provider,
    /// and about the token it used, if any.
    pub fn verdict(
        &self,
        status: Option<u32>,
        retry_after: Option<&str>,
        token_used: bool,
    ) -> Verdict {
        let Some(status) = status else {
            return Verdict::Failure {
                retry_after_ms: None,
            };
        };
        let retry_after_ms = (status == 429)
            .then(|| retry_after_ms(retry_after, self.max_retry_after_ms))
            .flatten();
        if token_used && TOKEN_STATUSES.contains(&status) {
            Verdict::TokenFailure { retry_after_ms }
        } else if self.failure_statuses.contains(status) {
            Verdict::Failure { retry_after_ms }
        } else {
            Verdict::Success
        }
    }

    /// The state machine's rules for one provider: a token pool that probes can bring back
    /// waits for them; one that no probe reaches comes back after the cooldown.
    pub fn rules(&self, provider_probed: bool) -> Rules {
        Rules {
            failure_threshold: self.failure_threshold,
            cooldown_ms: self.cooldown_ms,
            success_threshold: self.success_threshold,
            token_cooldown_ms: (!provider_probed || self.probe.is_none())
                .then_some(self.cooldown_ms),
        }
    }
}

/// Retry on another provider (`retry`); off unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// From the request's start, for all its attempts.
    pub budget_ms: u64,
}

/// The opt-in status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEndpoint {
    pub path: String,
    pub allowed_sources: Vec<AddressRange>,
    /// Whether the source address may have come from `X-Forwarded-For`: Envoy derives it from
    /// that header unless the connection manager sets `use_remote_address`. Off, a request
    /// carrying the header is never served.
    pub trust_forwarded_for: bool,
}

/// A provider's health probe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub expected: StatusSet,
}

/// Where the filter itself reaches a provider (retries and probes), bypassing the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub cluster: String,
    /// The route's path rewrite to apply to a retried request's path: `(from, to)` prefixes.
    pub prefix_rewrite: Option<(String, String)>,
    pub probe: Probe,
}

impl Upstream {
    /// The path a retried request takes to this provider.
    pub fn path_for(&self, request_path: &str) -> String {
        match &self.prefix_rewrite {
            Some((from, to)) => match request_path.strip_prefix(from.as_str()) {
                Some(rest) => format!("{to}{rest}"),
                None => request_path.to_string(),
            },
            None => request_path.to_string(),
        }
    }
}
