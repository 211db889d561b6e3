//! The calls the filter makes out of the VM: dispatched HTTP calls (Webdis, probes, retries),
//! answered by hand or by the real server behind the cluster, and Higress's Redis calls,
//! answered by the real Redis.

use super::super::calls::{HttpCall, HttpReply};
use super::super::redis::RedisCall;
use super::{CallResponse, Vm};

impl Vm {
    pub fn http_calls(&self) -> Vec<&HttpCall> {
        self.store.data().http_calls.values().collect()
    }

    /// Delivers a reply to a dispatched call, or a failure (`None`: the stream was reset, and
    /// Envoy calls back with no headers).
    pub fn answer_http_call(&mut self, token: u32, reply: Option<HttpReply>) {
        let call = self
            .store
            .data_mut()
            .http_calls
            .remove(&token)
            .unwrap_or_else(|| panic!("no pending HTTP call {token}"));
        let response = reply.map_or(
            CallResponse {
                headers: Vec::new(),
                body: Vec::new(),
                trailers: Vec::new(),
            },
            HttpReply::into_call_response,
        );
        let counts = (
            response.headers.len() as i32,
            response.body.len() as i32,
            response.trailers.len() as i32,
        );
        self.store.data_mut().call_response = Some(response);
        self.call_in::<(i32, i32, i32, i32, i32), ()>(
            call.context_id,
            "proxy_on_http_call_response",
            (
                call.context_id as i32,
                token as i32,
                counts.0,
                counts.1,
                counts.2,
            ),
        );
        self.store.data_mut().call_response = None;
        self.settle();
    }

    /// Answers every pending dispatched call from the real server behind its cluster, as Envoy
    /// would: a refused connection becomes Envoy's 503, a timeout its 504. Returns how many.
    pub fn forward_http_calls(&mut self) -> usize {
        self.forward_http_calls_where(|_| true)
    }

    /// [`Vm::forward_http_calls`] for the calls to `cluster` only (the store's, say, while
    /// calls to clusters answered by hand wait).
    pub fn forward_http_calls_to(&mut self, cluster: &str) -> usize {
        self.forward_http_calls_where(|call| call.cluster == cluster)
    }

    fn forward_http_calls_where(&mut self, wanted: impl Fn(&HttpCall) -> bool) -> usize {
        let tokens: Vec<u32> = self
            .store
            .data()
            .http_calls
            .values()
            .filter(|call| wanted(call))
            .map(|call| call.token)
            .collect();
        for &token in &tokens {
            let call = &self.store.data().http_calls[&token];
            let address = self
                .store
                .data()
                .process
                .borrow()
                .clusters
                .get(&call.cluster)
                .copied()
                .flatten();
            let reply = match address {
                Some(address) => super::super::calls::perform(address, call),
                None => panic!(
                    "cluster {:?} has no server; answer the call by hand",
                    call.cluster
                ),
            };
            self.answer_http_call(token, Some(reply));
        }
        tokens.len()
    }

    pub fn redis_calls(&self) -> Vec<&RedisCall> {
        self.store.data().redis_calls.values().collect()
    }

    /// Hands every Redis reply (or failure) the host holds to the filter, in call order.
    pub fn deliver_redis_replies(&mut self) -> usize {
        let tokens: Vec<u32> = self.store.data().redis_calls.keys().copied().collect();
        for &token in &tokens {
            self.deliver_redis_reply(token);
        }
        tokens.len()
    }

    /// Hands one Redis reply (or its failure) to the filter, as Higress does: to the root
    /// context's callback, the reply readable as buffer type 9 during the call.
    pub fn deliver_redis_reply(&mut self, token: u32) {
        let call = self
            .store
            .data_mut()
            .redis_calls
            .remove(&token)
            .unwrap_or_else(|| panic!("no pending Redis call {token}"));
        let (status, reply) = call.outcome.status_and_reply();
        let size = reply.len() as i32;
        self.store.data_mut().redis_reply = Some(reply);
        let root = self.root_context();
        self.call_in::<(i32, i32, i32, i32), ()>(
            root,
            "proxy_on_redis_call_response",
            (root as i32, token as i32, status as i32, size),
        );
        self.store.data_mut().redis_reply = None;
        self.settle();
    }

    /// One chat request, headers then the whole `body`, store calls answered: its stream id and
    /// the provider it was routed to (`None`: not routed).
    #[allow(dead_code)] // not every test binary uses it
    pub fn chat(&mut self, body: &[u8]) -> (u32, Option<String>) {
        let request = self.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        self.send_headers(request, false);
        self.send_body(request, body, true);
        self.deliver_store_replies();
        let provider = self.stream(request).upstream_header("x-selected-provider");
        (request, provider.map(str::to_string))
    }

    /// A chat request with `body` (JSON, its length announced) sent whole; nothing delivered
    /// yet, no response.
    pub fn send_chat(&mut self, body: &[u8]) -> u32 {
        let length = body.len().to_string();
        let request = self.request(
            &[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                (":authority", "gateway.local"),
                ("content-type", "application/json"),
                ("content-length", length.as_str()),
            ],
            &[],
        );
        self.send_headers(request, false);
        self.send_body(request, body, true);
        request
    }

    /// Answers whatever store calls are pending, whichever kind they are.
    pub fn deliver_store_replies(&mut self) -> usize {
        let redis = if self.has_export("proxy_on_redis_call_response") {
            self.deliver_redis_replies()
        } else {
            0
        };
        redis + self.forward_http_calls()
    }
}
