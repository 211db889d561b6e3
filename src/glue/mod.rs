//! The proxy-wasm glue: the only code that talks to the host. It turns host callbacks into
//! `RequestFlow` events and `RequestHost` calls into proxy-wasm calls.

mod filter;
mod host;
mod metrics;
#[cfg(feature = "higress")]
mod redis;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}}
