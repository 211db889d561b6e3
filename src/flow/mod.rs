//! One request's journey: read every provider's load, pick one, set the routing headers (over
//! any a client sent), re-match the route, rewrite the body's model, resume.
//!
//! Headers stay paused until the provider is chosen. The body may arrive before or after the
//! store's reply, and hosts differ: upstream Envoy by default delivers no body to a filter whose
//! headers are paused, while Higress (and Envoy with `allow_on_headers_stop_iteration`) does.
//! So when the reply comes:
//! - the body is complete: rewrite it, correct `content-length`, release everything;
//! - part of it was seen: the host delivers bodies to paused headers; hold until it ends;
//! - none of it was seen: drop `content-length` (the rewrite may change the length; the gateway
//!   re-frames the body), release the headers, and buffer the body to its end for the rewrite.
//!   Releasing is safe because no body byte has gone past the filter yet.

mod host;
#[cfg(test)]
mod tests;

use std::rc::Rc;

use log::{debug, info, warn};

pub use host::{RequestHost, Stat};

use crate::config::{BalancerConfig, ConfigRef, PluginConfig, Refresh};
use crate::refresh::fresh_loads;
use crate::rewrite::rewrite_model;
use crate::rng::Rng;
use crate::rules::RequestIdentity;
use crate::selection::{choose, Reason};
use crate::store::{parse_reply, StoreError, Transition};

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
    /// Headers paused until the store answers.
    AwaitingStore,
    /// Provider chosen; the body is held to its end for the rewrite (the headers too, when the
    /// host delivered body before the reply, so that `content-length` can still be corrected).
    BufferingBody { provider: usize },
    /// Headers released; the body streams on.
    Released,
}

pub struct RequestFlow {
    plugin: Rc<PluginConfig>,
    config: Option<ConfigRef>,
    phase: Phase,
    body_seen: bool,
    body_complete: bool,
    body_too_large: bool,
    body_size: usize,
    /// `content-length` was removed when the headers were released before the body.
    content_length_dropped: bool,
}

impl RequestFlow {
    pub fn new(plugin: Rc<PluginConfig>) -> Self {
        Self {
            plugin,
            config: None,
            phase: Phase::Passthrough,
            body_seen: false,
            body_complete: false,
            body_too_large: false,
            body_size: 0,
            content_length_dropped: false,
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
        self.config = self.applicable_config(host);
        // A handle of our own on the configuration, so that `self` stays free to change.
        let plugin = Rc::clone(&self.plugin);
        let Some((which, config)) = self
            .config
            .and_then(|which| plugin.get(which).map(|config| (which, config)))
        else {
            return self.pass_through(host, "no configuration applies to this request");
        };
        if end_of_stream {
            return self.pass_through(host, "request has no body");
        }
        host.count(Stat::Balanced);
        // The headers this configuration writes are overwritten when a provider is chosen (a
        // client's copies included); any other configuration's are removed now, unread. Each
        // host call costs the gateway about a microsecond, on every request.
        for name in &plugin.control_headers {
            if *name != config.selected_provider_header && *name != config.rewrite_model_header {
                host.remove_request_header(name);
            }
        }
        let down = match config.store.refresh {
            Refresh::PerRequest { down } => down,
            Refresh::Background { max_age_ms, .. } => {
                // Requests never wait for the store: they use what background refresh published.
                let published = host.shared_data(&config.shared_keys.loads);
                let loads = fresh_loads(
                    published.as_deref(),
                    config.providers.len(),
                    host.now_ms(),
                    u64::from(max_age_ms),
                )
                .map_err(|stale| StoreError::Stale(stale.to_string()));
                return self.select(host, loads, rng);
            }
        };
        if !host.store_may_be_asked(which, &down, config.store.timeout_ms) {
            return self.select(host, Err(StoreError::KnownDown), rng);
        }
        match host.send_store_query(&config.query, config.store.timeout_ms) {
            Ok(()) => {
                self.phase = Phase::AwaitingStore;
                Verdict::Pause
            }
            Err(why) => {
                debug!("ai-load-balancer: store call not sent: {why}");
                self.store_outcome(host, false);
                self.select(host, Err(StoreError::Unavailable(why)), rng)
            }
        }
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn RequestHost,
        body_size: usize,
        end_of_stream: bool,
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
            Phase::BufferingBody { provider } => self.release(host, provider),
            // Until a provider is chosen the body is held (the host buffers it).
            _ => Verdict::Pause,
        }
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
        let providers = self.config().map_or(0, |c| c.providers.len());
        self.store_outcome(host, !matches!(reply, Err(StoreError::Unavailable(_))));
        let loads = reply.and_then(|body| parse_reply(&body, providers));
        if self.select(host, loads, rng) == Verdict::Continue {
            host.resume_request();
        }
    }

    /// Tells the worker's record of the store how this request's ask went, and logs when the
    /// store goes down or comes back (once per change, not per request).
    fn store_outcome(&self, host: &mut dyn RequestHost, reachable: bool) {
        let (Some(which), Some(config)) = (self.config, self.config()) else {
            return;
        };
        let Refresh::PerRequest { down } = config.store.refresh else {
            return;
        };
        match host.store_outcome(which, &down, reachable) {
            Some(Transition::WentDown) => warn!(
                "ai-load-balancer: store {} known down after {} failures in a row; requests \
                 choose by weight, and one asks again every {} ms",
                config.store.cluster, down.after_failures, down.retry_ms
            ),
            Some(Transition::CameBack) => {
                info!(
                    "ai-load-balancer: store {} answers again",
                    config.store.cluster
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
        if self.strip_control_headers(host) {
            // The route was matched on the client's header; match again without it.
            host.clear_route_cache();
        }
        Verdict::Continue
    }

    fn select(
        &mut self,
        host: &mut dyn RequestHost,
        loads: Result<Vec<Option<f64>>, StoreError>,
        rng: &mut Rng,
    ) -> Verdict {
        let Some(config) = self.config() else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        if let Err(err) = &loads {
            debug!("ai-load-balancer: {err}; choosing by weight");
        }
        let fallback_stat = match loads {
            Err(StoreError::Stale(_)) => Stat::FallbackStaleLoads,
            Err(StoreError::KnownDown) => Stat::FallbackStoreDown,
            _ => Stat::FallbackStoreError,
        };
        let choice = choose(loads.as_deref().ok(), config.weights(), rng);
        let Some(provider) = config.providers.get(choice.index) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        host.set_request_header(&config.selected_provider_header, &provider.name);
        match &provider.model {
            Some(model) => host.set_request_header(&config.rewrite_model_header, model),
            // A client's copy must not reach the route table.
            None => host.remove_request_header(&config.rewrite_model_header),
        }
        host.clear_route_cache();
        match choice.reason {
            Reason::LeastLoad => {}
            Reason::StoreError => host.count(fallback_stat),
            Reason::AllUnknown => host.count(Stat::FallbackAllUnknown),
        }
        host.count(Stat::Selected(provider.name.clone()));
        self.release(host, choice.index)
    }

    /// Lets the request go as soon as nothing more needs holding; see the module comment.
    fn release(&mut self, host: &mut dyn RequestHost, provider: usize) -> Verdict {
        let plugin = Rc::clone(&self.plugin);
        let model = self
            .config
            .and_then(|which| plugin.get(which))
            .and_then(|c| c.providers.get(provider))
            .and_then(|p| p.model.as_deref());
        let Some(model) = model.filter(|_| !self.body_too_large) else {
            self.phase = Phase::Released;
            return Verdict::Continue;
        };
        if self.body_complete {
            self.rewrite_body(host, model);
            self.phase = Phase::Released;
            return Verdict::Continue;
        }
        let already_buffering = matches!(self.phase, Phase::BufferingBody { .. });
        self.phase = Phase::BufferingBody { provider };
        if already_buffering || self.body_seen {
            // Pausing a body chunk buffers it; pausing headers here keeps them held.
            return Verdict::Pause;
        }
        host.remove_request_header("content-length");
        self.content_length_dropped = true;
        Verdict::Continue
    }

    fn rewrite_body(&mut self, host: &mut dyn RequestHost, model: &str) {
        let Some(body) = host.request_body(self.body_size) else {
            debug!("ai-load-balancer: request body unavailable, forwarded untouched");
            host.count(Stat::RewriteSkipped);
            return;
        };
        match rewrite_model(&body, model) {
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
