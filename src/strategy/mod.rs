//! Placeholder types (the helper's module replaces this file).
use crate::load::Load;
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    LeastLoad,
    WeightedRandom,
    Random,
    RoundRobin,
    Failover,
    LeastLatency,
    InferenceScore(ScoreWeights),
    PrefixAffinity(Affinity),
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    pub cache_ratio: f64,
    pub request_load: f64,
    pub prefill_load: f64,
    pub candidate_percent: u32,
}
impl Default for ScoreWeights {
    fn default() -> Self {
        Self { cache_ratio: 2.0, request_load: 1.0, prefill_load: 3.0, candidate_percent: 10 }
    }
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affinity {
    pub prefix_bytes: usize,
    pub load_factor: f64,
}
impl Default for Affinity {
    fn default() -> Self {
        Self { prefix_bytes: 1024, load_factor: 0.25 }
    }
}
#[derive(Debug, Clone, Default)]
pub struct Backend {
    pub weight: u32,
    pub priority: u32,
    pub available: bool,
    pub load: Option<Load>,
    pub latency_ms: Option<f64>,
}
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub round_robin_ticket: Option<u64>,
    pub prefix_hash: Option<u64>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Strategy,
    NothingKnown,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    pub reason: Reason,
}
#[derive(Debug, Clone, PartialEq)]
pub struct Ring;
impl Ring {
    pub fn new(_ids: &[&str]) -> Self {
        Ring
    }
}
pub fn pick(
    _strategy: &Strategy,
    backends: &[Backend],
    _ring: Option<&Ring>,
    _inputs: &Inputs,
    _rng: &mut Rng,
) -> Option<Pick> {
    (!backends.is_empty()).then_some(Pick { index: 0, reason: Reason::Strategy })
}
pub mod latency {
    pub const DEFAULT_ALPHA: f64 = 0.3;
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct LatencyStats {
        pub ttfb_ms: Option<f64>,
        pub total_ms: Option<f64>,
        pub updated_at_ms: u64,
        pub samples: u32,
    }
    impl LatencyStats {
        pub fn record(&mut self, ttfb_ms: Option<f64>, total_ms: Option<f64>, now_ms: u64, _alpha: f64) {
            self.ttfb_ms = ttfb_ms.or(self.ttfb_ms);
            self.total_ms = total_ms.or(self.total_ms);
            self.updated_at_ms = now_ms;
            self.samples += 1;
        }
        pub fn estimate(&self, streaming: bool, now_ms: u64, max_age_ms: u64) -> Option<f64> {
            if now_ms.saturating_sub(self.updated_at_ms) > max_age_ms { return None; }
            if streaming { self.ttfb_ms } else { self.total_ms.or(self.ttfb_ms) }
        }
        pub fn encode(&self) -> Vec<u8> { Vec::new() }
        pub fn decode(_bytes: &[u8]) -> Result<Self, String> { Err("stub".into()) }
    }
}
