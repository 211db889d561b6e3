//! `Worker` on the root context's state: what this VM keeps across its requests.

use std::cell::RefMut;

use super::root::Shared;
use crate::config::ReplicaCounters;
use crate::flow::Worker;
use crate::rng::Rng;
use crate::store::StoreOutages;

/// The worker's state, borrowed for one callback of one request.
pub struct ProxyWorker<'a> {
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    shared: &'a Shared,
    rng: RefMut<'a, Rng>,
    store_outages: RefMut<'a, StoreOutages>,
}

impl<'a> ProxyWorker<'a> {
    /// `None` while a callback already holds it (a re-entrant call from the host).
    pub fn borrow(shared: &'a Shared) -> Option<Self> {
        Some(Self {
            shared,
            rng: shared.rng.try_borrow_mut().ok()?,
            store_outages: shared.store_outages.try_borrow_mut().ok()?,
        })
    }
}

impl Worker for ProxyWorker<'_> {
    fn id(&self) -> u64 {
        self.shared.worker_id
    }

    fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn store_outages(&mut self) -> &mut StoreOutages {
        &mut self.store_outages
    }

    #[cfg(feature = "higress")]
    fn count_in_flight_in_redis(
        &mut self,
        counters: &ReplicaCounters,
        provider: usize,
        delta: i64,
    ) {
        let Some(key) = counters.provider_keys.get(provider) else {
            return;
        };
        if let Ok(mut book) = self.shared.redis_in_flight.try_borrow_mut() {
            book.add(&counters.upstream, &counters.heartbeats_key, key, delta);
        }
        let command = crate::inflight::replicas::add_command(
            &counters.heartbeats_key,
            key,
            self.shared.worker_id,
            delta,
        );
        super::root::fire_and_forget(self.shared, &counters.upstream, &command);
    }

    #[cfg(not(feature = "higress"))]
    fn count_in_flight_in_redis(&mut self, _: &ReplicaCounters, _: usize, _: i64) {
        // Configuration refuses Redis in-flight counting on this build.
    }
}
