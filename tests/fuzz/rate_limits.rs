//! Providers' rate-limit headers (`ratelimit::observe`, its duration and RFC 3339 readers) and
//! the shared rate-limit record: arbitrary, token-soup and mutated values never panic, a value
//! read is never past the reset cap, written durations and records read back, and long values
//! take linear time.

use ai_load_balancer::ratelimit::headers::{delay_ms, epoch_ms, observe, MAX_RESET_MS};
use ai_load_balancer::ratelimit::{Entry, RateRecord};
use proptest::prelude::*;

use crate::growth::Shape;
use crate::mutate::{any_bytes, mutated_from, token_soup};
use crate::runner::config;

const NOW: u64 = 1_764_841_746_000;

#[rustfmt::skip]
const VALUE_TOKENS: &[&[u8]] = &[
    b"0", b"9", b"1.", b".5", b"h", b"m", b"s", b"ms", b"us", b"\xc2\xb5s", b"ns", b"-", b"+",
    b"T", b"Z", b":", b"2025-12-04", b"T09:49:06", b"+08:00", b",", b"\"",
    b"18446744073709551616", b" ", b"\xff",
];

const SEEDS: &[&[u8]] = &[
    b"2m59.56s",
    b"1h2m3.5s",
    b"20ms",
    b"30",
    b"2025-12-04T09:49:06.25Z",
    b"2025-12-04T17:49:06+08:00",
    b"18446744073709551615",
];

const NAMES: &[&str] = &[
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "ratelimit-remaining",
    "ratelimit-reset",
];

fn values() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_bytes(),
        token_soup(VALUE_TOKENS),
        mutated_from(SEEDS, VALUE_TOKENS)
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((prop::sample::select(NAMES), values()), 0..12).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
            .collect()
    })
}

fn assert_capped(reset_at_ms: Option<u64>) {
    if let Some(at) = reset_at_ms {
        assert!(at <= NOW + MAX_RESET_MS, "{at}");
    }
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<u64>(),
        any::<Option<u64>>(),
        any::<u64>(),
    )
        .prop_map(
            |(token, requests, requests_reset_ms, tokens, tokens_reset_ms)| Entry {
                token,
                requests,
                requests_reset_ms,
                tokens,
                tokens_reset_ms,
            },
        )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn headers_never_panic_and_resets_stay_capped(headers in headers()) {
        let observed = observe(&headers, NOW);
        assert_capped(observed.requests.and_then(|b| b.reset_at_ms));
        assert_capped(observed.tokens.and_then(|b| b.reset_at_ms));
    }

    #[test]
    fn durations_and_times_never_panic(value in values()) {
        let text = String::from_utf8_lossy(&value);
        let _ = delay_ms(&text);
        let _ = epoch_ms(&text);
    }

    #[test]
    fn written_durations_read_back(h in 0u64..1000, m in 0u64..60, ms in 0u64..60_000) {
        let text = format!("{h}h{m}m{}.{:03}s", ms / 1000, ms % 1000);
        prop_assert_eq!(delay_ms(&text), Some(h * 3_600_000 + m * 60_000 + ms));
    }

    #[test]
    fn records_read_back_and_garbage_reads_as_nothing(
        entries in prop::collection::vec(entry(), 0..6),
        garbage in values(),
    ) {
        let record = RateRecord { entries };
        prop_assert_eq!(RateRecord::read(Some(&record.encode())), record);
        let _ = RateRecord::read(Some(&garbage));
    }
}

#[test]
fn long_values_take_linear_time() {
    for shape in [
        Shape {
            what: "duration parts",
            head: "",
            unit: "1h2m3.456789s",
            tail: "",
        },
        Shape {
            what: "long fraction",
            head: "1.",
            unit: "1234567890",
            tail: "s",
        },
        Shape {
            what: "long count",
            head: "",
            unit: "9876543210",
            tail: "",
        },
    ] {
        shape.assert_linear_time(1 << 20, |text| {
            let headers = [
                ("x-ratelimit-reset-requests".to_string(), text.to_string()),
                (
                    "x-ratelimit-remaining-requests".to_string(),
                    "1".to_string(),
                ),
                ("ratelimit-remaining".to_string(), text.to_string()),
            ];
            observe(&headers, NOW)
        });
    }
    let record = |size: usize| {
        let unit = ";00000000000000ab 1 2 3 4";
        format!("r1{}", unit.repeat(size / unit.len()))
    };
    crate::growth::assert_linear_text("record entries", 1 << 20, record, |text| {
        RateRecord::read(Some(text.as_bytes()))
    });
}
