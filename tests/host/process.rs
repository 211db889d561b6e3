//! What one Envoy process shares between its VMs (workers): the clock the test drives, shared
//! data with Envoy's compare-and-swap, metrics, and where each upstream cluster really is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::faults::Faults;
use super::ledger::Ledger;

/// 2026-01-01T00:00:00Z: the wall clock starts here, so logs and seeds are reproducible.
const START_REALTIME_NS: u64 = 1_767_225_600_000_000_000;
/// The monotonic clock starts at an arbitrary non-zero value, as a real one does.
const START_MONOTONIC_NS: u64 = 1_000_000_000;

/// Which gateway the host behaves as, where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Upstream Envoy: the route is re-matched only through the `clear_route_cache` foreign
    /// function; no Redis host calls.
    Envoy,
    /// Higress: Redis host calls; a request-header change re-matches the route unless the plugin
    /// set the property `clear_route_cache` to `off`; no `clear_route_cache` foreign function.
    Higress,
}

/// When the host hands the request body to a filter that paused the request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDelivery {
    /// Envoy's default: a pause in the headers stops everything; the body arrives after the
    /// filter resumes the request.
    AfterHeadersResume,
    /// `allow_on_headers_stop_iteration: true`: the body arrives while the headers are held.
    WhileHeadersPaused,
}

pub struct Process {
    pub flavor: Flavor,
    pub body_delivery: BodyDelivery,
    /// proxy-wasm log level the host reports (0 trace … 5 critical).
    pub log_level: i32,
    elapsed: Duration,
    pub shared_data: SharedData,
    pub metrics: Metrics,
    /// Clusters the gateway knows, by the name the filter uses, and the real server behind
    /// each (`None`: the test answers calls to it by hand).
    pub clusters: HashMap<String, Option<SocketAddr>>,
    pub next_token: u32,
    /// Statuses the test injects into host calls.
    pub faults: Faults,
    /// The host calls the filter made and the bytes they copied, all VMs together.
    pub ledger: Ledger,
    /// How much short of its period each tick falls after the one before, on the clock the
    /// filter reads (see [`super::Host::ticks_early`]).
    pub ticks_early: Duration,
}

impl Process {
    pub fn new(flavor: Flavor) -> Self {
        Self {
            flavor,
            body_delivery: BodyDelivery::AfterHeadersResume,
            log_level: 2,
            elapsed: Duration::ZERO,
            shared_data: SharedData::default(),
            metrics: Metrics::default(),
            clusters: HashMap::new(),
            next_token: 1,
            faults: Faults::default(),
            ledger: Ledger::default(),
            ticks_early: Duration::ZERO,
        }
    }

    pub fn realtime_ns(&self) -> u64 {
        START_REALTIME_NS + self.elapsed.as_nanos() as u64
    }

    pub fn monotonic_ns(&self) -> u64 {
        START_MONOTONIC_NS + self.elapsed.as_nanos() as u64
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    pub fn set_elapsed(&mut self, elapsed: Duration) {
        assert!(elapsed >= self.elapsed, "the host clock never goes back");
        self.elapsed = elapsed;
    }

    /// Tokens are unique across the process, so a reply can never reach the wrong call.
    pub fn token(&mut self) -> u32 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }
}

/// Envoy's shared data: each value carries a CAS number; a write with a non-zero CAS that no
/// longer matches fails with `CasMismatch`; a write with CAS 0 always succeeds.
#[derive(Default)]
pub struct SharedData {
    values: HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
    /// Writes (with a CAS) still to lose to another worker, by key (see `conflict_on`).
    conflicts: HashMap<String, u32>,
}

pub enum SetOutcome {
    Stored,
    CasMismatch,
}

impl SharedData {
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.values.get(key).cloned()
    }

    /// The next `writes` writes to `key` that carry a CAS (and find a value there) fail with
    /// `CasMismatch`, as if another worker had written in between: each one also gives the value
    /// a new CAS, so the loser's next read sees a changed record. A write with CAS 0 is
    /// unconditional and never conflicts. `writes` 0 ends the conflicts.
    pub fn conflict_on(&mut self, key: &str, writes: u32) {
        self.conflicts.insert(key.to_string(), writes);
    }

    /// How many conflicts set by [`SharedData::conflict_on`] are still to come on `key`.
    pub fn conflicts_left(&self, key: &str) -> u32 {
        self.conflicts.get(key).copied().unwrap_or(0)
    }

    pub fn set(&mut self, key: &str, value: &[u8], cas: u32) -> SetOutcome {
        if let Some((_, current)) = self.values.get_mut(key) {
            let pending = self.conflicts.get_mut(key).filter(|left| **left > 0);
            if let (Some(left), true) = (pending, cas != 0) {
                *left -= 1;
                self.last_cas += 1;
                *current = self.last_cas;
                return SetOutcome::CasMismatch;
            }
            if cas != 0 && cas != *current {
                return SetOutcome::CasMismatch;
            }
        }
        self.last_cas += 1;
        self.values
            .insert(key.to_string(), (value.to_vec(), self.last_cas));
        SetOutcome::Stored
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_abi(kind: i32) -> Option<Self> {
        match kind {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// Metrics are process-wide, as Envoy's stats are: two VMs defining one name share it.
#[derive(Default)]
pub struct Metrics {
    by_id: Vec<Metric>,
}

pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: u64,
    pub samples: Vec<u64>,
}

impl Metrics {
    pub fn define(&mut self, kind: MetricKind, name: &str) -> u32 {
        if let Some(id) = self.by_id.iter().position(|metric| metric.name == name) {
            return id as u32;
        }
        self.by_id.push(Metric {
            name: name.to_string(),
            kind,
            value: 0,
            samples: Vec::new(),
        });
        (self.by_id.len() - 1) as u32
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Metric> {
        self.by_id.get_mut(id as usize)
    }

    pub fn by_name(&self, name: &str) -> Option<&Metric> {
        self.by_id.iter().find(|metric| metric.name == name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Metric> {
        self.by_id.iter()
    }
}
