//! Prefix affinity: requests whose prompts start alike go to the same backend, whose prefix (KV)
//! cache then already holds that prefix. Consistent hashing keeps the mapping stable when a
//! backend joins or leaves (only its share of prefixes moves); the bounded-load rule sends a
//! prefix on to the next backend on the ring while its own is well above the average.
//!
//! Session affinity walks the same ring with a session key's hash instead of the prompt's.

use super::{least_load, Candidates, Pick, Reason};
use crate::rng::Rng;

/// Points per backend on the ring: enough that each backend's share of the ring is within a
/// few percent of its fair share, few enough that a pool's ring stays a few kilobytes.
const VIRTUAL_NODES: u64 = 160;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affinity {
    /// How much of the prompt the prefix hash covers (the glue hashes it; the ring only walks).
    pub prefix_bytes: usize,
    /// Epsilon: a backend takes a request while its load stays within `1 + load_factor` times
    /// the average.
    pub load_factor: f64,
}

impl Default for Affinity {
    fn default() -> Self {
        Self {
            prefix_bytes: 1024,
            load_factor: 0.25,
        }
    }
}

/// A request's session key, for a pool with session affinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    /// FNV-1a 64 of the key's bytes (a header's value, or a body field's string as written).
    pub key_hash: u64,
    /// As `Affinity::load_factor`.
    pub load_factor: f64,
}

/// A pool's hash ring, built once per pool from stable backend identities (e.g.
/// "provider/model"), in pool order. The hash is fixed and seedless, so every VM and every
/// gateway replica builds the same ring and sends a prefix to the same backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// (point, pool index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub fn new<S: AsRef<str>>(ids: &[S]) -> Self {
        let mut points: Vec<(u64, usize)> = ids
            .iter()
            .enumerate()
            .flat_map(|(index, id)| {
                let id_hash = fnv1a(id.as_ref().as_bytes());
                (1..=VIRTUAL_NODES).map(move |node| {
                    let point = mix(id_hash.wrapping_add(node.wrapping_mul(GOLDEN_GAMMA)));
                    (point, index)
                })
            })
            .collect();
        points.sort_unstable();
        Self { points }
    }

    /// The first pool index `accept` takes, walking the ring clockwise from the prefix's
    /// position, once per point (so a backend recurs), wrapping around once.
    fn find(&self, prefix_hash: u64, accept: &dyn Fn(usize) -> bool) -> Option<usize> {
        // Mixed again so that a weak prefix hash still lands evenly on the ring.
        let position = mix(prefix_hash);
        let start = self.points.partition_point(|(point, _)| *point < position);
        let (behind, ahead) = self.points.split_at(start);
        ahead
            .iter()
            .chain(behind)
            .map(|(_, index)| *index)
            .find(|index| accept(*index))
    }
}

/// Walks the ring from the prefix (or session key) and takes the first candidate within the load
/// bound (an unknown load counts as within it); when every one is over, the least loaded. For a
/// `session`, the reason says whether the pick is the key's owner: the first backend of the
/// tier on the ring, whatever its state.
pub(super) fn pick(
    load_factor: f64,
    ring: &Ring,
    hash: u64,
    session: bool,
    candidates: &Candidates,
    rng: &mut Rng,
) -> Option<Pick> {
    let bound = load_bound(load_factor, candidates);
    let within_bound = |index: usize| {
        candidates.get(index).is_some_and(|backend| {
            backend
                .load
                .is_none_or(|load| bound.is_none_or(|bound| load.total() + 1.0 <= bound))
        })
    };
    let picked = match ring.find(hash, &within_bound) {
        Some(index) => Pick::decided(Some(index)),
        None => least_load(candidates, rng),
    }?;
    if !session {
        return Some(picked);
    }
    let owner = ring.find(hash, &|index| candidates.in_tier(index));
    Some(Pick {
        index: picked.index,
        reason: Reason::Session {
            moved: owner != Some(picked.index),
        },
    })
}

/// The classic bounded-load capacity, `ceil((1 + epsilon) * (sum of loads + 1) / n)`, over the
/// candidates whose load is known (`None` when none is). The `+ 1`s count the request being
/// placed; the ceiling keeps an idle pool sticky (without it, `1 <= 1.25 / n` fails for n > 1).
fn load_bound(load_factor: f64, candidates: &Candidates) -> Option<f64> {
    let totals: Vec<f64> = candidates
        .list
        .iter()
        .filter_map(|(_, backend)| backend.load.map(|load| load.total()))
        .filter(|total| !total.is_nan())
        .collect();
    let (count, sum) = (totals.len(), totals.iter().sum::<f64>());
    if count == 0 {
        return None;
    }
    let epsilon = load_factor.max(0.0);
    Some(((1.0 + epsilon) * (sum + 1.0) / count as f64).ceil())
}

/// FNV-1a, 64 bits: fixed and seedless.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's increment: consecutive virtual nodes of one id step by it.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: nearby inputs land far apart.
fn mix(value: u64) -> u64 {
    let value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}
