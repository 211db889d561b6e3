//! One HTTP request as the host sees it: the headers and body the client sent, what the filter
//! let through to the upstream, and what it asked of the host on the way.

use std::collections::HashMap;

/// What a proxy-wasm callback returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

impl Action {
    pub fn from_abi(value: i32) -> Self {
        if value == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersState {
    /// The client's headers have not reached the filter yet.
    NotSent,
    /// The filter paused them: nothing has reached the upstream.
    Held,
    /// Sent upstream; later changes to the request headers no longer reach the upstream.
    Released,
}

/// Where the client's request trailers are (Envoy's filter manager semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailersState {
    /// The client sent none (yet).
    NotSent,
    /// They arrived while the filter's paused headers stopped everything (Envoy's default): they
    /// reach the filter after the queued body, once it resumes the request.
    Queued,
    /// `proxy_on_request_trailers` is running: the filter may read and change them.
    InCallback,
    /// The filter paused them; `proxy_continue_stream` sends them on (with the held headers and
    /// body). The filter may still read and change them.
    Held,
    /// Sent upstream: the request is complete.
    Forwarded,
}

/// What reached the upstream (the router, in Envoy terms).
#[derive(Debug, Default, Clone)]
pub struct Upstream {
    /// The request headers as they were when the filter released them.
    pub headers: Option<Vec<(String, String)>>,
    pub body: Vec<u8>,
    /// The request trailers as they were when they went through (`None`: none did).
    pub trailers: Option<Vec<(String, String)>>,
    /// The whole request (headers, body, trailers, end of stream) went through.
    pub complete: bool,
}

#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    /// The root context the stream was created under: the plugin configuration it runs with.
    pub root_context: u32,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub properties: HashMap<String, Vec<u8>>,
    pub headers_state: HeadersState,
    /// Envoy's wasm context holds the request headers for the filter (its `request_headers_`):
    /// from `proxy_on_request_headers` until it answers Continue or calls
    /// `proxy_continue_stream`. Outside it the header map calls fail (see `header_maps.rs`).
    pub request_headers_in_filter: bool,
    /// The same for the response headers: during `proxy_on_response_headers` and while it
    /// holds them.
    pub response_headers_in_filter: bool,
    /// The upstream's response headers arrived.
    pub response_received: bool,
    /// `proxy_continue_stream` took the request trailers from the filter (Envoy clears its
    /// `request_trailers_` there) until they reach its callback again.
    pub request_trailers_dropped: bool,
    /// The client's headers carried end of stream (no body).
    pub headers_end_of_stream: bool,
    /// The body the filter sees through `HttpRequestBody`: what it buffered plus the new chunk.
    pub body_buffer: Vec<u8>,
    /// The filter paused its last body callback: `body_buffer` is held back.
    pub body_held: bool,
    /// The filter has seen the end of the body.
    pub body_end_seen: bool,
    /// `proxy_on_request_body` is running (the body buffer is writable then).
    pub in_body_callback: bool,
    /// Body that arrived while the headers stopped everything (Envoy's default).
    pub queued_body: Vec<u8>,
    pub queued_end: bool,
    /// The client's request trailers (`HttpRequestTrailers`, map type 1), as the filter left
    /// them.
    pub request_trailers: Vec<(String, String)>,
    pub trailers_state: TrailersState,
    pub response_body_buffer: Vec<u8>,
    pub upstream: Upstream,
    /// What reached the client from the upstream's response.
    pub downstream_body: Vec<u8>,
    pub local_response: Option<LocalResponse>,
    /// Route re-matches the filter caused, by the foreign function or (Higress, and Envoy for
    /// ABI 0.2.1 modules) by changing request headers.
    pub route_cache_clears: u32,
    pub foreign_calls: Vec<String>,
    /// Every callback and what it returned, in order.
    pub actions: Vec<(&'static str, Action)>,
    pub closed: bool,
    pub done: bool,
}

impl Stream {
    pub fn new(id: u32, headers: &[(&str, &str)], properties: &[(&str, &str)]) -> Self {
        Self {
            id,
            root_context: 0,
            request_headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
                .collect(),
            response_headers: Vec::new(),
            properties: properties
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
            headers_state: HeadersState::NotSent,
            request_headers_in_filter: false,
            response_headers_in_filter: false,
            response_received: false,
            request_trailers_dropped: false,
            headers_end_of_stream: false,
            body_buffer: Vec::new(),
            body_held: false,
            body_end_seen: false,
            in_body_callback: false,
            queued_body: Vec::new(),
            queued_end: false,
            request_trailers: Vec::new(),
            trailers_state: TrailersState::NotSent,
            response_body_buffer: Vec::new(),
            upstream: Upstream::default(),
            downstream_body: Vec::new(),
            local_response: None,
            route_cache_clears: 0,
            foreign_calls: Vec::new(),
            actions: Vec::new(),
            closed: false,
            done: false,
        }
    }

    /// A header as the upstream received it (`None` before the headers were released).
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        self.upstream
            .headers
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A request trailer as the upstream received it (`None`: no trailers went through, or not
    /// this one).
    pub fn upstream_trailer(&self, name: &str) -> Option<&str> {
        self.upstream
            .trailers
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The filter may read and change the request trailers: they are in its hands.
    pub fn trailers_in_filter(&self) -> bool {
        matches!(
            self.trailers_state,
            TrailersState::InCallback | TrailersState::Held
        )
    }

    /// Envoy's wasm context has the request trailers for the filter now (header map type 1).
    pub fn request_trailers_in_filter(&self) -> bool {
        self.trailers_in_filter() && !self.request_trailers_dropped
    }

    /// The filter may change the request body: in its body callback, or while it holds the
    /// body it buffered (its last body callback paused), as Envoy gives it the decoding buffer
    /// then. Otherwise Envoy has no buffer to change (the body went on, or never came).
    pub fn body_writable(&self) -> bool {
        self.in_body_callback || self.body_held
    }

    pub fn upstream_body(&self) -> &[u8] {
        &self.upstream.body
    }

    /// The upstream body as JSON (panics, naming the bytes, when it is not).
    pub fn upstream_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.upstream.body).unwrap_or_else(|err| {
            panic!(
                "upstream body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.upstream.body)
            )
        })
    }

    pub fn route_cache_cleared(&self) -> bool {
        self.route_cache_clears > 0
    }

    /// The request reached the upstream whole and correctly framed: a `content-length`, when
    /// present, matches the body forwarded; the client's trailers, if any, went through.
    pub fn assert_forwarded_whole(&self) {
        assert!(
            self.upstream.complete,
            "request {} never reached the upstream whole: headers {:?}, {} body bytes, actions {:?}",
            self.id,
            self.headers_state,
            self.upstream.body.len(),
            self.actions
        );
        if self.trailers_state != TrailersState::NotSent {
            assert!(
                self.upstream.trailers.is_some(),
                "request {} ended with trailers, but none reached the upstream",
                self.id
            );
        }
        if let Some(length) = self.upstream_header("content-length") {
            assert_eq!(
                length,
                self.upstream.body.len().to_string(),
                "content-length does not match the body forwarded"
            );
        }
    }

    pub(super) fn header_index(headers: &[(String, String)], name: &str) -> Option<usize> {
        headers.iter().position(|(key, _)| key == name)
    }
}
