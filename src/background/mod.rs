//! Background work: what one VM does on the tick for every worker, under a lease in shared
//! data, so that requests never wait for it. Background reads (a store's loads in background
//! mode, an engine's `/metrics`) publish a snapshot every worker's requests read; the probes
//! (`crate::health::probe`) fold their results into shared health records.
//!
//! Host-free: time comes in as `now_ms` (Unix epoch milliseconds), so every decision tests
//! natively; `src/glue/background.rs` and `src/glue/probe.rs` only make the host calls. `reads`:
//! which reads there are and what a reply publishes; `schedule`: what is due on a tick and the
//! tick period; `lease`: who does the work; `keys` and `snapshot`: where and what is published.

pub mod keys;
pub mod lease;
pub mod reads;
pub mod schedule;
pub mod snapshot;

pub use keys::{engine_keys, fnv1a_64, shared_keys, SharedKeys};
pub use snapshot::{fresh_loads, Snapshot, Stale};
