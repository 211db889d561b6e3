//! Active health checks, decided without the host: how often they run, which providers they
//! look at, which probes the lease holder sends on a tick (to providers that are out, with a
//! usable token; and with each token that is out), the request each one is, and which are
//! still out. The lease and the tick are `crate::background`'s; `src/glue/probe.rs` only makes
//! the host calls.

use super::tokens::ApiToken;
use super::ProviderHealth;
use crate::background::schedule::Schedule;
use crate::call::CallRequest;
use crate::config::{PluginConfig, ProbeSchedule, Provider};

/// When probes run: on the shortest interval any configuration asks for (the first among
/// equals), counting only configurations with a provider that has a cluster to probe.
pub fn probe_schedule(plugin: &PluginConfig) -> Option<Schedule> {
    let mut shortest: Option<ProbeSchedule> = None;
    for config in plugin.all() {
        let Some(probe) = config.health.probe else {
            continue;
        };
        if config.providers.iter().any(|p| p.upstream.is_some())
            && shortest.is_none_or(|chosen| probe.interval_ms < chosen.interval_ms)
        {
            shortest = Some(probe);
        }
    }
    shortest.map(|probe| Schedule::new(u64::from(probe.interval_ms), probe.timeout_ms))
}

/// The providers probes look at, with their (configuration, provider) indexes into
/// `plugin.all()`: those of configurations with probes on, a provider named in two
/// configurations once.
pub fn probe_targets(plugin: &PluginConfig) -> Vec<(usize, usize, &Provider)> {
    let mut seen: Vec<&str> = Vec::new();
    let mut targets = Vec::new();
    for (config_index, config) in plugin.all().enumerate() {
        if config.health.probe.is_none() {
            continue;
        }
        for (index, provider) in config.providers.iter().enumerate() {
            if !seen.contains(&provider.health_key.as_str()) {
                seen.push(&provider.health_key);
                targets.push((config_index, index, provider));
            }
        }
    }
    targets
}

/// What one probe judges: a provider (configuration and provider index), or one of its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget {
    pub config: usize,
    pub provider: usize,
    pub judged_token: Option<u64>,
}

/// The probes out, by the host's call token: one target is not probed twice at once.
#[derive(Debug, Default)]
pub struct ProbesOut {
    out: Vec<(u32, ProbeTarget, u64)>,
}

impl ProbesOut {
    pub fn is_out(&self, target: &ProbeTarget) -> bool {
        self.out.iter().any(|(_, out, _)| out == target)
    }

    pub fn sent(&mut self, token: u32, target: ProbeTarget, now_ms: u64) {
        self.out.push((token, target, now_ms));
    }

    /// The target of the probe `token` answers (`None`: not a probe's token).
    pub fn replied(&mut self, token: u32) -> Option<ProbeTarget> {
        let position = self.out.iter().position(|(sent, _, _)| *sent == token)?;
        Some(self.out.swap_remove(position).1)
    }

    /// Gives up on replies the host lost: they must not block probing their target for good.
    pub fn forget_lost(&mut self, schedule: &Schedule, now_ms: u64) {
        self.out
            .retain(|(_, _, sent_at_ms)| !schedule.reply_lost(*sent_at_ms, now_ms));
    }
}

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

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
