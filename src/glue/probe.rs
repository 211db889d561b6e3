//! Active health checks, wasm side: on the tick, the VM holding the probe lease in shared data
//! (taken or renewed with compare-and-swap, taken over once it expires) sends each probe due
//! from its root context; replies fold into the providers' shared health records.

use std::time::Duration;

use log::{debug, warn};

use super::abi;
use super::background::hold_lease;
use super::host::{dispatch_call, update_shared_data};
use crate::call::CallReply;
use crate::config::{PluginConfig, ProbeSchedule, Provider};
use crate::flow::{report_health_change, Stat};
use crate::health::probe::{probe_request, probes_due, prune};
use crate::health::{ProviderHealth, PROBE_LEASE_KEY, REGISTRY_KEY};

/// A lease outlives this many probe intervals (plus a probe's timeout).
const LEASE_INTERVALS: u64 = 3;

/// A probe out: the provider (configuration and index) and the token it judges.
struct Out {
    token: u32,
    config: usize,
    provider: usize,
    judged_token: Option<u64>,
    sent_at_ms: u64,
}

pub struct Prober {
    me: u64,
    schedule: Option<ProbeSchedule>,
    next_due_ms: u64,
    out: Vec<Out>,
}

impl Prober {
    /// Probes run when some configuration enables them and has a provider with a cluster.
    pub fn new(plugin: &PluginConfig, me: u64) -> Self {
        // The shortest interval (the first, among equals).
        let mut schedule: Option<ProbeSchedule> = None;
        for config in plugin.all() {
            let Some(probe) = config.health.probe else {
                continue;
            };
            if config.providers.iter().any(|p| p.upstream.is_some())
                && schedule.is_none_or(|shortest| probe.interval_ms < shortest.interval_ms)
            {
                schedule = Some(probe);
            }
        }
        Self {
            me,
            schedule,
            next_due_ms: 0,
            out: Vec::new(),
        }
    }

    pub fn tick_period(&self) -> Option<Duration> {
        self.schedule
            .map(|schedule| Duration::from_millis(u64::from(schedule.interval_ms)))
    }

    /// Sends the probes due, if this VM holds the lease; their replies go to the root context
    /// `owner`.
    pub fn on_tick(&mut self, plugin: &PluginConfig, now_ms: u64, owner: u32) {
        let Some(schedule) = self.schedule else {
            return;
        };
        let interval_ms = u64::from(schedule.interval_ms);
        // A reply the host lost must not block probing for good.
        self.out
            .retain(|out| now_ms < out.sent_at_ms + u64::from(schedule.timeout_ms) + interval_ms);
        if now_ms < self.next_due_ms {
            return;
        }
        self.next_due_ms = now_ms + interval_ms;
        let ttl_ms = interval_ms * LEASE_INTERVALS + u64::from(schedule.timeout_ms);
        if !hold_lease(PROBE_LEASE_KEY, self.me, now_ms, ttl_ms) {
            return;
        }
        let mut probed: Vec<&str> = Vec::new();
        for (config_index, config) in plugin.all().enumerate() {
            if config.health.probe.is_none() {
                continue;
            }
            for (index, provider) in config.providers.iter().enumerate() {
                // A provider named in two configurations is one provider: probe it once.
                if probed.contains(&provider.health_key.as_str()) {
                    continue;
                }
                probed.push(&provider.health_key);
                let health = read_health(provider);
                for plan in probes_due(provider, &health, now_ms) {
                    let judged_token = plan.judged_token();
                    if self.out.iter().any(|out| {
                        out.config == config_index
                            && out.provider == index
                            && out.judged_token == judged_token
                    }) {
                        continue; // the last one has not come back yet
                    }
                    let Some(call) = probe_request(provider, &plan, schedule.timeout_ms) else {
                        continue;
                    };
                    match dispatch_call(&call, owner) {
                        Ok(token) => self.out.push(Out {
                            token,
                            config: config_index,
                            provider: index,
                            judged_token,
                            sent_at_ms: now_ms,
                        }),
                        Err(why) => warn!(
                            "ai-load-balancer: probe of {} not sent: {why}",
                            provider.name
                        ),
                    }
                }
            }
        }
    }

    /// Folds a probe's reply in; false when `token` is not a probe's.
    pub fn on_reply(
        &mut self,
        plugin: &PluginConfig,
        token: u32,
        reply: &CallReply,
        now_ms: u64,
        count: &mut dyn FnMut(Stat),
    ) -> bool {
        let Some(position) = self.out.iter().position(|out| out.token == token) else {
            return false;
        };
        let out = self.out.swap_remove(position);
        let Some(config) = plugin.all().nth(out.config) else {
            return true;
        };
        let Some(provider) = config.providers.get(out.provider) else {
            return true;
        };
        let ok = match (&provider.upstream, reply.status) {
            (Some(upstream), Some(status)) => upstream.probe.expected.contains(status),
            _ => false,
        };
        count(if ok { Stat::ProbeOk } else { Stat::ProbeFailed });
        debug!(
            "ai-load-balancer: probe of {} answered {:?}",
            provider.name, reply.status
        );
        let rules = config.health.rules(true);
        let change = update_health(provider, |record| {
            record.record_probe(ok, out.judged_token, now_ms, &rules)
        });
        if let Some(change) = change {
            report_health_change(count, provider, change, out.judged_token, now_ms);
        }
        true
    }
}

fn read_health(provider: &Provider) -> ProviderHealth {
    let current = abi::shared_data(&provider.health_key)
        .ok()
        .and_then(|(bytes, _)| bytes);
    ProviderHealth::read(current.as_deref())
}

/// Applies `change` to a provider's shared record (under compare-and-swap, as requests do).
fn update_health<T>(
    provider: &Provider,
    mut change: impl FnMut(&mut ProviderHealth) -> Option<T>,
) -> Option<T> {
    let mut outcome = None;
    let written = update_shared_data(&provider.health_key, &mut |current| {
        let mut record = ProviderHealth::read(current);
        let before = record.clone();
        outcome = change(&mut record);
        (record != before).then(|| record.encode())
    });
    outcome.filter(|_| written)
}

/// On a new configuration: forget the health of providers it no longer names (the others keep
/// theirs: a reload neither ejects nor restores anyone).
pub fn prune_removed_providers(plugin: &PluginConfig) {
    // Sorted and deduplicated by insertion: a slice sort of `&str` would cost 4 KB of module
    // for a list of a few names.
    let mut names: Vec<&str> = Vec::new();
    for config in plugin.all() {
        for provider in &config.providers {
            if let Err(position) = names.binary_search(&provider.name.as_str()) {
                names.insert(position, &provider.name);
            }
        }
    }
    let (registry, cas) = abi::shared_data(REGISTRY_KEY).unwrap_or((None, 0));
    let (new_registry, removed) = prune(registry.as_deref(), &names);
    for key in removed {
        // Shared data cannot be deleted through this ABI: an empty record reads as healthy.
        if let Err(err) = abi::set_shared_data(&key, &[], 0) {
            warn!("ai-load-balancer: clearing {key}: {err}");
        }
    }
    if registry.as_deref() != Some(new_registry.as_slice()) {
        if let Err(err) = abi::set_shared_data(REGISTRY_KEY, &new_registry, cas) {
            debug!("ai-load-balancer: health registry not updated: {err}");
        }
    }
}
