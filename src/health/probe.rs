//! Active health checks, decided without the host: which probes the lease holder sends on a
//! tick (to providers that are out, with a usable token; and with each token that is out),
//! and the request each one is.

use super::tokens::ApiToken;
use super::ProviderHealth;
use crate::call::CallRequest;
use crate::config::Provider;

/// One probe: of the provider itself (`judges_token` false) or of one of its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    pub token: Option<ApiToken>,
    /// The result counts for `token`, not for the provider.
    pub judges_token: bool,
}

impl ProbePlan {
    /// The fingerprint of the token the result counts for, if it judges one.
    pub fn judged_token(&self) -> Option<u64> {
        self.token
            .as_ref()
            .filter(|_| self.judges_token)
            .map(|token| token.fingerprint)
    }
}

/// The probes `provider` needs now, given its record. A provider without a cluster cannot be
/// probed; a healthy one with all its tokens usable needs none (live traffic judges it).
pub fn probes_due(provider: &Provider, health: &ProviderHealth, now_ms: u64) -> Vec<ProbePlan> {
    if provider.upstream.is_none() || !health.needs_probe(now_ms) {
        return Vec::new();
    }
    let tokens: &[ApiToken] = provider.tokens.as_ref().map_or(&[], |pool| &pool.tokens);
    let mut plans = Vec::new();
    if health.state != super::State::Healthy {
        let usable = tokens
            .iter()
            .find(|t| health.token_usable(t.fingerprint, now_ms))
            .or(tokens.first());
        plans.push(ProbePlan {
            token: usable.cloned(),
            judges_token: false,
        });
    }
    for token in tokens {
        if !health.token_usable(token.fingerprint, now_ms) {
            plans.push(ProbePlan {
                token: Some(token.clone()),
                judges_token: true,
            });
        }
    }
    plans
}

/// The probe as a call to the provider's cluster; `None` for a provider without one.
pub fn probe_request(
    provider: &Provider,
    plan: &ProbePlan,
    timeout_ms: u32,
) -> Option<CallRequest> {
    let upstream = provider.upstream.as_ref()?;
    let probe = &upstream.probe;
    let mut headers = vec![
        (":method".to_string(), probe.method.clone()),
        (":path".to_string(), probe.path.clone()),
        (":authority".to_string(), upstream.cluster.clone()),
        (
            "user-agent".to_string(),
            "ai-load-balancer-probe".to_string(),
        ),
    ];
    if probe.body.is_some() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
    }
    if let (Some(token), Some(pool)) = (&plan.token, &provider.tokens) {
        headers.push((pool.header.clone(), pool.header_value(token)));
    }
    Some(CallRequest {
        cluster: upstream.cluster.clone(),
        headers,
        body: probe.body.as_ref().map(|body| body.clone().into_bytes()),
        timeout_ms,
    })
}

/// Health records of providers no configuration names any more: the registry after a reload,
/// and the keys to clear.
pub fn prune(registry: Option<&[u8]>, configured: &[&str]) -> (Vec<u8>, Vec<String>) {
    let listed = registry
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or_default();
    let mut removed = Vec::new();
    for name in listed.split('\n') {
        if !name.is_empty() && !configured.contains(&name) {
            removed.push(super::health_key(name));
        }
    }
    (configured.join("\n").into_bytes(), removed)
}
