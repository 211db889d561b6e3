#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Property-based tests of everything that reads outside input: the body scanner and rewriter,
//! the token usage in responses, the store replies (RESP, Webdis JSON), the engine metrics
//! (Prometheus text, the endpoint's JSON, Redis hashes), providers' rate-limit headers and the
//! configuration reader (YAML and JSON). Each gets arbitrary bytes, token soup and mutated valid
//! inputs (no panic, errors returned), round trips where one exists, and large adversarial
//! inputs whose time must grow linearly (`linear_time`, `linear_time_config`, `usage_scan`).
//!
//! Bounded for CI: fixed cases and seed, no regression files (`runner`). A failure prints the
//! minimal input proptest found; it belongs in the module's unit tests once fixed.

#[path = "fuzz/body_rewrite.rs"]
mod body_rewrite;
#[path = "fuzz/body_stream.rs"]
mod body_stream;
#[path = "fuzz/engine_loads.rs"]
mod engine_loads;
#[path = "fuzz/engine_pages.rs"]
mod engine_pages;
#[path = "fuzz/error_paths.rs"]
mod error_paths;
#[path = "fuzz/growth.rs"]
mod growth;
#[path = "fuzz/linear_time.rs"]
mod linear_time;
#[path = "fuzz/linear_time_config.rs"]
mod linear_time_config;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/plugin_config.rs"]
mod plugin_config;
#[path = "fuzz/rate_limits.rs"]
mod rate_limits;
#[path = "fuzz/runner.rs"]
mod runner;
#[path = "fuzz/store_replies.rs"]
mod store_replies;
#[path = "fuzz/usage_scan.rs"]
mod usage_scan;
#[path = "fuzz/values.rs"]
mod values;
