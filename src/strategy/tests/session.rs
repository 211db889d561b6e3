//! Session affinity: a key stays on its ring owner, keys spread, a key moves only while its
//! owner is out or over the bound and comes back after, and it wins over the prompt's prefix.

use super::*;

const IDS: [&str; 4] = ["vllm-a/llama", "vllm-b/llama", "vllm-c/llama", "api/gpt-4o"];

fn session(key_hash: u64) -> Inputs {
    Inputs {
        session: Some(Session {
            key_hash,
            load_factor: 0.25,
        }),
        ..Inputs::default()
    }
}

fn pick_with(strategy: &Strategy, pool: &[Backend], ring: &Ring, inputs: &Inputs) -> Pick {
    pick(strategy, pool, Some(ring), inputs, &mut Rng::new(3)).unwrap()
}

fn owner(ring: &Ring, key_hash: u64) -> usize {
    pick_with(
        &Strategy::Random,
        &weights(&[1; 4]),
        ring,
        &session(key_hash),
    )
    .index
}

#[test]
fn a_session_stays_on_one_backend_and_sessions_spread() {
    let ring = Ring::new(&IDS);
    // Random would spread one session over all four.
    let seen = counts(
        &Strategy::Random,
        &weights(&[1; 4]),
        Some(&ring),
        &session(42),
        200,
    );
    assert_eq!(
        seen.iter().filter(|&&count| count > 0).count(),
        1,
        "{seen:?}"
    );
    let stays = pick_with(&Strategy::Random, &weights(&[1; 4]), &ring, &session(42));
    assert_eq!(stays.reason, Reason::Session { moved: false });
    let mut per_backend = [0; 4];
    for key in 0..4000u64 {
        per_backend[owner(&ring, key.wrapping_mul(0x9e37_79b9_7f4a_7c15))] += 1;
    }
    assert!(
        per_backend.iter().all(|&count| count > 700),
        "{per_backend:?}"
    );
}

#[test]
fn a_session_moves_while_its_backend_is_out_and_comes_back() {
    let ring = Ring::new(&IDS);
    let home = owner(&ring, 42);
    let mut pool = weights(&[1; 4]);
    pool[home].available = false;
    let away = pick_with(&Strategy::Random, &pool, &ring, &session(42));
    assert_ne!(away.index, home);
    assert_eq!(away.reason, Reason::Session { moved: true });
    // Always the same stand-in, not a random one.
    assert_eq!(
        counts(&Strategy::Random, &pool, Some(&ring), &session(42), 50)[away.index],
        50
    );
    pool[home].available = true;
    assert_eq!(
        pick_with(&Strategy::Random, &pool, &ring, &session(42)).index,
        home
    );
}

#[test]
fn a_session_moves_while_its_backend_is_over_the_bound() {
    let ring = Ring::new(&IDS);
    let home = owner(&ring, 42);
    let mut pool = with_loads(&[Some(10.0); 4]);
    assert_eq!(
        pick_with(&Strategy::LeastLoad, &pool, &ring, &session(42)).index,
        home
    );
    // 16 + 3 * 10: bound ceil(1.25 * 47 / 4) = 15, and 16 + 1 > 15.
    pool[home].load = Some(Load::running(16.0));
    let moved = pick_with(&Strategy::LeastLoad, &pool, &ring, &session(42));
    assert_ne!(moved.index, home);
    assert_eq!(moved.reason, Reason::Session { moved: true });
}

#[test]
fn a_session_key_wins_over_the_prompt_prefix() {
    let ring = Ring::new(&IDS);
    let home = owner(&ring, 42);
    let prefix_affinity = Strategy::PrefixAffinity(Affinity::default());
    let mut by_prefix = std::collections::BTreeSet::new();
    for prefix_hash in 0..64u64 {
        let inputs = Inputs {
            prefix_hash: Some(prefix_hash),
            ..session(42)
        };
        assert_eq!(
            pick_with(&prefix_affinity, &weights(&[1; 4]), &ring, &inputs).index,
            home
        );
        let no_key = Inputs {
            prefix_hash: Some(prefix_hash),
            ..Inputs::default()
        };
        by_prefix.insert(pick_with(&prefix_affinity, &weights(&[1; 4]), &ring, &no_key).index);
    }
    assert!(by_prefix.len() > 1, "without a key the prefixes spread");
}

#[test]
fn without_a_ring_the_strategy_picks() {
    let pool = with_loads(&[Some(9.0), Some(3.0), Some(5.0), Some(4.0)]);
    let picked = pick(
        &Strategy::LeastLoad,
        &pool,
        None,
        &session(42),
        &mut Rng::new(1),
    );
    assert_eq!(
        picked,
        Some(Pick {
            index: 1,
            reason: Reason::Strategy
        })
    );
}

#[test]
fn with_spillover_a_session_walks_only_the_open_tier() {
    let ring = Ring::new(&IDS);
    // Find a key whose owner is the API (index 3): with room in tier 0 it must not go there.
    let key = (0..1000u64).find(|&key| owner(&ring, key) == 3).unwrap();
    let mut pool = with_loads(&[Some(1.0), Some(1.0), Some(1.0), None]);
    pool[3].tier = 1;
    let inputs = Inputs {
        spillover: Some(Spillover { max_load: 4.0 }),
        ..session(key)
    };
    let in_tier = pick_with(&Strategy::LeastLoad, &pool, &ring, &inputs);
    assert!(in_tier.index < 3);
    // Its owner within the tier: not a move.
    assert_eq!(in_tier.reason, Reason::Session { moved: false });
    assert_eq!(
        counts(&Strategy::LeastLoad, &pool, Some(&ring), &inputs, 50)[in_tier.index],
        50
    );
    // Tier 0 full: the API tier, where the session's owner is the API.
    for backend in &mut pool[..3] {
        backend.load = Some(Load::running(4.0));
    }
    let spilled = pick_with(&Strategy::LeastLoad, &pool, &ring, &inputs);
    assert_eq!(spilled.index, 3);
    assert_eq!(spilled.reason, Reason::Session { moved: false });
}
