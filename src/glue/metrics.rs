//! Envoy counters and histograms, defined on first use (Envoy shows them as `wasmcustom.<name>`).
//!
//! Ids are kept by what they count, not by name: a request's counts and samples look their id
//! up without formatting a name (about a fifth of the filter's own work per request when each
//! one formatted and compared its full name); a name is formatted once, when first defined.

use log::warn;

use super::abi::{self, MetricKind};
use crate::flow::{Stat, Timing};

#[derive(Default)]
pub struct Metrics {
    /// The host's id of each counter defined so far (a few dozen: a scan is cheap, and keeps
    /// the module smaller than a map keyed by `Stat`).
    counters: Vec<(Stat, u32)>,
    /// The host's id of each histogram defined so far, by timing and provider.
    histograms: Vec<(Timing, String, u32)>,
}

impl Metrics {
    pub fn increment(&mut self, stat: Stat, by: u64) {
        let known = self.counters.iter().find(|(known, _)| *known == stat);
        let id = match known {
            Some((_, id)) => *id,
            None => {
                let Some(id) = define(MetricKind::Counter, &stat.name()) else {
                    return;
                };
                self.counters.push((stat.clone(), id));
                id
            }
        };
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        if let Err(err) = abi::increment_metric(id, by) {
            let name = stat.name();
            warn!("ai-load-balancer: cannot increment counter {name}: {err}");
        }
    }

    pub fn record(&mut self, timing: Timing, provider: &str, value: u64) {
        let known = self
            .histograms
            .iter()
            .find(|(known, name, _)| *known == timing && name == provider);
        let id = match known {
            Some((_, _, id)) => *id,
            None => {
                let Some(id) = define(MetricKind::Histogram, &timing.name(provider)) else {
                    return;
                };
                self.histograms.push((timing, provider.to_string(), id));
                id
            }
        };
        if let Err(err) = abi::record_metric(id, value) {
            let name = timing.name(provider);
            warn!("ai-load-balancer: cannot record histogram {name}: {err}");
        }
    }
}

/// Defines a metric; `None` (said once per attempt) when the host refuses.
fn define(kind: MetricKind, name: &str) -> Option<u32> {
    abi::define_metric(kind, name)
        .map_err(|err| warn!("ai-load-balancer: cannot define metric {name}: {err}"))
        .ok()
}
