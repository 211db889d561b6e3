//! Active health checks, wasm side: on the tick, the VM holding the probe lease in shared data
//! (taken or renewed with compare-and-swap, taken over once it expires) sends each probe due
//! from its root context; replies fold into the providers' shared health records.

use log::{debug, warn};

use super::abi;
use super::background::hold_lease;
use super::host::{dispatch_call, update_shared_data};
use crate::background::schedule::Schedule;
use crate::call::CallReply;
use crate::config::{PluginConfig, Provider};
use crate::flow::{report_health_change, Stat};
use crate::health::probe::{
    probe_request, probe_schedule, probe_targets, probes_due, prune, ProbeTarget, ProbesOut,
};
use crate::health::{ProviderHealth, PROBE_LEASE_KEY, REGISTRY_KEY};

pub struct Prober {
    me: u64,
    /// `None`: no configuration probes.
    schedule: Option<Schedule>,
    out: ProbesOut,
}

impl Prober {
    pub fn new(plugin: &PluginConfig, me: u64) -> Self {
        Self {
            me,
            schedule: probe_schedule(plugin),
            out: ProbesOut::default(),
        }
    }

    /// The interval probes run at, for the tick period.
    pub fn interval_ms(&self) -> Option<u64> {
        self.schedule.as_ref().map(Schedule::interval_ms)
    }

    /// Sends the probes due on the tick at `now_ms` (ticks coming every `tick_ms`), if this VM
    /// holds the lease; their replies go to the root context `owner`.
    pub fn on_tick(&mut self, plugin: &PluginConfig, now_ms: u64, tick_ms: u64, owner: u32) {
        let Some(schedule) = &mut self.schedule else {
            return;
        };
        self.out.forget_lost(schedule, now_ms);
        if !schedule.due(now_ms, tick_ms)
            || !hold_lease(PROBE_LEASE_KEY, self.me, now_ms, schedule.lease_ttl_ms())
        {
            return;
        }
        for (config, index, provider) in probe_targets(plugin) {
            let health = read_health(provider);
            for plan in probes_due(provider, &health, now_ms) {
                let target = ProbeTarget {
                    config,
                    provider: index,
                    judged_token: plan.judged_token(),
                };
                if self.out.is_out(&target) {
                    continue; // the last one has not come back yet
                }
                let Some(call) = probe_request(provider, &plan, schedule.timeout_ms()) else {
                    continue;
                };
                match dispatch_call(&call, owner) {
                    Ok(token) => self.out.sent(token, target, now_ms),
                    Err(why) => warn!(
                        "ai-load-balancer: probe of {} not sent: {why}",
                        provider.name
                    ),
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
        let Some(out) = self.out.replied(token) else {
            return false;
        };
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
