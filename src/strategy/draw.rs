//! The random draws every strategy is built from: the lowest value with ties broken at random,
//! a pick proportional to weight, and a uniform pick. Each takes `(index, value)` pairs (or
//! indices) and draws from the `Rng` exactly once (never when there is nothing to choose
//! between).

use crate::rng::Rng;

/// The index with the lowest value; among equal lowest values, a uniform random one. NaN values
/// never win. `None` when there are no values (or only NaN).
pub(crate) fn lowest(values: &[(usize, f64)], rng: &mut Rng) -> Option<usize> {
    let lowest = values
        .iter()
        .map(|(_, value)| *value)
        .filter(|value| !value.is_nan())
        .reduce(f64::min)?;
    let tied: Vec<usize> = values
        .iter()
        .filter(|(_, value)| *value == lowest)
        .map(|(index, _)| *index)
        .collect();
    uniform(&tied, rng)
}

/// An index with probability proportional to its weight; weight 0 is never drawn. `None` when
/// the weights add up to 0 (or there are none).
pub(crate) fn by_weight(weights: &[(usize, u32)], rng: &mut Rng) -> Option<usize> {
    let total: u64 = weights.iter().map(|(_, weight)| u64::from(*weight)).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.below(total);
    for (index, weight) in weights {
        let weight = u64::from(*weight);
        if ticket < weight {
            return Some(*index);
        }
        ticket -= weight;
    }
    None
}

/// A uniform random index among `indices`; `None` when there are none.
pub(crate) fn uniform(indices: &[usize], rng: &mut Rng) -> Option<usize> {
    if indices.is_empty() {
        return None;
    }
    indices
        .get(rng.below(indices.len() as u64) as usize)
        .copied()
}
