//! Spillover: a request stays in the first tier while it has room, spills to the next only
//! when it is full, skips a tier that is out, and the strategy picks within the tier.

use super::*;

fn spill_at(max_load: f64) -> Inputs {
    Inputs {
        spillover: Some(Spillover { max_load }),
        ..Inputs::default()
    }
}

/// Backends with these (tier, load) pairs, weight 1.
fn tiered(backends: &[(u32, Option<f64>)]) -> Vec<Backend> {
    backends
        .iter()
        .map(|&(tier, load)| Backend {
            tier,
            load: load.map(Load::running),
            ..Backend::with_weight(1)
        })
        .collect()
}

/// Two engines in tier 0 with these loads, an API (load unknown) in tier 1.
fn engines_then_api(first: f64, second: f64) -> Vec<Backend> {
    tiered(&[(0, Some(first)), (0, Some(second)), (1, None)])
}

fn picks(strategy: &Strategy, backends: &[Backend], inputs: &Inputs) -> Vec<usize> {
    counts(strategy, backends, None, inputs, 400)
}

#[test]
fn requests_stay_on_the_first_tier_until_its_best_backend_reaches_max_load() {
    let strategy = Strategy::LeastLoad;
    // Without spillover, an unknown load never beats a known one: the API gets nothing, ever.
    assert_eq!(
        picks(&strategy, &engines_then_api(50.0, 60.0), &Inputs::default())[2],
        0
    );
    assert_eq!(
        picks(&strategy, &engines_then_api(3.0, 7.0), &spill_at(4.0)),
        [400, 0, 0]
    );
    // The best engine at the threshold: the tier is full, the API takes the request.
    assert_eq!(
        picks(&strategy, &engines_then_api(4.0, 7.0), &spill_at(4.0)),
        [0, 0, 400]
    );
    // The load falls again: back on the engines.
    assert_eq!(
        picks(&strategy, &engines_then_api(9.0, 3.5), &spill_at(4.0)),
        [0, 400, 0]
    );
}

#[test]
fn a_tier_whose_loads_are_all_unknown_takes_the_request() {
    let pool = tiered(&[(0, None), (0, None), (1, Some(0.0))]);
    let seen = picks(&Strategy::LeastLoad, &pool, &spill_at(4.0));
    assert_eq!(seen[2], 0, "{seen:?}");
    assert!(seen[0] > 150 && seen[1] > 150, "by weight: {seen:?}");
}

#[test]
fn a_tier_with_a_known_load_over_max_and_the_others_unknown_is_full() {
    let pool = tiered(&[(0, Some(5.0)), (0, None), (1, None)]);
    assert_eq!(
        picks(&Strategy::LeastLoad, &pool, &spill_at(4.0)),
        [0, 0, 400]
    );
}

#[test]
fn tiers_go_in_ascending_order_whatever_the_pool_order() {
    let pool = tiered(&[(7, None), (2, Some(9.0)), (5, Some(1.0))]);
    assert_eq!(picks(&Strategy::Random, &pool, &spill_at(4.0)), [0, 0, 400]);
    let pool = tiered(&[(7, None), (2, Some(9.0)), (5, Some(4.0))]);
    assert_eq!(picks(&Strategy::Random, &pool, &spill_at(4.0)), [400, 0, 0]);
}

#[test]
fn a_tier_without_an_available_backend_is_skipped() {
    let mut pool = engines_then_api(0.0, 0.0);
    pool[0].available = false;
    assert_eq!(
        picks(&Strategy::LeastLoad, &pool, &spill_at(4.0)),
        [0, 400, 0]
    );
    pool[1].available = false;
    assert_eq!(
        picks(&Strategy::LeastLoad, &pool, &spill_at(4.0)),
        [0, 0, 400]
    );
    // Nothing available: all count as available again, and tier 0 has room.
    pool[2].available = false;
    let seen = picks(&Strategy::LeastLoad, &pool, &spill_at(4.0));
    assert_eq!(seen[2], 0, "{seen:?}");
}

#[test]
fn with_every_tier_full_the_tier_with_the_least_loaded_backend_takes_it() {
    let pool = tiered(&[
        (0, Some(9.0)),
        (0, Some(12.0)),
        (1, Some(6.0)),
        (2, Some(7.0)),
    ]);
    assert_eq!(
        picks(&Strategy::LeastLoad, &pool, &spill_at(4.0)),
        [0, 0, 400, 0]
    );
    // On a tie, the lower tier.
    let pool = tiered(&[(0, Some(6.0)), (1, Some(6.0))]);
    assert_eq!(picks(&Strategy::Random, &pool, &spill_at(4.0)), [400, 0]);
}

#[test]
fn the_strategy_picks_within_the_tier() {
    let mut pool = tiered(&[(0, None), (0, None), (1, None)]);
    pool[0].weight = 1;
    pool[1].weight = 3;
    pool[2].weight = 100;
    let seen = counts(
        &Strategy::WeightedRandom,
        &pool,
        None,
        &spill_at(4.0),
        DRAWS,
    );
    assert_eq!(seen[2], 0);
    assert_share(&seen, 1, 75.0, 2.0);
    // Round robin cycles through the tier's backends only.
    let sent: Vec<usize> = (0..4)
        .map(|ticket| {
            let inputs = Inputs {
                round_robin_ticket: Some(ticket),
                ..spill_at(4.0)
            };
            pick_once(&Strategy::RoundRobin, &pool, &inputs)
                .unwrap()
                .index
        })
        .collect();
    assert_eq!(sent, [0, 1, 0, 1]);
}
