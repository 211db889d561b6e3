//! Envoy counters, defined on first use (Envoy shows them as `wasmcustom.<name>`).

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Default)]
pub struct Metrics {
    /// Counter name and host id. A handful of names: a Vec is smaller in wasm than a HashMap.
    ids: Vec<(String, u32)>,
}

impl Metrics {
    pub fn increment(&mut self, name: &str) {
        let known = self.ids.iter().find(|(known, _)| known == name);
        let id = match known {
            Some((_, id)) => *id,
            None => match hostcalls::define_metric(MetricType::Counter, name) {
                Ok(id) => {
                    self.ids.push((name.to_string(), id));
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
