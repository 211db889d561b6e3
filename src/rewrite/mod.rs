//! Reading and rewriting an OpenAI-style JSON request body without building a tree.
//!
//! [`rewrite_model`] is a byte-exact rewrite of the top-level `model`: the body is validated and
//! scanned in one pass (the `scan` submodule) that records only the spans of the top-level
//! `model` values, then the output is assembled from the untouched bytes around them.
//! Everything else — key order, whitespace, number spelling, escapes — is kept byte for byte, so
//! the provider sees exactly what the client sent apart from the model name.
//!
//! [`body_facts`] runs the same pass for the few top-level members that steer the choice of a
//! provider: the model, the stream flag and the prompt, whose prefix it hashes.

use std::fmt;

mod facts;
mod scan;
mod stream;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

pub use facts::{body_facts, body_facts_with_session, is_fact_key, BodyFacts};
use scan::{key_equals, top_level_value_spans};
pub use stream::{StreamRewrite, MAX_HELD_MODEL_BYTES};
// tests.rs checks the string search directly; the usage scanner skips strings with it.
#[cfg(test)]
use scan::find_ascii_run_end;
pub(crate) use scan::find_string_special;

/// Deepest nesting of arrays and objects accepted; deeper bodies are refused as not JSON.
pub const MAX_DEPTH: usize = 512;

/// Why a body was forwarded untouched (or, from [`body_facts`], why nothing could be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The body is not valid UTF-8 (checked before anything else).
    NotUtf8,
    /// The body is not strict RFC 8259 JSON; `offset` is the byte where scanning failed.
    NotJson { offset: usize, reason: &'static str },
    /// Valid JSON whose top-level value is not an object.
    NotAnObject,
    /// A JSON object without a top-level `model` member (never from [`body_facts`]).
    NoModel,
    /// More top-level `model` members than [`MAX_MODEL_MEMBERS`]: rewriting them all could
    /// multiply the body's size (never from [`body_facts`]).
    TooManyModels { count: usize },
    /// A top-level `model` value longer than [`MAX_HELD_MODEL_BYTES`]: the streaming rewrite
    /// does not hold it back (only from [`StreamRewrite`]).
    ModelTooLong { bytes: usize },
}

/// Most top-level `model` members a body may repeat and still be rewritten: enough for any
/// client, few enough that a body of `"model":1,` repeated cannot grow by more than this many
/// model names.
pub const MAX_MODEL_MEMBERS: usize = 16;

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotUtf8 => f.write_str("body is not valid UTF-8"),
            Skip::NotJson { offset, reason } => write!(f, "not JSON at byte {offset}: {reason}"),
            Skip::NotAnObject => f.write_str("top-level JSON value is not an object"),
            Skip::NoModel => f.write_str("no top-level \"model\" member"),
            Skip::TooManyModels { count } => write!(
                f,
                "{count} top-level \"model\" members (at most {MAX_MODEL_MEMBERS} are rewritten)"
            ),
            Skip::ModelTooLong { bytes } => write!(
                f,
                "a top-level \"model\" value of {bytes}+ bytes (at most {MAX_HELD_MODEL_BYTES} \
                 are held to be rewritten)"
            ),
        }
    }
}

/// Returns the body with the value of every top-level member whose (unescaped) key is "model"
/// replaced by the JSON string `new_model` (properly escaped); every other byte unchanged.
///
/// The value may be of any JSON type; it is replaced whole, and the whitespace around the colon
/// and the value is kept. Keys are compared after unescaping, so `"mod\u0065l"` matches.
///
/// Duplicate top-level `model` keys are all replaced: RFC 8259 leaves duplicates to the parser,
/// and parsers differ (some keep the first, others the last), so every one of them must
/// carry the new name or a provider could still see the client's.
///
/// The whole body is validated first, so a malformed body is always [`Skip::NotJson`] even if
/// its top-level value is not an object.
pub fn rewrite_model(body: &[u8], new_model: &str) -> Result<Vec<u8>, Skip> {
    // Validating UTF-8 up front (std's check is fast) lets the scanner treat bytes >= 0x80 as
    // opaque string content.
    if std::str::from_utf8(body).is_err() {
        return Err(Skip::NotUtf8);
    }
    let spans = top_level_value_spans(body, |key| key_equals(key, b"model").then_some(()))?;
    if spans.is_empty() {
        return Err(Skip::NoModel);
    }
    if spans.len() > MAX_MODEL_MEMBERS {
        return Err(Skip::TooManyModels { count: spans.len() });
    }

    let removed: usize = spans.iter().map(|(_, span)| span.len()).sum();
    let out_len = body.len() - removed + spans.len() * json_string_len(new_model);
    let mut out = Vec::with_capacity(out_len);
    let mut copied = 0;
    for (_, span) in &spans {
        // Spans are in order, disjoint and inside `body` by construction.
        out.extend_from_slice(body.get(copied..span.start).unwrap_or_default());
        push_json_string(&mut out, new_model);
        copied = span.end;
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    debug_assert_eq!(out.len(), out_len);
    Ok(out)
}

/// Length of `s` once written by [`push_json_string`].
fn json_string_len(s: &str) -> usize {
    let escaped: usize = s
        .bytes()
        .map(|c| match c {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum();
    escaped + 2
}

/// Writes `s` as a JSON string: `"` and `\` backslashed, control characters as `\u00XX`,
/// everything else (non-ASCII UTF-8 included) raw.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.bytes() {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0x0f)],
            ]),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}
