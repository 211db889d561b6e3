//! Background reads: a store read in background mode (every provider's load at once) and the
//! scrape of one engine's `/metrics`. Which reads there are, which are due on a tick, which are
//! out, and what a reply publishes; `src/glue/background.rs` takes the leases, sends the reads
//! and publishes.

use log::warn;

use super::schedule::ReadSchedule;
use super::{SharedKeys, Snapshot};
use crate::config::{LoadSource, PluginConfig, Refresh, ReplyFormat};
use crate::engine::{engine_load, PrefixCounters};
use crate::store::{parse_reply, StoreError, StoreQuery};

enum Kind {
    Store {
        format: ReplyFormat,
        providers: usize,
    },
    /// The counters of the last scrape, for the prefix-cache hit ratio between two scrapes.
    Engine { previous: Option<PrefixCounters> },
}

struct BackgroundRead {
    kind: Kind,
    query: StoreQuery,
    keys: SharedKeys,
    schedule: ReadSchedule,
}

/// What a background read asks the caller to send.
pub struct Read {
    pub index: usize,
    pub query: StoreQuery,
    pub timeout_ms: u32,
}

/// Loads to publish for every worker: `snapshot` under the shared-data key `key`.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub key: String,
    pub snapshot: Snapshot,
}

/// Every background read there is, when each is due, and the reads out.
pub struct BackgroundReads {
    reads: Vec<BackgroundRead>,
    /// HTTP calls out: token and read index (a few at a time; a Vec is smaller than a HashMap).
    http_calls: Vec<(u32, usize)>,
}

impl BackgroundReads {
    /// One background read per distinct store in background mode, and per distinct engine.
    pub fn new(plugin: &PluginConfig) -> Self {
        let mut reads: Vec<BackgroundRead> = Vec::new();
        for config in plugin.all() {
            match &config.loads {
                LoadSource::Store(read) => {
                    let Refresh::Background { interval_ms, .. } = read.config.refresh else {
                        continue;
                    };
                    if reads.iter().any(|r| r.keys.loads == read.shared_keys.loads) {
                        continue;
                    }
                    reads.push(BackgroundRead {
                        kind: Kind::Store {
                            format: read.format.clone(),
                            providers: config.providers.len(),
                        },
                        query: read.query.clone(),
                        keys: read.shared_keys.clone(),
                        schedule: ReadSchedule::new(u64::from(interval_ms), read.config.timeout_ms),
                    });
                }
                LoadSource::Engines(scrape) => {
                    for target in config.providers.iter().filter_map(|p| p.metrics.as_ref()) {
                        let keys = target.shared_keys.clone();
                        if reads.iter().any(|r| r.keys.loads == keys.loads) {
                            continue;
                        }
                        reads.push(BackgroundRead {
                            kind: Kind::Engine { previous: None },
                            query: StoreQuery::Webdis {
                                cluster: target.cluster.clone(),
                                path: target.path.clone(),
                                authorization: None,
                            },
                            keys,
                            schedule: ReadSchedule::new(
                                u64::from(scrape.interval_ms),
                                scrape.timeout_ms,
                            ),
                        });
                    }
                }
                LoadSource::None | LoadSource::InFlight(_) => {}
            }
        }
        Self {
            reads,
            http_calls: Vec::new(),
        }
    }

    /// The intervals the reads run at, for the tick period.
    pub fn intervals_ms(&self) -> impl Iterator<Item = u64> + '_ {
        self.reads.iter().map(|read| read.schedule.interval_ms())
    }

    /// The reads due on the tick at `now_ms` (ticks coming every `tick_ms`) whose lease this VM
    /// holds: `hold_lease(key, ttl_ms)` takes or renews the lease `key` for `ttl_ms`, false when
    /// another VM holds it.
    pub fn due_reads(
        &mut self,
        now_ms: u64,
        tick_ms: u64,
        hold_lease: &mut dyn FnMut(&str, u64) -> bool,
    ) -> Vec<Read> {
        let mut due = Vec::new();
        for (index, read) in self.reads.iter_mut().enumerate() {
            if !read.schedule.due(now_ms, tick_ms)
                || !hold_lease(&read.keys.lease, read.schedule.lease_ttl_ms())
            {
                continue;
            }
            read.schedule.sent(now_ms);
            due.push(Read {
                index,
                query: read.query.clone(),
                timeout_ms: read.schedule.timeout_ms(),
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
            read.schedule.not_sent();
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

    /// What to publish from a read's reply (`None`: the reply failed, or no read was out, and
    /// the last loads stay until they age out).
    pub fn on_reply(
        &mut self,
        index: usize,
        reply: Result<Vec<u8>, StoreError>,
    ) -> Option<Publication> {
        let read = self.reads.get_mut(index)?;
        let sent_at_ms = read.schedule.replied()?;
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
        match loads {
            // The loads are at least as fresh as the moment they were asked for.
            Ok(loads) => Some(Publication {
                key: read.keys.loads.clone(),
                snapshot: Snapshot {
                    fetched_at_ms: sent_at_ms,
                    loads,
                },
            }),
            Err(err) => {
                warn!(
                    "ai-load-balancer: background read of {} failed: {err}; the last loads \
                     stay until they age out",
                    read.keys.loads
                );
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "reads_tests.rs"]
mod tests;
