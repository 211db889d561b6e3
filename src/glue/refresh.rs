//! Background refresh, wasm side: on each tick the VM that holds (or takes) a store's lease in
//! shared data reads that store from its root context and publishes the loads for every worker.
//! Requests then read what was published (`RequestFlow`) and never wait for the store.

use std::collections::HashMap;
use std::time::Duration;

use log::{debug, warn};
use proxy_wasm::hostcalls;

use crate::config::{PluginConfig, Refresh};
use crate::refresh::{claim, SharedKeys, Snapshot};
use crate::store::{parse_reply, StoreError, StoreQuery};

/// A lease outlives this many refresh intervals (plus the store timeout), so that a holder that
/// stops ticking is replaced soon, and a slow one is not.
const LEASE_INTERVALS: u64 = 3;

struct Background {
    query: StoreQuery,
    keys: SharedKeys,
    providers: usize,
    interval_ms: u64,
    timeout_ms: u32,
    next_due_ms: u64,
    /// When the read now out was sent (`None`: no read out).
    in_flight_since_ms: Option<u64>,
}

/// What a refresh attempt asks the caller to send.
pub struct Read {
    pub store: usize,
    pub query: StoreQuery,
    pub timeout_ms: u32,
}

pub struct Refresher {
    /// This VM's identity in leases.
    me: u64,
    stores: Vec<Background>,
    /// Webdis calls out, by token.
    webdis_calls: HashMap<u32, usize>,
}

impl Refresher {
    /// One refresher per distinct store among the configurations in background mode.
    pub fn new(plugin: &PluginConfig, me: u64) -> Self {
        let mut stores: Vec<Background> = Vec::new();
        for config in plugin.all() {
            let Refresh::Background { interval_ms, .. } = config.store.refresh else {
                continue;
            };
            if stores
                .iter()
                .any(|s| s.keys.loads == config.shared_keys.loads)
            {
                continue;
            }
            stores.push(Background {
                query: config.query.clone(),
                keys: config.shared_keys.clone(),
                providers: config.providers.len(),
                interval_ms: u64::from(interval_ms),
                timeout_ms: config.store.timeout_ms,
                next_due_ms: 0,
                in_flight_since_ms: None,
            });
        }
        Self {
            me,
            stores,
            webdis_calls: HashMap::new(),
        }
    }

    /// The tick the host must give: the shortest refresh interval, if any store needs one.
    pub fn tick_period(&self) -> Option<Duration> {
        self.stores
            .iter()
            .map(|store| store.interval_ms)
            .min()
            .map(Duration::from_millis)
    }

    /// The reads due now whose lease this VM holds (taken or renewed here).
    pub fn due_reads(&mut self, now_ms: u64) -> Vec<Read> {
        let mut reads = Vec::new();
        for (index, store) in self.stores.iter_mut().enumerate() {
            if let Some(since) = store.in_flight_since_ms {
                // A reply lost by the host must not stop the refresh for good.
                let deadline = since + u64::from(store.timeout_ms) + store.interval_ms;
                if now_ms < deadline {
                    continue;
                }
                store.in_flight_since_ms = None;
            }
            if now_ms < store.next_due_ms {
                continue;
            }
            store.next_due_ms = now_ms + store.interval_ms;
            let ttl_ms = store.interval_ms * LEASE_INTERVALS + u64::from(store.timeout_ms);
            if !hold_lease(&store.keys.lease, self.me, now_ms, ttl_ms) {
                continue;
            }
            store.in_flight_since_ms = Some(now_ms);
            reads.push(Read {
                store: index,
                query: store.query.clone(),
                timeout_ms: store.timeout_ms,
            });
        }
        reads
    }

    pub fn sent_webdis(&mut self, token: u32, store: usize) {
        self.webdis_calls.insert(token, store);
    }

    /// The read could not be sent: try again at the next interval.
    pub fn not_sent(&mut self, store: usize, why: &str) {
        warn!("ai-load-balancer: background refresh not sent: {why}");
        if let Some(store) = self.stores.get_mut(store) {
            store.in_flight_since_ms = None;
        }
    }

    pub fn webdis_store(&mut self, token: u32) -> Option<usize> {
        self.webdis_calls.remove(&token)
    }

    /// Publishes a store's reply for every worker; on failure keeps the last loads, which age
    /// out after `max_age_ms`. Returns whether loads were published.
    pub fn on_reply(&mut self, store: usize, reply: Result<Vec<u8>, StoreError>) -> bool {
        let Some(store) = self.stores.get_mut(store) else {
            return false;
        };
        let Some(sent_at_ms) = store.in_flight_since_ms.take() else {
            return false;
        };
        let loads = match reply.and_then(|body| parse_reply(&body, store.providers)) {
            Ok(loads) => loads,
            Err(err) => {
                warn!("ai-load-balancer: background refresh failed: {err}; the last loads stay until they age out");
                return false;
            }
        };
        // The loads are at least as fresh as the moment they were asked for.
        let snapshot = Snapshot {
            fetched_at_ms: sent_at_ms,
            loads,
        };
        match hostcalls::set_shared_data(&store.keys.loads, Some(&snapshot.encode()), None) {
            Ok(()) => {
                debug!("ai-load-balancer: loads published to {}", store.keys.loads);
                true
            }
            Err(status) => {
                warn!("ai-load-balancer: cannot publish loads: {status:?}");
                false
            }
        }
    }
}

/// Takes or renews the lease with compare-and-swap; `false` when another VM holds it or won the
/// race for it.
fn hold_lease(key: &str, me: u64, now_ms: u64, ttl_ms: u64) -> bool {
    let (current, cas) = match hostcalls::get_shared_data(key) {
        Ok(found) => found,
        Err(status) => {
            warn!("ai-load-balancer: reading lease {key}: {status:?}");
            return false;
        }
    };
    let Some(lease) = claim(current.as_deref(), me, now_ms, ttl_ms) else {
        return false;
    };
    hostcalls::set_shared_data(key, Some(&lease.encode()), cas).is_ok()
}
