//! Whether a store is known down, per worker, so that a dead store costs requests nothing.
//!
//! Per-request reads wait for the store. When it is down, every request would still pay a
//! refused connection, or worse the whole `timeout_ms` of a store that accepts and never answers.
//! So after `after_failures` consecutive failures the store counts as down: requests stop asking
//! and choose by weight at once. Every `retry_ms` one request asks again (the probe); a reply
//! brings the store back, a failure keeps it down for another `retry_ms`.
//!
//! Only unreachable counts: a store that answers something unreadable is up, and asking it again
//! costs what a working store costs.

use crate::config::{ConfigRef, DownPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Asked by every request; `failures` in a row so far.
    Up { failures: u32 },
    /// Not asked until `retry_at_ms`.
    Down { retry_at_ms: u64 },
    /// One request is asking; the others wait for its outcome until `until_ms`, after which the
    /// probe counts as lost (its reply may never come) and another request probes.
    Probing { until_ms: u64 },
}

/// A change an operator should see in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    CameBack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOutage {
    state: State,
}

impl Default for StoreOutage {
    fn default() -> Self {
        Self {
            state: State::Up { failures: 0 },
        }
    }
}

impl StoreOutage {
    /// Whether a request may ask the store now. While down, the first request after `retry_at`
    /// becomes the probe and the others keep choosing by weight.
    pub fn may_ask(&mut self, policy: &DownPolicy, timeout_ms: u32, now_ms: u64) -> bool {
        match self.state {
            State::Up { .. } => true,
            State::Down { retry_at_ms }
            | State::Probing {
                until_ms: retry_at_ms,
            } if now_ms >= retry_at_ms => {
                // The probe's reply comes within the timeout; a lost one frees the next probe
                // one retry later.
                let until_ms = now_ms + u64::from(timeout_ms) + u64::from(policy.retry_ms);
                self.state = State::Probing { until_ms };
                true
            }
            State::Down { .. } | State::Probing { .. } => false,
        }
    }

    /// Records one asked request's outcome: `reachable` is false when the store refused, failed
    /// or timed out.
    pub fn record(
        &mut self,
        policy: &DownPolicy,
        reachable: bool,
        now_ms: u64,
    ) -> Option<Transition> {
        let was_up = matches!(self.state, State::Up { .. });
        if reachable {
            self.state = State::Up { failures: 0 };
            return (!was_up).then_some(Transition::CameBack);
        }
        let failures = match self.state {
            State::Up { failures } => failures + 1,
            State::Down { .. } | State::Probing { .. } => policy.after_failures,
        };
        if failures < policy.after_failures {
            self.state = State::Up { failures };
            return None;
        }
        self.state = State::Down {
            retry_at_ms: now_ms + u64::from(policy.retry_ms),
        };
        was_up.then_some(Transition::WentDown)
    }

    #[cfg(test)]
    fn is_down(&self) -> bool {
        !matches!(self.state, State::Up { .. })
    }
}

/// One `StoreOutage` per configuration (each has its own store), kept by a worker. A Vec by
/// position (the global configuration first, then each rule) rather than a map: a handful of
/// entries, and no map code in the module.
#[derive(Debug, Default)]
pub struct StoreOutages {
    by_config: Vec<StoreOutage>,
}

impl StoreOutages {
    fn entry(&mut self, which: ConfigRef) -> Option<&mut StoreOutage> {
        let index = match which {
            ConfigRef::Global => 0,
            ConfigRef::Rule(rule) => rule + 1,
        };
        if self.by_config.len() <= index {
            self.by_config.resize(index + 1, StoreOutage::default());
        }
        self.by_config.get_mut(index)
    }

    pub fn may_ask(
        &mut self,
        which: ConfigRef,
        policy: &DownPolicy,
        timeout_ms: u32,
        now_ms: u64,
    ) -> bool {
        self.entry(which)
            .is_none_or(|outage| outage.may_ask(policy, timeout_ms, now_ms))
    }

    pub fn record(
        &mut self,
        which: ConfigRef,
        policy: &DownPolicy,
        reachable: bool,
        now_ms: u64,
    ) -> Option<Transition> {
        self.entry(which)
            .and_then(|outage| outage.record(policy, reachable, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: DownPolicy = DownPolicy {
        after_failures: 3,
        retry_ms: 1000,
    };
    const TIMEOUT_MS: u32 = 100;

    fn fail(outage: &mut StoreOutage, now_ms: u64) -> Option<Transition> {
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, now_ms));
        outage.record(&POLICY, false, now_ms)
    }

    #[test]
    fn down_only_after_the_configured_failures_in_a_row() {
        let mut outage = StoreOutage::default();
        assert_eq!(fail(&mut outage, 0), None);
        assert_eq!(fail(&mut outage, 1), None);
        // A success in between starts the count again.
        assert_eq!(outage.record(&POLICY, true, 2), None);
        assert_eq!(fail(&mut outage, 3), None);
        assert_eq!(fail(&mut outage, 4), None);
        assert!(!outage.is_down());
        assert_eq!(fail(&mut outage, 5), Some(Transition::WentDown));
        assert!(outage.is_down());
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 6));
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 1004));
    }

    #[test]
    fn one_probe_per_retry_and_a_reply_brings_it_back() {
        let mut outage = StoreOutage::default();
        for now in 0..3 {
            fail(&mut outage, now);
        }
        // Down at 2: the first request at 1002 probes, the next ones do not ask.
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 1002));
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 1003));
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 1050));
        assert_eq!(
            outage.record(&POLICY, true, 1010),
            Some(Transition::CameBack)
        );
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 1011));
    }

    #[test]
    fn a_failed_probe_keeps_it_down_for_another_retry_without_logging_again() {
        let mut outage = StoreOutage::default();
        for now in 0..3 {
            fail(&mut outage, now);
        }
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 1002));
        assert_eq!(outage.record(&POLICY, false, 1102), None);
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 2101));
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 2102));
    }

    #[test]
    fn a_lost_probe_frees_the_next_one() {
        let mut outage = StoreOutage::default();
        for now in 0..3 {
            fail(&mut outage, now);
        }
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 1002));
        // No outcome ever arrives: after timeout + retry another request probes.
        assert!(!outage.may_ask(&POLICY, TIMEOUT_MS, 2101));
        assert!(outage.may_ask(&POLICY, TIMEOUT_MS, 2102));
    }

    #[test]
    fn each_configuration_has_its_own_store() {
        let mut book = StoreOutages::default();
        for now in 0..3 {
            book.record(ConfigRef::Rule(0), &POLICY, false, now);
        }
        assert!(!book.may_ask(ConfigRef::Rule(0), &POLICY, TIMEOUT_MS, 10));
        assert!(book.may_ask(ConfigRef::Global, &POLICY, TIMEOUT_MS, 10));
    }
}
