//! The validating JSON scanner behind [`super::rewrite_model`] and [`super::body_facts`]: one
//! pass over the body that records the byte spans of the top-level values whose keys the caller
//! asks for, and builds nothing else.
//!
//! The scanner is iterative (an explicit bit stack, at most [`MAX_DEPTH`] levels) so hostile
//! nesting cannot overflow the wasm stack, and it allocates nothing per token.
//!
//! The module is built with opt-level "z" (Cargo.toml), which inlines almost nothing: the
//! per-byte helpers below are `#[inline(always)]` and compare bytes by pattern (`if let
//! Some(b'.')`) rather than `== Some(..)`, which stays an out-of-line call under "z". Together
//! they keep this scanner as fast as at opt-level 3.

use std::ops::Range;

use super::{Skip, MAX_DEPTH};

pub(super) fn not_json(offset: usize, reason: &'static str) -> Skip {
    Skip::NotJson { offset, reason }
}

/// Validates `b` as one JSON document whose top-level value is an object, and returns the byte
/// range of every top-level value whose raw key (between its quotes, escapes not decoded)
/// `classify_key` maps to `Some(kind)`, with that kind, in body order. Duplicate keys each get
/// their own entry.
///
/// `classify_key` is called for top-level keys only, so nested keys are never looked at. A
/// valid document whose top-level value is not an object is [`Skip::NotAnObject`]; the whole
/// body is validated first, so a malformed one is always [`Skip::NotJson`].
///
/// The body must already be valid UTF-8: bytes >= 0x80 are treated as opaque string content.
pub(super) fn top_level_value_spans<K: Copy>(
    b: &[u8],
    classify_key: impl Fn(&[u8]) -> Option<K>,
) -> Result<Vec<(K, Range<usize>)>, Skip> {
    let mut s = Scanner { b, pos: 0 };
    let mut stack = Stack::default();
    let mut spans = Vec::new();
    // Kind and start of the value of the wanted top-level member being scanned, if any.
    let mut wanted = None;

    s.skip_ws();
    let is_object = matches!(s.peek(), Some(b'{'));
    // Each turn scans one value (the whitespace before it already skipped), then the
    // punctuation after it, up to the start of the next value.
    'value: loop {
        match s.peek() {
            Some(b'{') => {
                stack.push(true, s.pos)?;
                s.pos += 1;
                s.skip_ws();
                if let Some(b'}') = s.peek() {
                    s.pos += 1;
                    stack.pop();
                } else {
                    if let Some(kind) = s.member_key(stack.depth == 1, &classify_key)? {
                        wanted = Some((kind, s.pos));
                    }
                    continue 'value;
                }
            }
            Some(b'[') => {
                stack.push(false, s.pos)?;
                s.pos += 1;
                s.skip_ws();
                if let Some(b']') = s.peek() {
                    s.pos += 1;
                    stack.pop();
                } else {
                    continue 'value;
                }
            }
            Some(b'"') => s.string()?,
            Some(b't') => s.literal(b"true")?,
            Some(b'f') => s.literal(b"false")?,
            Some(b'n') => s.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => s.number()?,
            Some(_) => return Err(not_json(s.pos, "expected a value")),
            None => return Err(not_json(s.pos, "unexpected end of input")),
        }
        // A value just ended; close every container that ends here too.
        loop {
            // Back at depth 1 right after a value: if it was a wanted member's, it ends here.
            if stack.depth == 1 {
                if let Some((kind, start)) = wanted.take() {
                    spans.push((kind, start..s.pos));
                }
            }
            s.skip_ws();
            if stack.depth == 0 {
                if s.pos != b.len() {
                    return Err(not_json(s.pos, "trailing characters after the JSON value"));
                }
                break 'value;
            }
            let in_object = stack.top_is_object();
            match s.peek() {
                Some(b',') => {
                    s.pos += 1;
                    s.skip_ws();
                    if in_object {
                        if let Some(kind) = s.member_key(stack.depth == 1, &classify_key)? {
                            wanted = Some((kind, s.pos));
                        }
                    }
                    continue 'value;
                }
                Some(b'}') if in_object => {}
                Some(b']') if !in_object => {}
                None => return Err(not_json(s.pos, "unexpected end of input")),
                Some(_) if in_object => return Err(not_json(s.pos, "expected ',' or '}'")),
                Some(_) => return Err(not_json(s.pos, "expected ',' or ']'")),
            }
            s.pos += 1;
            stack.pop();
        }
    }

    if is_object {
        Ok(spans)
    } else {
        Err(Skip::NotAnObject)
    }
}

/// Kinds of the open containers, one bit per level (1 = object), so the stack never allocates.
#[derive(Default)]
pub(super) struct Stack {
    bits: [u64; MAX_DEPTH / 64],
    pub(super) depth: usize,
}

impl Stack {
    #[inline(always)]
    pub(super) fn push(&mut self, object: bool, pos: usize) -> Result<(), Skip> {
        let d = self.depth;
        let word = self
            .bits
            .get_mut(d / 64)
            .ok_or(not_json(pos, "nesting too deep"))?;
        let bit = 1u64 << (d % 64);
        if object {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        self.depth = d + 1;
        Ok(())
    }

    #[inline(always)]
    pub(super) fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    #[inline(always)]
    pub(super) fn top_is_object(&self) -> bool {
        let d = self.depth.saturating_sub(1);
        self.bits
            .get(d / 64)
            .is_some_and(|w| w >> (d % 64) & 1 == 1)
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Scans `"key" :` and the whitespace after it; returns the key's kind as `classify_key`
    /// sees it (only asked for when `top_level`, so nested keys are never looked at).
    #[inline(always)]
    fn member_key<K>(
        &mut self,
        top_level: bool,
        classify_key: &impl Fn(&[u8]) -> Option<K>,
    ) -> Result<Option<K>, Skip> {
        match self.peek() {
            Some(b'"') => {}
            None => return Err(not_json(self.pos, "unexpected end of input")),
            Some(_) => return Err(not_json(self.pos, "expected a string key")),
        }
        let start = self.pos + 1;
        self.string()?;
        let kind = if top_level {
            classify_key(self.b.get(start..self.pos - 1).unwrap_or_default())
        } else {
            None
        };
        self.skip_ws();
        match self.peek() {
            Some(b':') => self.pos += 1,
            None => return Err(not_json(self.pos, "unexpected end of input")),
            Some(_) => return Err(not_json(self.pos, "expected ':'")),
        }
        self.skip_ws();
        Ok(kind)
    }

    /// Scans a string starting at its opening quote; leaves `pos` after the closing quote.
    #[inline(always)]
    fn string(&mut self) -> Result<(), Skip> {
        let mut i = self.pos + 1;
        loop {
            i = find_string_special(self.b, i);
            match self.b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => i = check_escape(self.b, i)?,
                Some(_) => return Err(not_json(i, "control character in string")),
                None => return Err(not_json(i, "unterminated string")),
            }
        }
    }

    #[inline(always)]
    fn number(&mut self) -> Result<(), Skip> {
        let b = self.b;
        let mut i = self.pos;
        if let Some(b'-') = b.get(i) {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = skip_digits(b, i + 1),
            _ => return Err(not_json(i, "expected a digit")),
        }
        // Otherwise `01` would be reported as a missing comma.
        if let Some(b'0'..=b'9') = b.get(i) {
            return Err(not_json(i, "leading zero in number"));
        }
        if let Some(b'.') = b.get(i) {
            i = skip_some_digits(b, i + 1)?;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            i = skip_some_digits(b, i)?;
        }
        self.pos = i;
        Ok(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &'static [u8]) -> Result<(), Skip> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(not_json(self.pos, "invalid literal"))
        }
    }
}

#[inline(always)]
fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// Like [`skip_digits`] but at least one digit is required (fraction and exponent).
#[inline(always)]
fn skip_some_digits(b: &[u8], i: usize) -> Result<usize, Skip> {
    let end = skip_digits(b, i);
    if end == i {
        Err(not_json(i, "expected a digit"))
    } else {
        Ok(end)
    }
}

/// Index of the first `"`, `\` or control byte at or after `i` (or `b.len()`), eight bytes at a
/// time: wasm32 has no SIMD by default, so this SWAR loop is what keeps long strings fast.
#[inline(always)]
pub(crate) fn find_string_special(b: &[u8], i: usize) -> usize {
    find_special(b, i, false)
}

/// Like [`find_string_special`], but stops at a non-ASCII byte too: where a plain ASCII run of a
/// string ends, so that only what follows needs UTF-8 validation (one pass, not two).
#[inline(always)]
pub(crate) fn find_ascii_run_end(b: &[u8], i: usize) -> usize {
    find_special(b, i, true)
}

#[inline(always)]
fn find_special(b: &[u8], mut i: usize, non_ascii: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let high = if non_ascii { HIGH } else { 0 };
    let mut rest = b.get(i..).unwrap_or_default();
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        let x = u64::from_le_bytes(*word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let slash = x ^ (ONES * u64::from(b'\\'));
        // High bit of a byte set where it is zero / below 0x20 (/ non-ASCII, when asked).
        // Borrows can only produce false hits above a true one, so the lowest flagged byte is
        // always exact.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (x.wrapping_sub(ONES * 0x20) & !x)
            | (x & high))
            & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
        rest = tail;
    }
    for &c in rest {
        if c == b'"' || c == b'\\' || c < 0x20 || (non_ascii && c >= 0x80) {
            break;
        }
        i += 1;
    }
    i
}

/// Validates the escape whose backslash is at `i`; returns the index just after it.
/// Lone surrogates (`\ud800`) are syntactically valid JSON and accepted.
#[inline(always)]
fn check_escape(b: &[u8], i: usize) -> Result<usize, Skip> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => match b.get(i + 2..i + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 6),
            _ => Err(not_json(i, "invalid \\u escape")),
        },
        Some(_) => Err(not_json(i, "invalid escape")),
        None => Err(not_json(i + 1, "unexpected end of input")),
    }
}

/// Whether a raw (already validated) key, between its quotes, decodes to the ASCII `name`.
pub(super) fn key_equals(raw: &[u8], name: &[u8]) -> bool {
    if raw == name {
        return true;
    }
    // Fast reject: each character takes 1 to 6 raw bytes, and only escapes can make a
    // different spelling match.
    if raw.len() <= name.len() || raw.len() > 6 * name.len() || !raw.contains(&b'\\') {
        return false;
    }
    let mut want = name.iter();
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let (ch, next) = if c == b'\\' {
            decode_escape(raw, i)
        } else {
            (u32::from(c), i + 1)
        };
        if want.next().map(|&w| u32::from(w)) != Some(ch) {
            return false;
        }
        i = next;
    }
    want.next().is_none()
}

/// Decodes the validated escape at `i` into a UTF-16 code unit and the index after it.
pub(super) fn decode_escape(raw: &[u8], i: usize) -> (u32, usize) {
    let unit = match raw.get(i + 1) {
        Some(b'u') => {
            let hex = raw.get(i + 2..i + 6).unwrap_or_default();
            let value = hex.iter().try_fold(0u32, |acc, &d| {
                char::from(d).to_digit(16).map(|v| acc * 16 + v)
            });
            return (value.unwrap_or(u32::MAX), i + 6);
        }
        Some(b'b') => 0x08,
        Some(b'f') => 0x0c,
        Some(b'n') => 0x0a,
        Some(b'r') => 0x0d,
        Some(b't') => 0x09,
        Some(&c) => u32::from(c), // `"`, `\` and `/` stand for themselves
        None => u32::MAX,
    };
    (unit, i + 2)
}
