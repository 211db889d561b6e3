//! Whether a parser's time grows linearly with its input. Five inputs, each 4x the one before
//! up to the largest (1 or 4 MiB), are timed; from one to the next a linear parser takes ~4x as
//! long, a quadratic one ~16x.
//!
//! Built to hold on a loaded 2-core machine while other tests run: the fastest of a few runs
//! counts, and a step that looks super-linear that way is timed again, small and large input
//! in turns, and fails only if most turns say so (load that comes and goes slows both inputs
//! of a turn, or only a few turns). Steps are checked from the smallest input up, so a
//! super-linear parser fails before its inputs get large enough to run for minutes.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Time ratio allowed between an input and one 4x smaller: linear is ~4, quadratic ~16.
const MAX_RATIO: f64 = 10.0;
/// Runs of each input; the fastest counts.
const RUNS: usize = 2;
/// Turns, small input then large, that decide a step that looks super-linear.
const CONFIRM_TURNS: usize = 7;
/// Below this a run is mostly timer and scheduler noise: its step is not checked.
const NOISE_FLOOR: Duration = Duration::from_millis(5);
/// Timing tests take turns: two of them at once on two cores time each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Asserts that `parse` takes less than [`MAX_RATIO`] times as long on an input 4x larger, for
/// inputs `make_input(size)` builds of about `size` bytes, up to `largest`.
pub fn assert_linear_time<T, R>(
    what: &str,
    largest: usize,
    make_input: impl Fn(usize) -> T,
    parse: impl Fn(&T) -> R,
) {
    // A test that failed while holding the lock poisons it; the others may still time.
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sizes: Vec<usize> = (0..5).rev().map(|step| largest >> (2 * step)).collect();
    let inputs: Vec<T> = sizes.iter().map(|&size| make_input(size)).collect();
    let mut fastest = vec![Duration::MAX; sizes.len()];
    for _ in 0..RUNS {
        for large in 0..sizes.len() {
            fastest[large] = fastest[large].min(time(&inputs[large], &parse));
            let Some(small) = large.checked_sub(1) else {
                continue;
            };
            if super_linear(fastest[small], fastest[large]) {
                let median = median_ratio_in_turns(&inputs[small], &inputs[large], &parse);
                assert!(
                    median < MAX_RATIO,
                    "{what}: super-linear time: {} KiB took {median:.1}x as long as {} KiB \
                     (fastest runs: {:?} and {:?})",
                    sizes[large] >> 10,
                    sizes[small] >> 10,
                    fastest[large],
                    fastest[small],
                );
            }
        }
    }
    let steps: Vec<String> = sizes
        .iter()
        .zip(&fastest)
        .enumerate()
        .map(|(index, (size, time))| match index.checked_sub(1) {
            Some(small) => format!(
                "{} KiB {time:.1?} ({:.1}x)",
                size >> 10,
                ratio(fastest[small], *time)
            ),
            None => format!("{} KiB {time:.1?}", size >> 10),
        })
        .collect();
    eprintln!("{what}: {}", steps.join(", "));
}

/// The median, over [`CONFIRM_TURNS`] turns, of the time of `large` over that of `small`.
fn median_ratio_in_turns<T, R>(small: &T, large: &T, parse: &impl Fn(&T) -> R) -> f64 {
    let mut ratios: Vec<f64> = (0..CONFIRM_TURNS)
        .map(|_| {
            let small = time(small, parse);
            ratio(small, time(large, parse))
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[CONFIRM_TURNS / 2]
}

fn super_linear(small: Duration, large: Duration) -> bool {
    small >= NOISE_FLOOR && ratio(small, large) >= MAX_RATIO
}

fn ratio(small: Duration, large: Duration) -> f64 {
    large.as_secs_f64() / small.as_secs_f64()
}

fn time<T, R>(input: &T, parse: &impl Fn(&T) -> R) -> Duration {
    let start = Instant::now();
    black_box(parse(black_box(input)));
    start.elapsed()
}

/// An adversarial input: `head`, then `unit` repeated to the size asked, then `tail`.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub what: &'static str,
    pub head: &'static str,
    pub unit: &'static str,
    pub tail: &'static str,
}

pub const fn shape(
    what: &'static str,
    head: &'static str,
    unit: &'static str,
    tail: &'static str,
) -> Shape {
    Shape {
        what,
        head,
        unit,
        tail,
    }
}

impl Shape {
    pub fn build(&self, size: usize) -> String {
        numbered(size, self.head, |_| self.unit.to_string(), self.tail)
    }

    /// [`assert_linear_time`] for inputs of this shape.
    pub fn assert_linear_time<R>(&self, largest: usize, parse: impl Fn(&str) -> R) {
        assert_linear_text(self.what, largest, |size| self.build(size), parse);
    }
}

/// [`assert_linear_time`] for text inputs.
pub fn assert_linear_text<R>(
    what: &str,
    largest: usize,
    make_input: impl Fn(usize) -> String,
    parse: impl Fn(&str) -> R,
) {
    assert_linear_time(what, largest, make_input, |text: &String| parse(text));
}

/// `head`, then `unit(0)`, `unit(1)`… until about `size` bytes, then `tail`.
pub fn numbered(size: usize, head: &str, unit: impl Fn(usize) -> String, tail: &str) -> String {
    let mut text = String::with_capacity(size + tail.len() + 64);
    text.push_str(head);
    let mut index = 0;
    while text.len() < size {
        text.push_str(&unit(index));
        index += 1;
    }
    text.push_str(tail);
    text
}
