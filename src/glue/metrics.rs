//! Envoy counters and histograms, defined on first use (Envoy shows them as `wasmcustom.<name>`).

use std::collections::BTreeMap;

use log::warn;

use super::abi::{self, MetricKind};

#[derive(Default)]
pub struct Metrics {
    /// The host's id of each metric defined so far, by name.
    ids: BTreeMap<String, u32>,
}

impl Metrics {
    pub fn increment(&mut self, name: &str, by: u64) {
        let Some(id) = self.id(MetricKind::Counter, name) else {
            return;
        };
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        if let Err(err) = abi::increment_metric(id, by) {
            warn!("ai-load-balancer: cannot increment counter {name}: {err}");
        }
    }

    pub fn record(&mut self, name: &str, value: u64) {
        let Some(id) = self.id(MetricKind::Histogram, name) else {
            return;
        };
        if let Err(err) = abi::record_metric(id, value) {
            warn!("ai-load-balancer: cannot record histogram {name}: {err}");
        }
    }

    fn id(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        match abi::define_metric(kind, name) {
            Ok(id) => {
                self.ids.insert(name.to_string(), id);
                Some(id)
            }
            Err(err) => {
                warn!("ai-load-balancer: cannot define metric {name}: {err}");
                None
            }
        }
    }
}
