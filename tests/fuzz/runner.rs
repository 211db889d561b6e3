//! The proptest configuration every property here runs with.

use proptest::test_runner::{Config, RngSeed};

/// `cases` per property, the same ones on every run (a fixed seed: CI cannot flake on a case
/// it never saw before), and no `proptest-regressions` files written into the repository.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x0a11_0ad5),
        ..Config::default()
    }
}
