//! The whole body's rewrite for the chosen backend's model, when the body reached the filter
//! before the choice (read for the pool or the strategy, or delivered to held headers): the
//! headers are still held, so `content-length` is corrected.
//!
//! Why the trailers resume from the next tick (here and in src/flow/streaming.rs): a body that
//! ends with trailers and was queued while the store was asked reaches the filter with the
//! trailers right behind it, in one continuation. When the filter then continues on the
//! trailers, Envoy 1.40's filter manager has already marked the stream ended for this filter
//! and drops the body it still buffers: the provider gets none.

use log::debug;

use super::{RequestHost, Stat};
use crate::rewrite::rewrite_model;

/// Rewrites the whole body, read now from the host (`size` bytes), for `model`.
pub(super) fn rewrite_from_host(host: &mut dyn RequestHost, model: &str, size: usize) {
    let Some(body) = host.request_body(0, size) else {
        debug!("ai-load-balancer: request body unavailable, forwarded untouched");
        host.count(Stat::RewriteSkipped);
        return;
    };
    rewrite(host, model, &body);
}

/// Rewrites the whole body, `body` as the host buffers it, for `model`; corrects
/// `content-length` (the headers are held).
pub(super) fn rewrite(host: &mut dyn RequestHost, model: &str, body: &[u8]) {
    match rewrite_model(body, model) {
        Ok(rewritten) => {
            if !host.replace_request_body(body.len(), &rewritten) {
                host.count(Stat::RewriteSkipped);
                return;
            }
            // Read only now: most requests never need it.
            if host.request_header("content-length").is_some() {
                host.set_request_header("content-length", &rewritten.len().to_string());
            }
            host.count(Stat::Rewritten);
        }
        Err(skip) => {
            debug!("ai-load-balancer: body forwarded untouched: {skip}");
            host.count(Stat::RewriteSkipped);
        }
    }
}
