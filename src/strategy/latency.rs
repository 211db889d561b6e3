//! A backend's latency as an exponentially weighted moving average, kept in shared data by the
//! glue (one entry per backend, written by whichever VM saw the response) and read by the
//! least-latency strategy. Time to first byte is what a streaming client waits for; the total
//! is what a non-streaming one waits for. Estimates age out so that a backend that was slow a
//! while ago is explored again instead of being shunned forever.

use std::fmt::Display;
use std::str::FromStr;

/// The weight of a new sample against the average so far.
pub const DEFAULT_ALPHA: f64 = 0.3;

/// The tag `encode` writes first; `decode` refuses any other.
const VERSION: &str = "v1";

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencyStats {
    ttfb_ms: Option<f64>,
    total_ms: Option<f64>,
    /// When the last sample was recorded.
    updated_at_ms: u64,
    samples: u32,
}

impl LatencyStats {
    /// Folds in one response's figures (`None` or an unusable figure: not measured). The first
    /// sample of a figure sets it. An `alpha` outside 0..=1 is taken as `DEFAULT_ALPHA`.
    pub fn record(&mut self, ttfb_ms: Option<f64>, total_ms: Option<f64>, now_ms: u64, alpha: f64) {
        let usable = |ms: Option<f64>| ms.filter(|ms| is_usable(*ms));
        let (ttfb_ms, total_ms) = (usable(ttfb_ms), usable(total_ms));
        if ttfb_ms.is_none() && total_ms.is_none() {
            // Nothing measured: the estimate must not look fresher than it is.
            return;
        }
        let alpha = if (0.0..=1.0).contains(&alpha) {
            alpha
        } else {
            DEFAULT_ALPHA
        };
        let blend = |average: Option<f64>, sample: Option<f64>| match (average, sample) {
            (Some(average), Some(sample)) => Some(average + alpha * (sample - average)),
            (average, sample) => sample.or(average),
        };
        self.ttfb_ms = blend(self.ttfb_ms, ttfb_ms);
        self.total_ms = blend(self.total_ms, total_ms);
        self.updated_at_ms = now_ms;
        self.samples = self.samples.saturating_add(1);
    }

    /// Forgets an average older than `max_age_ms`, so that the next sample starts it afresh
    /// (blended into a stale average, one good sample would barely move it). Call before
    /// `record`.
    pub fn restart_if_stale(&mut self, now_ms: u64, max_age_ms: u64) {
        if self.is_stale(now_ms, max_age_ms) {
            *self = Self::default();
        }
    }

    /// The estimate to compare: time to first byte for a streaming request; the total for a
    /// non-streaming one, else time to first byte. `None` without samples or when the last one
    /// is older than `max_age_ms`.
    pub fn estimate(&self, streaming: bool, now_ms: u64, max_age_ms: u64) -> Option<f64> {
        if self.samples == 0 || self.is_stale(now_ms, max_age_ms) {
            return None;
        }
        if streaming {
            self.ttfb_ms
        } else {
            self.total_ms.or(self.ttfb_ms)
        }
    }

    pub fn samples(&self) -> u32 {
        self.samples
    }

    pub fn updated_at_ms(&self) -> u64 {
        self.updated_at_ms
    }

    fn is_stale(&self, now_ms: u64, max_age_ms: u64) -> bool {
        now_ms.saturating_sub(self.updated_at_ms) > max_age_ms
    }

    /// `v1;<ttfb_ms>;<total_ms>;<updated_at_ms>;<samples>`, `-` for an unmeasured figure.
    /// `{}` writes a float in the shortest form that reads back exactly, so `decode` gives
    /// back the same value.
    pub fn encode(&self) -> Vec<u8> {
        let figure = |ms: Option<f64>| ms.map_or_else(|| "-".to_string(), |ms| ms.to_string());
        format!(
            "{VERSION};{};{};{};{}",
            figure(self.ttfb_ms),
            figure(self.total_ms),
            self.updated_at_ms,
            self.samples
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|error| format!("latency stats: not UTF-8 text ({error})"))?;
        let mut fields = text.split(';');
        let (
            Some(version),
            Some(ttfb_ms),
            Some(total_ms),
            Some(updated_at_ms),
            Some(samples),
            None,
        ) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        )
        else {
            return Err(format!(
                "latency stats {text:?}: expected 5 fields separated by ';', found {}",
                text.split(';').count()
            ));
        };
        if version != VERSION {
            return Err(format!(
                "latency stats {text:?}: version {version:?} is not {VERSION:?}"
            ));
        }
        let stats = Self {
            ttfb_ms: decode_ms("ttfb_ms", ttfb_ms)?,
            total_ms: decode_ms("total_ms", total_ms)?,
            updated_at_ms: decode_integer("updated_at_ms", updated_at_ms)?,
            samples: decode_integer("samples", samples)?,
        };
        if stats.samples == 0 && (stats.ttfb_ms.is_some() || stats.total_ms.is_some()) {
            return Err(format!(
                "latency stats {text:?}: a latency is set but samples is 0"
            ));
        }
        Ok(stats)
    }
}

/// A latency a sample or the store may carry: finite and not negative.
fn is_usable(ms: f64) -> bool {
    ms.is_finite() && ms >= 0.0
}

fn decode_ms(field: &str, text: &str) -> Result<Option<f64>, String> {
    if text == "-" {
        return Ok(None);
    }
    let ms: f64 = text
        .parse()
        .map_err(|error| format!("latency stats: {field} {text:?} is not a number ({error})"))?;
    if !is_usable(ms) {
        return Err(format!(
            "latency stats: {field} {text:?} is not a finite, non-negative number of ms"
        ));
    }
    Ok(Some(ms))
}

fn decode_integer<T>(field: &str, text: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse()
        .map_err(|error| format!("latency stats: {field} {text:?} is not a whole number ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: u64 = 60_000;

    fn close(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|actual| (actual - expected).abs() < 1e-9)
    }

    #[test]
    fn the_first_sample_sets_the_estimate_and_later_ones_blend_in() {
        let mut stats = LatencyStats::default();
        assert_eq!(stats.estimate(false, 0, MINUTE_MS), None);
        stats.record(Some(100.0), Some(1000.0), 5, DEFAULT_ALPHA);
        assert_eq!(stats.estimate(true, 5, MINUTE_MS), Some(100.0));
        assert_eq!(stats.estimate(false, 5, MINUTE_MS), Some(1000.0));
        // 100 + 0.3 * (200 - 100) and 1000 + 0.3 * (2000 - 1000)
        stats.record(Some(200.0), Some(2000.0), 6, DEFAULT_ALPHA);
        assert!(close(stats.estimate(true, 6, MINUTE_MS), 130.0));
        assert!(close(stats.estimate(false, 6, MINUTE_MS), 1300.0));
        // 130 + 0.5 * (30 - 130)
        stats.record(Some(30.0), None, 7, 0.5);
        assert!(close(stats.estimate(true, 7, MINUTE_MS), 80.0));
        assert!(close(stats.estimate(false, 7, MINUTE_MS), 1300.0));
        assert_eq!(stats.samples(), 3);
        assert_eq!(stats.updated_at_ms(), 7);
    }

    #[test]
    fn a_non_streaming_estimate_falls_back_to_time_to_first_byte() {
        let mut stats = LatencyStats::default();
        stats.record(Some(40.0), None, 0, DEFAULT_ALPHA);
        assert_eq!(stats.estimate(false, 0, MINUTE_MS), Some(40.0));
        let mut totals_only = LatencyStats::default();
        totals_only.record(None, Some(900.0), 0, DEFAULT_ALPHA);
        assert_eq!(totals_only.estimate(true, 0, MINUTE_MS), None);
        // The first time to first byte after totals starts its own average.
        totals_only.record(Some(70.0), Some(900.0), 1, DEFAULT_ALPHA);
        assert_eq!(totals_only.estimate(true, 1, MINUTE_MS), Some(70.0));
    }

    #[test]
    fn unusable_samples_change_nothing() {
        let mut stats = LatencyStats::default();
        stats.record(Some(100.0), Some(500.0), 10, DEFAULT_ALPHA);
        let before = stats;
        stats.record(Some(f64::NAN), Some(-1.0), 20, DEFAULT_ALPHA);
        stats.record(Some(f64::INFINITY), None, 30, DEFAULT_ALPHA);
        stats.record(None, None, 40, DEFAULT_ALPHA);
        assert_eq!(stats, before);
        // An alpha out of range is the default one: 100 + 0.3 * (200 - 100).
        stats.record(Some(200.0), None, 50, 7.0);
        assert!(close(stats.estimate(true, 50, MINUTE_MS), 130.0));
    }

    #[test]
    fn an_old_estimate_ages_out_and_restarts_with_the_next_sample() {
        let mut stats = LatencyStats::default();
        stats.record(Some(5000.0), Some(9000.0), 1_000, DEFAULT_ALPHA);
        assert_eq!(
            stats.estimate(true, 1_000 + MINUTE_MS, MINUTE_MS),
            Some(5000.0)
        );
        assert_eq!(stats.estimate(true, 1_001 + MINUTE_MS, MINUTE_MS), None);
        assert_eq!(stats.estimate(false, 1_001 + MINUTE_MS, MINUTE_MS), None);
        // A clock that reads earlier than the sample (another VM's) does not age it.
        assert_eq!(stats.estimate(true, 0, MINUTE_MS), Some(5000.0));

        let mut fresh = stats;
        fresh.restart_if_stale(1_000 + MINUTE_MS, MINUTE_MS);
        assert_eq!(fresh, stats, "still fresh: kept");
        stats.restart_if_stale(1_001 + MINUTE_MS, MINUTE_MS);
        stats.record(Some(200.0), Some(800.0), 2_000 + MINUTE_MS, DEFAULT_ALPHA);
        assert_eq!(
            stats.estimate(true, 2_000 + MINUTE_MS, MINUTE_MS),
            Some(200.0)
        );
        assert_eq!(stats.samples(), 1);
    }

    #[test]
    fn encoding_round_trips_exactly() {
        let mut stats = LatencyStats::default();
        let decoded = LatencyStats::decode(&stats.encode()).unwrap();
        assert_eq!(decoded, stats);
        stats.record(Some(0.1 + 0.2), None, 1_700_000_000_123, DEFAULT_ALPHA);
        stats.record(Some(1.0 / 3.0), Some(12_345.678_9), 1_700_000_000_456, 0.3);
        let encoded = stats.encode();
        assert!(encoded.starts_with(b"v1;"), "{encoded:?}");
        assert_eq!(LatencyStats::decode(&encoded).unwrap(), stats);
        let mut ttfb_unknown = LatencyStats::default();
        ttfb_unknown.record(None, Some(250.0), 9, DEFAULT_ALPHA);
        assert_eq!(ttfb_unknown.encode(), b"v1;-;250;9;1".to_vec());
        assert_eq!(LatencyStats::decode(b"v1;-;250;9;1").unwrap(), ttfb_unknown);
    }

    #[test]
    fn decoding_refuses_garbage_and_says_why() {
        let refusal = |bytes: &[u8]| LatencyStats::decode(bytes).unwrap_err();
        assert!(refusal(b"v2;1;2;3;4").contains("version \"v2\""));
        assert!(refusal(b"v1;1;2;3").contains("expected 5 fields"));
        assert!(refusal(b"v1;1;2;3;4;5").contains("found 6"));
        assert!(refusal(b"v1;NaN;2;3;4").contains("ttfb_ms \"NaN\""));
        assert!(refusal(b"v1;1;inf;3;4").contains("total_ms \"inf\""));
        assert!(refusal(b"v1;-5;2;3;4").contains("non-negative"));
        assert!(refusal(b"v1;fast;2;3;4").contains("not a number"));
        assert!(refusal(b"v1;1;2;-3;4").contains("updated_at_ms"));
        assert!(refusal(b"v1;1;2;3;4.5").contains("samples"));
        assert!(refusal(b"v1;1;2;3;0").contains("samples is 0"));
        assert!(refusal(b"").contains("expected 5 fields"));
        assert!(refusal(&[0xff, 0xfe]).contains("not UTF-8"));
    }
}
