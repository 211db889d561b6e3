//! The proxy-wasm glue: the only code that talks to the host. It turns host callbacks into
//! `RequestFlow` events, and `RequestHost` and `Worker` calls into proxy-wasm calls and the
//! root context's state.

mod abi;
mod background;
mod filter;
mod host;
mod metrics;
mod probe;
#[cfg(feature = "higress")]
mod redis;
mod root;
mod waits;
mod worker;

/// The host's wall clock in milliseconds since the Unix epoch (0 if the host cannot tell).
pub fn now_ms() -> u64 {
    abi::now_ns().map_or(0, |nanos| nanos / 1_000_000)
}
