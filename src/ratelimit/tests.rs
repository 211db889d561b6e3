use super::headers::{delay_ms, epoch_ms, observe, MAX_RESET_MS};
use super::*;

const NOW: u64 = 1_764_841_746_000; // 2025-12-04T09:49:06Z

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn go_durations_and_bare_seconds_read_in_milliseconds_rounded_up() {
    for (text, ms) in [
        ("1s", Some(1_000)),
        ("6m0s", Some(360_000)),
        ("20ms", Some(20)),
        ("2m59.56s", Some(179_560)),
        ("1h2m3s", Some(3_723_000)),
        ("0s", Some(0)),
        ("100us", Some(1)),
        ("1500\u{b5}s", Some(2)),
        ("7.66s", Some(7_660)),
        ("30", Some(30_000)),
        ("1.5", Some(1_500)),
        ("+2s", Some(2_000)),
        ("", None),
        ("s", None),
        ("1x", None),
        ("-1s", None),
        ("1h30", None),
        ("1..5s", None),
        (".s", None),
        ("99999999999999999999h", Some(u64::MAX / 1_000_000 + 1)),
    ] {
        assert_eq!(delay_ms(text), ms, "{text:?}");
    }
}

#[test]
fn rfc3339_times_read_as_epoch_milliseconds() {
    assert_eq!(epoch_ms("2025-12-04T09:49:06Z"), Some(NOW));
    assert_eq!(epoch_ms("2025-12-04T09:49:06.25z"), Some(NOW + 250));
    assert_eq!(epoch_ms("2025-12-04T17:49:06+08:00"), Some(NOW));
    assert_eq!(epoch_ms("2025-12-04T08:49:06-01:00"), Some(NOW));
    assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(epoch_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
    for garbage in [
        "",
        "2025-12-04",
        "2025-12-04T09:49:06",
        "2025-13-04T09:49:06Z",
        "2025-12-04T24:49:06Z",
        "2025-12-04T09:49:06Zjunk",
        "1969-12-31T23:59:59Z",
        "2025-12-04T09:49:06+0800",
        "2025-12-04T09:49:06.Z",
        "２０２５-12-04T09:49:06Z",
    ] {
        assert_eq!(epoch_ms(garbage), None, "{garbage:?}");
    }
}

#[test]
fn openai_style_headers_give_both_budgets_with_their_resets() {
    let observed = observe(
        &headers(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("X-RateLimit-Reset-Requests", "1s"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-ratelimit-limit-requests", "60"),
        ]),
        NOW,
    );
    assert_eq!(
        observed.requests,
        Some(Remaining {
            left: 59,
            reset_at_ms: Some(NOW + 1_000)
        })
    );
    assert_eq!(
        observed.tokens,
        Some(Remaining {
            left: 149_984,
            reset_at_ms: Some(NOW + 360_000)
        })
    );
}

#[test]
fn anthropic_headers_keep_the_tightest_token_budget_and_cap_far_resets() {
    let observed = observe(
        &headers(&[
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2025-12-04T09:50:06Z"),
            ("anthropic-ratelimit-tokens-remaining", "9000"),
            ("anthropic-ratelimit-tokens-reset", "2025-12-04T09:49:16Z"),
            ("anthropic-ratelimit-output-tokens-remaining", "120"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2030-01-01T00:00:00Z",
            ),
        ]),
        NOW,
    );
    assert_eq!(
        observed.requests,
        Some(Remaining {
            left: 3,
            reset_at_ms: Some(NOW + 60_000)
        })
    );
    assert_eq!(
        observed.tokens,
        Some(Remaining {
            left: 120,
            reset_at_ms: Some(NOW + MAX_RESET_MS)
        })
    );
}

#[test]
fn ietf_draft_fields_count_as_requests() {
    let observed = observe(
        &headers(&[("RateLimit-Remaining", "4"), ("RateLimit-Reset", "30")]),
        NOW,
    );
    assert_eq!(
        observed.requests,
        Some(Remaining {
            left: 4,
            reset_at_ms: Some(NOW + 30_000),
        })
    );
    assert_eq!(observed.tokens, None);
    // The later structured field is not read.
    let structured = observe(&headers(&[("ratelimit", "\"default\";r=0;t=30")]), NOW);
    assert!(structured.is_empty());
}

#[test]
fn garbage_values_and_unrelated_headers_tell_nothing() {
    let observed = observe(
        &headers(&[
            ("x-ratelimit-remaining-requests", "-1"),
            ("x-ratelimit-remaining-tokens", "lots"),
            ("anthropic-ratelimit-requests-remaining", ""),
            ("ratelimit-remaining", "4.5"),
            ("content-type", "application/json"),
        ]),
        NOW,
    );
    assert!(observed.is_empty());
    // A remaining count without a readable reset is kept, its reset unknown.
    let observed = observe(
        &headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "soon"),
        ]),
        NOW,
    );
    assert_eq!(
        observed.requests,
        Some(Remaining {
            left: 0,
            reset_at_ms: None
        })
    );
}

fn told(requests: Option<(u64, u64)>, tokens: Option<(u64, u64)>) -> Observed {
    let budget = |b: Option<(u64, u64)>| {
        b.map(|(left, reset_in)| Remaining {
            left,
            reset_at_ms: Some(NOW + reset_in),
        })
    };
    Observed {
        requests: budget(requests),
        tokens: budget(tokens),
    }
}

const FLOOR: Floor = Floor {
    requests: 2,
    tokens: 100,
};

#[test]
fn a_budget_is_remembered_only_while_below_the_floor() {
    let mut record = RateRecord::default();
    assert!(!record.observe(None, &told(Some((5, 1_000)), None), FLOOR, NOW));
    assert_eq!(record, RateRecord::default(), "plenty: nothing stored");
    assert!(record.observe(None, &told(Some((1, 1_000)), None), FLOOR, NOW));
    assert!(record.is_below(None, FLOOR, NOW));
    // Still low: updated, not counted again.
    assert!(!record.observe(None, &told(Some((0, 900)), None), FLOOR, NOW + 100));
    assert_eq!(record.entry(None).map(|e| e.requests), Some(Some(0)));
    // A lower floor (another pool's) does not see it as low.
    assert!(!record.is_below(
        None,
        Floor {
            requests: 0,
            tokens: 0
        },
        NOW
    ));
    // Past its reset it no longer counts; then an answer with budget drops it.
    assert!(!record.is_below(None, FLOOR, NOW + 1_000));
    assert!(!record.observe(None, &told(Some((60, 1_000)), None), FLOOR, NOW + 1_500));
    assert!(record.entries.is_empty());
}

#[test]
fn keys_are_kept_apart_and_tokens_have_their_own_floor() {
    let mut record = RateRecord::default();
    assert!(record.observe(Some(7), &told(None, Some((50, 5_000))), FLOOR, NOW));
    assert!(record.is_below(Some(7), FLOOR, NOW));
    assert!(!record.is_below(Some(8), FLOOR, NOW));
    assert!(!record.is_below(None, FLOOR, NOW));
    assert!(record.observe(Some(8), &told(Some((0, 5_000)), None), FLOOR, NOW));
    let decoded = RateRecord::read(Some(&record.encode()));
    assert_eq!(decoded, record);
}

#[test]
fn a_low_budget_without_a_reset_is_avoided_for_the_fixed_time() {
    let mut record = RateRecord::default();
    let observed = Observed {
        requests: Some(Remaining {
            left: 0,
            reset_at_ms: None,
        }),
        tokens: None,
    };
    assert!(record.observe(None, &observed, FLOOR, NOW));
    assert!(record.is_below(None, FLOOR, NOW + UNKNOWN_RESET_MS - 1));
    assert!(!record.is_below(None, FLOOR, NOW + UNKNOWN_RESET_MS));
}

#[test]
fn the_record_text_reads_back_and_garbage_is_nothing_known() {
    let record = RateRecord {
        entries: vec![
            Entry {
                token: None,
                requests: Some(0),
                requests_reset_ms: 5,
                tokens: None,
                tokens_reset_ms: 0,
            },
            Entry {
                token: Some(0xab),
                requests: None,
                requests_reset_ms: 0,
                tokens: Some(12),
                tokens_reset_ms: 9,
            },
        ],
    };
    let text = record.encode();
    assert_eq!(text, b"r1;- 0 5 - 0;00000000000000ab - 0 12 9");
    assert_eq!(RateRecord::read(Some(&text)), record);
    for garbage in [
        &b""[..],
        b"r2;- 0 5 - 0",
        b"r1;- 0 5 -",
        b"r1;- 0 5 - 0 1",
        b"r1;zz 0 5 - 0",
        b"r1;- x 5 - 0",
        b"\xff",
    ] {
        assert_eq!(RateRecord::read(Some(garbage)), RateRecord::default());
    }
    assert_eq!(RateRecord::read(None), RateRecord::default());
}
