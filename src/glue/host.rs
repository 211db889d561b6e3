//! `RequestHost` on proxy-wasm: each call on the request's own context, host failures logged
//! with what was attempted and never turned into a failed request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};

use super::abi::{self, BufferType, HeaderMap, Status, StreamType};

use super::root::Shared;
use crate::call::CallRequest;
use crate::flow::{RequestFlow, RequestHost, Stat, Timing};
use crate::store::StoreQuery;

const CAS_TRIES: usize = 8;

pub struct ProxyHost<'a> {
    shared: &'a Rc<Shared>,
    context_id: u32,
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    flow: &'a Rc<RefCell<RequestFlow>>,
    /// The clock as first read in this callback: one host call per callback, not one per
    /// decision that needs the time (nothing measures a duration within one callback).
    now_ms: Cell<Option<u64>>,
}

impl<'a> ProxyHost<'a> {
    pub fn new(
        shared: &'a Rc<Shared>,
        context_id: u32,
        flow: &'a Rc<RefCell<RequestFlow>>,
    ) -> Self {
        Self {
            shared,
            context_id,
            flow,
            now_ms: Cell::new(None),
        }
    }
}

impl RequestHost for ProxyHost<'_> {
    fn request_header(&self, name: &str) -> Option<String> {
        // As bytes: a client's obs-text header such as `x-selected-provider: \xff` reads as
        // lossy text.
        abi::header(HeaderMap::Request, name)
            .map_err(|err| warn!("ai-load-balancer: reading request header {name}: {err}"))
            .ok()
            .flatten()
            .map(text)
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        if let Err(err) = abi::set_header(HeaderMap::Request, name, value) {
            warn!("ai-load-balancer: setting request header {name}: {err}");
        }
    }

    fn remove_request_header(&mut self, name: &str) -> bool {
        abi::remove_header(HeaderMap::Request, name)
            .map_err(|err| warn!("ai-load-balancer: removing request header {name}: {err}"))
            .is_ok()
    }

    fn property(&self, name: &str) -> Option<String> {
        // `source.address` is the path ["source", "address"].
        let mut path = Vec::new();
        for segment in name.split('.') {
            path.push(segment);
        }
        let bytes = abi::property(&path)
            .map_err(|err| debug!("ai-load-balancer: property {name}: {err}"))
            .ok()
            .flatten()?;
        String::from_utf8(bytes).ok()
    }

    fn request_body(&self, start: usize, size: usize) -> Option<Vec<u8>> {
        abi::buffer(BufferType::RequestBody, start, size)
            .map_err(|err| warn!("ai-load-balancer: reading the request body: {err}"))
            .ok()
            .flatten()
    }

    fn replace_request_body(&mut self, size: usize, body: &[u8]) -> bool {
        abi::set_buffer(BufferType::RequestBody, 0, size, body)
            .map_err(|err| warn!("ai-load-balancer: replacing the request body: {err}"))
            .is_ok()
    }

    fn clear_route_cache(&mut self) {
        // Upstream Envoy re-matches on this foreign function; Higress re-matches on any header
        // change by itself and may not know the function, which is fine.
        if let Err(err) = abi::call_foreign_function("clear_route_cache", &[]) {
            debug!("ai-load-balancer: clear_route_cache not available: {err}");
        }
    }

    fn resume_request(&mut self) -> bool {
        abi::continue_stream(StreamType::Request)
            .map_err(|err| warn!("ai-load-balancer: resuming the request: {err}"))
            .is_ok()
    }

    fn resume_request_later(&mut self) {
        super::waits::resume_on_next_tick(self.shared, self.context_id);
    }

    fn watch_body_wait(&mut self) {
        super::waits::watch_body(self.shared, self.context_id, self.flow);
    }

    fn send_store_query(&mut self, query: &StoreQuery, timeout_ms: u32) -> Result<(), String> {
        match query {
            StoreQuery::Webdis { .. } => {
                dispatch_webdis(query, timeout_ms, self.context_id).map(|_| ())
            }
            #[cfg(feature = "higress")]
            StoreQuery::Resp { upstream, command } => {
                let (shared, flow) = (Rc::downgrade(self.shared), Rc::downgrade(self.flow));
                let context_id = self.context_id;
                let resume = move |reply| {
                    let (Some(shared), Some(flow)) = (shared.upgrade(), flow.upgrade()) else {
                        return; // the request ended first
                    };
                    super::filter::run_step(
                        &shared,
                        &flow,
                        context_id,
                        (),
                        |flow, host, worker| flow.on_store_reply(host, reply, worker),
                    );
                };
                super::redis::call(upstream, command, context_id, Box::new(resume))
            }
            #[cfg(not(feature = "higress"))]
            StoreQuery::Resp { .. } => {
                Err("RESP needs the Higress build (ai-load-balancer.wasm)".into())
            }
        }
    }

    fn count_by(&mut self, stat: Stat, by: u64) {
        self.shared.count_by(stat, by);
    }

    fn record_timing(&mut self, timing: Timing, provider: &str, ms: u64) {
        self.shared.record(timing, provider, ms);
    }

    fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        abi::shared_data(key)
            .map_err(|err| warn!("ai-load-balancer: reading shared data {key}: {err}"))
            .ok()?
            .0
    }

    fn now_ms(&self) -> u64 {
        if let Some(now_ms) = self.now_ms.get() {
            return now_ms;
        }
        let now_ms = super::now_ms();
        self.now_ms.set(Some(now_ms));
        now_ms
    }

    fn update_shared(&mut self, key: &str, update: &mut crate::flow::SharedUpdate<'_>) -> bool {
        update_shared_data(key, update)
    }

    fn send_local_response(&mut self, status: u32, body: &[u8]) -> bool {
        let headers = [("content-type", "application/json")];
        abi::send_local_response(status, &headers, body)
            .map_err(|err| warn!("ai-load-balancer: answering the request: {err}"))
            .is_ok()
    }

    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]) -> bool {
        abi::send_local_response(status, &borrowed(headers), body)
            .map_err(|err| warn!("ai-load-balancer: answering with the retry's reply: {err}"))
            .is_ok()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        abi::header(HeaderMap::Response, name)
            .map_err(|err| debug!("ai-load-balancer: reading response header {name}: {err}"))
            .ok()
            .flatten()
            .map(text)
    }

    fn response_body(&self, start: usize, size: usize) -> Option<Vec<u8>> {
        abi::buffer(BufferType::ResponseBody, start, size)
            .map_err(|err| debug!("ai-load-balancer: reading the response body: {err}"))
            .ok()
            .flatten()
    }

    fn response_headers(&self) -> Vec<(String, String)> {
        lossy_text(
            abi::headers(HeaderMap::Response)
                .map_err(|err| debug!("ai-load-balancer: reading the response headers: {err}"))
                .unwrap_or_default(),
        )
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        // As bytes, for the reason `request_header` gives.
        lossy_text(
            abi::headers(HeaderMap::Request)
                .map_err(|err| warn!("ai-load-balancer: reading the request headers: {err}"))
                .unwrap_or_default(),
        )
    }

    fn dispatch(&mut self, call: &CallRequest) -> Result<(), String> {
        dispatch_call(call, self.context_id).map(|_| ())
    }

    fn resume_response(&mut self) {
        if let Err(err) = abi::continue_stream(StreamType::Response) {
            warn!("ai-load-balancer: resuming the response: {err}");
        }
    }
}

/// Sends a Webdis read as a call whose reply goes to the context `owner`; returns its token.
pub fn dispatch_webdis(query: &StoreQuery, timeout_ms: u32, owner: u32) -> Result<u32, String> {
    let StoreQuery::Webdis {
        cluster,
        path,
        authorization,
    } = query
    else {
        return Err("not a Webdis query".into());
    };
    let mut headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", "webdis"),
    ];
    if let Some(credentials) = authorization {
        headers.push(("authorization", credentials.as_str()));
    }
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    abi::http_call(cluster, &headers, None, timeout, owner)
        .map_err(|err| format!("Webdis call to cluster {cluster:?} refused: {err}"))
}

/// Sends one of the filter's own calls, its reply going to the context `owner`; returns its
/// token.
pub fn dispatch_call(call: &CallRequest, owner: u32) -> Result<u32, String> {
    let timeout = Duration::from_millis(u64::from(call.timeout_ms));
    abi::http_call(
        &call.cluster,
        &borrowed(&call.headers),
        call.body.as_deref(),
        timeout,
        owner,
    )
    .map_err(|err| format!("call to cluster {:?} refused: {err}", call.cluster))
}

/// Read-modify-write of a shared-data value under compare-and-swap (`RequestHost::update_shared`).
pub fn update_shared_data(key: &str, update: &mut crate::flow::SharedUpdate<'_>) -> bool {
    // Another worker may write between our read and our write: the CAS then fails, and we
    // read again. A few tries are plenty; past them the update is dropped, not waited on.
    for _ in 0..CAS_TRIES {
        let (current, cas) = match abi::shared_data(key) {
            Ok(found) => found,
            Err(err) => {
                warn!("ai-load-balancer: reading shared data {key}: {err}");
                return false;
            }
        };
        let Some(value) = update(current.as_deref()) else {
            return true;
        };
        match abi::set_shared_data(key, &value, cas) {
            Ok(()) => return true,
            Err(err) if err.status == Status::CasMismatch => continue,
            Err(err) => {
                warn!("ai-load-balancer: writing shared data {key}: {err}");
                return false;
            }
        }
    }
    debug!("ai-load-balancer: shared data {key} kept changing; update dropped");
    false
}

/// Headers as the host calls take them.
fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        pairs.push((name.as_str(), value.as_str()));
    }
    pairs
}

/// A header value read as bytes, made text: kept as it is when valid UTF-8 (no copy), invalid
/// sequences replaced otherwise.
fn text(value: Vec<u8>) -> String {
    String::from_utf8(value)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

/// Header values read as bytes, made text (invalid UTF-8 replaced).
pub fn lossy_text(headers: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        pairs.push((name, text(value)));
    }
    pairs
}
