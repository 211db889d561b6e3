//! ai-load-balancer: a proxy-wasm filter that picks the least-loaded LLM provider for each
//! request, tells the gateway where to route it, and rewrites the body's `model`.
//!
//! Everything but `glue` is host-independent and unit-tested natively; only `glue` touches
//! the proxy-wasm ABI, and it is compiled for wasm only.

pub mod background;
pub mod call;
pub mod config;
pub mod engine;
pub mod flow;
pub mod header_map;
pub mod health;
pub mod inflight;
pub mod load;
pub mod ratelimit;
pub mod rewrite;
pub mod rng;
pub mod rules;
pub mod store;
pub mod strategy;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod glue;
