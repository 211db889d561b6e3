//! When background work runs: which work is due on a tick, how long its lease lasts, when a
//! reply is given up on, and which tick period the root context sets. Times are milliseconds
//! (`now_ms` on the Unix epoch), passed in, so every decision tests natively.
//!
//! A tick falls about one period after the last, on the host's timer, and the filter reads the
//! wall clock inside it: a tick may read a little less than a period after the last (Envoy
//! re-arms its timer from the event loop's cached time, and the clock is read in whole
//! milliseconds). Work is therefore due on the tick nearest its due time, not on the first one
//! at or past it: a due time missed by one millisecond would otherwise wait a whole period
//! more (a 500 ms refresh ran every 724 to 834 ms that way).

use std::time::Duration;

/// A lease lasts this many intervals of its work, plus one attempt's timeout: a holder that
/// stops ticking is replaced once that has passed, and one whose ticks or replies run late (by
/// up to two intervals) keeps it.
pub const LEASE_INTERVALS: u64 = 3;

/// Periods shorter than this are not worth a tick of their own: when the intervals have no
/// common period this long, the tick follows the shortest interval.
pub const MIN_TICK_MS: u64 = 50;

/// How often the tick comes while a request waits for a body the host may never deliver.
pub const BODY_WAIT_TICK: Duration = Duration::from_millis(100);

/// How often the tick comes while a request waits to be resumed from a later turn of the
/// host's event loop: at once.
pub const RESUME_TICK: Duration = Duration::from_millis(1);

/// One piece of periodic work: how often it runs, how long one attempt may take, and when it
/// is next due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    interval_ms: u64,
    timeout_ms: u32,
    /// `None`: due at the first tick.
    next_due_ms: Option<u64>,
}

impl Schedule {
    pub fn new(interval_ms: u64, timeout_ms: u32) -> Self {
        Self {
            interval_ms,
            timeout_ms,
            next_due_ms: None,
        }
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// How long one attempt may take.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// Whether the work runs on the tick at `now_ms`, ticks coming every `tick_ms`; when it
    /// does, it is next due one interval from now. Due on the tick nearest the due time: up to
    /// half a tick early.
    pub fn due(&mut self, now_ms: u64, tick_ms: u64) -> bool {
        let due = self
            .next_due_ms
            .is_none_or(|due_ms| now_ms.saturating_add(tick_ms / 2) >= due_ms);
        if due {
            self.next_due_ms = Some(now_ms.saturating_add(self.interval_ms));
        }
        due
    }

    /// How long a lease taken or renewed for this work now lasts.
    pub fn lease_ttl_ms(&self) -> u64 {
        self.interval_ms
            .saturating_mul(LEASE_INTERVALS)
            .saturating_add(u64::from(self.timeout_ms))
    }

    /// Whether the reply to an attempt sent at `sent_at_ms` is given up on at `now_ms`: the host
    /// lost it, and the work must not wait for it for good.
    pub fn reply_lost(&self, sent_at_ms: u64, now_ms: u64) -> bool {
        let given_up_after_ms = u64::from(self.timeout_ms).saturating_add(self.interval_ms);
        now_ms >= sent_at_ms.saturating_add(given_up_after_ms)
    }
}

/// Work with at most one attempt out at a time: a background read. A read still out when the
/// next one falls due is not doubled; the next tick after its reply sends the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSchedule {
    schedule: Schedule,
    /// When the read now out was sent (`None`: no read out).
    out_since_ms: Option<u64>,
}

impl ReadSchedule {
    pub fn new(interval_ms: u64, timeout_ms: u32) -> Self {
        Self {
            schedule: Schedule::new(interval_ms, timeout_ms),
            out_since_ms: None,
        }
    }

    pub fn interval_ms(&self) -> u64 {
        self.schedule.interval_ms
    }

    pub fn timeout_ms(&self) -> u32 {
        self.schedule.timeout_ms
    }

    /// Whether a read is due on the tick at `now_ms` (see [`Schedule::due`]); a read out whose
    /// reply is lost no longer holds the next one back.
    pub fn due(&mut self, now_ms: u64, tick_ms: u64) -> bool {
        if let Some(sent_at_ms) = self.out_since_ms {
            if !self.schedule.reply_lost(sent_at_ms, now_ms) {
                return false;
            }
            self.out_since_ms = None;
        }
        self.schedule.due(now_ms, tick_ms)
    }

    pub fn lease_ttl_ms(&self) -> u64 {
        self.schedule.lease_ttl_ms()
    }

    /// The read went out at `now_ms`.
    pub fn sent(&mut self, now_ms: u64) {
        self.out_since_ms = Some(now_ms);
    }

    /// The read could not be sent: the next is sent when due.
    pub fn not_sent(&mut self) {
        self.out_since_ms = None;
    }

    /// A reply came: when its read was sent, or `None` when no read is out (a reply given up
    /// on that came after all, which is not published: a newer read may be out).
    pub fn replied(&mut self) -> Option<u64> {
        self.out_since_ms.take()
    }
}

/// The tick period the periodic work wants, from the intervals of the work there is: the
/// longest period that divides every interval, so that each due time falls on a tick; the
/// shortest interval when that period would be shorter than `MIN_TICK_MS`. `None`: no periodic
/// work, no tick.
pub fn tick_period(intervals_ms: impl IntoIterator<Item = u64>) -> Option<Duration> {
    let intervals: Vec<u64> = intervals_ms.into_iter().filter(|ms| *ms > 0).collect();
    let shortest = intervals.iter().copied().min()?;
    let common = intervals.iter().copied().fold(0, greatest_common_divisor);
    let period = if common >= MIN_TICK_MS.min(shortest) {
        common
    } else {
        shortest
    };
    Some(Duration::from_millis(period))
}

fn greatest_common_divisor(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The tick period to set while requests wait on the tick: at once for a request to resume,
/// `BODY_WAIT_TICK` (or the periodic tick, if shorter) while one waits for its body, else the
/// periodic tick (`periodic` zero: none).
pub fn tick_while_waiting(periodic: Duration, resumes: bool, body_waits: bool) -> Duration {
    if resumes {
        RESUME_TICK
    } else if body_waits && (periodic.is_zero() || periodic > BODY_WAIT_TICK) {
        BODY_WAIT_TICK
    } else {
        periodic
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
