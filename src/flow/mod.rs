//! One request's journey: find its pool (from the body's model, when pools are by model), read
//! the providers' loads, pick a backend, set the routing headers (over any a client sent),
//! re-match the route, rewrite the body's model, resume; at the end, account for it (in-flight
//! counts, latency).
//!
//! Headers stay paused until the backend is chosen. When the pool or the strategy needs the body
//! (a `models` map, prefix affinity, least latency), the filter waits for the whole body with
//! the headers held: the host must deliver body to paused headers (Higress does; upstream Envoy
//! needs `allow_on_headers_stop_iteration: true`). Otherwise the choice is made on the headers,
//! and the body may arrive before or after the store's reply; hosts differ: upstream Envoy by
//! default delivers no body to a filter whose headers are paused, while Higress does. So when
//! the choice is made:
//! - the body is complete: rewrite it, correct `content-length`, release everything;
//! - otherwise drop `content-length` (the rewrite may change the length; the gateway re-frames
//!   the body), rewrite the part the host holds (if any came: the host delivers bodies to
//!   paused headers), release the headers, and rewrite the rest chunk by chunk as it passes
//!   (src/flow/streaming.rs): neither the gateway nor the filter holds the body, whatever its
//!   size. Releasing is safe because no body byte has gone past the filter unrewritten. Only
//!   when the held part ends inside the rewrite's window (a key or a `model` value cut in two)
//!   do the headers stay held, until the next chunk closes it.
//!
//! Each event below takes the request's phase (src/flow/phase.rs), acts, and returns the next
//! one: every transition is in this file.

mod accounting;
mod answers;
mod backends;
mod body;
mod choose;
#[cfg(test)]
mod fake_host;
mod host;
#[cfg(test)]
mod memory_tests;
mod meter;
#[cfg(test)]
mod meter_tests;
mod phase;
mod rate_limits;
#[cfg(test)]
mod refusal_tests;
mod request;
mod retry;
mod status_page;
mod streaming;
#[cfg(test)]
mod streaming_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;

use std::rc::Rc;

use log::debug;

pub use answers::NOT_RESUMED;
pub use backends::report as report_health_change;
pub use host::{RequestHost, SharedUpdate, Stat, Timing, Worker};

/// How long a request held for its body may go without any of it before the filter lets it go
/// unbalanced: clients send the body right behind the headers, so a second without a byte
/// means the host holds it back.
pub const BODY_WAIT_MS: u64 = 1_000;

use crate::call::CallReply;
use crate::config::{ConfigRef, PluginConfig};
use crate::health::Verdict as HealthVerdict;
use crate::store::StoreError;
use meter::ResponseMeter;
use phase::{Basis, Body, BodyCopy, Phase, ReadBody, Sent};
use request::{pass_through, resume_or_answer, Balanced};
use streaming::{Chunk, Streaming};

/// What the filter tells the host at the end of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Pause,
}

/// Where an event leaves the request, and what it tells the host.
type Step<T = Verdict> = (Phase, T);

pub struct RequestFlow {
    plugin: Rc<PluginConfig>,
    phase: Phase,
    /// The provider's successful answer, metered as it passes.
    meter: Option<ResponseMeter>,
}

impl RequestFlow {
    pub fn new(plugin: Rc<PluginConfig>) -> Self {
        Self {
            plugin,
            phase: Phase::Passthrough,
            meter: None,
        }
    }

    /// Runs an event on the phase taken out of the flow, and keeps the phase it returns.
    fn step<T>(&mut self, event: impl FnOnce(&Self, Phase) -> Step<T>) -> T {
        let phase = std::mem::replace(&mut self.phase, Phase::Passthrough);
        let (next, out) = event(self, phase);
        self.phase = next;
        out
    }

    pub fn on_request_headers(
        &mut self,
        host: &mut dyn RequestHost,
        end_of_stream: bool,
        worker: &mut dyn Worker,
    ) -> Verdict {
        // A new request: whatever the phase was, it starts again.
        self.step(
            |flow, _| match request::on_headers(&flow.plugin, host, end_of_stream) {
                Ok(Balanced::AfterBody(config)) => {
                    host.watch_body_wait();
                    let body = Body::Unseen;
                    (Phase::AwaitingBody { config, body }, Verdict::Pause)
                }
                Ok(Balanced::Now(config)) => {
                    flow.start_choice(host, worker, config, Basis::Headers(Body::Unseen))
                }
                Err(handled) => request::handled(host, handled),
            },
        )
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn RequestHost,
        body_size: usize,
        end_of_stream: bool,
        worker: &mut dyn Worker,
    ) -> Verdict {
        self.step(|flow, phase| match phase {
            Phase::AwaitingBody { config, body } => {
                match flow.grown(host, config, body, body_size, end_of_stream) {
                    Body::TooLarge => {
                        pass_through(host, "body over max_body_bytes: its model cannot be read")
                    }
                    Body::Whole(size) => flow.read_whole_body(host, worker, config, size),
                    body => (Phase::AwaitingBody { config, body }, Verdict::Pause),
                }
            }
            Phase::AwaitingStore {
                config,
                basis: Basis::Headers(body),
            } => {
                // Held (the host buffers it) until a backend is chosen.
                let body = flow.grown(host, config, body, body_size, end_of_stream);
                let basis = Basis::Headers(body);
                (Phase::AwaitingStore { config, basis }, Verdict::Pause)
            }
            Phase::Streaming(mut streaming) => {
                let Some(model) = flow.model_for(&streaming.sent) else {
                    let sent = streaming.sent;
                    return (Phase::Released { sent, retry: None }, Verdict::Continue);
                };
                match streaming.on_chunk(host, model, body_size, end_of_stream) {
                    Chunk::Passed => (Phase::Streaming(streaming), Verdict::Continue),
                    Chunk::Held => (Phase::Streaming(streaming), Verdict::Pause),
                    Chunk::Done => {
                        let sent = streaming.sent;
                        (Phase::Released { sent, retry: None }, Verdict::Continue)
                    }
                }
            }
            // Read whole already: nothing more comes.
            phase @ Phase::AwaitingStore { .. } => (phase, Verdict::Pause),
            phase @ (Phase::Passthrough | Phase::Released { .. } | Phase::Retrying { .. }) => {
                (phase, Verdict::Continue)
            }
        })
    }

    /// The client's trailers: the body is complete. While the choice or the rewrite is pending
    /// they are held with the rest: a Continue here makes Envoy continue the whole stream,
    /// held headers included.
    pub fn on_request_trailers(
        &mut self,
        host: &mut dyn RequestHost,
        worker: &mut dyn Worker,
    ) -> Verdict {
        self.step(|flow, phase| match phase {
            Phase::AwaitingBody { config, body } => {
                // Never too large here: such a body passed through.
                let size = match body.ended() {
                    Body::Whole(size) => size,
                    Body::Unseen | Body::Partial(_) | Body::TooLarge => 0,
                };
                flow.read_whole_body(host, worker, config, size)
            }
            Phase::AwaitingStore {
                config,
                basis: Basis::Headers(body),
            } => {
                let basis = Basis::Headers(body.ended());
                (Phase::AwaitingStore { config, basis }, Verdict::Pause)
            }
            phase @ Phase::AwaitingStore { .. } => (phase, Verdict::Pause),
            Phase::Streaming(mut streaming) => {
                let verdict = streaming.on_trailers(host);
                let sent = streaming.sent;
                (Phase::Released { sent, retry: None }, verdict)
            }
            phase @ (Phase::Passthrough | Phase::Released { .. } | Phase::Retrying { .. }) => {
                (phase, Verdict::Continue)
            }
        })
    }

    /// `BODY_WAIT_MS` after the headers were held for the body: if none of it came, the host
    /// does not deliver bodies to held headers (Envoy without `allow_on_headers_stop_iteration`,
    /// an Istio WasmPlugin) and never will: let the request go on unbalanced rather than wait
    /// for the stream's timeout. True when it let the request go (the caller resumes it).
    pub fn on_body_wait_over(&mut self, host: &mut dyn RequestHost) -> bool {
        self.step(|_, phase| match phase {
            Phase::AwaitingBody {
                body: Body::Unseen, ..
            } => {
                host.count(Stat::BodyNotDelivered);
                let (next, _) = pass_through(host, "no body delivered to the held headers");
                resume_or_answer(host);
                (next, true)
            }
            phase => (phase, false),
        })
    }

    /// The store's reply (`Ok(body)`) or its failure; resumes the request when it can go on.
    pub fn on_store_reply(
        &mut self,
        host: &mut dyn RequestHost,
        reply: Result<Vec<u8>, StoreError>,
        worker: &mut dyn Worker,
    ) {
        self.step(|flow, phase| match phase {
            Phase::AwaitingStore { config, basis } => {
                flow.store_replied(host, worker, config, basis, reply)
            }
            phase => (phase, ()),
        });
    }

    /// Whether the call out is a retry, whose reply's headers go on to the client (a store's
    /// reply is read for its status and body alone).
    pub fn awaits_a_retry(&self) -> bool {
        matches!(self.phase, Phase::Retrying { .. })
    }

    /// A dispatched call came back: the store's reply, or a retry's.
    pub fn on_call_reply(
        &mut self,
        host: &mut dyn RequestHost,
        reply: CallReply,
        worker: &mut dyn Worker,
    ) {
        self.step(|flow, phase| match phase {
            Phase::AwaitingStore { config, basis } => {
                flow.store_replied(host, worker, config, basis, reply.into_store_reply())
            }
            Phase::Retrying {
                sent,
                mut retry,
                out,
            } => {
                let Some(config) = flow.plugin.get(sent.config) else {
                    return (Phase::Retrying { sent, retry, out }, ());
                };
                match retry::on_reply(host, worker, config, &sent, &mut retry, out, reply) {
                    Some(out) => (Phase::Retrying { sent, retry, out }, ()),
                    None => (Phase::Released { sent, retry: None }, ()),
                }
            }
            phase => (phase, ()),
        });
    }

    /// The upstream's response headers are here: judge the provider, and when it failed, try
    /// another (`Pause` holds the response while a retry is out); a successful answer is
    /// metered from here on.
    pub fn on_response_headers(
        &mut self,
        host: &mut dyn RequestHost,
        end: bool,
        worker: &mut dyn Worker,
    ) -> Verdict {
        let verdict = self.judge_response(host, worker);
        if self.meter.is_none() && verdict == Verdict::Continue {
            let sent = self.phase.sent().copied();
            let config = sent.and_then(|sent| self.plugin.get(sent.config).map(|c| (sent, c)));
            self.meter =
                config.and_then(|(sent, config)| ResponseMeter::start(host, config, &sent));
            if end {
                self.finish_meter(host, true);
            }
        }
        verdict
    }

    /// The provider's verdict, and a retry when it failed.
    fn judge_response(&mut self, host: &mut dyn RequestHost, worker: &mut dyn Worker) -> Verdict {
        self.step(|flow, phase| match phase {
            Phase::Released { mut sent, retry } => {
                let Some(config) = flow.plugin.get(sent.config) else {
                    return (Phase::Released { sent, retry }, Verdict::Continue);
                };
                let Some(verdict) = retry::judge_response(host, config, &mut sent) else {
                    // Nothing judged (now): what was stays.
                    return (Phase::Released { sent, retry }, Verdict::Continue);
                };
                let out = match retry {
                    Some(mut retry) if verdict != HealthVerdict::Success => {
                        retry::retry_elsewhere(host, worker, config, &sent, &mut retry)
                            .map(|out| (retry, out))
                    }
                    _ => None,
                };
                match out {
                    Some((retry, out)) => (Phase::Retrying { sent, retry, out }, Verdict::Pause),
                    // No retry can happen any more: its copy of the body goes.
                    None => (Phase::Released { sent, retry: None }, Verdict::Continue),
                }
            }
            // A response before the whole request: no retry can be made of it.
            Phase::Streaming(mut streaming) => {
                if let Some(config) = flow.plugin.get(streaming.sent.config) {
                    retry::judge_response(host, config, &mut streaming.sent);
                }
                (Phase::Streaming(streaming), Verdict::Continue)
            }
            phase => (phase, Verdict::Continue),
        })
    }

    /// While a retry is out the failed response's body is held back (it is dropped when the
    /// retry answers). A metered answer's chunk is read as it passes.
    pub fn on_response_body(
        &mut self,
        host: &mut dyn RequestHost,
        size: usize,
        end: bool,
    ) -> Verdict {
        if let Phase::Retrying { .. } = self.phase {
            return Verdict::Pause;
        }
        if let Some(meter) = self.meter.as_mut() {
            if let Some(config) = self.plugin.get(meter.sent.config) {
                meter.on_chunk(host, config, size);
            }
            if end {
                self.finish_meter(host, true);
            }
        }
        Verdict::Continue
    }

    /// Trailers end the response.
    pub fn on_response_trailers(&mut self, host: &mut dyn RequestHost) {
        self.finish_meter(host, true);
    }

    fn finish_meter(&mut self, host: &mut dyn RequestHost, complete: bool) {
        let Some(meter) = self.meter.take() else {
            return;
        };
        if let Some(config) = self.plugin.get(meter.sent.config) {
            meter.finish(host, config, complete);
        }
    }

    /// The stream ended (completed, reset or aborted).
    pub fn on_done(&mut self, host: &mut dyn RequestHost, worker: &mut dyn Worker) {
        self.finish_meter(host, false);
        let phase = std::mem::replace(&mut self.phase, Phase::Passthrough);
        let Some(sent) = phase.sent() else { return };
        if let Some(config) = self.plugin.get(sent.config) {
            accounting::request_ended(host, worker, config, sent);
        }
    }
}

/// The transitions' steps.
impl RequestFlow {
    /// The whole body is here, headers held: read it, then choose.
    fn read_whole_body(
        &self,
        host: &mut dyn RequestHost,
        worker: &mut dyn Worker,
        which: ConfigRef,
        size: usize,
    ) -> Step {
        match request::read_whole_body(&self.plugin, host, which, size) {
            Ok(read) => self.start_choice(host, worker, which, Basis::Body(read)),
            Err(handled) => request::handled(host, handled),
        }
    }

    /// Reads the loads the configuration's source gives (now, or by asking the store), then
    /// chooses.
    fn start_choice(
        &self,
        host: &mut dyn RequestHost,
        worker: &mut dyn Worker,
        which: ConfigRef,
        basis: Basis,
    ) -> Step {
        let Some(config) = self.plugin.get(which) else {
            return pass_through(host, "no configuration");
        };
        match choose::loads(host, worker, which, config) {
            choose::LoadsNow::Asked => (
                Phase::AwaitingStore {
                    config: which,
                    basis,
                },
                Verdict::Pause,
            ),
            choose::LoadsNow::Read(loads) => self.choose(host, worker, which, basis, loads),
        }
    }

    fn store_replied(
        &self,
        host: &mut dyn RequestHost,
        worker: &mut dyn Worker,
        which: ConfigRef,
        basis: Basis,
        reply: Result<Vec<u8>, StoreError>,
    ) -> Step<()> {
        let Some(config) = self.plugin.get(which) else {
            let phase = Phase::AwaitingStore {
                config: which,
                basis,
            };
            return (phase, ());
        };
        let loads = choose::read_reply(host, worker, which, config, reply);
        let (next, verdict) = self.choose(host, worker, which, basis, loads);
        if verdict == Verdict::Continue {
            resume_or_answer(host);
        }
        (next, ())
    }

    fn choose(
        &self,
        host: &mut dyn RequestHost,
        worker: &mut dyn Worker,
        which: ConfigRef,
        basis: Basis,
        loads: Result<crate::load::Loads, StoreError>,
    ) -> Step {
        let Some(config) = self.plugin.get(which) else {
            return (Phase::Passthrough, Verdict::Continue);
        };
        match choose::send(host, worker, which, config, &basis, loads) {
            Some(sent) => self.sent_on(host, sent, basis),
            // Nothing could be picked: the request goes on as it is.
            None => (Phase::Passthrough, Verdict::Continue),
        }
    }

    /// The backend is chosen: let the request go as soon as nothing more needs holding; see
    /// the module comment.
    fn sent_on(&self, host: &mut dyn RequestHost, sent: Sent, basis: Basis) -> Step {
        let model = self.model_for(&sent);
        let body = match basis {
            Basis::Body(ReadBody { copy, .. }) => {
                // The body was read once, for the choice: that copy serves the rewrite.
                let retry = match copy {
                    BodyCopy::ForRewrite(body) => {
                        if let Some(model) = model {
                            body::rewrite(host, model, &body);
                        }
                        None
                    }
                    BodyCopy::ForRetry(request) => {
                        let retry = retry::Retry::new(request, sent.provider);
                        if let Some(model) = model {
                            body::rewrite(host, model, retry.body());
                        }
                        Some(retry)
                    }
                };
                return (Phase::Released { sent, retry }, Verdict::Continue);
            }
            Basis::Headers(body) => body,
        };
        let released = (Phase::Released { sent, retry: None }, Verdict::Continue);
        let Some(model) = model else { return released };
        match body {
            Body::TooLarge => released,
            Body::Whole(size) => {
                body::rewrite_from_host(host, model, size);
                released
            }
            Body::Unseen | Body::Partial(_) => {
                if !host.remove_request_header("content-length") {
                    // A rewritten body would not match the length the headers announce.
                    debug!(
                        "ai-load-balancer: body forwarded untouched: content-length not removable"
                    );
                    host.count(Stat::RewriteSkipped);
                    return released;
                }
                let mut streaming = Streaming::new(sent);
                let Body::Partial(size) = body else {
                    return (Phase::Streaming(streaming), Verdict::Continue);
                };
                // Part of it came while the choice was made (the host delivers bodies to held
                // headers): what the host holds is rewritten now, the rest as it passes.
                match streaming.on_chunk(host, model, size, false) {
                    Chunk::Passed => (Phase::Streaming(streaming), Verdict::Continue),
                    // It ends inside the window: the headers stay held until more comes.
                    Chunk::Held => (Phase::Streaming(streaming), Verdict::Pause),
                    Chunk::Done => released,
                }
            }
        }
    }

    /// The model the chosen backend expects, when the body is to be rewritten for it.
    fn model_for(&self, sent: &Sent) -> Option<&str> {
        let config = self.plugin.get(sent.config)?;
        let pool = config.pools.pools.get(sent.pool)?;
        pool.backends.get(sent.backend)?.model.as_deref()
    }

    /// The body after a body callback; said and counted once, when it turns out too large.
    fn grown(
        &self,
        host: &mut dyn RequestHost,
        config: ConfigRef,
        body: Body,
        size: usize,
        end: bool,
    ) -> Body {
        let limit = self
            .plugin
            .get(config)
            .map_or(usize::MAX, |c| c.max_body_bytes);
        let grown = body.grown(size, end, limit);
        if grown == Body::TooLarge && body != Body::TooLarge {
            debug!("ai-load-balancer: body over max_body_bytes ({limit}), forwarded untouched");
            host.count(Stat::RewriteSkipped);
        }
        grown
    }
}
