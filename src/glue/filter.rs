//! The HTTP context: forwards each callback to the request's `RequestFlow`.

use std::cell::RefCell;
use std::rc::Rc;

use log::warn;

use super::abi::{self, Action, BufferType, HeaderMap};
use super::host::ProxyHost;
use super::root::Shared;
use super::worker::ProxyWorker;
use crate::call::CallReply;
use crate::flow::{RequestFlow, Verdict};

pub struct Filter {
    context_id: u32,
    /// `None` when the plugin has no valid configuration: every request passes through.
    state: Option<(Rc<Shared>, Rc<RefCell<RequestFlow>>)>,
}

impl Filter {
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>) -> Self {
        let state = shared.map(|shared| {
            let flow = Rc::new(RefCell::new(RequestFlow::new(shared.plugin.clone())));
            (shared, flow)
        });
        Self { context_id, state }
    }

    fn with_flow<T>(
        &self,
        fallback: T,
        step: impl FnOnce(&mut RequestFlow, &mut ProxyHost<'_>, &mut ProxyWorker<'_>) -> T,
    ) -> T {
        match &self.state {
            Some((shared, flow)) => run_step(shared, flow, self.context_id, fallback, step),
            None => fallback,
        }
    }
}

/// Runs `step` with the request's flow, a host bound to the request, and the worker's state; a
/// re-entrant call (the host calling back while a step runs) gets `fallback`.
pub fn run_step<T>(
    shared: &Rc<Shared>,
    flow: &Rc<RefCell<RequestFlow>>,
    context_id: u32,
    fallback: T,
    step: impl FnOnce(&mut RequestFlow, &mut ProxyHost<'_>, &mut ProxyWorker<'_>) -> T,
) -> T {
    let (Ok(mut flow_guard), Some(mut worker)) =
        (flow.try_borrow_mut(), ProxyWorker::borrow(shared))
    else {
        warn!("ai-load-balancer: re-entrant callback ignored");
        return fallback;
    };
    let mut host = ProxyHost::new(shared, context_id, flow);
    step(&mut flow_guard, &mut host, &mut worker)
}

fn action(verdict: Verdict) -> Action {
    match verdict {
        Verdict::Continue => Action::Continue,
        Verdict::Pause => Action::Pause,
    }
}

impl Filter {
    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, worker| {
            flow.on_request_headers(host, end_of_stream, worker)
        }))
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, worker| {
            flow.on_request_body(host, body_size, end_of_stream, worker)
        }))
    }

    pub fn on_request_trailers(&mut self) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, worker| {
            flow.on_request_trailers(host, worker)
        }))
    }

    pub fn on_response_headers(&mut self, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, worker| {
            flow.on_response_headers(host, end_of_stream, worker)
        }))
    }

    pub fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, _| {
            flow.on_response_body(host, body_size, end_of_stream)
        }))
    }

    pub fn on_response_trailers(&mut self) -> Action {
        self.with_flow((), |flow, host, _| flow.on_response_trailers(host));
        Action::Continue
    }

    pub fn on_http_call_response(&mut self, num_headers: usize, body_size: usize) {
        self.with_flow((), |flow, host, worker| {
            let wanted = if flow.awaits_a_retry() {
                ReplyHeaders::All
            } else {
                ReplyHeaders::Status
            };
            let reply = call_reply(num_headers, body_size, wanted);
            flow.on_call_reply(host, reply, worker)
        });
    }

    pub fn on_done(&mut self) {
        #[cfg(feature = "higress")]
        super::redis::forget_context(self.context_id);
        if let Some((shared, _)) = &self.state {
            super::waits::forget(shared, self.context_id);
        }
        self.with_flow((), |flow, host, worker| flow.on_done(host, worker));
    }
}

/// What a call's reader needs of its reply's headers.
#[derive(Clone, Copy)]
pub enum ReplyHeaders {
    /// `:status` alone: a store read, an engine scrape, a probe.
    Status,
    /// Every header: a retry's reply, which goes on to the client.
    All,
}

/// A dispatched call's reply as the host hands it over (in its callback). Reading `:status`
/// alone spares a store read the copy and decoding of every reply header.
pub fn call_reply(num_headers: usize, body_size: usize, wanted: ReplyHeaders) -> CallReply {
    if num_headers == 0 {
        return CallReply::failed();
    }
    let read = match wanted {
        ReplyHeaders::All => abi::headers(HeaderMap::HttpCallResponse)
            .map(|headers| CallReply::from_parts(super::host::lossy_text(headers), Vec::new())),
        ReplyHeaders::Status => abi::header(HeaderMap::HttpCallResponse, ":status")
            .map(|status| CallReply::of_status(status.as_deref())),
    };
    let mut reply = match read {
        Ok(reply) => reply,
        Err(err) => {
            warn!("ai-load-balancer: reading a call's reply headers: {err}");
            return CallReply::failed();
        }
    };
    reply.body = abi::buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    reply
}
