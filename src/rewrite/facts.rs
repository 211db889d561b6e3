//! What a request body says about where to send it: the top-level `model`, whether the client
//! asked for a stream, a hash of the prompt's first bytes for KV-cache affinity, and a hash of
//! a session key.
//!
//! One validating pass of the same scanner as [`super::rewrite_model`] records the spans of the
//! top-level members read here; only the `model` strings are decoded, and the prompt is
//! hashed from its raw bytes.

use std::ops::Range;

use super::scan::{decode_escape, key_equals, top_level_value_spans};
use super::Skip;

#[cfg(test)]
mod tests;

/// What [`body_facts`] read from a request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyFacts {
    /// The top-level `model`, unescaped. `None` when it is absent, not a JSON string, holds a
    /// lone UTF-16 surrogate escape (no Rust string can), or is duplicated with values that
    /// disagree: providers' parsers differ on which duplicate they keep, so the name is
    /// ambiguous and the caller treats it as unknown.
    pub model: Option<String>,
    /// Whether the top-level `stream` is the JSON literal `true`; anything else (absent, `false`,
    /// `"true"`, `1`) is not a stream. If duplicated, the last one counts, as in Python's
    /// `json`, JavaScript's `JSON.parse`, Go and serde_json.
    pub streaming: bool,
    /// FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`, one byte at a time,
    /// no seed) of the first `prefix_bytes` bytes of the raw JSON text of the prompt: the
    /// top-level `messages` value (chat), else `prompt` (completions), else `input` (responses,
    /// embeddings); the whole value when it is shorter. The last one counts if the key is
    /// duplicated. The text starts at the value's first byte, so spacing around the colon and
    /// every other member leave the hash alone. Seedless and byte-defined so that every VM and
    /// every gateway replica computes the same value for the same prompt. `None` when none of
    /// the three keys exists or `prefix_bytes` is 0.
    pub prefix_hash: Option<u64>,
    /// FNV-1a 64 of the session field's string as written between its quotes (escapes are not
    /// decoded: a client writes its key alike each time, and a plain key hashes as the same value
    /// sent in a header). `None` when no field was asked for, or it is absent, not a string or
    /// empty; the last one counts if the key is duplicated.
    pub session_hash: Option<u64>,
}

/// Reads the model, stream flag and prompt-prefix hash of an OpenAI-style JSON body (see
/// [`BodyFacts`] for each). The body is validated whole, as by [`super::rewrite_model`]: not
/// UTF-8 is [`Skip::NotUtf8`], malformed JSON [`Skip::NotJson`], and a valid document that is
/// not an object [`Skip::NotAnObject`]. A missing member is a `None`/`false` fact, never an
/// error.
///
/// Raw bytes are hashed rather than a re-serialisation, so a conversation that grows past
/// `prefix_bytes` keeps the hash of its system prompt and first messages.
// Never inlined: called once per request, and inlined into a large caller the scanner loop ran
// up to twice as slow in V8 (measured with the wasm build), while the call itself costs nothing.
pub fn body_facts(body: &[u8], prefix_bytes: usize) -> Result<BodyFacts, Skip> {
    body_facts_with_session(body, prefix_bytes, None)
}

/// [`body_facts`], and the session key's hash from the top-level member `session_field` (one of
/// the other five keys is never asked for: the configuration refuses them).
#[inline(never)]
pub fn body_facts_with_session(
    body: &[u8],
    prefix_bytes: usize,
    session_field: Option<&str>,
) -> Result<BodyFacts, Skip> {
    // Checked first, as in rewrite_model: the scanner treats bytes >= 0x80 as opaque.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(Skip::NotUtf8);
    };
    let classify = |raw_key: &[u8]| {
        FactKey::of(raw_key).or_else(|| {
            session_field
                .filter(|field| key_equals(raw_key, field.as_bytes()))
                .map(|_| FactKey::Session)
        })
    };
    let spans = top_level_value_spans(body, classify)?;

    let streaming = last_span(&spans, FactKey::Stream)
        .and_then(|span| body.get(span))
        .is_some_and(|value| value == b"true");
    let prompt = PROMPT_KEYS.iter().find_map(|&key| last_span(&spans, key));
    let prefix_hash = match prompt {
        Some(span) if prefix_bytes > 0 => {
            let end = span.start + prefix_bytes.min(span.len());
            body.get(span.start..end).map(fnv1a_64)
        }
        _ => None,
    };
    // A validated value that starts with a quote is a string, and ends with one.
    let session_hash = last_span(&spans, FactKey::Session)
        .filter(|span| body.get(span.start) == Some(&b'"'))
        .and_then(|span| body.get(span.start + 1..span.end.saturating_sub(1)))
        .filter(|key| !key.is_empty())
        .map(fnv1a_64);
    Ok(BodyFacts {
        model: agreed_model(text, &spans),
        streaming,
        prefix_hash,
        session_hash,
    })
}

/// The top-level members [`body_facts`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactKey {
    Model,
    Stream,
    Messages,
    Prompt,
    Input,
    /// The configured session field.
    Session,
}

/// Where the prompt is, by API: chat, completions, then responses and embeddings.
const PROMPT_KEYS: [FactKey; 3] = [FactKey::Messages, FactKey::Prompt, FactKey::Input];

impl FactKey {
    const NAMES: [(FactKey, &'static [u8]); 5] = [
        (FactKey::Model, b"model"),
        (FactKey::Stream, b"stream"),
        (FactKey::Messages, b"messages"),
        (FactKey::Prompt, b"prompt"),
        (FactKey::Input, b"input"),
    ];

    /// The member a raw top-level key names, compared after unescaping like `rewrite_model`.
    fn of(raw_key: &[u8]) -> Option<FactKey> {
        Self::NAMES
            .iter()
            .find(|(_, name)| key_equals(raw_key, name))
            .map(|&(key, _)| key)
    }
}

/// Whether the body's top-level member `field` is one the facts already read (it cannot hold
/// a session key too).
pub fn is_fact_key(field: &str) -> bool {
    FactKey::NAMES
        .iter()
        .any(|(_, name)| *name == field.as_bytes())
}

fn last_span(spans: &[(FactKey, Range<usize>)], wanted: FactKey) -> Option<Range<usize>> {
    spans
        .iter()
        .rev()
        .find(|(key, _)| *key == wanted)
        .map(|(_, span)| span.clone())
}

/// The decoded `model` if every top-level `model` member is a string and they all agree.
fn agreed_model(text: &str, spans: &[(FactKey, Range<usize>)]) -> Option<String> {
    let mut agreed: Option<String> = None;
    for (_, span) in spans.iter().filter(|(key, _)| *key == FactKey::Model) {
        let model = decode_json_string(text.get(span.clone())?)?;
        match &agreed {
            Some(seen) if *seen != model => return None,
            _ => agreed = Some(model),
        }
    }
    agreed
}

/// Decodes the raw text of a validated JSON value if it is a string; `None` for any other type
/// and for a lone UTF-16 surrogate escape.
fn decode_json_string(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    loop {
        // Escapes are ASCII, so every run between them starts and ends on a char boundary.
        let rest = inner.get(i..)?;
        let Some(run) = rest.find('\\') else {
            out.push_str(rest);
            return Some(out);
        };
        out.push_str(rest.get(..run)?);
        let (unit, next) = decode_escape(bytes, i + run);
        let (code_point, next) = match unit {
            0xD800..=0xDBFF => {
                let (low, after) = match bytes.get(next) {
                    Some(b'\\') => decode_escape(bytes, next),
                    _ => return None,
                };
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), after)
            }
            _ => (unit, next),
        };
        // A lone low surrogate is no `char` either.
        out.push(char::from_u32(code_point)?);
        i = next;
    }
}

/// FNV-1a, 64-bit: fixed constants and no seed, so the value is the same on every host.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}
