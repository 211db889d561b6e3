//! Envoy counters, defined on first use (Envoy shows them as `wasmcustom.<name>`).

use std::collections::HashMap;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
}

impl Metrics {
    pub fn increment(&mut self, name: &str) {
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => match hostcalls::define_metric(MetricType::Counter, name) {
                Ok(id) => {
                    self.ids.insert(name.to_string(), id);
                    id
                }
                Err(status) => {
                    warn!("ai-load-balancer: cannot define counter {name}: {status:?}");
                    return;
                }
            },
        };
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            warn!("ai-load-balancer: cannot increment counter {name}: {status:?}");
        }
    }
}
