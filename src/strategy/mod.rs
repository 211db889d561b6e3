//! Balancing strategies: given one pool's backends as they are now, pick one for this request.
//!
//! The decisions only: the glue gathers each backend's weight, priority, health, load and
//! latency from configuration and shared data, and supplies the per-request inputs (a round
//! robin ticket, the prompt's prefix hash). Every strategy follows two rules:
//! - a backend marked unavailable is never picked while an available one remains; when none is
//!   available, all of them count as available (health has its own rules: never fail a request
//!   here);
//! - `pick` answers for every non-empty pool; a strategy whose inputs are all unknown falls back
//!   to a pick by weight and says so (`Reason::NothingKnown`).
//!
//! Two rules of the pool apply before its strategy: spillover narrows the candidates to one
//! tier (`tiers`), then a session key, when the request has one, walks the ring over them
//! (`affinity::pick`) instead of the strategy.

mod affinity;
pub(crate) mod draw;
pub mod latency;
mod score;
#[cfg(test)]
mod tests;
mod tiers;

pub use affinity::{Affinity, Ring, Session};
pub use score::{score, ScoreWeights};
pub use tiers::Spillover;

use crate::load::Load;
use crate::rng::Rng;

/// How a pool picks its backend.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Strategy {
    /// Lowest `Load::total()` among known loads, ties at random; no load known: by weight.
    #[default]
    LeastLoad,
    /// Probability proportional to weight; weight 0 never, unless every weight is 0 (uniform).
    WeightedRandom,
    /// Uniform.
    Random,
    /// Cycles through the available backends in pool order, driven by `Inputs::round_robin_ticket`.
    RoundRobin,
    /// Lowest priority number among the available; ties by weight.
    Failover,
    /// Lowest latency estimate; a backend without a fresh estimate is explored first.
    LeastLatency,
    /// The top-scoring share of the backends by cache ratio, running and queued requests.
    InferenceScore(ScoreWeights),
    /// Consistent hashing of the prompt's prefix with bounded load.
    PrefixAffinity(Affinity),
}

/// One backend of the pool as the strategy sees it now (in pool order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backend {
    pub weight: u32,
    /// Failover order: lower numbers are tried first.
    pub priority: u32,
    pub available: bool,
    /// `None`: unknown.
    pub load: Option<Load>,
    /// The latency estimate (see `latency::LatencyStats::estimate`); `None`: no fresh samples.
    pub latency_ms: Option<f64>,
    /// Spillover tier: lower tiers are tried first (read only with `Inputs::spillover`).
    pub tier: u32,
}

impl Backend {
    /// An available backend with this weight, priority 0, and nothing known about it.
    pub fn with_weight(weight: u32) -> Self {
        Self {
            weight,
            priority: 0,
            available: true,
            load: None,
            latency_ms: None,
            tier: 0,
        }
    }
}

/// Per-request inputs some strategies need, and the pool's rules that apply before its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Inputs {
    /// A shared counter the glue increments per request (round robin); `None`: a random start.
    pub round_robin_ticket: Option<u64>,
    /// The hash of the prompt's prefix (prefix affinity); `None`: behave as least load.
    pub prefix_hash: Option<u64>,
    /// The pool's spillover rule; `None`: every tier is one.
    pub spillover: Option<Spillover>,
    /// The request's session key, for a pool with session affinity; `None`: the strategy picks.
    pub session: Option<Session>,
}

/// The backend picked (an index into the pool) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The strategy decided.
    Strategy,
    /// The strategy's inputs were all unknown: the pick went by weight.
    NothingKnown,
    /// The session key decided: its owner on the ring, or (`moved`) another backend because
    /// the owner was out or over its bound.
    Session { moved: bool },
}

impl Pick {
    fn decided(index: Option<usize>) -> Option<Self> {
        index.map(|index| Self {
            index,
            reason: Reason::Strategy,
        })
    }
}

/// Picks one backend with `strategy`, within the tier spillover opens and by session key when
/// there is one; `None` only for an empty pool. `ring` is the pool's ring (prefix or session
/// affinity; without one, prefix affinity behaves as least load and a session key is ignored).
pub fn pick(
    strategy: &Strategy,
    backends: &[Backend],
    ring: Option<&Ring>,
    inputs: &Inputs,
    rng: &mut Rng,
) -> Option<Pick> {
    let mut candidates = Candidates::new(backends, None);
    if let Some(spillover) = &inputs.spillover {
        if let Some(tier) = tiers::open_tier(spillover, &candidates) {
            candidates = Candidates::new(backends, Some(tier));
        }
    }
    // One walk of the ring serves both affinities: a session key wins over the prompt's prefix.
    let walk = match (&inputs.session, strategy, inputs.prefix_hash) {
        (Some(session), ..) => Some((session.key_hash, session.load_factor, true)),
        (None, Strategy::PrefixAffinity(affinity), Some(prefix_hash)) => {
            Some((prefix_hash, affinity.load_factor, false))
        }
        _ => None,
    };
    if let (Some((hash, load_factor, session)), Some(ring)) = (walk, ring) {
        return affinity::pick(load_factor, ring, hash, session, &candidates, rng);
    }
    match strategy {
        Strategy::LeastLoad => least_load(&candidates, rng),
        Strategy::WeightedRandom => Pick::decided(weighted(&candidates, &|_| true, rng)),
        Strategy::Random => Pick::decided(draw::uniform(&candidates.indices(), rng)),
        Strategy::RoundRobin => round_robin(&candidates, inputs.round_robin_ticket, rng),
        Strategy::Failover => failover(&candidates, rng),
        Strategy::LeastLatency => least_latency(&candidates, rng),
        Strategy::InferenceScore(weights) => score::pick(weights, &candidates, rng),
        // Without a ring or a prefix hash.
        Strategy::PrefixAffinity(_) => least_load(&candidates, rng),
    }
}

/// The backends that may be picked: the available ones, or all of them when none is available;
/// with spillover, those of one tier.
struct Candidates<'a> {
    backends: &'a [Backend],
    any_available: bool,
    /// The tier spillover chose; `None`: every tier.
    tier: Option<u32>,
    /// The candidates with their pool index, in pool order.
    list: Vec<(usize, &'a Backend)>,
}

impl<'a> Candidates<'a> {
    /// The candidates among `backends`, in `tier` only if there is one.
    fn new(backends: &'a [Backend], tier: Option<u32>) -> Self {
        let any_available = backends.iter().any(|backend| backend.available);
        let list = backends
            .iter()
            .enumerate()
            .filter(|(_, backend)| {
                may_pick(backend, any_available) && tier.is_none_or(|tier| backend.tier == tier)
            })
            .collect();
        Self {
            backends,
            any_available,
            tier,
            list,
        }
    }

    /// Whether the backend at this pool index is in the tier picked from (available or not).
    fn in_tier(&self, index: usize) -> bool {
        self.backends
            .get(index)
            .is_some_and(|backend| self.tier.is_none_or(|tier| backend.tier == tier))
    }

    /// The backend at this pool index, if it may be picked.
    fn get(&self, index: usize) -> Option<&'a Backend> {
        self.backends
            .get(index)
            .filter(|backend| may_pick(backend, self.any_available) && self.in_tier(index))
    }

    fn indices(&self) -> Vec<usize> {
        self.list.iter().map(|(index, _)| *index).collect()
    }
}

fn may_pick(backend: &Backend, any_available: bool) -> bool {
    backend.available || !any_available
}

fn least_load(candidates: &Candidates, rng: &mut Rng) -> Option<Pick> {
    let known: Vec<_> = candidates
        .list
        .iter()
        .filter_map(|(index, backend)| Some((*index, backend.load?.total())))
        .collect();
    match draw::lowest(&known, rng) {
        Some(index) => Pick::decided(Some(index)),
        None => nothing_known(candidates, rng),
    }
}

/// The fallback of a strategy whose inputs are all unknown.
fn nothing_known(candidates: &Candidates, rng: &mut Rng) -> Option<Pick> {
    weighted(candidates, &|_| true, rng).map(|index| Pick {
        index,
        reason: Reason::NothingKnown,
    })
}

/// By weight among the candidates `keep` accepts; uniform among them when every weight is 0 (a
/// pool must still answer).
fn weighted(
    candidates: &Candidates,
    keep: &dyn Fn(&Backend) -> bool,
    rng: &mut Rng,
) -> Option<usize> {
    let weights: Vec<_> = candidates
        .list
        .iter()
        .filter(|(_, backend)| keep(backend))
        .map(|(index, backend)| (*index, backend.weight))
        .collect();
    draw::by_weight(&weights, rng).or_else(|| {
        let indices: Vec<_> = weights.iter().map(|(index, _)| *index).collect();
        draw::uniform(&indices, rng)
    })
}

fn round_robin(candidates: &Candidates, ticket: Option<u64>, rng: &mut Rng) -> Option<Pick> {
    let Some(ticket) = ticket else {
        return Pick::decided(draw::uniform(&candidates.indices(), rng));
    };
    let count = candidates.list.len() as u64;
    if count == 0 {
        return None;
    }
    Pick::decided(
        candidates
            .list
            .get((ticket % count) as usize)
            .map(|(index, _)| *index),
    )
}

fn failover(candidates: &Candidates, rng: &mut Rng) -> Option<Pick> {
    let first = candidates
        .list
        .iter()
        .map(|(_, backend)| backend.priority)
        .min()?;
    Pick::decided(weighted(
        candidates,
        &|backend| backend.priority == first,
        rng,
    ))
}

fn least_latency(candidates: &Candidates, rng: &mut Rng) -> Option<Pick> {
    let measured = |backend: &Backend| backend.latency_ms.filter(|latency| !latency.is_nan());
    // Exploring first is what refreshes an estimate that aged out.
    let (unmeasured, latencies): (Vec<_>, Vec<_>) = candidates
        .list
        .iter()
        .map(|(index, backend)| (*index, measured(backend)))
        .partition(|(_, ms)| ms.is_none());
    let unmeasured: Vec<usize> = unmeasured.into_iter().map(|(index, _)| index).collect();
    let latencies: Vec<(usize, f64)> = latencies
        .into_iter()
        .filter_map(|(index, ms)| Some((index, ms?)))
        .collect();
    if let Some(index) = draw::uniform(&unmeasured, rng) {
        return Pick::decided(Some(index));
    }
    Pick::decided(draw::lowest(&latencies, rng))
}
