//! Envoy counters, defined on first use (Envoy shows them as `wasmcustom.<name>`).

use std::collections::BTreeMap;

use log::warn;

use super::abi;

#[derive(Default)]
pub struct Metrics {
    /// The host's id of each counter defined so far, by name.
    ids: BTreeMap<String, u32>,
}

impl Metrics {
    pub fn increment(&mut self, name: &str) {
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => match abi::define_counter(name) {
                Ok(id) => {
                    self.ids.insert(name.to_string(), id);
                    id
                }
                Err(err) => {
                    warn!("ai-load-balancer: cannot define counter {name}: {err}");
                    return;
                }
            },
        };
        if let Err(err) = abi::increment_metric(id, 1) {
            warn!("ai-load-balancer: cannot increment counter {name}: {err}");
        }
    }
}
