//! `health`, `retry`, `status_endpoint`, and each provider's `cluster` (where retries and probes
//! go), `probe`, `prefix_rewrite` and `api_tokens`.

use super::{check_absolute, check_list_length, is_header_token, join};
use crate::config::document::{self, Either, StatusRange, Text, Whole};
use crate::config::resilience::{
    HealthPolicy, Probe, ProbeSchedule, RetryPolicy, StatusEndpoint, StatusSet, Upstream,
    DEFAULT_FAILURE_STATUSES,
};
use crate::config::ConfigError;
use crate::health::status::AddressRange;
use crate::health::tokens::{ApiToken, TokenPool};

const PROBE_STATUSES: &[(u16, u16)] = &[(200, 299)];

fn statuses(
    given: Option<&[StatusRange]>,
    path: &str,
    default: &[(u16, u16)],
) -> Result<StatusSet, ConfigError> {
    match given {
        None => Ok(StatusSet(default.to_vec())),
        Some([]) => Err(ConfigError::at(
            path,
            "must list at least one status".into(),
        )),
        Some(ranges) => Ok(StatusSet(
            ranges.iter().map(|range| (range.0, range.1)).collect(),
        )),
    }
}

pub fn health(doc: Option<&document::Health>, path: &str) -> Result<HealthPolicy, ConfigError> {
    let defaults = HealthPolicy::default();
    let Some(health) = doc else {
        return Ok(defaults);
    };
    let probe = match &health.probe {
        None | Some(Either::Short(true)) => defaults.probe,
        Some(Either::Short(false)) => None,
        Some(Either::Long(schedule)) => defaults.probe.map(|d| ProbeSchedule {
            interval_ms: schedule.interval_ms.map_or(d.interval_ms, Whole::u32),
            timeout_ms: schedule.timeout_ms.map_or(d.timeout_ms, Whole::u32),
        }),
    };
    Ok(HealthPolicy {
        failure_threshold: health
            .failure_threshold
            .map_or(defaults.failure_threshold, Whole::u32),
        failure_statuses: statuses(
            health.failure_statuses.as_deref(),
            &join(path, "failure_statuses"),
            DEFAULT_FAILURE_STATUSES,
        )?,
        cooldown_ms: health.cooldown_ms.map_or(defaults.cooldown_ms, |ms| ms.0),
        max_retry_after_ms: health
            .max_retry_after_ms
            .map_or(defaults.max_retry_after_ms, |ms| ms.0),
        success_threshold: health
            .success_threshold
            .map_or(defaults.success_threshold, Whole::u32),
        probe,
    })
}

pub fn retry(retry: &document::Retry) -> RetryPolicy {
    RetryPolicy {
        max_retries: retry.max_retries.map_or(1, Whole::u32),
        budget_ms: retry.budget_ms.map_or(30_000, |ms| ms.0),
    }
}

pub fn status_endpoint(
    doc: Option<&document::StatusEndpoint>,
    at: &str,
) -> Result<Option<StatusEndpoint>, ConfigError> {
    let Some(status) = doc else {
        return Ok(None);
    };
    let path = join(at, "status_endpoint");
    check_absolute(status.path.as_str(), &join(&path, "path"))?;
    let sources_path = join(&path, "allowed_sources");
    let sources = match status.allowed_sources.as_deref() {
        Some(items) if !items.is_empty() => items,
        _ => {
            return Err(ConfigError::at(
                &sources_path,
                "required: the addresses (or CIDR blocks) that may read the status, e.g. \
                 [\"127.0.0.1\"]"
                    .into(),
            ))
        }
    };
    let allowed_sources = sources
        .iter()
        .enumerate()
        .map(|(index, text)| {
            AddressRange::parse(text)
                .map_err(|why| ConfigError::at(&format!("{sources_path}[{index}]"), why))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(StatusEndpoint {
        path: status.path.0.clone(),
        allowed_sources,
        trust_forwarded_for: status.trust_forwarded_for.unwrap_or(false),
    }))
}

/// Where the filter reaches a provider itself, when it names a cluster.
pub fn upstream(provider: &document::Provider, at: &str) -> Result<Option<Upstream>, ConfigError> {
    let Some(cluster) = &provider.cluster else {
        let set = [
            ("probe", provider.probe.is_some()),
            ("prefix_rewrite", provider.prefix_rewrite.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
            return Err(ConfigError::at(
                &join(at, key),
                "needs cluster: the Envoy cluster retries and probes are sent to".into(),
            ));
        }
        return Ok(None);
    };
    let prefix_rewrite = provider.prefix_rewrite.as_ref().map(|rewrite| {
        (
            rewrite.from.0.clone(),
            rewrite.to.clone().unwrap_or_default(),
        )
    });
    let probe = match &provider.probe {
        None => Probe {
            method: "GET".into(),
            path: "/v1/models".into(),
            body: None,
            expected: StatusSet(PROBE_STATUSES.to_vec()),
        },
        Some(probe) => {
            let probe_path = join(at, "probe");
            let path = probe.path.as_ref().map_or("/v1/models", Text::as_str);
            check_absolute(path, &join(&probe_path, "path"))?;
            let default_method = if probe.body.is_some() { "POST" } else { "GET" };
            let method = probe.method.as_ref().map_or(default_method, Text::as_str);
            if !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::at(
                    &join(&probe_path, "method"),
                    format!("{method:?} is not an HTTP method like GET or POST"),
                ));
            }
            Probe {
                method: method.to_string(),
                path: path.to_string(),
                body: probe.body.clone(),
                expected: statuses(
                    probe.expected_statuses.as_deref(),
                    &join(&probe_path, "expected_statuses"),
                    PROBE_STATUSES,
                )?,
            }
        }
    };
    Ok(Some(Upstream {
        cluster: cluster.0.clone(),
        prefix_rewrite,
        probe,
    }))
}

/// A provider's API-key pool. Errors never quote a token: it is a secret.
pub fn tokens(provider: &document::Provider, at: &str) -> Result<Option<TokenPool>, ConfigError> {
    let Some(secrets) = &provider.api_tokens else {
        if provider.token_header.is_some() {
            return Err(ConfigError::at(
                &join(at, "token_header"),
                "needs api_tokens".into(),
            ));
        }
        return Ok(None);
    };
    let path = join(at, "api_tokens");
    if secrets.0.is_empty() {
        return Err(ConfigError::at(
            &path,
            "must be a non-empty list of tokens, got a list".into(),
        ));
    }
    check_list_length(secrets.0.len(), &path)?;
    let mut tokens: Vec<ApiToken> = Vec::with_capacity(secrets.0.len());
    for (index, secret) in secrets.0.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let text = secret.0.as_str();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::at(
                &item_path,
                "must be a non-empty string of printable characters without spaces".into(),
            ));
        }
        let token = ApiToken::new(text);
        if tokens.iter().any(|t| t.fingerprint == token.fingerprint) {
            return Err(ConfigError::at(
                &item_path,
                format!("duplicate token {}", token.masked()),
            ));
        }
        tokens.push(token);
    }
    let header = provider
        .token_header
        .as_ref()
        .map_or("authorization", Text::as_str)
        .to_ascii_lowercase();
    if !is_header_token(&header) {
        return Err(ConfigError::at(
            &join(at, "token_header"),
            format!("{header:?} is not a valid header name"),
        ));
    }
    Ok(Some(TokenPool {
        bearer: header == "authorization",
        header,
        tokens,
    }))
}
