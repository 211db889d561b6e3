//! What operators judge providers by, read from each successful answer as it passes: the
//! tokens its body's `usage` reports and its timings (first byte, a stream's first token, the
//! end). The response is never held: each chunk is read, scanned and let go, and the scanner
//! keeps a few bytes of state whatever the body's size.

use super::phase::Sent;
use super::{RequestHost, Stat, Timing};
use crate::config::BalancerConfig;
use crate::usage::UsageScanner;

/// The label of requests sent with the client's model untouched and no pool by model: the
/// client's model would let any client mint metrics.
const MODEL_AS_SENT: &str = "as_sent";

pub(super) struct ResponseMeter {
    pub sent: Sent,
    /// A server-sent event stream: its first body bytes are its first token.
    stream: bool,
    first_token_seen: bool,
    usage: UsageScanner,
}

impl ResponseMeter {
    /// At a response's headers (after its status was read into `sent`): a meter when the
    /// provider answered successfully, its time to first byte recorded.
    pub fn start(host: &mut dyn RequestHost, config: &BalancerConfig, sent: &Sent) -> Option<Self> {
        if !sent
            .status
            .is_some_and(|status| (200..300).contains(&status))
        {
            return None;
        }
        let provider = &config.providers.get(sent.provider)?.name;
        let now_ms = host.now_ms();
        host.record_timing(Timing::FirstByte, provider, since(sent, now_ms));
        let stream = host
            .response_header("content-type")
            .is_some_and(|value| value.trim_start().starts_with("text/event-stream"));
        Some(Self {
            sent: *sent,
            stream,
            first_token_seen: false,
            usage: UsageScanner::default(),
        })
    }

    /// A response-body callback with `size` bytes of the current chunk.
    pub fn on_chunk(&mut self, host: &mut dyn RequestHost, config: &BalancerConfig, size: usize) {
        if size == 0 {
            return;
        }
        if self.stream && !self.first_token_seen {
            self.first_token_seen = true;
            if let Some(provider) = config.providers.get(self.sent.provider) {
                let ms = since(&self.sent, host.now_ms());
                host.record_timing(Timing::FirstToken, &provider.name, ms);
            }
        }
        if let Some(chunk) = host.response_body(0, size) {
            self.usage.feed(&chunk);
        }
    }

    /// The response ended (`complete`: its last byte passed; otherwise the stream was cut):
    /// the tokens it reported are counted, and a complete answer's duration recorded.
    pub fn finish(self, host: &mut dyn RequestHost, config: &BalancerConfig, complete: bool) {
        let Some(provider) = config.providers.get(self.sent.provider) else {
            return;
        };
        if complete {
            let ms = since(&self.sent, host.now_ms());
            host.record_timing(Timing::Duration, &provider.name, ms);
        }
        count_tokens(host, config, &self.sent, &self.usage);
    }
}

/// A retry's reply that answered the client (read whole by the filter): its tokens.
pub(super) fn count_reply_tokens(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    sent: &Sent,
    body: &[u8],
) {
    let mut usage = UsageScanner::default();
    usage.feed(body);
    count_tokens(host, config, sent, &usage);
}

/// Counts the tokens `usage` read, for the provider and model `sent` names.
fn count_tokens(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    sent: &Sent,
    usage: &UsageScanner,
) {
    let usage = usage.usage();
    if usage.input.is_none() && usage.output.is_none() {
        return;
    }
    let Some(provider) = config.providers.get(sent.provider) else {
        return;
    };
    let model = model_label(config, sent);
    if let Some(tokens) = usage.input.filter(|&tokens| tokens > 0) {
        host.count_by(
            Stat::InputTokens(provider.name.clone(), model.into()),
            tokens,
        );
    }
    if let Some(tokens) = usage.output.filter(|&tokens| tokens > 0) {
        host.count_by(
            Stat::OutputTokens(provider.name.clone(), model.into()),
            tokens,
        );
    }
}

/// The model a request was sent as: its backend's, else its pool's name (a model the
/// configuration lists), else `as_sent`.
fn model_label<'a>(config: &'a BalancerConfig, sent: &Sent) -> &'a str {
    let Some(pool) = config.pools.pools.get(sent.pool) else {
        return MODEL_AS_SENT;
    };
    match pool
        .backends
        .get(sent.backend)
        .and_then(|b| b.model.as_deref())
    {
        Some(model) => model,
        None if !pool.name.is_empty() => &pool.name,
        None => MODEL_AS_SENT,
    }
}

fn since(sent: &Sent, now_ms: u64) -> u64 {
    now_ms.saturating_sub(sent.at_ms)
}
