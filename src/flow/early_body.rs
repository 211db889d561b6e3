//! Envoy's default body delivery, where the headers went on before any body: the body is
//! buffered for the rewrite, and sent on as soon as it cannot change rather than at its end.
//!
//! Why not wait for the end: a body that ends with trailers and was queued while the store was
//! asked reaches the filter with the trailers right behind it, in one continuation. When the
//! filter then continues on the trailers, Envoy 1.40's filter manager has already marked the
//! stream ended for this filter and drops the body it still buffers: the provider gets none.
//! A body passed on from a body callback is never held when the trailers come; one that is
//! still held then (not yet a whole JSON object) goes on from the next tick.

use log::debug;

use super::{Phase, RequestFlow, RequestHost, Stat, Verdict};
use crate::rewrite::rewrite_model;

/// How many bytes at either end of the body are read to tell whether it can be settled.
const PEEK_BYTES: usize = 64;

impl RequestFlow {
    /// A body chunk without end of stream, the headers gone: pass the body on untouched when
    /// it is no JSON object (its first byte says so), rewritten when it is a whole object
    /// already (it ends in `}` and reads as JSON); otherwise keep buffering.
    pub(super) fn forward_body_early(&mut self, host: &mut dyn RequestHost) -> Verdict {
        let plugin = std::rc::Rc::clone(&self.plugin);
        let Some(model) = self.model_to_write(&plugin) else {
            return self.release(host);
        };
        let size = self.body_size;
        let head = host.request_body(0, PEEK_BYTES).unwrap_or_default();
        match first_significant(head.iter()) {
            None | Some(b'{') => {}
            Some(_) => {
                debug!("ai-load-balancer: body forwarded untouched: not a JSON object");
                host.count(Stat::RewriteSkipped);
                self.phase = Phase::Released;
                return Verdict::Continue;
            }
        }
        let tail = host
            .request_body(size.saturating_sub(PEEK_BYTES), PEEK_BYTES)
            .unwrap_or_default();
        if first_significant(tail.iter().rev()) != Some(b'}') {
            return Verdict::Pause;
        }
        let Some(body) = host.request_body(0, size) else {
            return Verdict::Pause;
        };
        // Any error may be a prefix of a valid body (a `}` inside a string): wait for more.
        let Ok(rewritten) = rewrite_model(&body, model) else {
            return Verdict::Pause;
        };
        if host.replace_request_body(body.len(), &rewritten) {
            host.count(Stat::Rewritten);
        } else {
            host.count(Stat::RewriteSkipped);
        }
        self.phase = Phase::Released;
        Verdict::Continue
    }
}

impl RequestFlow {
    /// Trailers end a body buffered after the headers went on: rewrite it, then let it go. When
    /// the headers went before it, the body may have been queued with the trailers behind it:
    /// continuing now would lose it (above), and resuming from within this callback makes
    /// Envoy deliver both again, endlessly. So the request resumes on the next tick.
    pub(super) fn end_buffered_body(&mut self, host: &mut dyn RequestHost) -> Verdict {
        let verdict = self.release(host);
        // No body seen: nothing held that a Continue could lose.
        if verdict == Verdict::Continue && self.content_length_dropped && self.body_seen {
            host.resume_request_later();
            return Verdict::Pause;
        }
        verdict
    }
}

/// The first byte that is not JSON whitespace.
fn first_significant<'a>(mut bytes: impl Iterator<Item = &'a u8>) -> Option<u8> {
    bytes
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        .copied()
}
