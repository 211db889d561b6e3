//! The body's rewrite when the headers went on before any of it (the choice made on the
//! headers): each chunk is rewritten as it passes (`StreamRewrite`) and goes on, so neither the
//! gateway nor the filter holds the body, whatever its size.
//!
//! A chunk that ends inside the window (a top-level key, or a `model` value not yet ended) is
//! paused rather than let go: Envoy lets a filter change the body only in a body callback or
//! while it holds the body it buffered, and if trailers came next, the window could not be
//! written after a chunk that went on. While paused, the host's buffer holds `settled` bytes of
//! output and then `fed` bytes the rewrite has read (their output is still to come); the next
//! callback reads only what came after them. A well-formed body never ends in the window, so
//! pauses are short: the window holds at most a key or a model name.

use log::debug;

use super::phase::Sent;
use super::{RequestHost, Stat, Verdict};
use crate::rewrite::{Skip, StreamRewrite};

pub(super) struct Streaming {
    pub sent: Sent,
    rewrite: StreamRewrite,
    /// Output at the front of the host's buffer while a chunk is paused.
    settled: usize,
    /// Body bytes after the output, already fed to the rewrite, while a chunk is paused.
    fed: usize,
}

/// Where a body callback leaves the streamed body.
pub(super) enum Chunk {
    /// This chunk goes on; more may follow.
    Passed,
    /// This chunk is held: it ended inside the window.
    Held,
    /// The body ended (or cannot be rewritten any more): it goes on.
    Done,
}

impl Streaming {
    pub fn new(sent: Sent) -> Self {
        Self {
            sent,
            rewrite: StreamRewrite::new(),
            settled: 0,
            fed: 0,
        }
    }

    /// A body callback: `size` bytes buffered by the host, `end` when that is the last.
    pub fn on_chunk(
        &mut self,
        host: &mut dyn RequestHost,
        model: &str,
        size: usize,
        end: bool,
    ) -> Chunk {
        let start = self.settled + self.fed;
        let new = match size.checked_sub(start) {
            Some(0) => Vec::new(),
            Some(len) => match host.request_body(start, len) {
                Some(new) => new,
                None => return self.lost(host, "request body unavailable"),
            },
            None => return self.lost(host, "request body shorter than what was held"),
        };
        let mut out = Vec::with_capacity(new.len() + model.len() + 2);
        self.rewrite.feed(&new, model, &mut out);
        if end {
            self.rewrite.finish(&mut out);
        }
        let window_open = self.rewrite.held_bytes() > 0;
        if window_open && out.is_empty() {
            // Nothing new to write: the host keeps the bytes fed, replaced once output comes.
            self.fed += new.len();
            return Chunk::Held;
        }
        let unchanged = start == 0 && out == new;
        if !unchanged && !self.write(host, size, out) {
            return self.lost(host, "request body not replaced");
        }
        if window_open {
            return Chunk::Held;
        }
        self.settled = 0;
        self.fed = 0;
        if end {
            self.count_outcome(host);
            return Chunk::Done;
        }
        Chunk::Passed
    }

    /// The trailers came: the body ended. A paused chunk gets what is still held, and the
    /// request goes on from the next tick (see src/flow/body.rs: a Continue now would drop a
    /// body held in this continuation, a resume now would loop).
    pub fn on_trailers(&mut self, host: &mut dyn RequestHost) -> Verdict {
        let mut rest = Vec::new();
        self.rewrite.finish(&mut rest);
        let held = self.settled + self.fed;
        if held == 0 {
            self.count_outcome(host);
            return Verdict::Continue;
        }
        if !self.write(host, held, rest) {
            self.lost(host, "request body not replaced");
        } else {
            self.count_outcome(host);
        }
        host.resume_request_later();
        Verdict::Pause
    }

    /// Replaces the host's `size` buffered bytes with the settled output and `out`; what is
    /// written is settled output from then on.
    fn write(&mut self, host: &mut dyn RequestHost, size: usize, out: Vec<u8>) -> bool {
        let body = if self.settled == 0 {
            out
        } else {
            let Some(mut settled) = host.request_body(0, self.settled) else {
                return false;
            };
            settled.extend_from_slice(&out);
            settled
        };
        if !host.replace_request_body(size, &body) {
            return false;
        }
        self.settled = body.len();
        self.fed = 0;
        true
    }

    /// The host failed us: the body goes on as the host has it.
    fn lost(&mut self, host: &mut dyn RequestHost, why: &str) -> Chunk {
        debug!("ai-load-balancer: body forwarded as it is from here: {why}");
        host.count(Stat::RewriteSkipped);
        Chunk::Done
    }

    fn count_outcome(&self, host: &mut dyn RequestHost) {
        let skipped = self.rewrite.skipped();
        if self.rewrite.rewritten() > 0 {
            if let Some(skip) = skipped {
                debug!(
                    "ai-load-balancer: body rewritten up to a fault, the rest untouched: {skip}"
                );
            }
            host.count(Stat::Rewritten);
        } else {
            let why = skipped.unwrap_or(Skip::NoModel);
            debug!("ai-load-balancer: body forwarded untouched: {why}");
            host.count(Stat::RewriteSkipped);
        }
    }
}
