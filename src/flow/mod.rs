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
//! - part of it was seen: the host delivers bodies to paused headers; hold until it ends;
//! - none of it was seen: drop `content-length` (the rewrite may change the length; the gateway
//!   re-frames the body), release the headers, and buffer the body to its end for the rewrite.
//!   Releasing is safe because no body byte has gone past the filter yet.

mod accounting;
mod answers;
mod backends;
mod choose;
mod early_body;
#[cfg(test)]
mod fake_host;
mod host;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod refusal_tests;
mod retry;
mod status_page;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;

use std::rc::Rc;

use log::{debug, info, warn};

pub use answers::NOT_RESUMED;
pub use backends::report as report_health_change;
pub use host::{RequestHost, SharedUpdate, Stat};

/// How long a request held for its body may go without any of it before the filter lets it go
/// unbalanced: clients send the body right behind the headers, so a second without a byte
/// means the host holds it back.
pub const BODY_WAIT_MS: u64 = 1_000;

use crate::config::{BalancerConfig, ConfigRef, PluginConfig, Pool, Refresh, UnknownModel};
use crate::rewrite::{body_facts, rewrite_model, BodyFacts};
use crate::rng::Rng;
use crate::rules::RequestIdentity;
use crate::store::{StoreError, Transition};

/// What the filter tells the host at the end of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing to do for this request: every later callback continues.
    Passthrough,
    /// Headers paused until the whole body is here: the pool or the strategy reads it.
    AwaitingBody,
    /// Headers paused until the store answers.
    AwaitingStore,
    /// Backend chosen; the body is held to its end for the rewrite (the headers too, when the
    /// host delivered body before the choice, so that `content-length` can still be corrected).
    BufferingBody,
    /// Headers released; the body streams on.
    Released,
    /// The upstream's failed response is held while a retry on another provider is out.
    Retrying,
}

/// The backend a request was sent to, for what happens at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    pool: usize,
    backend: usize,
    provider: usize,
    at_ms: u64,
    counted_in_flight: bool,
    /// The fingerprint of the API token it carries.
    token: Option<u64>,
    /// It is the provider's half-open trial, claimed then.
    trial_since: Option<u64>,
    /// Its response's verdict, once recorded.
    verdict: Option<crate::health::Verdict>,
}

pub struct RequestFlow {
    plugin: Rc<PluginConfig>,
    config: Option<ConfigRef>,
    phase: Phase,
    pool: usize,
    facts: BodyFacts,
    sent: Option<Sent>,
    first_byte_ms: Option<u64>,
    body_seen: bool,
    body_complete: bool,
    body_too_large: bool,
    body_size: usize,
    /// `content-length` was removed when the headers were released before the body.
    content_length_dropped: bool,
    /// What a retry on another provider needs (the configuration retries, the body was read);
    /// dropped, with its copy of the body, once no retry can happen.
    retry: Option<retry::RetryState>,
    /// The whole body as read for the choice, kept for the rewrite (without `retry`).
    read_body: Option<Vec<u8>>,
}

impl RequestFlow {
    pub fn new(plugin: Rc<PluginConfig>) -> Self {
        Self {
            plugin,
            config: None,
            phase: Phase::Passthrough,
            pool: 0,
            facts: BodyFacts::default(),
            sent: None,
            first_byte_ms: None,
            body_seen: false,
            body_complete: false,
            body_too_large: false,
            body_size: 0,
            content_length_dropped: false,
            retry: None,
            read_body: None,
        }
    }

    fn config(&self) -> Option<&BalancerConfig> {
        self.config.and_then(|which| self.plugin.get(which))
    }

    pub fn on_request_headers(
        &mut self,
        host: &mut dyn RequestHost,
        end_of_stream: bool,
        rng: &mut Rng,
    ) -> Verdict {
        // A client never chooses its provider: its copies of the control headers go now, before
        // the route table or anything else reads them, whatever becomes of the request.
        if self.strip_control_headers(host) {
            // The route may have been matched on the client's header already.
            host.clear_route_cache();
        }
        self.config = self.applicable_config(host);
        // A handle of our own on the configuration, so that `self` stays free to change.
        let plugin = Rc::clone(&self.plugin);
        let Some(config) = self.config.and_then(|which| plugin.get(which)) else {
            return self.pass_through(host, "no configuration applies to this request");
        };
        if let Some(endpoint) = &config.status_endpoint {
            if status_page::is_asked(host, endpoint) {
                self.phase = Phase::Passthrough;
                if host.send_local_response(200, &status_page::render(host, config)) {
                    host.count(Stat::StatusServed);
                    return Verdict::Pause;
                }
                return Verdict::Continue;
            }
        }
        if config.list_models && answers::is_models_list(host) {
            self.phase = Phase::Passthrough;
            if host.send_local_response(200, &answers::models_list(&config.pools)) {
                host.count(Stat::ModelsListed);
                return Verdict::Pause;
            }
            return Verdict::Continue;
        }
        if !in_scope(host, config) {
            return self.pass_through(host, "path or route not balanced (paths, route_names)");
        }
        if end_of_stream {
            return self.pass_through(host, "request has no body");
        }
        host.count(Stat::Balanced);
        if config.needs_body() {
            // Said once per request at debug level: where a host never delivers the body to
            // held headers (Envoy without allow_on_headers_stop_iteration), this is the last line.
            debug!(
                "ai-load-balancer: holding the headers until the whole body is in (model pools)"
            );
            self.phase = Phase::AwaitingBody;
            host.watch_body_wait();
            return Verdict::Pause;
        }
        self.start_choice(host, rng)
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn RequestHost,
        body_size: usize,
        end_of_stream: bool,
        rng: &mut Rng,
    ) -> Verdict {
        if matches!(self.phase, Phase::Passthrough | Phase::Released) {
            return Verdict::Continue;
        }
        self.body_seen = true;
        self.body_size = body_size;
        self.body_complete = end_of_stream;
        let limit = self.config().map_or(usize::MAX, |c| c.max_body_bytes);
        if body_size > limit && !self.body_too_large {
            self.body_too_large = true;
            debug!("ai-load-balancer: body over max_body_bytes ({limit}), forwarded untouched");
            host.count(Stat::RewriteSkipped);
        }
        match self.phase {
            Phase::BufferingBody if self.content_length_dropped && !end_of_stream => {
                self.forward_body_early(host)
            }
            Phase::BufferingBody => self.release(host),
            Phase::AwaitingBody if self.body_too_large => {
                self.pass_through(host, "body over max_body_bytes: its model cannot be read")
            }
            Phase::AwaitingBody if end_of_stream => self.on_whole_body(host, rng),
            // Until a backend is chosen the body is held (the host buffers it).
            _ => Verdict::Pause,
        }
    }

    /// The client's trailers: the body is complete. While the choice or the rewrite is pending
    /// they are held with the rest: a Continue here makes Envoy continue the whole stream,
    /// held headers included.
    pub fn on_request_trailers(&mut self, host: &mut dyn RequestHost, rng: &mut Rng) -> Verdict {
        match self.phase {
            Phase::Passthrough | Phase::Released | Phase::Retrying => Verdict::Continue,
            Phase::AwaitingStore => {
                self.body_complete = true;
                Verdict::Pause
            }
            Phase::AwaitingBody => {
                self.body_complete = true;
                self.on_whole_body(host, rng)
            }
            Phase::BufferingBody => {
                self.body_complete = true;
                self.end_buffered_body(host)
            }
        }
    }

    /// `BODY_WAIT_MS` after the headers were held for the body: if none of it came, the host
    /// does not deliver bodies to held headers (Envoy without `allow_on_headers_stop_iteration`,
    /// an Istio WasmPlugin) and never will: let the request go on unbalanced rather than wait
    /// for the stream's timeout. True when it let the request go (the caller resumes it).
    pub fn on_body_wait_over(&mut self, host: &mut dyn RequestHost) -> bool {
        if self.phase != Phase::AwaitingBody || self.body_seen {
            return false;
        }
        host.count(Stat::BodyNotDelivered);
        self.pass_through(host, "no body delivered to the held headers");
        resume_or_answer(host);
        true
    }

    /// The whole body is here, headers held: read its model and prompt, find the pool.
    fn on_whole_body(&mut self, host: &mut dyn RequestHost, rng: &mut Rng) -> Verdict {
        let plugin = Rc::clone(&self.plugin);
        let Some(config) = self.config.and_then(|which| plugin.get(which)) else {
            return self.pass_through(host, "no configuration");
        };
        let Some(body) = host.request_body(0, self.body_size) else {
            return self.pass_through(host, "request body unavailable");
        };
        // The pool is known only once the model is read: hash with the prefix length most
        // pools use, and again in the rare case the request's pool hashes another length.
        let prefix_bytes = config.pools.common_prefix_bytes;
        self.facts = match body_facts(&body, prefix_bytes) {
            Ok(facts) => facts,
            Err(skip) => {
                return self.pass_through(host, &format!("body forwarded untouched: {skip}"))
            }
        };
        self.pool = match config.pools.for_model(self.facts.model.as_deref()) {
            Ok(pool) | Err(UnknownModel::Pool(pool)) => pool,
            Err(UnknownModel::PassThrough) => {
                return self.pass_through(host, "model names no pool (unknown_model: pass_through)")
            }
            Err(UnknownModel::Reject) => {
                let body = answers::unknown_model(self.facts.model.as_deref(), &config.pools);
                if !host.send_local_response(404, &body) {
                    return self.pass_through(host, "the 404 for an unknown model was refused");
                }
                self.phase = Phase::Passthrough;
                host.count(Stat::UnknownModel);
                return Verdict::Pause;
            }
        };
        let pool_prefix_bytes = config
            .pools
            .pools
            .get(self.pool)
            .map_or(0, Pool::prefix_bytes);
        if pool_prefix_bytes != prefix_bytes {
            self.facts.prefix_hash = body_facts(&body, pool_prefix_bytes)
                .ok()
                .and_then(|facts| facts.prefix_hash);
        }
        if config.retry.is_some() {
            self.retry = Some(retry::RetryState::new(host, body, &plugin.control_headers));
        } else {
            self.read_body = Some(body);
        }
        self.start_choice(host, rng)
    }

    /// The store's reply (`Ok(body)`) or its failure; resumes the request when it can go on.
    pub fn on_store_reply(
        &mut self,
        host: &mut dyn RequestHost,
        reply: Result<Vec<u8>, StoreError>,
        rng: &mut Rng,
    ) {
        if self.phase != Phase::AwaitingStore {
            return;
        }
        let Some(config) = self.config() else { return };
        let providers = config.providers.len();
        let loads = match config.store() {
            Some(read) => {
                let format = read.format.clone();
                self.store_outcome(host, !matches!(reply, Err(StoreError::Unavailable(_))));
                reply.and_then(|body| crate::store::parse_reply(&format, &body, providers))
            }
            None => Err(StoreError::BadReply("no store configured".into())),
        };
        if self.choose(host, loads, rng) == Verdict::Continue {
            resume_or_answer(host);
        }
    }

    /// Tells the worker's record of the store how this request's ask went, and logs when the
    /// store goes down or comes back (once per change, not per request).
    fn store_outcome(&self, host: &mut dyn RequestHost, reachable: bool) {
        let (Some(which), Some(read)) = (self.config, self.config().and_then(|c| c.store())) else {
            return;
        };
        let Refresh::PerRequest { down } = read.config.refresh else {
            return;
        };
        match host.store_outcome(which, &down, reachable) {
            Some(Transition::WentDown) => warn!(
                "ai-load-balancer: store {} known down after {} failures in a row; requests \
                 choose by weight, and one asks again every {} ms",
                read.config.cluster, down.after_failures, down.retry_ms
            ),
            Some(Transition::CameBack) => {
                info!(
                    "ai-load-balancer: store {} answers again",
                    read.config.cluster
                )
            }
            None => {}
        }
    }

    fn strip_control_headers(&self, host: &mut dyn RequestHost) -> bool {
        let mut stripped = false;
        for name in &self.plugin.control_headers {
            if host.request_header(name).is_some() {
                host.remove_request_header(name);
                stripped = true;
            }
        }
        stripped
    }

    fn applicable_config(&self, host: &dyn RequestHost) -> Option<ConfigRef> {
        if self.plugin.rules.is_empty() {
            return self.plugin.applicable(&RequestIdentity::default());
        }
        let route_name = host.property("route_name");
        let cluster_name = host.property("cluster_name");
        let authority = host.request_header(":authority");
        self.plugin.applicable(&RequestIdentity {
            route_name: route_name.as_deref(),
            cluster_name: cluster_name.as_deref(),
            authority: authority.as_deref(),
        })
    }

    fn pass_through(&mut self, host: &mut dyn RequestHost, why: &str) -> Verdict {
        debug!("ai-load-balancer: not balanced: {why}");
        self.phase = Phase::Passthrough;
        host.count(Stat::Passthrough);
        Verdict::Continue
    }

    /// The model the chosen backend expects, when the body is to be rewritten for it.
    fn model_to_write<'a>(&self, plugin: &'a PluginConfig) -> Option<&'a str> {
        let sent = self.sent?;
        let config = self.config.and_then(|which| plugin.get(which))?;
        let pool = config.pools.pools.get(sent.pool)?;
        let model = pool.backends.get(sent.backend)?.model.as_deref();
        model.filter(|_| !self.body_too_large)
    }

    /// Lets the request go as soon as nothing more needs holding; see the module comment.
    fn release(&mut self, host: &mut dyn RequestHost) -> Verdict {
        let plugin = Rc::clone(&self.plugin);
        let Some(model) = self.model_to_write(&plugin) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        if self.body_complete {
            self.rewrite_body(host, model);
            self.phase = Phase::Released;
            return Verdict::Continue;
        }
        let already_buffering = self.phase == Phase::BufferingBody;
        self.phase = Phase::BufferingBody;
        if already_buffering || self.body_seen {
            // Pausing a body chunk buffers it; pausing headers here keeps them held.
            return Verdict::Pause;
        }
        if !host.remove_request_header("content-length") {
            // A rewritten body would not match the length the headers announce.
            debug!("ai-load-balancer: body forwarded untouched: content-length not removable");
            host.count(Stat::RewriteSkipped);
            self.phase = Phase::Released;
            return Verdict::Continue;
        }
        self.content_length_dropped = true;
        Verdict::Continue
    }

    fn rewrite_body(&mut self, host: &mut dyn RequestHost, model: &str) {
        // The body is read from the host once: a copy already read for the choice (kept by
        // the retry, or for this rewrite) serves again.
        let kept = self.read_body.take();
        let retry_copy = self.retry.as_ref().map(retry::RetryState::body);
        let read_now;
        let body: &[u8] = match (retry_copy, kept.as_deref()) {
            (Some(body), _) | (None, Some(body)) => body,
            (None, None) => {
                read_now = host.request_body(0, self.body_size);
                let Some(body) = &read_now else {
                    debug!("ai-load-balancer: request body unavailable, forwarded untouched");
                    host.count(Stat::RewriteSkipped);
                    return;
                };
                body
            }
        };
        match rewrite_model(body, model) {
            Ok(rewritten) => {
                if !host.replace_request_body(body.len(), &rewritten) {
                    host.count(Stat::RewriteSkipped);
                    return;
                }
                // Read only now, and only while the headers are still held: most requests
                // never need it.
                if !self.content_length_dropped && host.request_header("content-length").is_some() {
                    host.set_request_header("content-length", &rewritten.len().to_string());
                }
                host.count(Stat::Rewritten);
            }
            Err(skip) => {
                debug!("ai-load-balancer: body forwarded untouched: {skip}");
                host.count(Stat::RewriteSkipped);
            }
        }
    }
}

/// Whether the configuration balances this request's path and route (`paths`, `route_names`).
fn in_scope(host: &dyn RequestHost, config: &BalancerConfig) -> bool {
    let path = host.request_header(":path").unwrap_or_default();
    if !config.scope.covers_path(&path) {
        return false;
    }
    // The route name is read only where routes are named: most configurations do not.
    config.scope.route_names.is_none()
        || config
            .scope
            .covers_route(host.property("route_name").as_deref())
}

/// Resumes a request paused in an earlier callback; when the host refuses, answers it (503)
/// rather than leave it held until its stream's timeout.
fn resume_or_answer(host: &mut dyn RequestHost) {
    if !host.resume_request() {
        host.send_local_response(503, answers::NOT_RESUMED);
    }
}
