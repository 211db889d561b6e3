//! The body's rewrite for the chosen backend's model, and Envoy's default body delivery, where
//! the headers went on before any body: the body is buffered for the rewrite, and sent on as
//! soon as it cannot change rather than at its end.
//!
//! Why not wait for the end: a body that ends with trailers and was queued while the store was
//! asked reaches the filter with the trailers right behind it, in one continuation. When the
//! filter then continues on the trailers, Envoy 1.40's filter manager has already marked the
//! stream ended for this filter and drops the body it still buffers: the provider gets none.
//! A body passed on from a body callback is never held when the trailers come; one that is
//! still held then (not yet a whole JSON object) goes on from the next tick.

use log::debug;

use super::phase::Headers;
use super::{RequestHost, Stat};
use crate::rewrite::rewrite_model;

/// How many bytes at either end of the body are read to tell whether it can be settled.
const PEEK_BYTES: usize = 64;

/// Rewrites the whole body, read now from the host (`size` bytes), for `model`.
pub(super) fn rewrite_from_host(
    host: &mut dyn RequestHost,
    model: &str,
    size: usize,
    headers: Headers,
) {
    let Some(body) = host.request_body(0, size) else {
        debug!("ai-load-balancer: request body unavailable, forwarded untouched");
        host.count(Stat::RewriteSkipped);
        return;
    };
    rewrite(host, model, &body, headers);
}

/// Rewrites the whole body, `body` as the host buffers it, for `model`; corrects
/// `content-length` while the headers are held.
pub(super) fn rewrite(host: &mut dyn RequestHost, model: &str, body: &[u8], headers: Headers) {
    match rewrite_model(body, model) {
        Ok(rewritten) => {
            if !host.replace_request_body(body.len(), &rewritten) {
                host.count(Stat::RewriteSkipped);
                return;
            }
            // Read only now, and only while the headers are still held: most requests
            // never need it.
            if headers == Headers::Held && host.request_header("content-length").is_some() {
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

/// A body chunk (`size` bytes buffered) without end of stream, the headers gone: pass the body
/// on untouched when it is no JSON object (its first byte says so), rewritten when it is a
/// whole object already (it ends in `}` and reads as JSON). True when it was settled so;
/// false: keep buffering.
pub(super) fn forward_early(host: &mut dyn RequestHost, model: &str, size: usize) -> bool {
    let head = host.request_body(0, PEEK_BYTES).unwrap_or_default();
    match first_significant(head.iter()) {
        None | Some(b'{') => {}
        Some(_) => {
            debug!("ai-load-balancer: body forwarded untouched: not a JSON object");
            host.count(Stat::RewriteSkipped);
            return true;
        }
    }
    let tail = host
        .request_body(size.saturating_sub(PEEK_BYTES), PEEK_BYTES)
        .unwrap_or_default();
    if first_significant(tail.iter().rev()) != Some(b'}') {
        return false;
    }
    let Some(body) = host.request_body(0, size) else {
        return false;
    };
    // Any error may be a prefix of a valid body (a `}` inside a string): wait for more.
    let Ok(rewritten) = rewrite_model(&body, model) else {
        return false;
    };
    if host.replace_request_body(body.len(), &rewritten) {
        host.count(Stat::Rewritten);
    } else {
        host.count(Stat::RewriteSkipped);
    }
    true
}

/// The first byte that is not JSON whitespace.
fn first_significant<'a>(mut bytes: impl Iterator<Item = &'a u8>) -> Option<u8> {
    bytes
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        .copied()
}
