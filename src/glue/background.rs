//! Background reads, wasm side: on each tick the VM that holds (or takes) a read's lease in
//! shared data sends it from its root context and publishes the result for every worker. Two
//! kinds: a store read in background mode (every provider's load at once), and the scrape of
//! one engine's `/metrics`. Requests then read what was published (`RequestFlow`) and never
//! wait. The decisions (keys, snapshot, lease, schedule) are in `crate::background`.

use std::time::Duration;

use super::abi;
use log::{debug, warn};

use crate::background::lease::claim;
use crate::background::{SharedKeys, Snapshot};
use crate::config::{LoadSource, PluginConfig, Refresh, ReplyFormat};
use crate::engine::{engine_load, PrefixCounters};
use crate::store::{parse_reply, StoreError, StoreQuery};

/// A lease outlives this many intervals (plus the read's timeout), so that a holder that stops
/// ticking is replaced soon, and a slow one is not.
const LEASE_INTERVALS: u64 = 3;

enum Kind {
    Store {
        format: ReplyFormat,
        providers: usize,
    },
    /// The counters of the last scrape, for the prefix-cache hit ratio between two scrapes.
    Engine { previous: Option<PrefixCounters> },
}

struct Background {
    kind: Kind,
    query: StoreQuery,
    keys: SharedKeys,
    interval_ms: u64,
    timeout_ms: u32,
    next_due_ms: u64,
    /// When the read now out was sent (`None`: no read out).
    in_flight_since_ms: Option<u64>,
}

/// What a background read asks the caller to send.
pub struct Read {
    pub index: usize,
    pub query: StoreQuery,
    pub timeout_ms: u32,
}

/// What a reply did.
pub enum Outcome {
    StorePublished,
    StoreFailed,
    EnginePublished,
    EngineFailed,
}

pub struct BackgroundReads {
    /// This VM's identity in leases.
    me: u64,
    reads: Vec<Background>,
    /// HTTP calls out: token and read index (a few at a time; a Vec is smaller than a HashMap).
    http_calls: Vec<(u32, usize)>,
}

impl BackgroundReads {
    /// One background read per distinct store in background mode, and per distinct engine.
    pub fn new(plugin: &PluginConfig, me: u64) -> Self {
        let mut reads: Vec<Background> = Vec::new();
        for config in plugin.all() {
            match &config.loads {
                LoadSource::Store(read) => {
                    let Refresh::Background { interval_ms, .. } = read.config.refresh else {
                        continue;
                    };
                    if reads.iter().any(|r| r.keys.loads == read.shared_keys.loads) {
                        continue;
                    }
                    reads.push(Background {
                        kind: Kind::Store {
                            format: read.format.clone(),
                            providers: config.providers.len(),
                        },
                        query: read.query.clone(),
                        keys: read.shared_keys.clone(),
                        interval_ms: u64::from(interval_ms),
                        timeout_ms: read.config.timeout_ms,
                        next_due_ms: 0,
                        in_flight_since_ms: None,
                    });
                }
                LoadSource::Engines(scrape) => {
                    for target in config.providers.iter().filter_map(|p| p.metrics.as_ref()) {
                        let keys = target.shared_keys.clone();
                        if reads.iter().any(|r| r.keys.loads == keys.loads) {
                            continue;
                        }
                        reads.push(Background {
                            kind: Kind::Engine { previous: None },
                            query: StoreQuery::Webdis {
                                cluster: target.cluster.clone(),
                                path: target.path.clone(),
                                authorization: None,
                            },
                            keys,
                            interval_ms: u64::from(scrape.interval_ms),
                            timeout_ms: scrape.timeout_ms,
                            next_due_ms: 0,
                            in_flight_since_ms: None,
                        });
                    }
                }
                LoadSource::None | LoadSource::InFlight(_) => {}
            }
        }
        Self {
            me,
            reads,
            http_calls: Vec::new(),
        }
    }

    /// The shortest interval, if any read needs the tick.
    pub fn tick_period(&self) -> Option<Duration> {
        self.reads
            .iter()
            .map(|read| read.interval_ms)
            .min()
            .map(Duration::from_millis)
    }

    /// The reads due now whose lease this VM holds (taken or renewed here).
    pub fn due_reads(&mut self, now_ms: u64) -> Vec<Read> {
        let mut due = Vec::new();
        for (index, read) in self.reads.iter_mut().enumerate() {
            if let Some(since) = read.in_flight_since_ms {
                // A reply lost by the host must not stop the read for good.
                let deadline = since + u64::from(read.timeout_ms) + read.interval_ms;
                if now_ms < deadline {
                    continue;
                }
                read.in_flight_since_ms = None;
            }
            if now_ms < read.next_due_ms {
                continue;
            }
            read.next_due_ms = now_ms + read.interval_ms;
            let ttl_ms = read.interval_ms * LEASE_INTERVALS + u64::from(read.timeout_ms);
            if !hold_lease(&read.keys.lease, self.me, now_ms, ttl_ms) {
                continue;
            }
            read.in_flight_since_ms = Some(now_ms);
            due.push(Read {
                index,
                query: read.query.clone(),
                timeout_ms: read.timeout_ms,
            });
        }
        due
    }

    pub fn sent_http(&mut self, token: u32, index: usize) {
        self.http_calls.retain(|(sent, _)| *sent != token);
        self.http_calls.push((token, index));
    }

    /// The read could not be sent: try again at the next interval.
    pub fn not_sent(&mut self, index: usize, why: &str) {
        warn!("ai-load-balancer: background read not sent: {why}");
        if let Some(read) = self.reads.get_mut(index) {
            read.in_flight_since_ms = None;
        }
    }

    pub fn http_read(&mut self, token: u32) -> Option<usize> {
        let position = self
            .http_calls
            .iter()
            .position(|(sent, _)| *sent == token)?;
        Some(self.http_calls.swap_remove(position).1)
    }

    pub fn is_engine(&self, index: usize) -> bool {
        matches!(
            self.reads.get(index).map(|r| &r.kind),
            Some(Kind::Engine { .. })
        )
    }

    /// Publishes a reply for every worker; on failure keeps the last loads, which age out.
    pub fn on_reply(&mut self, index: usize, reply: Result<Vec<u8>, StoreError>) -> Outcome {
        let engine = self.is_engine(index);
        let failed = if engine {
            Outcome::EngineFailed
        } else {
            Outcome::StoreFailed
        };
        let Some(read) = self.reads.get_mut(index) else {
            return failed;
        };
        let Some(sent_at_ms) = read.in_flight_since_ms.take() else {
            return failed;
        };
        let loads = match (&mut read.kind, reply) {
            (Kind::Store { format, providers }, reply) => {
                reply.and_then(|body| parse_reply(format, &body, *providers))
            }
            (Kind::Engine { previous }, Ok(body)) => {
                let text = String::from_utf8_lossy(&body);
                let (load, counters) = engine_load(&text, previous.as_ref());
                *previous = Some(counters);
                load.map(|load| vec![Some(load)]).ok_or_else(|| {
                    StoreError::BadReply("no running-requests metric in /metrics".into())
                })
            }
            (Kind::Engine { .. }, Err(err)) => Err(err),
        };
        let loads = match loads {
            Ok(loads) => loads,
            Err(err) => {
                warn!(
                    "ai-load-balancer: background read of {} failed: {err}; the last loads \
                     stay until they age out",
                    read.keys.loads
                );
                return failed;
            }
        };
        // The loads are at least as fresh as the moment they were asked for.
        let snapshot = Snapshot {
            fetched_at_ms: sent_at_ms,
            loads,
        };
        match abi::set_shared_data(&read.keys.loads, &snapshot.encode(), 0) {
            Ok(()) => {
                debug!("ai-load-balancer: loads published to {}", read.keys.loads);
                if engine {
                    Outcome::EnginePublished
                } else {
                    Outcome::StorePublished
                }
            }
            Err(err) => {
                warn!("ai-load-balancer: cannot publish loads: {err}");
                failed
            }
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
