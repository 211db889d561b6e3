//! Health, retry and status configuration: `health`, `retry`, `status_endpoint`, and each
//! provider's `cluster` (where retries and probes go), `probe` and `api_tokens`.

use serde_json::Value;

use super::fields::{kind, Fields};
use super::ConfigError;
use crate::health::status::AddressRange;
use crate::health::tokens::{ApiToken, TokenPool};
use crate::health::{retry_after_ms, Rules, Verdict};

pub(crate) const HEALTH_FIELDS: &[&str] = &[
    "failure_threshold",
    "failure_statuses",
    "cooldown_ms",
    "max_retry_after_ms",
    "success_threshold",
    "probe",
];
pub(crate) const PROBE_SCHEDULE_FIELDS: &[&str] = &["interval_ms", "timeout_ms"];
pub(crate) const RETRY_FIELDS: &[&str] = &["max_retries", "budget_ms"];
pub(crate) const STATUS_FIELDS: &[&str] = &["path", "allowed_sources", "trust_forwarded_for"];
pub(crate) const PROBE_FIELDS: &[&str] = &["method", "path", "body", "expected_statuses"];
pub(crate) const REWRITE_FIELDS: &[&str] = &["from", "to"];

/// Statuses that mean a provider failed, unless the configuration says otherwise.
pub const DEFAULT_FAILURE_STATUSES: &[(u16, u16)] = &[(429, 429), (500, 599)];
/// Statuses that, for a provider with an API-key pool, blame the token rather than the provider.
const TOKEN_STATUSES: [u32; 3] = [401, 403, 429];

/// A set of HTTP statuses: numbers and `"4xx"`-style classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u32) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (u32::from(*low)..=u32::from(*high)).contains(&status))
    }

    fn parse(
        value: Option<&Value>,
        path: &str,
        default: &[(u16, u16)],
    ) -> Result<Self, ConfigError> {
        let Some(value) = value else {
            return Ok(Self(default.to_vec()));
        };
        let Value::Array(items) = value else {
            return Err(ConfigError::at(
                path,
                format!(
                    "must be a list of statuses like [429, \"5xx\"], got {}",
                    kind(value)
                ),
            ));
        };
        let mut ranges = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let range = match item {
                Value::Number(n) => n
                    .as_u64()
                    .filter(|s| (100..=599).contains(s))
                    .map(|s| (s as u16, s as u16)),
                Value::String(class) => match class.as_bytes() {
                    [digit @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                        let low = u16::from(digit - b'0') * 100;
                        Some((low, low + 99))
                    }
                    _ => None,
                },
                _ => None,
            };
            let Some(range) = range else {
                return Err(ConfigError::at(
                    &format!("{path}[{index}]"),
                    format!(
                        "{} is not a status (100 to 599) or a class like \"5xx\"",
                        serde_json::to_string(item).unwrap_or_default()
                    ),
                ));
            };
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err(ConfigError::at(
                path,
                "must list at least one status".into(),
            ));
        }
        Ok(Self(ranges))
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

    pub fn parse(fields: &Fields<'_>) -> Result<Self, ConfigError> {
        let mut policy = Self::default();
        let Some(value) = fields.value("health") else {
            return Ok(policy);
        };
        let health = Fields::new(value, &fields.path("health"), HEALTH_FIELDS, false)?;
        if let Some(n) = health.integer("failure_threshold", 0, 1000)? {
            policy.failure_threshold = n as u32;
        }
        policy.failure_statuses = StatusSet::parse(
            health.value("failure_statuses"),
            &health.path("failure_statuses"),
            DEFAULT_FAILURE_STATUSES,
        )?;
        if let Some(ms) = health.integer("cooldown_ms", 100, 3_600_000)? {
            policy.cooldown_ms = ms;
        }
        if let Some(ms) = health.integer("max_retry_after_ms", 0, 3_600_000)? {
            policy.max_retry_after_ms = ms;
        }
        if let Some(n) = health.integer("success_threshold", 1, 100)? {
            policy.success_threshold = n as u32;
        }
        policy.probe = match health.value("probe") {
            None => policy.probe,
            Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => policy.probe,
            Some(value) => {
                let probe =
                    Fields::new(value, &health.path("probe"), PROBE_SCHEDULE_FIELDS, false)?;
                let defaults = HealthPolicy::default().probe;
                let interval_ms = probe.integer("interval_ms", 100, 3_600_000)?;
                let timeout_ms = probe.integer("timeout_ms", 10, 60_000)?;
                defaults.map(|d| ProbeSchedule {
                    interval_ms: interval_ms.map_or(d.interval_ms, |ms| ms as u32),
                    timeout_ms: timeout_ms.map_or(d.timeout_ms, |ms| ms as u32),
                })
            }
        };
        Ok(policy)
    }
}

/// Retry on another provider (`retry`); off unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// From the request's start, for all its attempts.
    pub budget_ms: u64,
}

impl RetryPolicy {
    pub fn parse(fields: &Fields<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(value) = fields.value("retry") else {
            return Ok(None);
        };
        let retry = Fields::new(value, &fields.path("retry"), RETRY_FIELDS, false)?;
        Ok(Some(Self {
            max_retries: retry.integer("max_retries", 1, 10)?.unwrap_or(1) as u32,
            budget_ms: retry.integer("budget_ms", 100, 600_000)?.unwrap_or(30_000),
        }))
    }
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

impl StatusEndpoint {
    pub fn parse(fields: &Fields<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(value) = fields.value("status_endpoint") else {
            return Ok(None);
        };
        let status = Fields::new(value, &fields.path("status_endpoint"), STATUS_FIELDS, false)?;
        let path = status.required_string("path")?;
        if !path.starts_with('/') {
            return Err(status.error("path", format!("{path:?} must start with /")));
        }
        let sources_path = status.path("allowed_sources");
        let sources = match status.value("allowed_sources") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) | None => {
                return Err(ConfigError::at(
                    &sources_path,
                    "required: the addresses (or CIDR blocks) that may read the status, e.g. \
                     [\"127.0.0.1\"]"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(ConfigError::at(
                    &sources_path,
                    format!("must be a list, got {}", kind(other)),
                ))
            }
        };
        let mut allowed_sources = Vec::with_capacity(sources.len());
        for (index, item) in sources.iter().enumerate() {
            let at = format!("{sources_path}[{index}]");
            let Some(text) = item.as_str() else {
                return Err(ConfigError::at(
                    &at,
                    format!("must be a string, got {}", kind(item)),
                ));
            };
            allowed_sources
                .push(AddressRange::parse(text).map_err(|why| ConfigError::at(&at, why))?);
        }
        let trust_forwarded_for = status.boolean("trust_forwarded_for")?.unwrap_or(false);
        Ok(Some(Self {
            path: path.to_string(),
            allowed_sources,
            trust_forwarded_for,
        }))
    }
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

pub fn parse_upstream(entry: &Fields<'_>) -> Result<Option<Upstream>, ConfigError> {
    let Some(cluster) = entry.non_empty_string("cluster")? else {
        for key in ["probe", "prefix_rewrite"] {
            if entry.value(key).is_some() {
                return Err(entry.error(
                    key,
                    "needs cluster: the Envoy cluster retries and probes are sent to".into(),
                ));
            }
        }
        return Ok(None);
    };
    let prefix_rewrite = match entry.value("prefix_rewrite") {
        None => None,
        Some(value) => {
            let rewrite = Fields::new(value, &entry.path("prefix_rewrite"), REWRITE_FIELDS, false)?;
            let from = rewrite.required_string("from")?;
            let to = rewrite.string("to")?.unwrap_or_default();
            Some((from.to_string(), to.to_string()))
        }
    };
    let probe = match entry.value("probe") {
        None => Probe {
            method: "GET".into(),
            path: "/v1/models".into(),
            body: None,
            expected: StatusSet(vec![(200, 299)]),
        },
        Some(value) => {
            let probe = Fields::new(value, &entry.path("probe"), PROBE_FIELDS, false)?;
            let path = probe.non_empty_string("path")?.unwrap_or("/v1/models");
            if !path.starts_with('/') {
                return Err(probe.error("path", format!("{path:?} must start with /")));
            }
            let body = probe.string("body")?.map(str::to_string);
            let method = probe
                .non_empty_string("method")?
                .unwrap_or(if body.is_some() { "POST" } else { "GET" });
            if !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(probe.error(
                    "method",
                    format!("{method:?} is not an HTTP method like GET or POST"),
                ));
            }
            Probe {
                method: method.to_string(),
                path: path.to_string(),
                body,
                expected: StatusSet::parse(
                    probe.value("expected_statuses"),
                    &probe.path("expected_statuses"),
                    &[(200, 299)],
                )?,
            }
        }
    };
    Ok(Some(Upstream {
        cluster: cluster.to_string(),
        prefix_rewrite,
        probe,
    }))
}

pub fn parse_tokens(entry: &Fields<'_>) -> Result<Option<TokenPool>, ConfigError> {
    let Some(value) = entry.value("api_tokens") else {
        if entry.value("token_header").is_some() {
            return Err(entry.error("token_header", "needs api_tokens".into()));
        }
        return Ok(None);
    };
    let path = entry.path("api_tokens");
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        other => {
            return Err(ConfigError::at(
                &path,
                format!("must be a non-empty list of tokens, got {}", kind(other)),
            ))
        }
    };
    super::fields::check_list_length(items, &path)?;
    let mut tokens: Vec<ApiToken> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("{path}[{index}]");
        // The reason never quotes the value: it is a secret.
        let secret = match item.as_str() {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic()) => text,
            _ => {
                return Err(ConfigError::at(
                    &at,
                    "must be a non-empty string of printable characters without spaces".into(),
                ))
            }
        };
        let token = ApiToken::new(secret);
        if tokens.iter().any(|t| t.fingerprint == token.fingerprint) {
            return Err(ConfigError::at(
                &at,
                format!("duplicate token {}", token.masked()),
            ));
        }
        tokens.push(token);
    }
    let header = entry
        .non_empty_string("token_header")?
        .unwrap_or("authorization")
        .to_ascii_lowercase();
    if !header
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(entry.error(
            "token_header",
            format!("{header:?} is not a valid header name"),
        ));
    }
    Ok(Some(TokenPool {
        bearer: header == "authorization",
        header,
        tokens,
    }))
}
