//! Choosing a provider: the lowest known load wins, ties broken at random; when no load is
//! known (or the store failed) the pick goes by weight. The draws themselves are shared with
//! the pool strategies (`crate::strategy`).

use crate::rng::Rng;
use crate::strategy::draw;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    LeastLoad,
    /// The store failed, timed out or answered something unreadable.
    StoreError,
    /// The store answered but no provider had a usable load.
    AllUnknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub index: usize,
    pub reason: Reason,
}

/// `loads` is `None` when the store could not be read. `weights` has one entry per provider
/// and at least one above zero (configuration guarantees it).
pub fn choose(loads: Option<&[Option<f64>]>, weights: &[u32], rng: &mut Rng) -> Choice {
    if let Some(loads) = loads {
        if let Some(index) = least_load(loads, rng) {
            return Choice {
                index,
                reason: Reason::LeastLoad,
            };
        }
    }
    let reason = if loads.is_some() {
        Reason::AllUnknown
    } else {
        Reason::StoreError
    };
    Choice {
        index: by_weight(weights, rng),
        reason,
    }
}

/// The index of the lowest known load; among equal lowest loads, a uniform random one.
pub fn least_load(loads: &[Option<f64>], rng: &mut Rng) -> Option<usize> {
    let mut known = Vec::new();
    for (index, load) in loads.iter().enumerate() {
        if let Some(load) = load {
            known.push((index, *load));
        }
    }
    draw::lowest(&known, rng)
}

/// A random index with probability proportional to its weight.
pub fn by_weight(weights: &[u32], rng: &mut Rng) -> usize {
    let mut indexed = Vec::with_capacity(weights.len());
    for (index, weight) in weights.iter().enumerate() {
        indexed.push((index, *weight));
    }
    draw::by_weight(&indexed, rng).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(runs: usize, mut pick: impl FnMut(&mut Rng) -> usize, n: usize) -> Vec<usize> {
        let mut rng = Rng::new(0x5eed);
        let mut seen = vec![0; n];
        for _ in 0..runs {
            seen[pick(&mut rng)] += 1;
        }
        seen
    }

    #[test]
    fn lowest_known_load_wins() {
        let loads = [Some(90.0), Some(10.0), Some(50.0)];
        let seen = counts(1000, |rng| choose(Some(&loads), &[1, 1, 1], rng).index, 3);
        assert_eq!(seen, vec![0, 1000, 0]);
        let choice = choose(Some(&loads), &[1, 1, 1], &mut Rng::new(1));
        assert_eq!(choice.reason, Reason::LeastLoad);
    }

    #[test]
    fn ties_are_broken_evenly_at_random() {
        let loads = [Some(5.0), Some(9.0), Some(5.0), Some(5.0)];
        let seen = counts(9000, |rng| least_load(&loads, rng).unwrap(), 4);
        assert_eq!(seen[1], 0);
        for index in [0, 2, 3] {
            assert!((2700..3300).contains(&seen[index]), "{seen:?}");
        }
    }

    #[test]
    fn unknown_is_never_preferred_over_known() {
        // A known high load beats unknown ones, whatever the weights say.
        let loads = [None, Some(1e9), None];
        let seen = counts(
            1000,
            |rng| choose(Some(&loads), &[100, 1, 100], rng).index,
            3,
        );
        assert_eq!(seen, vec![0, 1000, 0]);
        let zero = [None, Some(0.0)];
        assert_eq!(least_load(&zero, &mut Rng::new(3)), Some(1));
    }

    #[test]
    fn all_unknown_falls_back_to_weights() {
        let loads = [None, None];
        let choice = choose(Some(&loads), &[3, 1], &mut Rng::new(9));
        assert_eq!(choice.reason, Reason::AllUnknown);
        let seen = counts(40_000, |rng| choose(Some(&loads), &[3, 1], rng).index, 2);
        let share = seen[0] as f64 / 40_000.0;
        assert!((0.73..0.77).contains(&share), "{seen:?}");
    }

    #[test]
    fn store_failure_falls_back_to_weights_and_skips_zero_weights() {
        let choice = choose(None, &[1, 1], &mut Rng::new(9));
        assert_eq!(choice.reason, Reason::StoreError);
        let seen = counts(10_000, |rng| choose(None, &[0, 2, 0, 2], rng).index, 4);
        assert_eq!((seen[0], seen[2]), (0, 0));
        assert!((4700..5300).contains(&seen[1]), "{seen:?}");
    }

    #[test]
    fn single_provider_always_wins() {
        assert_eq!(choose(None, &[1], &mut Rng::new(1)).index, 0);
        assert_eq!(choose(Some(&[None]), &[1], &mut Rng::new(1)).index, 0);
        assert_eq!(choose(Some(&[Some(3.0)]), &[1], &mut Rng::new(1)).index, 0);
    }
}
