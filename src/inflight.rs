//! In-flight counting for operators with no metrics writer: every worker keeps its own count of
//! requests it sent to each provider in a slot of shared data that only it writes, with a
//! heartbeat; a registry lists the workers. The load of a provider is the sum over the slots
//! whose heartbeat is recent, so a worker that dies with requests in flight stops counting once
//! its heartbeat is stale: its leaked counts are repaired without anyone resetting them.

use std::fmt::Write as _;

pub const REGISTRY_KEY: &str = "ai_lb/inflight/workers";
/// A slot whose heartbeat is older than this is a dead worker's: ignored.
pub const STALE_AFTER_MS: u64 = 10_000;
/// How often each worker refreshes its heartbeat (on the tick).
pub const HEARTBEAT_MS: u64 = 1_000;

pub fn slot_key(worker: u64) -> String {
    format!("ai_lb/inflight/w/{worker:016x}")
}

/// One worker's counts per provider name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slot {
    pub heartbeat_ms: u64,
    pub counts: Vec<(String, u64)>,
}

impl Slot {
    /// `v1 <heartbeat_ms> <name>=<count> ...`; provider names have no spaces or `=` issues
    /// because they are read back by splitting at the last `=`.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("v1 {}", self.heartbeat_ms);
        for (name, count) in &self.counts {
            // Writing to a String cannot fail.
            let _ = write!(text, "\n{name}={count}");
        }
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Slot, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "slot is not UTF-8".to_string())?;
        let mut lines = text.split('\n');
        let heartbeat_ms = lines
            .next()
            .and_then(|head| head.strip_prefix("v1 "))
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(|| format!("slot has no v1 heartbeat: {text:?}"))?;
        let mut counts = Vec::new();
        for line in lines {
            let (name, count) = line
                .rsplit_once('=')
                .and_then(|(name, count)| Some((name, count.parse::<u64>().ok()?)))
                .ok_or_else(|| format!("slot line {line:?} is not <name>=<count>"))?;
            counts.push((name.to_string(), count));
        }
        Ok(Slot {
            heartbeat_ms,
            counts,
        })
    }

    /// Adds `delta` to a provider's count (never below zero) and beats.
    pub fn add(&mut self, provider: &str, delta: i64, now_ms: u64) {
        self.heartbeat_ms = now_ms;
        match self.counts.iter_mut().find(|(name, _)| name == provider) {
            Some((_, count)) => *count = count.saturating_add_signed(delta),
            None => self
                .counts
                .push((provider.to_string(), 0u64.saturating_add_signed(delta))),
        }
    }

    pub fn count(&self, provider: &str) -> u64 {
        self.counts
            .iter()
            .find(|(name, _)| name == provider)
            .map_or(0, |(_, count)| *count)
    }
}

/// How long a worker's slot may go without a heartbeat before the worker is taken off the
/// registry (its VM is gone): the registry then holds the live workers and the recently dead,
/// however often VMs restart.
pub const FORGET_AFTER_MS: u64 = 6 * STALE_AFTER_MS;

/// The worker registry with `me` in it and the workers in `gone` out of it, or `None` when it
/// needs no change.
pub fn register(registry: Option<&[u8]>, me: u64, gone: &[u64]) -> Option<Vec<u8>> {
    let listed = workers(registry);
    if listed.contains(&me) && !listed.iter().any(|worker| gone.contains(worker)) {
        return None;
    }
    let mut ids = Vec::with_capacity(listed.len() + 1);
    for worker in listed {
        if worker != me && !gone.contains(&worker) {
            ids.push(format!("{worker:016x}"));
        }
    }
    ids.push(format!("{me:016x}"));
    Some(ids.join(" ").into_bytes())
}

pub fn workers(registry: Option<&[u8]>) -> Vec<u64> {
    let text = registry
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let mut workers = Vec::new();
    for id in text.split(' ') {
        if let Ok(worker) = u64::from_str_radix(id, 16) {
            workers.push(worker);
        }
    }
    workers
}

/// Each provider's count summed over the live slots.
pub fn totals(slots: &[Slot], providers: &[&str], now_ms: u64) -> Vec<u64> {
    let mut totals = Vec::with_capacity(providers.len());
    for provider in providers {
        let mut total: u64 = 0;
        for slot in slots {
            if now_ms.saturating_sub(slot.heartbeat_ms) <= STALE_AFTER_MS {
                total += slot.count(provider);
            }
        }
        totals.push(total);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips_and_never_goes_negative() {
        let mut slot = Slot::default();
        slot.add("a=b", 2, 5);
        slot.add("c d", 1, 6);
        slot.add("a=b", -1, 7);
        slot.add("x", -3, 8);
        assert_eq!(Slot::decode(&slot.encode()), Ok(slot.clone()));
        assert_eq!(
            (slot.count("a=b"), slot.count("c d"), slot.count("x")),
            (1, 1, 0)
        );
        assert_eq!(slot.heartbeat_ms, 8);
        for bad in [
            &b"v2 5"[..],
            b"v1 x",
            b"v1 5\nnoequals",
            b"v1 5\na=-1",
            b"\xff",
        ] {
            assert!(Slot::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registry_lists_each_worker_once() {
        let first = register(None, 1, &[]).unwrap();
        let both = register(Some(&first), 0xab, &[]).unwrap();
        assert_eq!(register(Some(&both), 1, &[]), None);
        assert_eq!(workers(Some(&both)), vec![1, 0xab]);
        assert_eq!(workers(None), Vec::<u64>::new());
    }

    #[test]
    fn restarted_workers_do_not_grow_the_registry() {
        let mut registry = register(None, 1, &[]).unwrap();
        // Each restart brings a new worker; the one before it is gone by then.
        for worker in 2..1_000u64 {
            registry = register(Some(&registry), worker, &[worker - 1]).unwrap();
        }
        assert_eq!(workers(Some(&registry)), vec![999]);
    }

    #[test]
    fn a_dead_workers_counts_stop_counting() {
        let slot = |heartbeat_ms, a, b| Slot {
            heartbeat_ms,
            counts: vec![("a".into(), a), ("b".into(), b)],
        };
        let slots = [
            slot(100_000, 2, 1),
            slot(95_000, 5, 0),
            slot(80_000, 50, 50),
        ];
        assert_eq!(totals(&slots, &["a", "b", "c"], 100_000), vec![7, 1, 0]);
        assert_eq!(totals(&slots, &["a"], 106_000), vec![2]);
    }
}

/// In-flight counts across gateway replicas, in Redis: one hash per provider whose fields are
/// workers (`HINCRBY key <worker> ±1`), and one hash of worker heartbeats stamped with Redis's
/// own clock. A read sums each provider's live workers and deletes the fields of dead ones, so a
/// worker that vanished with requests in flight stops counting; each worker also re-asserts its
/// own counts on the tick, which repairs an increment or decrement that was lost.
pub mod replicas {
    use crate::store::encode_command;

    /// Workers whose heartbeat is older than this (Redis time) are dead.
    pub const STALE_AFTER_MS: u64 = super::STALE_AFTER_MS;

    /// KEYS[1] = heartbeats, KEYS[2..] = provider hashes, ARGV[1] = stale after (ms). Answers one
    /// total per provider, as strings (read like an MGET reply).
    pub const READ_SCRIPT: &str = "local t=redis.call('TIME') \
local now=tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000) \
local beats=redis.call('HGETALL',KEYS[1]) local live={} \
for i=1,#beats,2 do if now-tonumber(beats[i+1])<=tonumber(ARGV[1]) then live[beats[i]]=true end end \
local out={} for k=2,#KEYS do local total=0 local counts=redis.call('HGETALL',KEYS[k]) \
for i=1,#counts,2 do if live[counts[i]] then total=total+math.max(0,tonumber(counts[i+1]) or 0) \
else redis.call('HDEL',KEYS[k],counts[i]) end end out[k-1]=tostring(total) end return out";

    /// KEYS[1] = heartbeats, ARGV[1] = worker: stamps the worker with Redis's clock.
    pub const BEAT_SCRIPT: &str = "local t=redis.call('TIME') \
redis.call('HSET',KEYS[1],ARGV[1],tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000)) return 1";

    pub fn heartbeats_key(prefix: &str) -> String {
        format!("{prefix}inflight:workers")
    }

    pub fn provider_key(prefix: &str, provider: &str) -> String {
        format!("{prefix}inflight:{provider}")
    }

    pub fn worker_field(worker: u64) -> String {
        format!("{worker:016x}")
    }

    /// The read: EVAL of `READ_SCRIPT` over every provider's hash.
    pub fn read_args(heartbeats: &str, providers: &[String]) -> Vec<String> {
        let mut args = vec![
            "EVAL".to_string(),
            READ_SCRIPT.to_string(),
            (providers.len() + 1).to_string(),
            heartbeats.to_string(),
        ];
        for provider in providers {
            args.push(provider.clone());
        }
        args.push(STALE_AFTER_MS.to_string());
        args
    }

    /// KEYS[1] = heartbeats, KEYS[2] = provider hash, ARGV[1] = worker, ARGV[2] = delta: counts
    /// and stamps the worker in one call, so a worker's first count is never read as a dead one.
    pub const ADD_SCRIPT: &str = "local t=redis.call('TIME') \
redis.call('HSET',KEYS[1],ARGV[1],tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000)) \
return redis.call('HINCRBY',KEYS[2],ARGV[1],ARGV[2])";

    pub fn add_command(heartbeats: &str, provider_key: &str, worker: u64, delta: i64) -> Vec<u8> {
        let (field, delta) = (worker_field(worker), delta.to_string());
        encode_command(&[
            "EVAL",
            ADD_SCRIPT,
            "2",
            heartbeats,
            provider_key,
            &field,
            &delta,
        ])
    }

    pub fn assert_command(provider_key: &str, worker: u64, count: u64) -> Vec<u8> {
        let (field, count) = (worker_field(worker), count.to_string());
        encode_command(&["HSET", provider_key, &field, &count])
    }

    pub fn beat_command(heartbeats: &str, worker: u64) -> Vec<u8> {
        encode_command(&["EVAL", BEAT_SCRIPT, "1", heartbeats, &worker_field(worker)])
    }
}
