//! One request through the filter, as Envoy's filter manager drives it: the client's headers,
//! body and trailers in, what the filter lets through recorded as what reached the upstream,
//! and the upstream's response back.

use super::super::process::BodyDelivery;
use super::super::stream::{Action, HeadersState, Stream, TrailersState};
use super::{Deferred, Vm};

impl Vm {
    /// A new request with its client headers (`:method`, `:path`, … included) and the host
    /// properties the gateway would give it (`route_name`, `cluster_name`, …).
    pub fn request(&mut self, headers: &[(&str, &str)], properties: &[(&str, &str)]) -> u32 {
        let id = self.next_context;
        self.next_context += 1;
        let root = self.root_context();
        let mut stream = Stream::new(id, headers, properties);
        stream.root_context = root;
        self.store.data_mut().streams.insert(id, stream);
        self.call_in::<(i32, i32), ()>(id, "proxy_on_context_create", (id as i32, root as i32));
        id
    }

    pub fn stream(&self, id: u32) -> &Stream {
        self.store
            .data()
            .streams
            .get(&id)
            .unwrap_or_else(|| panic!("no request {id}"))
    }

    pub(super) fn stream_mut(&mut self, id: u32) -> &mut Stream {
        self.store
            .data_mut()
            .streams
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no request {id}"))
    }

    fn record(&mut self, id: u32, callback: &'static str, action: Action) {
        self.stream_mut(id).actions.push((callback, action));
    }

    /// The client's request headers reach the filter.
    pub fn send_headers(&mut self, id: u32, end_of_stream: bool) -> Action {
        let count = self.stream(id).request_headers.len() as i32;
        assert_eq!(
            self.stream(id).headers_state,
            HeadersState::NotSent,
            "headers sent twice"
        );
        let stream = self.stream_mut(id);
        stream.headers_end_of_stream = end_of_stream;
        stream.request_headers_in_filter = true;
        let action = self.callback(
            id,
            "proxy_on_request_headers",
            (id as i32, count, i32::from(end_of_stream)),
        );
        if action == Action::Continue {
            self.stream_mut(id).request_headers_in_filter = false;
        }
        self.record(id, "request_headers", action);
        match action {
            Action::Continue => self.release_headers(id),
            Action::Pause => self.stream_mut(id).headers_state = HeadersState::Held,
        }
        self.settle();
        action
    }

    /// A chunk of the client's body reaches the host. It reaches the filter now, or, when the
    /// filter paused the headers and the host stops everything (Envoy's default), once the
    /// filter resumes: then this returns `None`.
    pub fn send_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Option<Action> {
        let stream = self.stream_mut(id);
        assert_ne!(
            stream.headers_state,
            HeadersState::NotSent,
            "body before headers"
        );
        assert_eq!(
            stream.trailers_state,
            TrailersState::NotSent,
            "body after the trailers"
        );
        if stream.local_response.is_some() || stream.done {
            return None;
        }
        let stopped_all = stream.headers_state == HeadersState::Held
            && self.store.data().process.borrow().body_delivery == BodyDelivery::AfterHeadersResume;
        if stopped_all {
            let stream = self.stream_mut(id);
            stream.queued_body.extend_from_slice(chunk);
            stream.queued_end = end_of_stream;
            return None;
        }
        let action = self.deliver_body(id, chunk, end_of_stream);
        self.settle();
        Some(action)
    }

    fn deliver_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Action {
        let stream = self.stream_mut(id);
        stream.body_buffer.extend_from_slice(chunk);
        stream.body_end_seen = end_of_stream;
        let size = stream.body_buffer.len() as i32;
        stream.in_body_callback = true;
        let action = self.callback(
            id,
            "proxy_on_request_body",
            (id as i32, size, i32::from(end_of_stream)),
        );
        self.stream_mut(id).in_body_callback = false;
        self.record(id, "request_body", action);
        match action {
            // Continue on the body continues held headers too (Envoy's filter manager).
            Action::Continue => {
                self.release_headers(id);
                self.forward_body(id);
            }
            Action::Pause => self.stream_mut(id).body_held = true,
        }
        action
    }

    fn release_headers(&mut self, id: u32) {
        let stream = self.stream_mut(id);
        if stream.headers_state == HeadersState::Released || stream.local_response.is_some() {
            return;
        }
        stream.headers_state = HeadersState::Released;
        stream.upstream.headers = Some(stream.request_headers.clone());
        if stream.headers_end_of_stream {
            stream.upstream.complete = true;
        }
    }

    /// The client's request trailers reach the host; they end the stream (the body's last
    /// chunk, if any, was sent with `end_of_stream` false). With Envoy's default body delivery
    /// and the headers held by the filter they queue behind the body and reach the filter once
    /// it resumes: then this returns `None`. Otherwise `proxy_on_request_trailers` answers
    /// (Continue when the filter lacks it, as Envoy does): Continue lets the whole request go
    /// on, held headers and body included; Pause holds the trailers (and whatever the filter
    /// still holds) until it resumes the request.
    pub fn send_trailers(&mut self, id: u32, trailers: &[(&str, &str)]) -> Option<Action> {
        let stream = self.stream_mut(id);
        assert_ne!(
            stream.headers_state,
            HeadersState::NotSent,
            "trailers before headers"
        );
        assert!(
            !stream.headers_end_of_stream && !stream.body_end_seen && !stream.queued_end,
            "trailers after the end of the stream"
        );
        assert_eq!(
            stream.trailers_state,
            TrailersState::NotSent,
            "trailers sent twice"
        );
        if stream.local_response.is_some() || stream.done {
            return None;
        }
        stream.request_trailers = trailers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        let stopped_all = stream.headers_state == HeadersState::Held
            && self.store.data().process.borrow().body_delivery == BodyDelivery::AfterHeadersResume;
        if stopped_all {
            self.stream_mut(id).trailers_state = TrailersState::Queued;
            return None;
        }
        let action = self.deliver_trailers(id, false);
        self.settle();
        Some(action)
    }

    /// `body_held_in_this_continuation`: the trailers follow, in one continuation of Envoy's
    /// filter manager, a queued body the filter has just paused (buffered).
    fn deliver_trailers(&mut self, id: u32, body_held_in_this_continuation: bool) -> Action {
        let stream = self.stream_mut(id);
        stream.trailers_state = TrailersState::InCallback;
        stream.request_trailers_dropped = false;
        let count = stream.request_trailers.len() as i32;
        let action = if self.has_export("proxy_on_request_trailers") {
            self.callback(id, "proxy_on_request_trailers", (id as i32, count))
        } else {
            Action::Continue
        };
        self.record(id, "request_trailers", action);
        if body_held_in_this_continuation {
            let resumed_in_callback = self.store.data().deferred.iter().any(
                |deferred| matches!(deferred, Deferred::ContinueRequest(resumed) if *resumed == id),
            );
            assert!(
                !resumed_in_callback,
                "request {id}: resumed from the trailers callback that follows a held body in one \
                 continuation: Envoy 1.40 delivers the body and the trailers again, endlessly, \
                 until the VM traps"
            );
        }
        match action {
            // Envoy 1.40 has marked the stream ended for this filter when it continues on the
            // trailers: the body it held in this same continuation is dropped, not sent.
            Action::Continue if body_held_in_this_continuation => {
                let stream = self.stream_mut(id);
                stream.body_buffer.clear();
                stream.body_held = false;
                self.continue_whole_request(id);
            }
            // Envoy's filter manager continues the whole stream: headers the filter held, the
            // body it buffered, then the trailers.
            Action::Continue => self.continue_whole_request(id),
            Action::Pause => self.stream_mut(id).trailers_state = TrailersState::Held,
        }
        action
    }

    fn continue_whole_request(&mut self, id: u32) {
        if self.stream(id).local_response.is_some() {
            return;
        }
        self.release_headers(id);
        self.forward_body(id);
        self.forward_trailers(id);
    }

    fn forward_trailers(&mut self, id: u32) {
        let stream = self.stream_mut(id);
        stream.trailers_state = TrailersState::Forwarded;
        stream.upstream.trailers = Some(stream.request_trailers.clone());
        stream.upstream.complete = true;
    }

    fn forward_body(&mut self, id: u32) {
        let stream = self.stream_mut(id);
        let body = std::mem::take(&mut stream.body_buffer);
        stream.upstream.body.extend_from_slice(&body);
        stream.body_held = false;
        if stream.body_end_seen {
            stream.upstream.complete = true;
        }
    }

    /// `proxy_continue_stream` for the request, run after the VM call that asked for it.
    pub(super) fn resume_request(&mut self, id: u32) {
        let Some(stream) = self.store.data().streams.get(&id) else {
            return;
        };
        if stream.local_response.is_some() || stream.done {
            return;
        }
        let was_held = stream.headers_state == HeadersState::Held;
        self.release_headers(id);
        if self.stream(id).body_held {
            self.forward_body(id);
        }
        if self.stream(id).trailers_state == TrailersState::Held {
            self.forward_trailers(id);
            return;
        }
        let stream = self.stream_mut(id);
        let has_queued = !stream.queued_body.is_empty() || stream.queued_end;
        let mut body_held_in_this_continuation = false;
        if was_held && has_queued {
            let chunk = std::mem::take(&mut stream.queued_body);
            let end = std::mem::take(&mut stream.queued_end);
            body_held_in_this_continuation = self.deliver_body(id, &chunk, end) == Action::Pause;
        }
        // Queued trailers follow the queued body, whatever the body callback answered (Envoy
        // delivers them to the filter that stopped everything, from that filter on).
        let stream = self.stream(id);
        let stopped = stream.local_response.is_some() || stream.done;
        if stream.trailers_state == TrailersState::Queued && !stopped {
            self.deliver_trailers(id, body_held_in_this_continuation);
        }
    }

    /// The upstream's response headers reach the filter.
    pub fn send_response_headers(
        &mut self,
        id: u32,
        headers: &[(&str, &str)],
        end_of_stream: bool,
    ) -> Action {
        let stream = self.stream_mut(id);
        stream.response_headers = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        stream.response_received = true;
        stream.response_headers_in_filter = true;
        let action = self.callback(
            id,
            "proxy_on_response_headers",
            (id as i32, headers.len() as i32, i32::from(end_of_stream)),
        );
        if action == Action::Continue {
            self.stream_mut(id).response_headers_in_filter = false;
        }
        self.record(id, "response_headers", action);
        self.settle();
        action
    }

    /// A chunk of the upstream's response body reaches the filter.
    pub fn send_response_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Action {
        let stream = self.stream_mut(id);
        stream.response_body_buffer.extend_from_slice(chunk);
        let size = stream.response_body_buffer.len() as i32;
        let action = self.callback(
            id,
            "proxy_on_response_body",
            (id as i32, size, i32::from(end_of_stream)),
        );
        self.record(id, "response_body", action);
        if action == Action::Continue {
            let stream = self.stream_mut(id);
            let body = std::mem::take(&mut stream.response_body_buffer);
            stream.downstream_body.extend_from_slice(&body);
        }
        self.settle();
        action
    }

    /// The stream ends (completed or reset): `on_done`, `on_log`, `on_delete`.
    pub fn finish(&mut self, id: u32) {
        let _: Option<i32> = self.call_in(id, "proxy_on_done", (id as i32,));
        // Envoy's access-log phase: reads see the final request and response headers.
        self.store.data_mut().access_log_phase = true;
        self.call_in::<(i32,), ()>(id, "proxy_on_log", (id as i32,));
        self.store.data_mut().access_log_phase = false;
        self.call_in::<(i32,), ()>(id, "proxy_on_delete", (id as i32,));
        self.stream_mut(id).done = true;
        self.settle();
    }
}
