//! The inference score: the formula by hand, then which backends the picks go to.

use super::*;

fn loaded(running: f64, waiting: Option<f64>, cache_ratio: Option<f64>) -> Backend {
    Backend {
        load: Some(Load {
            running,
            waiting,
            cache_ratio,
            kv_usage: None,
        }),
        ..Backend::with_weight(1)
    }
}

fn inference_score(candidate_percent: u32) -> Strategy {
    Strategy::InferenceScore(ScoreWeights {
        candidate_percent,
        ..ScoreWeights::default()
    })
}

/// Three backends whose scores are worked out by hand in `the_formula_matches_a_hand_computation`.
fn three_backends() -> Vec<Backend> {
    vec![
        loaded(4.0, Some(2.0), Some(0.5)),
        loaded(8.0, Some(0.0), Some(0.9)),
        loaded(2.0, Some(4.0), None),
    ]
}

#[test]
fn the_defaults_are_seed_001s() {
    let weights = ScoreWeights::default();
    assert_eq!(
        (
            weights.cache_ratio,
            weights.request_load,
            weights.prefill_load,
            weights.candidate_percent
        ),
        (2.0, 1.0, 3.0, 10)
    );
}

#[test]
fn the_formula_matches_a_hand_computation() {
    let weights = ScoreWeights::default();
    let [a, b, c] = [0, 1, 2].map(|index| three_backends()[index].load.unwrap());
    // Maxima over the three: running 8, waiting 4.
    // a: 2 * 0.5 - 1 * 4/8 - 3 * 2/4 = 1 - 0.5 - 1.5
    assert!((score(&weights, &a, 8.0, 4.0) - -1.0).abs() < 1e-12);
    // b: 2 * 0.9 - 1 * 8/8 - 3 * 0/4 = 1.8 - 1
    assert!((score(&weights, &b, 8.0, 4.0) - 0.8).abs() < 1e-12);
    // c: unknown cache ratio counts as 0: 0 - 1 * 2/8 - 3 * 4/4
    assert!((score(&weights, &c, 8.0, 4.0) - -3.25).abs() < 1e-12);
    // A maximum of 0 makes its term 0 rather than a division by zero.
    let idle = Load {
        cache_ratio: Some(0.25),
        ..Load::running(0.0)
    };
    assert_eq!(score(&weights, &idle, 0.0, 0.0), 0.5);
    let custom = ScoreWeights {
        cache_ratio: 1.0,
        request_load: 2.0,
        prefill_load: 0.5,
        candidate_percent: 10,
    };
    // 1 * 0.5 - 2 * 4/8 - 0.5 * 2/4 = 0.5 - 1 - 0.25
    assert!((score(&custom, &a, 8.0, 4.0) - -0.75).abs() < 1e-12);
}

#[test]
fn the_best_score_wins_when_only_the_top_one_is_kept() {
    let seen = counts(
        &inference_score(10),
        &three_backends(),
        None,
        &Inputs::default(),
        1000,
    );
    assert_eq!(seen, vec![0, 1000, 0]);
    let picked = pick(
        &inference_score(10),
        &three_backends(),
        None,
        &Inputs::default(),
        &mut Rng::new(1),
    );
    assert_eq!(picked.map(|p| p.reason), Some(Reason::Strategy));
}

#[test]
fn the_pick_is_uniform_among_the_kept_share() {
    // 4 backends, 50%: the top two (b, then a) share the picks; c and d never get one.
    let mut pool = three_backends();
    pool.push(loaded(8.0, Some(4.0), None));
    let seen = draws(&inference_score(50), &pool);
    assert_eq!((seen[2], seen[3]), (0, 0), "{seen:?}");
    assert_share(&seen, 1, 50.0, 2.0);
    let seen = draws(&inference_score(100), &pool);
    for index in 0..4 {
        assert_share(&seen, index, 25.0, 2.0);
    }
}

#[test]
fn equal_scores_at_the_cut_share_the_picks() {
    // Ten idle backends, 10% kept: one slot, but no reason to favour the first in pool order.
    let pool: Vec<Backend> = (0..10).map(|_| loaded(0.0, None, None)).collect();
    let seen = draws(&inference_score(10), &pool);
    for index in 0..10 {
        assert_share(&seen, index, 10.0, 1.5);
    }
}

#[test]
fn only_available_backends_with_known_loads_are_scored() {
    let mut pool = three_backends();
    pool[1].available = false;
    pool.push(Backend::with_weight(5));
    // Without b, the maxima are running 4 and waiting 4: a = 1 - 1 - 1.5, c = -0.5 - 3.
    let seen = counts(&inference_score(10), &pool, None, &Inputs::default(), 1000);
    assert_eq!(seen, vec![1000, 0, 0, 0]);
}

#[test]
fn with_no_load_known_the_pick_goes_by_weight() {
    let pool = weights(&[1, 3]);
    let picked = pick(
        &inference_score(10),
        &pool,
        None,
        &Inputs::default(),
        &mut Rng::new(1),
    );
    assert_eq!(picked.map(|p| p.reason), Some(Reason::NothingKnown));
    let seen = draws(&inference_score(10), &pool);
    assert_share(&seen, 1, 75.0, 2.0);
}
