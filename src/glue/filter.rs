//! The HTTP context: forwards each callback to the request's `RequestFlow`.

use std::cell::RefCell;
use std::rc::Rc;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::host::ProxyHost;
use super::root::Shared;
use crate::flow::{RequestFlow, Verdict};
use crate::rng::Rng;
use crate::store::StoreError;

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
        step: impl FnOnce(&mut RequestFlow, &mut ProxyHost<'_>, &mut Rng) -> T,
    ) -> T {
        match &self.state {
            Some((shared, flow)) => run_step(shared, flow, self.context_id, fallback, step),
            None => fallback,
        }
    }
}

/// Runs `step` with the request's flow, a host bound to the request, and the shared random
/// source; a re-entrant call (the host calling back while a step runs) gets `fallback`.
pub fn run_step<T>(
    shared: &Rc<Shared>,
    flow: &Rc<RefCell<RequestFlow>>,
    context_id: u32,
    fallback: T,
    step: impl FnOnce(&mut RequestFlow, &mut ProxyHost<'_>, &mut Rng) -> T,
) -> T {
    let (Ok(mut flow_guard), Ok(mut rng)) = (flow.try_borrow_mut(), shared.rng.try_borrow_mut())
    else {
        warn!("ai-load-balancer: re-entrant callback ignored");
        return fallback;
    };
    let mut host = ProxyHost::new(shared, context_id, flow);
    step(&mut flow_guard, &mut host, &mut rng)
}

fn action(verdict: Verdict) -> Action {
    match verdict {
        Verdict::Continue => Action::Continue,
        Verdict::Pause => Action::Pause,
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, rng| {
            flow.on_request_headers(host, end_of_stream, rng)
        }))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.with_flow(Verdict::Continue, |flow, host, rng| {
            flow.on_request_body(host, body_size, end_of_stream, rng)
        }))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.with_flow((), |flow, host, _| flow.on_response_headers(host));
        Action::Continue
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let reply = webdis_reply(num_headers, body_size);
        self.with_flow((), |flow, host, rng| flow.on_store_reply(host, reply, rng));
    }

    fn on_done(&mut self) -> bool {
        #[cfg(feature = "higress")]
        super::redis::forget_context(self.context_id);
        self.with_flow((), |flow, host, _| flow.on_done(host));
        true
    }
}

/// The Webdis call's outcome: a 200 body, or why there is none.
pub fn webdis_reply(num_headers: usize, body_size: usize) -> Result<Vec<u8>, StoreError> {
    if num_headers == 0 {
        return Err(StoreError::Unavailable(
            "Webdis call failed, was refused or timed out".into(),
        ));
    }
    // Bytes, not `get_map_value`: the SDK panics on a value that is not UTF-8.
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .unwrap_or_default();
    if status != "200" {
        return Err(StoreError::Unavailable(format!(
            "Webdis answered status {status:?}"
        )));
    }
    match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size) {
        Ok(body) => Ok(body.unwrap_or_default()),
        Err(status) => Err(StoreError::Unavailable(format!(
            "cannot read the Webdis reply: {status:?}"
        ))),
    }
}
