//! The inference score (seed 001): prefer backends whose prefix cache serves more of the prompt
//! and that have fewer running and queued requests, then spread among the best few so that
//! replicas reading the same loads do not all pile onto one backend.

use super::{draw, nothing_known, Candidates, Pick};
use crate::load::Load;
use crate::rng::Rng;

/// The score's weights, and the share of the best-scoring backends a pick is drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// W1, for the prefix cache hit ratio (0 to 1).
    pub cache_ratio: f64,
    /// W2, for the normalised running requests.
    pub request_load: f64,
    /// W3, for the normalised queued (prefill) requests.
    pub prefill_load: f64,
    /// 1 to 100: the pick is uniform among the top `ceil(n * candidate_percent / 100)`.
    pub candidate_percent: u32,
}

impl Default for ScoreWeights {
    /// Seed 001's defaults: a queue is avoided first (W3 = 3), then cache hits are sought.
    fn default() -> Self {
        Self {
            cache_ratio: 2.0,
            request_load: 1.0,
            prefill_load: 3.0,
            candidate_percent: 10,
        }
    }
}

/// `W1 * cache_ratio - W2 * running / max_running - W3 * waiting / max_waiting`, where the maxima
/// are taken over the candidates with known loads; a maximum of 0 makes its term 0, and an
/// unknown cache ratio or queue counts as 0.
pub fn score(weights: &ScoreWeights, load: &Load, max_running: f64, max_waiting: f64) -> f64 {
    let normalised = |value: f64, max: f64| if max > 0.0 { value / max } else { 0.0 };
    weights.cache_ratio * load.cache_ratio.unwrap_or(0.0)
        - weights.request_load * normalised(load.running, max_running)
        - weights.prefill_load * normalised(load.waiting.unwrap_or(0.0), max_waiting)
}

/// How many of `candidates` backends the pick is drawn from: at least 1, at most all.
fn kept(candidates: usize, candidate_percent: u32) -> usize {
    let percent = candidate_percent.min(100) as usize;
    (candidates * percent)
        .div_ceil(100)
        .clamp(1, candidates.max(1))
}

pub(super) fn pick(weights: &ScoreWeights, candidates: &Candidates, rng: &mut Rng) -> Option<Pick> {
    let known: Vec<(usize, Load)> = candidates
        .list
        .iter()
        .filter_map(|(index, backend)| Some((*index, backend.load?)))
        .collect();
    if known.is_empty() {
        return nothing_known(candidates, rng);
    }
    let max_running = known
        .iter()
        .map(|(_, load)| load.running)
        .fold(0.0, f64::max);
    let max_waiting = known
        .iter()
        .map(|(_, load)| load.waiting.unwrap_or(0.0))
        .fold(0.0, f64::max);
    let mut ranked: Vec<(f64, usize)> = known
        .iter()
        .map(|(index, load)| {
            let value = score(weights, load, max_running, max_waiting);
            // A garbled load must not win; `+ 0.0` makes -0.0 the 0.0 that `total_cmp` ties.
            let value = if value.is_nan() {
                f64::NEG_INFINITY
            } else {
                value + 0.0
            };
            (value, *index)
        })
        .collect();
    // Best first; equal scores in pool order.
    ranked.sort_by(|(a, a_index), (b, b_index)| b.total_cmp(a).then(a_index.cmp(b_index)));
    let keep = kept(ranked.len(), weights.candidate_percent);
    let (drawn, _) = *ranked.get(rng.below(keep as u64) as usize)?;
    // Equal scores straddling the cut are broken at random: drawing a position, then any
    // backend with that position's score, gives each kept position the same chance.
    let tied: Vec<usize> = ranked
        .iter()
        .filter(|(value, _)| *value == drawn)
        .map(|(_, index)| *index)
        .collect();
    Pick::decided(draw::uniform(&tied, rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_share_rounds_up_and_keeps_at_least_one() {
        assert_eq!(kept(10, 10), 1);
        assert_eq!(kept(11, 10), 2);
        assert_eq!(kept(3, 10), 1);
        assert_eq!(kept(4, 50), 2);
        assert_eq!(kept(4, 100), 4);
        assert_eq!(kept(4, 0), 1);
        assert_eq!(kept(4, 500), 4);
    }
}
