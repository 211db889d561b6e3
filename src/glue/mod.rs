//! The proxy-wasm glue: the only code that talks to the host. It turns host callbacks into
//! `RequestFlow` events and `RequestHost` calls into proxy-wasm calls.

mod filter;
mod host;
mod metrics;
mod probe;
#[cfg(feature = "higress")]
mod redis;
mod refresh;
mod root;

use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}

/// The host's wall clock in milliseconds since the Unix epoch (0 if the host cannot tell).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as u64)
}
