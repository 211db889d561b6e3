//! Engine `/metrics` pages: the Prometheus text reader (`samples`, `Sample::label`,
//! `engine_load`). Pages written here (labels escaped, comments, blank lines, CRLF, timestamps,
//! exemplars) read back as written; arbitrary and mutated pages (the vLLM and SGLang fixtures
//! among the seeds) never panic, and the load read is counts and ratios.

use ai_load_balancer::engine::prometheus::{samples, unescape};
use ai_load_balancer::engine::{engine_load, PrefixCounters};
use proptest::prelude::*;

use crate::engine_loads::assert_load;
use crate::mutate::{any_bytes, mutated, mutated_from, token_soup};
use crate::runner::config;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../src/engine/fixtures/vllm.txt"),
    include_bytes!("../../src/engine/fixtures/vllm_v0.txt"),
    include_bytes!("../../src/engine/fixtures/sglang.txt"),
];

#[rustfmt::skip]
const PROMETHEUS_TOKENS: &[&[u8]] = &[
    b"\n", b"\r\n", b"#", b"# TYPE ", b" ", b"\t", b"{", b"}", b"=", b"\"", b"\\", b",", b"1",
    b"-1", b"NaN", b"+Inf", b"1e308", b"vllm:num_requests_running", b"sglang:token_usage",
    b"vllm:prefix_cache_queries_total", b"engine=\"0\"", b"\xc3\xa9", b"\xff",
];

/// Names the metric sources use, and others.
fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:cache_hit_rate",
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_hits",
            "vllm:gpu_prefix_cache_queries",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
    ]
}

fn sample_value() -> impl Strategy<Value = (String, f64)> {
    prop_oneof![
        any::<f64>().prop_map(|value| (format!("{value}"), value)),
        any::<f64>().prop_map(|value| (format!("{value:e}"), value)),
        (0..1000u32).prop_map(|value| (value.to_string(), f64::from(value))),
        prop::sample::select(vec![
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("NaN", f64::NAN)
        ])
        .prop_map(|(text, value)| (text.to_string(), value)),
    ]
}

/// One sample line as written, with what it holds.
#[derive(Debug, Clone)]
struct SampleLine {
    name: String,
    /// (name, value unescaped)
    labels: Vec<(String, String)>,
    value_text: String,
    value: f64,
    /// Blanks and separators: before the name, before `{`, around `=`, after `,`.
    blank: String,
    trailing_comma: bool,
    /// Timestamp and exemplar, as written after the value.
    suffix: String,
}

fn sample_line() -> impl Strategy<Value = SampleLine> {
    let label = ("[a-zA-Z_][a-zA-Z0-9_]{0,6}", any::<String>());
    let suffix = prop::sample::select(vec![
        "",
        " 1712345678901",
        " -5",
        " 1.7e9",
        " # {trace_id=\"x\"} 1",
        " 17 # {a=\"b\"} 2",
    ]);
    (
        metric_name(),
        prop::collection::vec(label, 0..4),
        sample_value(),
        "[ \t]{0,2}",
        any::<bool>(),
        suffix,
    )
        .prop_map(
            |(name, labels, (value_text, value), blank, trailing_comma, suffix)| SampleLine {
                name,
                labels,
                value_text,
                value,
                blank,
                trailing_comma,
                suffix: suffix.to_string(),
            },
        )
}

fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl SampleLine {
    fn write(&self, page: &mut String) {
        let b = &self.blank;
        page.push_str(&format!("{b}{}", self.name));
        if !self.labels.is_empty() || self.trailing_comma {
            let pairs: Vec<String> = self
                .labels
                .iter()
                .map(|(name, value)| format!("{b}{name}{b}={b}\"{}\"", escape_label_value(value)))
                .collect();
            let comma = if self.trailing_comma && !pairs.is_empty() {
                ","
            } else {
                ""
            };
            page.push_str(&format!("{b}{{{}{comma}{b}}}", pairs.join(",")));
        }
        page.push_str(&format!(" {}{}", self.value_text, self.suffix));
    }
}

#[derive(Debug, Clone)]
enum PageLine {
    Sample(SampleLine),
    Comment(String),
    Blank(String),
}

fn page() -> impl Strategy<Value = (String, Vec<SampleLine>)> {
    let line = prop_oneof![
        4 => sample_line().prop_map(PageLine::Sample),
        1 => "[^\n]{0,20}".prop_map(PageLine::Comment),
        1 => "[ \t]{0,3}".prop_map(PageLine::Blank),
    ];
    (prop::collection::vec(line, 0..12), any::<bool>()).prop_map(|(lines, crlf)| {
        let mut page = String::new();
        let mut samples = Vec::new();
        for line in lines {
            match line {
                PageLine::Sample(sample) => {
                    sample.write(&mut page);
                    samples.push(sample);
                }
                PageLine::Comment(text) => page.push_str(&format!("# {text}")),
                PageLine::Blank(blanks) => page.push_str(&blanks),
            }
            page.push_str(if crlf { "\r\n" } else { "\n" });
        }
        (page, samples)
    })
}

fn check_any_page(text: &str) {
    let mut read = samples(text);
    for sample in read.by_ref() {
        assert!(!sample.name.is_empty());
        for (name, _) in sample.label_pairs() {
            // `label` finds the first pair of a name, unescaped.
            let first = sample.label_pairs().find(|(label, _)| *label == name);
            assert_eq!(sample.label(name), first.map(|(_, raw)| unescape(raw)));
        }
    }
    assert!(read.malformed() <= text.split('\n').count());
    let previous = PrefixCounters {
        hits: 5.0,
        queries: 10.0,
    };
    for previous in [None, Some(&previous)] {
        let (load, counters) = engine_load(text, previous);
        if let Some(load) = load {
            assert_load(&load, false);
        }
        assert!(
            counters.hits >= 0.0 && counters.queries >= 0.0,
            "{counters:?}"
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn prometheus_reads_back_the_samples_it_was_given((page, written) in page()) {
        let mut read = samples(&page);
        let found: Vec<_> = read.by_ref().collect();
        prop_assert_eq!(read.malformed(), 0, "{}", page);
        prop_assert_eq!(found.len(), written.len(), "{}", page);
        for (sample, line) in found.iter().zip(&written) {
            prop_assert_eq!(sample.name, line.name.as_str());
            prop_assert!(sample.value == line.value || (sample.value.is_nan() && line.value.is_nan()));
            let pairs: Vec<_> = sample.label_pairs().collect();
            prop_assert_eq!(pairs.len(), line.labels.len());
            for ((name, raw), (written_name, value)) in pairs.iter().zip(&line.labels) {
                prop_assert_eq!(name, written_name);
                prop_assert_eq!(unescape(raw), value.as_str());
                // The first label of a name counts.
                let first = line.labels.iter().find(|(label, _)| label == name).map(|(_, v)| v.as_str());
                let label = sample.label(name);
                prop_assert_eq!(label.as_deref(), first);
            }
        }
    }

    #[test]
    fn prometheus_never_panics_and_reads_only_counts_and_ratios(
        text in prop_oneof![
            page().prop_map(|(page, _)| page.into_bytes()),
            mutated_from(FIXTURES, PROMETHEUS_TOKENS),
            mutated(page().prop_map(|(page, _)| page.into_bytes()), PROMETHEUS_TOKENS),
            token_soup(PROMETHEUS_TOKENS),
            any_bytes(),
        ],
    ) {
        check_any_page(&String::from_utf8_lossy(&text));
    }
}
