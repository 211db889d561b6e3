//! Prefix affinity: stickiness, spread, minimal movement, and the bounded-load spill.

use super::*;

const IDS: [&str; 4] = [
    "openai/gpt-4o",
    "azure/gpt-4o",
    "vllm-a/llama",
    "vllm-b/llama",
];

fn affinity() -> Strategy {
    Strategy::PrefixAffinity(Affinity::default())
}

fn hashed(prefix_hash: u64) -> Inputs {
    Inputs {
        round_robin_ticket: None,
        prefix_hash: Some(prefix_hash),
        ..Inputs::default()
    }
}

fn even_loads(n: usize, load: f64) -> Vec<Backend> {
    with_loads(&vec![Some(load); n])
}

/// The backend id each of `hashes` goes to with nothing else in play (loads unknown).
fn owners<'a>(ids: &[&'a str], hashes: &[u64]) -> Vec<&'a str> {
    let ring = Ring::new(ids);
    let pool = weights(&vec![1; ids.len()]);
    hashes
        .iter()
        .map(|&hash| {
            let picked = pick(
                &affinity(),
                &pool,
                Some(&ring),
                &hashed(hash),
                &mut Rng::new(1),
            );
            ids[picked.unwrap().index]
        })
        .collect()
}

fn many_hashes(count: usize) -> Vec<u64> {
    let mut rng = Rng::new(0xa11_1417);
    (0..count).map(|_| rng.next_u64()).collect()
}

#[test]
fn the_same_prefix_sticks_to_one_backend() {
    let ring = Ring::new(&IDS);
    let pool = even_loads(4, 5.0);
    for hash in many_hashes(50) {
        let seen = counts(&affinity(), &pool, Some(&ring), &hashed(hash), 500);
        assert_eq!(
            seen.iter().filter(|&&count| count > 0).count(),
            1,
            "{seen:?}"
        );
        let picked = pick(
            &affinity(),
            &pool,
            Some(&ring),
            &hashed(hash),
            &mut Rng::new(9),
        );
        assert_eq!(picked.map(|p| p.reason), Some(Reason::Strategy));
    }
}

#[test]
fn every_replica_builds_the_same_ring() {
    assert_eq!(Ring::new(&IDS), Ring::new(&IDS.map(String::from)));
    // Pinned: a change here moves every prefix to another cache across a rolling upgrade.
    assert_eq!(
        owners(&IDS, &[0, 1, 2, 3, 4, 5, 6, 7]),
        PINNED_OWNERS.to_vec()
    );
}

const PINNED_OWNERS: [&str; 8] = [
    "openai/gpt-4o",
    "openai/gpt-4o",
    "openai/gpt-4o",
    "vllm-a/llama",
    "vllm-a/llama",
    "vllm-b/llama",
    "vllm-b/llama",
    "openai/gpt-4o",
];

#[test]
fn prefixes_spread_evenly_over_the_backends() {
    let owners = owners(&IDS, &many_hashes(DRAWS));
    for id in IDS {
        let share =
            100.0 * owners.iter().filter(|&&owner| owner == id).count() as f64 / DRAWS as f64;
        assert!((share - 25.0).abs() <= 4.0, "{id} owns {share:.2}%");
    }
}

#[test]
fn adding_a_backend_moves_only_its_share_of_prefixes_and_only_to_it() {
    let hashes = many_hashes(DRAWS);
    let before = owners(&IDS, &hashes);
    let mut grown = IDS.to_vec();
    grown.push("vllm-c/llama");
    let after = owners(&grown, &hashes);
    let moved: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(old, new)| old != new)
        .map(|(_, new)| *new)
        .collect();
    assert!(moved.iter().all(|&owner| owner == "vllm-c/llama"));
    let moved_percent = 100.0 * moved.len() as f64 / DRAWS as f64;
    assert!(
        (moved_percent - 20.0).abs() <= 3.0,
        "{moved_percent:.2}% moved"
    );
}

#[test]
fn removing_a_backend_moves_only_the_prefixes_it_held() {
    let hashes = many_hashes(DRAWS);
    let before = owners(&IDS, &hashes);
    let shrunk = ["openai/gpt-4o", "vllm-a/llama", "vllm-b/llama"];
    let after = owners(&shrunk, &hashes);
    for (old, new) in before.iter().zip(&after) {
        if *old != "azure/gpt-4o" {
            assert_eq!(old, new);
        }
    }
    let held = before
        .iter()
        .filter(|&&owner| owner == "azure/gpt-4o")
        .count();
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(old, new)| old != new)
        .count();
    assert_eq!(moved, held);
}

/// A prefix, the backend it sticks to, and the next backend on the ring after it.
fn sticky_and_next(ring: &Ring) -> (u64, usize, usize) {
    let hash = 0x0123_4567_89ab_cdef;
    let mut pool = weights(&[1; 4]);
    let at = |pool: &[Backend]| {
        let picked = pick(
            &affinity(),
            pool,
            Some(ring),
            &hashed(hash),
            &mut Rng::new(1),
        );
        picked.unwrap().index
    };
    let sticky = at(&pool);
    pool[sticky].available = false;
    (hash, sticky, at(&pool))
}

#[test]
fn a_loaded_sticky_backend_spills_to_the_next_on_the_ring() {
    let ring = Ring::new(&IDS);
    let (hash, sticky, next) = sticky_and_next(&ring);
    assert_ne!(sticky, next);
    let mut pool = even_loads(4, 10.0);
    let at = |pool: &[Backend]| {
        let picked = pick(
            &affinity(),
            pool,
            Some(&ring),
            &hashed(hash),
            &mut Rng::new(1),
        );
        picked.unwrap().index
    };
    // Loads 14 + 3 * 10: bound ceil(1.25 * 45 / 4) = 15, and 14 + 1 <= 15: it stays.
    pool[sticky].load = Some(Load::running(14.0));
    assert_eq!(at(&pool), sticky);
    // Loads 16 + 3 * 10: bound ceil(1.25 * 47 / 4) = 15, and 16 + 1 > 15: the next one takes it.
    pool[sticky].load = Some(Load::running(16.0));
    assert_eq!(at(&pool), next);
    // Queued requests count too.
    pool[sticky].load = Some(Load {
        waiting: Some(2.0),
        ..Load::running(14.0)
    });
    assert_eq!(at(&pool), next);
}

#[test]
fn an_idle_pool_stays_sticky() {
    let ring = Ring::new(&IDS);
    let (hash, sticky, _) = sticky_and_next(&ring);
    let pool = even_loads(4, 0.0);
    let seen = counts(&affinity(), &pool, Some(&ring), &hashed(hash), 100);
    assert_eq!(seen[sticky], 100, "{seen:?}");
}

#[test]
fn an_unknown_load_counts_as_within_the_bound() {
    let ring = Ring::new(&IDS);
    let (hash, sticky, _) = sticky_and_next(&ring);
    let mut pool = even_loads(4, 50.0);
    pool[sticky].load = None;
    let seen = counts(&affinity(), &pool, Some(&ring), &hashed(hash), 100);
    assert_eq!(seen[sticky], 100, "{seen:?}");
}

#[test]
fn with_every_backend_over_the_bound_the_least_loaded_takes_it() {
    // Fractional loads can put everyone over: bound ceil(1.25 * 5.5 / 4) = 2 < 1.1 + 1.
    let ring = Ring::new(&IDS);
    let pool = with_loads(&[Some(1.2), Some(1.1), Some(1.1), Some(1.1)]);
    let seen = counts(&affinity(), &pool, Some(&ring), &hashed(7), 3000);
    assert_eq!(seen[0], 0, "{seen:?}");
    assert!(seen[1..].iter().all(|&count| count > 800), "{seen:?}");
}

#[test]
fn without_a_prefix_hash_or_a_ring_it_is_least_load() {
    let ring = Ring::new(&IDS);
    let pool = with_loads(&[Some(9.0), Some(3.0), Some(5.0), None]);
    for (ring, inputs) in [(Some(&ring), Inputs::default()), (None, hashed(7))] {
        let picked = pick(&affinity(), &pool, ring, &inputs, &mut Rng::new(1));
        assert_eq!(
            picked,
            Some(Pick {
                index: 1,
                reason: Reason::Strategy
            })
        );
    }
    let picked = pick(
        &affinity(),
        &weights(&[1, 1]),
        None,
        &Inputs::default(),
        &mut Rng::new(1),
    );
    assert_eq!(picked.map(|p| p.reason), Some(Reason::NothingKnown));
}
