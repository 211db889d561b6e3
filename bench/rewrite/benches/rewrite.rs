//! Model rewrite throughput: the filter's byte-exact rewrite vs. a serde_json tree round trip.
//!
//! Run from the repo root so the harness finds `target/bench/criterion`:
//! `cargo bench --manifest-path bench/rewrite/Cargo.toml --target-dir target/bench`,
//! then `python3 bench/rewrite/summary.py` for a table.

use std::env;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use ai_lb_bench_rewrite::{chat_body, serde_json_roundtrip, BENCH_SIZES, NEW_MODEL};
use ai_load_balancer::rewrite::rewrite_model;
use criterion::{criterion_group, Criterion, SamplingMode, Throughput};

/// Bodies from 1 MB up take milliseconds per call: flat sampling runs each sample for the same
/// iteration count, so the minimum run stays short (linear sampling would need 210 calls).
const FLAT_FROM: usize = 1_048_576;

fn rewrite(c: &mut Criterion) {
    for size in BENCH_SIZES {
        // Never taken: every bench size is far above the minimum (the tests build each one).
        let Some(body) = chat_body(size) else {
            continue;
        };
        let mut group = c.benchmark_group(format!("body_{size}"));
        group.throughput(Throughput::Bytes(size as u64));
        // Small enough that the whole `cargo bench` run stays well under two minutes on 2 cores.
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        if size >= FLAT_FROM {
            group.sampling_mode(SamplingMode::Flat);
        }
        group.bench_function("filter_rewrite", |b| {
            b.iter(|| rewrite_model(black_box(&body), black_box(NEW_MODEL)))
        });
        group.bench_function("serde_json_roundtrip", |b| {
            b.iter(|| serde_json_roundtrip(black_box(&body), black_box(NEW_MODEL)))
        });
        group.finish();
    }
}

/// Criterion finds its output directory with `cargo metadata` run from this package, which
/// ignores `--target-dir`; the bench binary itself sits in `<target-dir>/release/deps`, so derive
/// it from there. An explicit `CRITERION_HOME` still wins.
fn criterion_home() -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let deps = exe.parent().filter(|dir| dir.ends_with("deps"))?;
    Some(deps.parent()?.parent()?.join("criterion"))
}

criterion_group!(benches, rewrite);

// `criterion_main!` plus setting CRITERION_HOME before the first `Criterion` reads it.
fn main() {
    if env::var_os("CRITERION_HOME").is_none() {
        if let Some(home) = criterion_home() {
            env::set_var("CRITERION_HOME", home);
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
