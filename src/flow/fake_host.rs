//! A recording `RequestHost` for the flow's tests: headers, body, shared data and the clock
//! are plain fields; every call out is recorded. And a `Worker` to go with it.

use std::collections::BTreeMap;

use super::{RequestHost, Stat, Timing, Worker};
use crate::call::{CallReply, CallRequest};
use crate::config::ReplicaCounters;
use crate::rng::Rng;
use crate::store::{StoreOutages, StoreQuery};

#[derive(Default)]
pub struct FakeHost {
    pub headers: BTreeMap<String, String>,
    pub properties: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub sent: Vec<StoreQuery>,
    pub refuse_send: bool,
    pub route_cache_cleared: usize,
    pub resumed: usize,
    pub resumed_later: usize,
    pub body_waits_watched: usize,
    /// Bytes of request body the filter read from the host.
    pub body_bytes_read: std::cell::Cell<usize>,
    /// Each counter moved, once per move.
    pub stats: Vec<String>,
    /// What each counter adds up to.
    pub totals: BTreeMap<String, u64>,
    /// Histogram samples: (name, milliseconds).
    pub timings: Vec<(String, u64)>,
    pub shared: BTreeMap<String, Vec<u8>>,
    pub now_ms: u64,
    /// Local answers the filter gave: (status, body).
    pub answered: Vec<(u32, Vec<u8>)>,
    pub response_headers: BTreeMap<String, String>,
    /// The response body's current chunk, as the host holds it in a response-body callback.
    pub response_body: Option<Vec<u8>>,
    /// Calls the filter dispatched (retries).
    pub dispatched: Vec<CallRequest>,
    pub refuse_dispatch: bool,
    /// Responses of the filter's making.
    pub responded: Vec<CallReply>,
    pub response_resumed: usize,
    /// Host calls that fail (`RequestHost` method names).
    pub refuse: Vec<&'static str>,
}

impl FakeHost {
    pub fn request(headers: &[(&str, &str)]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn counted(&self, name: &str) -> usize {
        self.stats.iter().filter(|stat| *stat == name).count()
    }
}

impl RequestHost for FakeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.headers.get(name).cloned()
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        self.headers.insert(name.into(), value.into());
    }
    fn remove_request_header(&mut self, name: &str) -> bool {
        if self.refuse.contains(&"remove_request_header") {
            return false;
        }
        self.headers.remove(name);
        true
    }
    fn property(&self, name: &str) -> Option<String> {
        self.properties.get(name).cloned()
    }
    fn request_body(&self, start: usize, size: usize) -> Option<Vec<u8>> {
        let end = start.saturating_add(size).min(self.body.len());
        let read = self.body.get(start..end).map(<[u8]>::to_vec);
        let bytes = read.as_ref().map_or(0, Vec::len);
        self.body_bytes_read.set(self.body_bytes_read.get() + bytes);
        read
    }
    fn replace_request_body(&mut self, size: usize, body: &[u8]) -> bool {
        assert_eq!(size, self.body.len(), "the whole body is replaced");
        self.body = body.to_vec();
        true
    }
    fn clear_route_cache(&mut self) {
        self.route_cache_cleared += 1;
    }
    fn resume_request(&mut self) -> bool {
        if self.refuse.contains(&"resume_request") {
            return false;
        }
        self.resumed += 1;
        true
    }
    fn resume_request_later(&mut self) {
        self.resumed_later += 1;
    }
    fn watch_body_wait(&mut self) {
        self.body_waits_watched += 1;
    }
    fn send_store_query(&mut self, query: &StoreQuery, _timeout_ms: u32) -> Result<(), String> {
        if self.refuse_send {
            return Err("cluster unknown".into());
        }
        self.sent.push(query.clone());
        Ok(())
    }
    fn count_by(&mut self, stat: Stat, by: u64) {
        let name = stat.name();
        *self.totals.entry(name.clone()).or_default() += by;
        self.stats.push(name);
    }
    fn record_timing(&mut self, timing: Timing, provider: &str, ms: u64) {
        self.timings.push((timing.name(provider), ms));
    }
    fn response_body(&self, start: usize, size: usize) -> Option<Vec<u8>> {
        let body = self.response_body.as_ref()?;
        let end = start.saturating_add(size).min(body.len());
        Some(body.get(start..end)?.to_vec())
    }
    fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.get(key).cloned()
    }
    fn now_ms(&self) -> u64 {
        self.now_ms
    }
    fn update_shared(&mut self, key: &str, update: &mut crate::flow::SharedUpdate<'_>) -> bool {
        if let Some(value) = update(self.shared.get(key).map(Vec::as_slice)) {
            self.shared.insert(key.to_string(), value);
        }
        true
    }
    fn send_local_response(&mut self, status: u32, body: &[u8]) -> bool {
        if self.refuse.contains(&"send_local_response") {
            return false;
        }
        self.answered.push((status, body.to_vec()));
        true
    }
    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]) -> bool {
        if self.refuse.contains(&"send_response") {
            return false;
        }
        self.responded.push(CallReply {
            status: Some(status),
            headers: headers.to_vec(),
            body: body.to_vec(),
        });
        true
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get(name).cloned()
    }
    fn response_headers(&self) -> Vec<(String, String)> {
        self.response_headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn request_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn dispatch(&mut self, call: &CallRequest) -> Result<(), String> {
        if self.refuse_dispatch {
            return Err("cluster unknown".into());
        }
        self.dispatched.push(call.clone());
        Ok(())
    }
    fn resume_response(&mut self) {
        self.response_resumed += 1;
    }
}

/// A worker of its own for each test that asks (or several requests on one).
pub struct FakeWorker {
    pub id: u64,
    pub rng: Rng,
    pub store_outages: StoreOutages,
    /// In-flight changes sent to Redis: (provider hash, delta).
    pub redis_counts: Vec<(String, i64)>,
}

impl FakeWorker {
    /// A worker whose random source starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            id: 0,
            rng: Rng::new(seed),
            store_outages: StoreOutages::default(),
            redis_counts: Vec::new(),
        }
    }
}

impl Worker for FakeWorker {
    fn id(&self) -> u64 {
        self.id
    }
    fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
    fn store_outages(&mut self) -> &mut StoreOutages {
        &mut self.store_outages
    }
    fn count_in_flight_in_redis(
        &mut self,
        counters: &ReplicaCounters,
        provider: usize,
        delta: i64,
    ) {
        let key = counters.provider_keys[provider].clone();
        self.redis_counts.push((key, delta));
    }
}
