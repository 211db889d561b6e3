//! The random draws every strategy is built from: the lowest value with ties broken at random,
//! a pick proportional to weight, and a uniform pick. Each takes `(index, value)` pairs as a
//! cloneable iterator, so callers filter the pool without allocating, and each draws from the
//! `Rng` exactly once (never when there is nothing to choose between).

use crate::rng::Rng;

/// The index with the lowest value; among equal lowest values, a uniform random one. NaN values
/// never win. `None` when there are no values (or only NaN).
pub(crate) fn lowest<I>(values: I, rng: &mut Rng) -> Option<usize>
where
    I: Iterator<Item = (usize, f64)> + Clone,
{
    let numbers = values.filter(|(_, value)| !value.is_nan());
    let lowest = numbers.clone().map(|(_, value)| value).reduce(f64::min)?;
    uniform(
        numbers
            .filter(move |(_, value)| *value == lowest)
            .map(|(index, _)| index),
        rng,
    )
}

/// An index with probability proportional to its weight; weight 0 is never drawn. `None` when
/// the weights add up to 0 (or there are none).
pub(crate) fn by_weight<I>(weights: I, rng: &mut Rng) -> Option<usize>
where
    I: Iterator<Item = (usize, u32)> + Clone,
{
    let total: u64 = weights.clone().map(|(_, weight)| u64::from(weight)).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.below(total);
    for (index, weight) in weights {
        let weight = u64::from(weight);
        if ticket < weight {
            return Some(index);
        }
        ticket -= weight;
    }
    None
}

/// A uniform random index among `indices`; `None` when there are none.
pub(crate) fn uniform<I>(mut indices: I, rng: &mut Rng) -> Option<usize>
where
    I: Iterator<Item = usize> + Clone,
{
    let count = indices.clone().count();
    if count == 0 {
        return None;
    }
    indices.nth(rng.below(count as u64) as usize)
}
