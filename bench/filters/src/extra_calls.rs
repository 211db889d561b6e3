//! The host calls a `body_round_trip` floor makes beside its body copy and route, kind by kind
//! (`ExtraCalls`), on the request side and on the response side where the real filter makes
//! them: what its calls cost Envoy with no decision behind them. Every answer is dropped; a
//! failure is logged, never fatal.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};

use crate::filter::log;
use crate::ExtraCalls;

/// Read by `shared_reads`: found, and empty, as the real filter's per-request reads are in
/// `store_free` (its providers' health records; bench/results.md section 3 counts 1 byte copied
/// into the VM over its 4 shared-data reads, the ticket's): what Envoy does for the call is
/// measured, not a copy the real filter does not make.
const READ_KEY: &str = "bench_floor.health";
const READ_VALUE: &[u8] = b"";
/// Written by `shared_writes`: a round-robin ticket, its value a decimal count.
const TICKET_KEY: &str = "bench_floor.ticket";
/// What `header_writes` sets: the size of the real filter's second header (the target model).
const WRITTEN_HEADER: (&str, &str) = ("x-bench-written", "qwen3-max-preview");

/// The metrics a floor defines once per VM (at start) and moves per request.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `counter_increments`' counters.
    counters: Vec<u32>,
    /// `histogram_records`' histograms.
    histograms: Vec<u32>,
}

/// At start (root context): the shared data the requests read, and the metrics they move.
pub fn prepare(calls: &ExtraCalls) -> Metrics {
    if calls.shared_reads > 0 {
        write_shared(READ_KEY, READ_VALUE);
    }
    if calls.shared_writes > 0 {
        write_shared(TICKET_KEY, b"0");
    }
    Metrics {
        counters: define(MetricType::Counter, "increments", calls.counter_increments),
        histograms: define(MetricType::Histogram, "histogram", calls.histogram_records),
    }
}

/// `count` metrics `bench_floor.<stem>_<n>`; the ids of those the host defined.
fn define(kind: MetricType, stem: &str, count: u64) -> Vec<u32> {
    (0..count)
        .filter_map(|index| {
            let name = format!("bench_floor.{stem}_{index}");
            hostcalls::define_metric(kind, &name)
                .map_err(|status| log(LogLevel::Error, &format!("defining {name}: {status:?}")))
                .ok()
        })
        .collect()
}

fn write_shared(key: &str, value: &[u8]) {
    if let Err(status) = hostcalls::set_shared_data(key, Some(value), None) {
        log(
            LogLevel::Warn,
            &format!("writing shared data {key:?}: {status:?}"),
        );
    }
}

/// One request's request-side calls.
pub fn make(calls: &ExtraCalls, metrics: &Metrics) {
    for _ in 0..calls.header_reads {
        // The answer (none) does not matter: the call is what is measured.
        let _ = hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-bench-absent");
    }
    for _ in 0..calls.header_writes {
        let (name, value) = WRITTEN_HEADER;
        if let Err(status) =
            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
        {
            log(LogLevel::Warn, &format!("setting {name}: {status:?}"));
        }
    }
    for _ in 0..calls.shared_reads {
        if let Err(status) = hostcalls::get_shared_data(READ_KEY) {
            log(
                LogLevel::Warn,
                &format!("reading shared data {READ_KEY:?}: {status:?}"),
            );
        }
    }
    for _ in 0..calls.shared_writes {
        take_ticket();
    }
    for &counter in &metrics.counters {
        if let Err(status) = hostcalls::increment_metric(counter, 1) {
            log(
                LogLevel::Warn,
                &format!("incrementing a counter: {status:?}"),
            );
        }
    }
    for _ in 0..calls.clock_reads {
        let _ = hostcalls::get_current_time();
    }
}

/// The sample `histogram_records` gives: a fixed time in ms (reading the clock for it would add
/// calls beyond `clock_reads`; what Envoy does for a sample does not depend on its value).
const HISTOGRAM_SAMPLE_MS: u64 = 1;

/// At the response headers (`end`: the response has no body): the response header reads, and
/// the first histogram's sample (all of them when the response ends here).
pub fn at_response_headers(calls: &ExtraCalls, metrics: &Metrics, end: bool) {
    for _ in 0..calls.response_header_reads {
        // The answer does not matter: the call is what is measured.
        let _ = hostcalls::get_map_value(MapType::HttpResponseHeaders, "content-type");
    }
    let at_headers = if end { metrics.histograms.len() } else { 1 };
    record(metrics.histograms.iter().take(at_headers));
}

/// A response-body callback with a chunk of `size` bytes (`end`: the response's last): the
/// chunk's reads, and at the end the other histograms' samples.
pub fn at_response_body(calls: &ExtraCalls, metrics: &Metrics, size: usize, end: bool) {
    if size > 0 {
        for _ in 0..calls.response_reads {
            if let Err(status) = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size) {
                log(
                    LogLevel::Warn,
                    &format!("reading the response body: {status:?}"),
                );
            }
        }
    }
    if end {
        record(metrics.histograms.iter().skip(1));
    }
}

fn record<'a>(histograms: impl Iterator<Item = &'a u32>) {
    for &histogram in histograms {
        if let Err(status) = hostcalls::record_metric(histogram, HISTOGRAM_SAMPLE_MS) {
            log(
                LogLevel::Warn,
                &format!("recording a histogram sample: {status:?}"),
            );
        }
    }
}

/// A compare-and-swap write: the ticket read with its cas and written back incremented with that
/// cas (a mismatch, another worker's write in between, is not retried: one try is one write).
fn take_ticket() {
    let (value, cas) = match hostcalls::get_shared_data(TICKET_KEY) {
        Ok(found) => found,
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("reading shared data {TICKET_KEY:?}: {status:?}"),
            );
            return;
        }
    };
    let ticket = value
        .as_deref()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0);
    let next = ticket.wrapping_add(1).to_string();
    if let Err(status) = hostcalls::set_shared_data(TICKET_KEY, Some(next.as_bytes()), cas) {
        log(
            LogLevel::Warn,
            &format!("writing shared data {TICKET_KEY:?}: {status:?}"),
        );
    }
}
