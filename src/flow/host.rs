//! What a request's decision logic needs from the host, and nothing more: `RequestHost` for
//! the request itself, `Worker` for what the worker it runs on keeps across requests. The wasm
//! glue implements them with proxy-wasm calls and the root context's state; tests with
//! recording fakes.

use crate::call::CallRequest;
use crate::config::ReplicaCounters;
use crate::rng::Rng;
use crate::store::{StoreOutages, StoreQuery};

/// Counters an operator watches (Envoy stats under `wasmcustom.ai_lb.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stat {
    /// A request the filter balanced (store read or fallback).
    Balanced,
    /// A request no configuration applies to, or without a body.
    Passthrough,
    /// Fallback to weights: the store failed, timed out or answered unreadably.
    FallbackStoreError,
    /// Fallback to weights: no provider had a usable load.
    FallbackAllUnknown,
    /// Fallback to weights without asking: the store is known down.
    FallbackStoreDown,
    /// Fallback to weights: background refresh has published no loads recent enough.
    FallbackStaleLoads,
    /// The body's model was rewritten.
    Rewritten,
    /// The body was forwarded untouched (not JSON, no model, too large).
    RewriteSkipped,
    /// A request was sent to this provider.
    Selected(String),
    /// Background refresh published fresh loads.
    RefreshPublished,
    /// Background refresh could not read the store (the last loads stay until they age out).
    RefreshFailed,
    /// A request named a model in no pool and was answered 404.
    UnknownModel,
    /// `GET /v1/models` answered by the filter.
    ModelsListed,
    /// A request held for its body that the host never delivered went on unbalanced.
    BodyNotDelivered,
    /// The engine metrics scrape published a provider's load.
    ScrapePublished,
    /// A provider's engine metrics could not be scraped or read.
    ScrapeFailed,
    /// Something that happened to one provider: `ejected`, `restored`, `retried` (a request
    /// was retried on it), `fallback` (chosen while every provider was out), `store_error`
    /// (chosen by weight because the load store failed), `token_unavailable`, `token_restored`,
    /// `rate_limited` (its budget, or a key's, went below a rate-limit floor),
    /// `rate_limited_picked` (chosen while low: nothing else was available).
    Provider(String, &'static str),
    /// A retry on another provider was sent.
    RetrySent,
    /// A retry's reply answered the client.
    RetryRecovered,
    /// Every retry failed too (or none could be sent): the first provider's answer went on.
    RetryExhausted,
    /// A health probe and its outcome.
    ProbeOk,
    ProbeFailed,
    /// The status page was served.
    StatusServed,
    /// A request went to a tier after its pool's first (spillover): the first was full or out.
    Spillover,
    /// A request was routed by its session key (session affinity).
    SessionRouted,
    /// Of those, one sent elsewhere than its session's backend, which was out or over its bound.
    SessionMoved,
    /// Input (prompt) tokens a provider's answers reported, by the model the filter sent them
    /// as (`Sent` counts by the amount).
    InputTokens(String, String),
    /// Output (completion) tokens, likewise.
    OutputTokens(String, String),
}

impl Stat {
    /// The events a `Stat::Provider` counter names, as its call sites spell them.
    pub const PROVIDER_EVENTS: [&'static str; 9] = [
        "ejected",
        "restored",
        "retried",
        "fallback",
        "store_error",
        "token_unavailable",
        "token_restored",
        "rate_limited",
        "rate_limited_picked",
    ];

    /// One of each counter (provider-scoped ones for the provider `<provider>`, once per
    /// event): what docs/metrics.md and README's Stats table must list (tests/docs.rs).
    pub fn all_for_docs() -> Vec<Stat> {
        let provider = || "<provider>".to_string();
        let mut all = Vec::new();
        let mut next = Some(Stat::Balanced);
        // Each variant names the one after it, without a wildcard arm: a variant added to
        // `Stat` does not compile until it is listed here, and so documented.
        while let Some(stat) = next {
            next = match &stat {
                Stat::Balanced => Some(Stat::Passthrough),
                Stat::Passthrough => Some(Stat::UnknownModel),
                Stat::UnknownModel => Some(Stat::ModelsListed),
                Stat::ModelsListed => Some(Stat::BodyNotDelivered),
                Stat::BodyNotDelivered => Some(Stat::Selected(provider())),
                Stat::Selected(_) => Some(Stat::FallbackStoreError),
                Stat::FallbackStoreError => Some(Stat::FallbackStoreDown),
                Stat::FallbackStoreDown => Some(Stat::FallbackAllUnknown),
                Stat::FallbackAllUnknown => Some(Stat::FallbackStaleLoads),
                Stat::FallbackStaleLoads => Some(Stat::Rewritten),
                Stat::Rewritten => Some(Stat::RewriteSkipped),
                Stat::RewriteSkipped => Some(Stat::RefreshPublished),
                Stat::RefreshPublished => Some(Stat::RefreshFailed),
                Stat::RefreshFailed => Some(Stat::ScrapePublished),
                Stat::ScrapePublished => Some(Stat::ScrapeFailed),
                Stat::ScrapeFailed => Some(Stat::Provider(provider(), "")),
                Stat::Provider(..) => Some(Stat::RetrySent),
                Stat::RetrySent => Some(Stat::RetryRecovered),
                Stat::RetryRecovered => Some(Stat::RetryExhausted),
                Stat::RetryExhausted => Some(Stat::ProbeOk),
                Stat::ProbeOk => Some(Stat::ProbeFailed),
                Stat::ProbeFailed => Some(Stat::StatusServed),
                Stat::StatusServed => Some(Stat::Spillover),
                Stat::Spillover => Some(Stat::SessionRouted),
                Stat::SessionRouted => Some(Stat::SessionMoved),
                Stat::SessionMoved => Some(Stat::InputTokens(provider(), "<model>".into())),
                Stat::InputTokens(..) => Some(Stat::OutputTokens(provider(), "<model>".into())),
                Stat::OutputTokens(..) => None,
            };
            if let Stat::Provider(..) = stat {
                for event in Stat::PROVIDER_EVENTS {
                    all.push(Stat::Provider(provider(), event));
                }
            } else {
                all.push(stat);
            }
        }
        all
    }

    pub fn name(&self) -> String {
        match self {
            Stat::Balanced => "ai_lb.requests.balanced".into(),
            Stat::Passthrough => "ai_lb.requests.passthrough".into(),
            Stat::FallbackStoreError => "ai_lb.fallback.store_error".into(),
            Stat::FallbackAllUnknown => "ai_lb.fallback.all_unknown".into(),
            Stat::FallbackStaleLoads => "ai_lb.fallback.stale_loads".into(),
            Stat::FallbackStoreDown => "ai_lb.fallback.store_down".into(),
            Stat::Rewritten => "ai_lb.rewrite.done".into(),
            Stat::RewriteSkipped => "ai_lb.rewrite.skipped".into(),
            Stat::Selected(provider) => format!("ai_lb.selected.{provider}"),
            Stat::RefreshPublished => "ai_lb.refresh.published".into(),
            Stat::RefreshFailed => "ai_lb.refresh.failed".into(),
            Stat::UnknownModel => "ai_lb.requests.unknown_model".into(),
            Stat::ModelsListed => "ai_lb.requests.models_listed".into(),
            Stat::BodyNotDelivered => "ai_lb.requests.body_not_delivered".into(),
            Stat::ScrapePublished => "ai_lb.scrape.published".into(),
            Stat::ScrapeFailed => "ai_lb.scrape.failed".into(),
            Stat::Provider(provider, event) => format!("ai_lb.provider.{provider}.{event}"),
            Stat::RetrySent => "ai_lb.retry.sent".into(),
            Stat::RetryRecovered => "ai_lb.retry.recovered".into(),
            Stat::RetryExhausted => "ai_lb.retry.exhausted".into(),
            Stat::ProbeOk => "ai_lb.probe.ok".into(),
            Stat::ProbeFailed => "ai_lb.probe.failed".into(),
            Stat::StatusServed => "ai_lb.status.served".into(),
            Stat::Spillover => "ai_lb.spillover.spilled".into(),
            Stat::SessionRouted => "ai_lb.session.routed".into(),
            Stat::SessionMoved => "ai_lb.session.moved".into(),
            Stat::InputTokens(provider, model) => {
                format!("ai_lb.gen_ai.tokens.input.provider.{provider}.model.{model}")
            }
            Stat::OutputTokens(provider, model) => {
                format!("ai_lb.gen_ai.tokens.output.provider.{provider}.model.{model}")
            }
        }
    }
}

/// Histograms of a provider's successful answers, in milliseconds from when the filter sent
/// the request on (Envoy histograms under `wasmcustom.ai_lb.gen_ai.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// A stream's first body bytes: its first token.
    FirstToken,
    /// The response's headers.
    FirstByte,
    /// The response's end.
    Duration,
}

impl Timing {
    pub const ALL: [Timing; 3] = [Timing::FirstToken, Timing::FirstByte, Timing::Duration];

    pub fn name(self, provider: &str) -> String {
        let metric = match self {
            Timing::FirstToken => "server.time_to_first_token_ms",
            Timing::FirstByte => "server.time_to_first_byte_ms",
            Timing::Duration => "server.request.duration_ms",
        };
        format!("ai_lb.gen_ai.{metric}.provider.{provider}")
    }
}

/// Given a shared-data value (if any), the value to write (`None`: leave it).
pub type SharedUpdate<'a> = dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>> + 'a;

/// One request as the host shows it: its headers, body and properties, resuming and answering
/// it, the calls it dispatches (their replies come back to it), its response's headers.
///
/// Shared data, counters and the clock are here too, though they are not the request's own:
/// they are host services any callback calls, holding no state of the filter's, and a request's
/// decisions read and write them in the same breath as its headers (loads, health, latencies,
/// round-robin tickets). Kept beside the request, one fake controls everything a decision
/// depends on (the clock with the data it ages) and records everything it does.
pub trait RequestHost {
    fn request_header(&self, name: &str) -> Option<String>;
    fn set_request_header(&mut self, name: &str, value: &str);
    /// False when the host refused (the header may still be there).
    fn remove_request_header(&mut self, name: &str) -> bool;
    /// A host property such as `route_name` or `cluster_name`.
    fn property(&self, name: &str) -> Option<String>;
    /// `size` bytes of the request body buffered so far, from `start` (fewer at its end).
    fn request_body(&self, start: usize, size: usize) -> Option<Vec<u8>>;
    /// Replaces the first `size` bytes of the buffered body (all of it) with `body`.
    fn replace_request_body(&mut self, size: usize, body: &[u8]) -> bool;
    /// Makes the gateway re-match the route after the routing header changed.
    fn clear_route_cache(&mut self);
    /// Resumes a request paused in an earlier callback.
    /// False when the host refused: the request stays where it is.
    fn resume_request(&mut self) -> bool;
    /// Resumes the request paused in this callback from a later turn of the host's event loop
    /// (the next tick), never from within the callback.
    fn resume_request_later(&mut self);
    /// Calls `RequestFlow::on_body_wait_over` from the tick if the request is still held for
    /// its body `BODY_WAIT_MS` from now.
    fn watch_body_wait(&mut self);
    /// Sends the store query; the reply arrives later through `RequestFlow::on_store_reply`.
    fn send_store_query(&mut self, query: &StoreQuery, timeout_ms: u32) -> Result<(), String>;
    fn count(&mut self, stat: Stat) {
        self.count_by(stat, 1);
    }
    fn count_by(&mut self, stat: Stat, by: u64);
    /// A histogram sample of a provider's.
    fn record_timing(&mut self, timing: Timing, provider: &str, ms: u64);
    /// A value in the host's shared data (shared by every worker of one gateway).
    fn shared_data(&self, key: &str) -> Option<Vec<u8>>;
    /// Read-modify-write of a shared-data value under compare-and-swap, retried a few times on
    /// conflict; `update` returns the new value, or `None` to leave it. False when it gave up.
    fn update_shared(&mut self, key: &str, update: &mut SharedUpdate<'_>) -> bool;
    /// Answers the request from the filter (`application/json`), without a provider.
    fn send_local_response(&mut self, status: u32, body: &[u8]) -> bool;
    /// Answers the request with a response of the filter's making (a retry's reply), in place
    /// of the held upstream response.
    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]) -> bool;
    /// A header of the upstream's response (in the response-headers callback).
    fn response_header(&self, name: &str) -> Option<String>;
    /// `size` bytes of the response body's current chunk, from `start` (in a response-body
    /// callback).
    fn response_body(&self, start: usize, size: usize) -> Option<Vec<u8>>;
    /// Every header of the upstream's response (in the response-headers callback): one host
    /// call, where looking up each rate-limit header would be many.
    fn response_headers(&self) -> Vec<(String, String)>;
    /// Every request header, as the upstream would get them now.
    fn request_headers(&self) -> Vec<(String, String)>;
    /// Sends a call of the filter's own; its reply comes back through
    /// `RequestFlow::on_call_reply`.
    fn dispatch(&mut self, call: &CallRequest) -> Result<(), String>;
    /// Lets a held upstream response go on to the client.
    fn resume_response(&mut self);
    /// The host's wall clock, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// What the worker a request runs on (one VM of the gateway) keeps across its requests: state
/// of the filter's own, owned by the root context in the glue.
pub trait Worker {
    /// This worker's identity (random per VM), for its in-flight slot.
    fn id(&self) -> u64;
    /// The worker's random source (strategies, token choice).
    fn rng(&mut self) -> &mut Rng;
    /// Whether each configuration's store is known down, as this worker has seen it.
    fn store_outages(&mut self) -> &mut StoreOutages;
    /// Adds to this worker's in-flight count of a provider in Redis (no reply awaited); the
    /// worker re-asserts its counts on the tick.
    fn count_in_flight_in_redis(&mut self, counters: &ReplicaCounters, provider: usize, delta: i64);
}
