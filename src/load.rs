//! What the filter knows about one provider's load, from whichever source supplies it: a Redis
//! key or hash, an HTTP JSON endpoint, an engine's Prometheus `/metrics`, or its own in-flight
//! count. Strategies read only this type, so every source feeds every strategy.

/// One provider's load as last read. Figures a source does not supply are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Load {
    /// Requests being served now (a Redis key's single figure lands here).
    pub running: f64,
    /// Requests queued: waiting for a slot or for prefill.
    pub waiting: Option<f64>,
    /// Share of prompt tokens served from the prefix (KV) cache, 0 to 1.
    pub cache_ratio: Option<f64>,
    /// Share of the KV cache in use, 0 to 1.
    pub kv_usage: Option<f64>,
}

impl Load {
    /// A source that gives one figure per provider (today's Redis key).
    pub fn running(running: f64) -> Self {
        Self {
            running,
            ..Self::default()
        }
    }

    /// A load known only as a count of requests (in-flight counting).
    pub fn count(requests: u64) -> Self {
        Self::running(requests as f64)
    }

    /// The figure `least_load` compares: running plus queued requests.
    pub fn total(&self) -> f64 {
        self.running + self.waiting.unwrap_or(0.0)
    }
}

/// A load per provider, in configuration order; `None` is unknown.
pub type Loads = Vec<Option<Load>>;
