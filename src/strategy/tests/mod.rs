//! The strategies as a user sees them: which backend each request goes to, over many requests.

mod affinity;
mod score;
mod session;
mod tiers;

use super::*;

pub(super) const DRAWS: usize = 40_000;

/// How many of `draws` picks went to each backend (fixed seed: the counts never change).
/// How often each backend is picked over `DRAWS` draws, with no ring and no inputs.
pub(super) fn draws(strategy: &Strategy, backends: &[Backend]) -> Vec<usize> {
    counts(strategy, backends, None, &Inputs::default(), DRAWS)
}

pub(super) fn counts(
    strategy: &Strategy,
    backends: &[Backend],
    ring: Option<&Ring>,
    inputs: &Inputs,
    draws: usize,
) -> Vec<usize> {
    let mut rng = Rng::new(0x5eed);
    let mut seen = vec![0; backends.len()];
    for _ in 0..draws {
        let pick = pick(strategy, backends, ring, inputs, &mut rng).unwrap();
        seen[pick.index] += 1;
    }
    seen
}

/// Each backend's share of the picks, in percent.
pub(super) fn shares(seen: &[usize]) -> Vec<f64> {
    let total: usize = seen.iter().sum();
    seen.iter()
        .map(|&count| 100.0 * count as f64 / total as f64)
        .collect()
}

pub(super) fn assert_share(seen: &[usize], index: usize, percent: f64, tolerance: f64) {
    let share = shares(seen)[index];
    assert!(
        (share - percent).abs() <= tolerance,
        "backend {index} got {share:.2}%, expected {percent}% ± {tolerance}: {seen:?}"
    );
}

pub(super) fn weights(weights: &[u32]) -> Vec<Backend> {
    weights
        .iter()
        .map(|&weight| Backend::with_weight(weight))
        .collect()
}

pub(super) fn with_loads(loads: &[Option<f64>]) -> Vec<Backend> {
    loads
        .iter()
        .map(|load| Backend {
            load: load.map(Load::running),
            ..Backend::with_weight(1)
        })
        .collect()
}

fn unavailable(mut backends: Vec<Backend>, indices: &[usize]) -> Vec<Backend> {
    for &index in indices {
        backends[index].available = false;
    }
    backends
}

fn pick_once(strategy: &Strategy, backends: &[Backend], inputs: &Inputs) -> Option<Pick> {
    pick(strategy, backends, None, inputs, &mut Rng::new(1))
}

const EVERY_STRATEGY: [Strategy; 8] = [
    Strategy::LeastLoad,
    Strategy::WeightedRandom,
    Strategy::Random,
    Strategy::RoundRobin,
    Strategy::Failover,
    Strategy::LeastLatency,
    Strategy::InferenceScore(ScoreWeights {
        cache_ratio: 2.0,
        request_load: 1.0,
        prefill_load: 3.0,
        candidate_percent: 10,
    }),
    Strategy::PrefixAffinity(Affinity {
        prefix_bytes: 1024,
        load_factor: 0.25,
    }),
];

#[test]
fn an_empty_pool_has_no_pick_and_any_other_pool_always_has_one() {
    let ring = Ring::new(&["a/m", "b/m", "c/m"]);
    let inputs = Inputs {
        round_robin_ticket: Some(7),
        prefix_hash: Some(42),
        ..Inputs::default()
    };
    for strategy in &EVERY_STRATEGY {
        assert_eq!(
            pick(strategy, &[], Some(&ring), &inputs, &mut Rng::new(1)),
            None
        );
        let pools = [
            weights(&[1, 1, 1]),
            weights(&[0, 0, 0]),
            unavailable(weights(&[1, 1, 1]), &[0, 1, 2]),
            with_loads(&[Some(3.0), None, Some(1.0)]),
        ];
        for pool in &pools {
            for ring in [None, Some(&ring)] {
                let picked = pick(strategy, pool, ring, &inputs, &mut Rng::new(1));
                assert!(picked.is_some_and(|p| p.index < 3), "{strategy:?} {pool:?}");
            }
        }
    }
}

#[test]
fn an_unavailable_backend_is_never_picked_while_another_is_available() {
    // Backends 0 and 2 are unavailable and, by every strategy's measure, the most attractive:
    // idle, fastest or unmeasured, first in priority, heaviest.
    let mut pool = with_loads(&[Some(0.0), Some(5.0), None, Some(9.0)]);
    for (backend, latency_ms) in pool
        .iter_mut()
        .zip([Some(1.0), Some(90.0), None, Some(80.0)])
    {
        backend.latency_ms = latency_ms;
        backend.priority = 1;
    }
    pool[0].priority = 0;
    pool[0].weight = 1000;
    let pool = unavailable(pool, &[0, 2]);
    let ring = Ring::new(&["a", "b", "c", "d"]);
    for strategy in &EVERY_STRATEGY {
        for ticket in 0..50 {
            let inputs = Inputs {
                round_robin_ticket: Some(ticket),
                prefix_hash: Some(ticket.wrapping_mul(0x9e37_79b9)),
                ..Inputs::default()
            };
            let seen = counts(strategy, &pool, Some(&ring), &inputs, 20);
            assert_eq!((seen[0], seen[2]), (0, 0), "{strategy:?}: {seen:?}");
        }
    }
}

#[test]
fn when_nothing_is_available_everything_counts_as_available() {
    let pool = unavailable(weights(&[1, 1, 1]), &[0, 1, 2]);
    let seen = counts(&Strategy::Random, &pool, None, &Inputs::default(), 3000);
    assert!(seen.iter().all(|&count| count > 900), "{seen:?}");
}

#[test]
fn a_garbled_figure_never_wins() {
    let mut pool = with_loads(&[Some(f64::NAN), Some(7.0)]);
    pool[0].latency_ms = Some(f64::NAN);
    pool[1].latency_ms = Some(300.0);
    for strategy in [&EVERY_STRATEGY[0], &EVERY_STRATEGY[6]] {
        let seen = counts(strategy, &pool, None, &Inputs::default(), 100);
        assert_eq!(seen, vec![0, 100], "{strategy:?}");
    }
    // A latency that is not a number is no estimate: the backend is explored.
    let seen = counts(
        &Strategy::LeastLatency,
        &pool,
        None,
        &Inputs::default(),
        100,
    );
    assert_eq!(seen, vec![100, 0]);
}

#[test]
fn least_load_picks_the_lowest_running_plus_waiting() {
    let mut pool = with_loads(&[Some(4.0), Some(3.0), Some(6.0)]);
    // Backend 1 runs fewer but queues more: 3 + 2 > 4.
    pool[1].load = Some(Load {
        waiting: Some(2.0),
        ..Load::running(3.0)
    });
    let picked = pick_once(&Strategy::LeastLoad, &pool, &Inputs::default());
    assert_eq!(
        picked,
        Some(Pick {
            index: 0,
            reason: Reason::Strategy
        })
    );
}

#[test]
fn least_load_breaks_ties_at_random_and_prefers_known_to_unknown() {
    let pool = with_loads(&[Some(2.0), None, Some(2.0), Some(7.0)]);
    let seen = draws(&Strategy::LeastLoad, &pool);
    assert_eq!((seen[1], seen[3]), (0, 0), "{seen:?}");
    assert_share(&seen, 0, 50.0, 2.0);
}

#[test]
fn least_load_with_no_load_known_goes_by_weight_and_says_so() {
    let mut pool = weights(&[3, 1]);
    let picked = pick_once(&Strategy::LeastLoad, &pool, &Inputs::default());
    assert_eq!(picked.map(|p| p.reason), Some(Reason::NothingKnown));
    let seen = draws(&Strategy::LeastLoad, &pool);
    assert_share(&seen, 0, 75.0, 2.0);
    // An unavailable backend's known load does not count as known.
    pool.push(Backend {
        available: false,
        load: Some(Load::running(0.0)),
        ..Backend::with_weight(1)
    });
    let picked = pick_once(&Strategy::LeastLoad, &pool, &Inputs::default());
    assert_eq!(picked.map(|p| p.reason), Some(Reason::NothingKnown));
}

#[test]
fn weighted_random_follows_the_weights_and_never_picks_weight_zero() {
    let pool = weights(&[3, 0, 1]);
    let seen = draws(&Strategy::WeightedRandom, &pool);
    assert_eq!(seen[1], 0);
    assert_share(&seen, 0, 75.0, 2.0);
    assert_share(&seen, 2, 25.0, 2.0);
}

#[test]
fn weighted_random_with_every_weight_zero_is_uniform() {
    let pool = weights(&[0, 0, 0, 0]);
    let seen = draws(&Strategy::WeightedRandom, &pool);
    for index in 0..4 {
        assert_share(&seen, index, 25.0, 2.0);
    }
}

#[test]
fn random_is_uniform_whatever_the_weights() {
    let pool = weights(&[9, 1, 0, 5]);
    let seen = draws(&Strategy::Random, &pool);
    for index in 0..4 {
        assert_share(&seen, index, 25.0, 2.0);
    }
}

#[test]
fn round_robin_cycles_through_the_available_backends_in_pool_order() {
    let pool = unavailable(weights(&[1, 1, 1, 1]), &[1]);
    let sequence: Vec<usize> = (0..8)
        .map(|ticket| {
            let inputs = Inputs {
                round_robin_ticket: Some(ticket),
                prefix_hash: None,
                ..Inputs::default()
            };
            pick_once(&Strategy::RoundRobin, &pool, &inputs)
                .unwrap()
                .index
        })
        .collect();
    assert_eq!(sequence, vec![0, 2, 3, 0, 2, 3, 0, 2]);
    // The counter wraps without a hiccup in the order.
    let at = |ticket: u64| {
        let inputs = Inputs {
            round_robin_ticket: Some(ticket),
            prefix_hash: None,
            ..Inputs::default()
        };
        pick_once(&Strategy::RoundRobin, &pool, &inputs)
            .unwrap()
            .index
    };
    assert_eq!(at(u64::MAX), [0, 2, 3][(u64::MAX % 3) as usize]);
}

#[test]
fn round_robin_without_a_ticket_starts_anywhere() {
    let pool = weights(&[1, 5, 1]);
    let seen = draws(&Strategy::RoundRobin, &pool);
    for index in 0..3 {
        assert_share(&seen, index, 100.0 / 3.0, 2.0);
    }
}

#[test]
fn failover_takes_the_lowest_priority_number_among_the_available() {
    let mut pool = weights(&[1, 1, 1]);
    // Pool order differs from priority order on purpose.
    for (backend, priority) in pool.iter_mut().zip([2, 1, 3]) {
        backend.priority = priority;
    }
    let first = |pool: &[Backend]| {
        let seen = counts(&Strategy::Failover, pool, None, &Inputs::default(), 200);
        let picked: Vec<usize> = (0..3).filter(|&index| seen[index] > 0).collect();
        picked
    };
    assert_eq!(first(&pool), vec![1]);
    pool[1].available = false;
    assert_eq!(first(&pool), vec![0]);
    pool[0].available = false;
    assert_eq!(first(&pool), vec![2]);
    pool[2].available = false;
    assert_eq!(first(&pool), vec![1], "none available: priority 1 again");
}

#[test]
fn failover_splits_equal_priorities_by_weight() {
    let mut pool = weights(&[3, 1, 9]);
    pool[2].priority = 1;
    let seen = draws(&Strategy::Failover, &pool);
    assert_eq!(seen[2], 0);
    assert_share(&seen, 0, 75.0, 2.0);
}

fn with_latencies(latencies: &[Option<f64>]) -> Vec<Backend> {
    latencies
        .iter()
        .map(|&latency_ms| Backend {
            latency_ms,
            ..Backend::with_weight(1)
        })
        .collect()
}

#[test]
fn least_latency_explores_unmeasured_backends_first() {
    let pool = with_latencies(&[Some(100.0), None, Some(50.0), None]);
    let seen = draws(&Strategy::LeastLatency, &pool);
    assert_eq!((seen[0], seen[2]), (0, 0), "{seen:?}");
    assert_share(&seen, 1, 50.0, 2.0);
    let picked = pick_once(&Strategy::LeastLatency, &pool, &Inputs::default());
    assert_eq!(picked.map(|p| p.reason), Some(Reason::Strategy));
}

#[test]
fn least_latency_picks_the_fastest_with_ties_at_random() {
    let pool = with_latencies(&[Some(100.0), Some(50.0), Some(50.0), Some(70.0)]);
    let seen = draws(&Strategy::LeastLatency, &pool);
    assert_eq!((seen[0], seen[3]), (0, 0), "{seen:?}");
    assert_share(&seen, 1, 50.0, 2.0);
}

#[test]
fn least_latency_does_not_explore_an_unavailable_backend() {
    let pool = unavailable(with_latencies(&[None, Some(80.0), Some(40.0)]), &[0]);
    let picked = pick_once(&Strategy::LeastLatency, &pool, &Inputs::default());
    assert_eq!(picked.map(|p| p.index), Some(2));
}
