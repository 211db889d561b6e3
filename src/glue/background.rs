//! Background reads, wasm side: the host calls for what `crate::background::reads` decides.
//! On each tick the VM that holds (or takes) a read's lease in shared data sends it from its
//! root context, and publishes what the reply gives for every worker. Requests then read what
//! was published (`RequestFlow`) and never wait.

use std::rc::Rc;

use log::{debug, warn};

use super::abi;
use super::host::dispatch_webdis;
use super::root::Shared;
use crate::background::lease::claim;
use crate::background::reads::{Publication, Read};
use crate::flow::Stat;
use crate::store::{StoreError, StoreQuery};

/// Sends the reads due on the tick at `now_ms` whose lease this VM holds; replies come back
/// to the root context `root_context_id`.
pub fn on_tick(shared: &Rc<Shared>, now_ms: u64, tick_ms: u64, root_context_id: u32) {
    let me = shared.worker_id;
    let mut hold = |key: &str, ttl_ms| hold_lease(key, me, now_ms, ttl_ms);
    let reads = match shared.background.try_borrow_mut() {
        Ok(mut background) => background.due_reads(now_ms, tick_ms, &mut hold),
        Err(_) => return,
    };
    for read in reads {
        send(shared, read, root_context_id);
    }
}

fn send(shared: &Rc<Shared>, read: Read, root_context_id: u32) {
    let sent = match &read.query {
        StoreQuery::Webdis { .. } => dispatch_webdis(&read.query, read.timeout_ms, root_context_id)
            .map(|token| {
                if let Ok(mut background) = shared.background.try_borrow_mut() {
                    background.sent_http(token, read.index);
                }
            }),
        #[cfg(feature = "higress")]
        StoreQuery::Resp { upstream, command } => {
            let shared_weak = Rc::downgrade(shared);
            let index = read.index;
            let on_reply = move |reply| {
                if let Some(shared) = shared_weak.upgrade() {
                    read_back(&shared, index, reply);
                }
            };
            super::redis::call(upstream, command, root_context_id, Box::new(on_reply))
        }
        #[cfg(not(feature = "higress"))]
        StoreQuery::Resp { .. } => Err("RESP needs the Higress build".into()),
    };
    if let Err(why) = sent {
        let engine = match shared.background.try_borrow_mut() {
            Ok(mut background) => {
                background.not_sent(read.index, &why);
                background.is_engine(read.index)
            }
            Err(_) => false,
        };
        shared.count(if engine {
            Stat::ScrapeFailed
        } else {
            Stat::RefreshFailed
        });
    }
}

/// An HTTP reply to a background read: `false` when `token` is not one's.
pub fn on_http_reply(shared: &Shared, token: u32, reply: Result<Vec<u8>, StoreError>) -> bool {
    let read = match shared.background.try_borrow_mut() {
        Ok(mut background) => background.http_read(token),
        Err(_) => None,
    };
    if let Some(read) = read {
        read_back(shared, read, reply);
    }
    read.is_some()
}

/// Publishes what a read's reply gives, and counts the outcome.
fn read_back(shared: &Shared, read: usize, reply: Result<Vec<u8>, StoreError>) {
    let (engine, publication) = match shared.background.try_borrow_mut() {
        Ok(mut background) => (background.is_engine(read), background.on_reply(read, reply)),
        Err(_) => (false, None),
    };
    let published = publication.is_some_and(|publication| publish(&publication));
    shared.count(match (engine, published) {
        (false, true) => Stat::RefreshPublished,
        (false, false) => Stat::RefreshFailed,
        (true, true) => Stat::ScrapePublished,
        (true, false) => Stat::ScrapeFailed,
    });
}

fn publish(publication: &Publication) -> bool {
    let key = &publication.key;
    match abi::set_shared_data(key, &publication.snapshot.encode(), 0) {
        Ok(()) => {
            debug!("ai-load-balancer: loads published to {key}");
            true
        }
        Err(err) => {
            warn!("ai-load-balancer: cannot publish loads: {err}");
            false
        }
    }
}

/// Takes or renews the lease with compare-and-swap; `false` when another VM holds it or won the
/// race for it.
pub fn hold_lease(key: &str, me: u64, now_ms: u64, ttl_ms: u64) -> bool {
    let (current, cas) = match abi::shared_data(key) {
        Ok(found) => found,
        Err(err) => {
            warn!("ai-load-balancer: reading lease {key}: {err}");
            return false;
        }
    };
    let Some(lease) = claim(current.as_deref(), me, now_ms, ttl_ms) else {
        return false;
    };
    abi::set_shared_data(key, &lease.encode(), cas).is_ok()
}
