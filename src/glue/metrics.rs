//! Envoy counters, defined on first use (Envoy shows them as `wasmcustom.<name>`).

use log::warn;

use super::abi;

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
            None => match abi::define_counter(name) {
                Ok(id) => {
                    self.ids.push((name.to_string(), id));
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
