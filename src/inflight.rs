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

/// The worker registry with `me` in it, or `None` when it is there already.
pub fn register(registry: Option<&[u8]>, me: u64) -> Option<Vec<u8>> {
    let current = registry
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let id = format!("{me:016x}");
    if current.split(' ').any(|listed| listed == id) {
        return None;
    }
    Some(if current.is_empty() {
        id.into_bytes()
    } else {
        format!("{current} {id}").into_bytes()
    })
}

pub fn workers(registry: Option<&[u8]>) -> Vec<u64> {
    registry
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("")
        .split(' ')
        .filter_map(|id| u64::from_str_radix(id, 16).ok())
        .collect()
}

/// Each provider's count summed over the live slots.
pub fn totals(slots: &[Slot], providers: &[&str], now_ms: u64) -> Vec<u64> {
    let live: Vec<&Slot> = slots
        .iter()
        .filter(|slot| now_ms.saturating_sub(slot.heartbeat_ms) <= STALE_AFTER_MS)
        .collect();
    providers
        .iter()
        .map(|provider| live.iter().map(|slot| slot.count(provider)).sum())
        .collect()
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
        let first = register(None, 1).unwrap();
        let both = register(Some(&first), 0xab).unwrap();
        assert_eq!(register(Some(&both), 1), None);
        assert_eq!(workers(Some(&both)), vec![1, 0xab]);
        assert_eq!(workers(None), Vec::<u64>::new());
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
