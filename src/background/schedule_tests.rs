use super::*;
use crate::background::lease::{claim, Lease};

const START: u64 = 1_767_225_600_000;

#[test]
fn work_is_due_at_the_first_tick_then_on_the_tick_nearest_each_due_time() {
    let mut schedule = Schedule::new(500, 100);
    assert!(schedule.due(START, 500), "never run: due at once");
    assert!(!schedule.due(START, 500), "just ran");
    // Next due at START + 500; ticks every 500 ms: up to 250 ms early is the nearest tick.
    let mut early = schedule.clone();
    assert!(!early.due(START + 249, 500));
    assert!(early.due(START + 250, 500));
    // With ticks every 100 ms, 50 ms early at most.
    let mut fast = schedule.clone();
    assert!(!fast.due(START + 449, 100));
    assert!(fast.due(START + 450, 100));
    // With ticks every millisecond (a request waiting to resume), not before its time.
    let mut exact = schedule.clone();
    assert!(!exact.due(START + 499, 1));
    assert!(exact.due(START + 500, 1));
    // Late is due, and the next is one interval after the tick that ran it.
    assert!(schedule.due(START + 900, 500));
    assert!(!schedule.due(START + 1149, 500));
    assert!(schedule.due(START + 1150, 500));
}

/// Issue 17: ticks set to 500 ms that read 499 ms apart on the filter's clock skipped every
/// other refresh (724 to 834 ms between publications). Each tick now runs it.
#[test]
fn a_tick_that_reads_a_little_early_still_runs_the_work() {
    let mut schedule = Schedule::new(500, 100);
    let mut now = START;
    assert!(schedule.due(now, 500));
    for step in [499, 499, 500, 498, 501, 499] {
        now += step;
        assert!(schedule.due(now, 500), "{step} ms after the last tick");
    }
}

/// Ticks at `period_ms` give or take a few milliseconds (a fixed pattern, early and late in
/// balance);
/// the times at which a read of `interval_ms` is sent, the read coming back at once.
fn sends(interval_ms: u64, period_ms: u64, ticks: usize) -> Vec<u64> {
    let jitter: [i64; 7] = [0, -1, -3, 2, -2, 3, 1];
    let mut reads = ReadSchedule::new(interval_ms, 100);
    let mut sent = Vec::new();
    let mut now = START;
    for tick in 0..ticks {
        now = now.saturating_add_signed(period_ms as i64 + jitter[tick % jitter.len()]);
        if reads.due(now, period_ms) {
            reads.sent(now);
            assert_eq!(reads.replied(), Some(now));
            sent.push(now);
        }
    }
    sent
}

#[test]
fn publication_keeps_its_interval_within_a_tick() {
    for (interval_ms, other_ms) in [(500, 1_000), (100, 1_000), (700, 500), (250, 1_000)] {
        let period_ms = tick_period([interval_ms, other_ms])
            .map(|period| period.as_millis() as u64)
            .unwrap_or_default();
        let sent = sends(interval_ms, period_ms, 2_000);
        let span = sent.last().unwrap_or(&0) - sent.first().unwrap_or(&0);
        for gap in sent.windows(2).map(|pair| pair[1] - pair[0]) {
            assert!(
                gap + 7 >= interval_ms && gap <= interval_ms + 7,
                "{interval_ms} ms read, ticks every {period_ms} ms: {gap} ms between two"
            );
        }
        let mean = span / (sent.len() as u64 - 1);
        assert!(
            mean.abs_diff(interval_ms) <= 1,
            "{interval_ms}: every {mean} ms"
        );
    }
}

#[test]
fn a_read_out_holds_the_next_back_until_its_reply_or_until_it_is_given_up() {
    let mut reads = ReadSchedule::new(500, 100);
    assert!(reads.due(START, 500));
    reads.sent(START);
    // Still out at the next due time: not doubled.
    assert!(!reads.due(START + 500, 500));
    assert_eq!(reads.replied(), Some(START));
    assert_eq!(reads.replied(), None, "a second reply publishes nothing");
    assert!(
        reads.due(START + 600, 500),
        "the tick after the reply sends the next"
    );
    reads.sent(START + 600);
    // Lost by the host: given up one timeout plus one interval after it was sent.
    assert!(!reads.due(START + 1_199, 500));
    assert!(reads.due(START + 1_200, 500));
    reads.sent(START + 1_200);
    // Not sent after all: the next goes out when due, without waiting for a reply.
    reads.not_sent();
    assert!(reads.due(START + 1_700, 500));
}

#[test]
fn a_lease_lasts_three_intervals_and_a_timeout() {
    assert_eq!(Schedule::new(500, 100).lease_ttl_ms(), 1_600);
    assert_eq!(ReadSchedule::new(100, 1_000).lease_ttl_ms(), 1_300);
    assert_eq!(Schedule::new(u64::MAX, 1).lease_ttl_ms(), u64::MAX);
    let schedule = Schedule::new(500, 100);
    assert!(!schedule.reply_lost(START, START + 599));
    assert!(schedule.reply_lost(START, START + 600));
}

#[test]
fn the_tick_period_puts_every_due_time_on_a_tick() {
    let period = |intervals: &[u64]| tick_period(intervals.iter().copied());
    let ms = |ms| Some(Duration::from_millis(ms));
    assert_eq!(period(&[]), None, "no periodic work: no tick");
    assert_eq!(period(&[0]), None);
    assert_eq!(period(&[500]), ms(500));
    assert_eq!(period(&[500, 1_000]), ms(500));
    assert_eq!(period(&[5_000, 1_000]), ms(1_000));
    assert_eq!(period(&[700, 500]), ms(100));
    assert_eq!(period(&[300, 1_000, 5_000]), ms(100));
    assert_eq!(period(&[150, 1_000]), ms(50), "MIN_TICK_MS is enough");
    assert_eq!(
        period(&[120, 1_000]),
        ms(120),
        "40 ms: the shortest instead"
    );
    assert_eq!(period(&[499, 500]), ms(499));
    assert_eq!(
        period(&[10, 1_000]),
        ms(10),
        "shorter than MIN_TICK_MS configured"
    );
    assert_eq!(period(&[1_500, 0, 1_000]), ms(500));
}

#[test]
fn waiting_requests_speed_the_tick_up_until_they_are_done() {
    let periodic = Duration::from_millis(500);
    let none = Duration::ZERO;
    assert_eq!(tick_while_waiting(periodic, false, false), periodic);
    assert_eq!(tick_while_waiting(none, false, false), none);
    assert_eq!(tick_while_waiting(periodic, true, true), RESUME_TICK);
    assert_eq!(tick_while_waiting(none, true, false), RESUME_TICK);
    assert_eq!(tick_while_waiting(periodic, false, true), BODY_WAIT_TICK);
    assert_eq!(tick_while_waiting(none, false, true), BODY_WAIT_TICK);
    let fast = Duration::from_millis(10);
    assert_eq!(tick_while_waiting(fast, false, true), fast);
}

/// A worker doing one background read under the shared lease `lease`.
struct Worker {
    me: u64,
    reads: ReadSchedule,
    sent: Vec<u64>,
}

impl Worker {
    fn new(me: u64) -> Self {
        Self {
            me,
            reads: ReadSchedule::new(500, 100),
            sent: Vec::new(),
        }
    }

    /// One tick, as the glue does it: due, then the lease (compare-and-swap), then the read,
    /// whose reply comes back at once.
    fn tick(&mut self, lease: &mut Option<Vec<u8>>, now_ms: u64) {
        if !self.reads.due(now_ms, 500) {
            return;
        }
        let Some(mine) = claim(lease.as_deref(), self.me, now_ms, self.reads.lease_ttl_ms()) else {
            return;
        };
        *lease = Some(mine.encode());
        self.reads.sent(now_ms);
        self.reads.replied();
        self.sent.push(now_ms);
    }
}

fn holder(lease: &Option<Vec<u8>>) -> Option<Lease> {
    lease.as_deref().and_then(|bytes| Lease::decode(bytes).ok())
}

#[test]
fn one_worker_reads_and_renews_its_lease_while_the_other_waits() {
    let (mut a, mut b) = (Worker::new(1), Worker::new(2));
    let mut lease = None;
    for tick in 0..20 {
        let now = START + tick * 500;
        a.tick(&mut lease, now);
        b.tick(&mut lease, now + 3);
        let renewed = Lease {
            holder: 1,
            expires_at_ms: now + 1_600,
        };
        assert_eq!(holder(&lease), Some(renewed), "renewed at every read");
    }
    assert_eq!(a.sent.len(), 20);
    assert!(b.sent.is_empty());
}

#[test]
fn a_holder_that_stops_ticking_is_replaced_once_its_lease_runs_out() {
    let (mut a, mut b) = (Worker::new(1), Worker::new(2));
    let mut lease = None;
    a.tick(&mut lease, START);
    // A stops; its lease runs to START + 1600; B's ticks before then find it held.
    for tick in 1..=3 {
        b.tick(&mut lease, START + tick * 500);
    }
    assert!(b.sent.is_empty());
    b.tick(&mut lease, START + 2_000);
    assert_eq!(
        b.sent,
        [START + 2_000],
        "the first tick past the expiry takes it over"
    );
    assert_eq!(holder(&lease).map(|lease| lease.holder), Some(2));
    // A comes back: B holds a valid lease now, so A stands aside.
    a.tick(&mut lease, START + 2_100);
    assert_eq!(a.sent, [START]);
}

#[test]
fn a_slow_holder_keeps_its_lease() {
    let (mut a, mut b) = (Worker::new(1), Worker::new(2));
    let mut lease = None;
    // A's ticks come up to 1.5 s apart (three intervals, not three plus the timeout).
    let mut now = START;
    for gap in [1_500, 1_200, 1_500, 900, 1_500] {
        a.tick(&mut lease, now);
        for b_tick in (now + 1..now + gap).step_by(500) {
            b.tick(&mut lease, b_tick);
        }
        now += gap;
    }
    assert_eq!(a.sent.len(), 5);
    assert!(
        b.sent.is_empty(),
        "B took over from a slow holder at {:?}",
        b.sent
    );
}

#[test]
fn a_reply_that_takes_its_whole_timeout_does_not_lose_the_lease() {
    let (mut a, mut b) = (Worker::new(1), Worker::new(2));
    let mut lease = None;
    a.tick(&mut lease, START);
    // A's next read goes out at START + 500 and is not back at the next tick: no renewal then.
    assert!(a.reads.due(START + 500, 500));
    a.reads.sent(START + 500);
    assert!(!a.reads.due(START + 1_000, 500));
    b.tick(&mut lease, START + 1_003);
    assert_eq!(
        a.reads.replied(),
        Some(START + 500),
        "back after 100 ms + 500 ms"
    );
    a.tick(&mut lease, START + 1_500);
    b.tick(&mut lease, START + 1_503);
    assert_eq!(a.sent, [START, START + 1_500]);
    assert!(b.sent.is_empty());
    assert_eq!(holder(&lease).map(|l| l.expires_at_ms), Some(START + 3_100));
}
