//! Where one request is, each phase with the data it needs and nothing more; the transitions
//! between them are the events of `RequestFlow` (src/flow/mod.rs):
//!
//! ```text
//! Passthrough ←──────────── any phase, when there is nothing (more) to do
//! (new request) ─headers─→ AwaitingBody ─whole body─→ AwaitingStore | Released
//!               ─headers─→ AwaitingStore ─reply────→ Streaming | Released
//!               ─headers─→ Streaming | Released
//! Streaming ─body ends─→ Released
//! Released ─failed response─→ Retrying ─retry's reply─→ Retrying | Released
//! ```

use super::retry::{Attempt, Resend, Retry};
use super::streaming::Streaming;
use crate::config::ConfigRef;
use crate::health::Verdict as HealthVerdict;
use crate::rewrite::BodyFacts;

pub(super) enum Phase {
    /// Nothing to do for this request (any more): every later callback continues.
    Passthrough,
    /// Headers held until the whole body is here: the pool or the strategy reads it.
    AwaitingBody { config: ConfigRef, body: Body },
    /// Headers held until the store answers.
    AwaitingStore { config: ConfigRef, basis: Basis },
    /// Backend chosen on the headers: the body is rewritten as it passes (the part that came
    /// while the choice was made, at once).
    Streaming(Streaming),
    /// Headers released; the body streams on. `retry`: what a retry on another provider needs,
    /// dropped (with its copy of the body) once none can happen.
    Released { sent: Sent, retry: Option<Retry> },
    /// The upstream's failed response is held while the retry `out` is out.
    Retrying {
        sent: Sent,
        retry: Retry,
        out: Attempt,
    },
}

/// The request body as the host's callbacks told of it (the host buffers it, not the filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// None of it has reached the filter.
    Unseen,
    /// `size` bytes are buffered, and more are coming.
    Partial(usize),
    /// It ended after `size` bytes (zero when trailers came before any body).
    Whole(usize),
    /// Over `max_body_bytes`: forwarded untouched, whatever follows.
    TooLarge,
}

impl Body {
    /// After a body callback: `size` bytes buffered so far, `end` when that is all.
    pub fn grown(self, size: usize, end: bool, limit: usize) -> Body {
        match self {
            Body::TooLarge => Body::TooLarge,
            _ if size > limit => Body::TooLarge,
            _ if end => Body::Whole(size),
            _ => Body::Partial(size),
        }
    }

    /// Trailers came: nothing more follows.
    pub fn ended(self) -> Body {
        match self {
            Body::Unseen => Body::Whole(0),
            Body::Partial(size) | Body::Whole(size) => Body::Whole(size),
            Body::TooLarge => Body::TooLarge,
        }
    }
}

/// What the choice of a backend goes on, besides the configuration.
pub(super) enum Basis {
    /// The headers alone: the body (as far as it came) is the host's.
    Headers(Body),
    /// The whole body, read for the choice.
    Body(ReadBody),
}

/// A body read whole for the choice: its pool, what it says, and the copy kept so that the
/// host is asked for it once.
pub(super) struct ReadBody {
    pub pool: usize,
    pub facts: BodyFacts,
    pub copy: BodyCopy,
}

pub(super) enum BodyCopy {
    /// Kept for the rewrite.
    ForRewrite(Vec<u8>),
    /// Kept with the request as the client sent it, for the rewrite and the retries.
    ForRetry(Resend),
}

impl Basis {
    pub fn pool(&self) -> usize {
        match self {
            Basis::Headers(_) => 0,
            Basis::Body(read) => read.pool,
        }
    }

    pub fn facts(&self) -> Option<&BodyFacts> {
        match self {
            Basis::Headers(_) => None,
            Basis::Body(read) => Some(&read.facts),
        }
    }
}

/// The backend a request was sent to, for what happens at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sent {
    /// The configuration that chose it.
    pub config: ConfigRef,
    pub pool: usize,
    pub backend: usize,
    pub provider: usize,
    pub at_ms: u64,
    /// The hash of the prompt's prefix it was chosen with; a retry picks with it too.
    pub prefix_hash: Option<u64>,
    /// Likewise its session key's hash.
    pub session_hash: Option<u64>,
    /// The client asked for a stream: its total time says nothing of the provider's speed.
    pub streaming: bool,
    pub counted_in_flight: bool,
    /// The fingerprint of the API token it carries.
    pub token: Option<u64>,
    /// It is the provider's half-open trial, claimed then.
    pub trial_since: Option<u64>,
    /// When its response's headers came (kept where the pool learns latencies).
    pub first_byte_ms: Option<u64>,
    /// Its response's verdict, once recorded.
    pub verdict: Option<HealthVerdict>,
    /// Its response's status, once read.
    pub status: Option<u32>,
}

impl Phase {
    /// The request sent to a backend, from the choice to the end.
    pub fn sent(&self) -> Option<&Sent> {
        match self {
            Phase::Streaming(Streaming { sent, .. })
            | Phase::Released { sent, .. }
            | Phase::Retrying { sent, .. } => Some(sent),
            Phase::Passthrough | Phase::AwaitingBody { .. } | Phase::AwaitingStore { .. } => None,
        }
    }
}
