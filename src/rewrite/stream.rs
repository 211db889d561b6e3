//! [`super::rewrite_model`] for a body that passes in chunks: [`StreamRewrite`] is fed the
//! chunks in order and hands back, from each, the bytes that can no longer change, holding only
//! a small window: the top-level key being read (at most the longest spelling of `model`), and
//! a top-level `model` value until it ends (at most [`MAX_HELD_MODEL_BYTES`]).
//!
//! For a valid body the output is byte for byte `rewrite_model`'s, however the body is split.
//! What differs is a body that turns out not to be rewritable only after a `model` value went
//! out rewritten (malformed further on, more than [`MAX_MODEL_MEMBERS`] `model` members): that
//! prefix is gone already, so it stays rewritten and the rest passes untouched, where
//! `rewrite_model` would have left the whole body untouched. A body that fails before its first
//! `model` value passes wholly untouched, as today. The same decisions are made whatever the
//! chunks, so the output never depends on where the body was split.

use super::scan::{find_ascii_run_end, key_equals, not_json, Stack};
use super::{push_json_string, Skip, MAX_MODEL_MEMBERS};

/// Most bytes of one top-level `model` value held back to be replaced: a longer one (no model
/// name is) gives up the rewrite, so what one request holds stays small.
pub const MAX_HELD_MODEL_BYTES: usize = 4096;

/// Longest raw key that can decode to `model`: its five characters each as `\uXXXX`.
const MAX_MODEL_KEY_BYTES: usize = 6 * 5;

/// The rewrite of one body, between its chunks.
#[derive(Default)]
pub struct StreamRewrite {
    state: State,
    stack: Stack,
    hold: Hold,
    /// The held window's bytes from earlier chunks (its bytes in the current chunk are still
    /// in the chunk).
    held: Vec<u8>,
    /// The top-level key just read is `model`: its value is to be replaced.
    model_value_next: bool,
    utf8: Utf8,
    rewritten: usize,
    /// Bytes fed before the current chunk, for the offsets in [`Skip::NotJson`].
    fed: usize,
    skipped: Option<Skip>,
}

/// What the window holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Hold {
    #[default]
    Nothing,
    /// A top-level key, from its opening quote: it may be `model`.
    Key,
    /// A top-level `model` value, from its first byte: it is to be replaced.
    ModelValue,
}

/// Where the scan is, between any two bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level value.
    #[default]
    Start,
    /// A value must start (after `:`, or `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value: `,` or the end of its container.
    After,
    Str {
        key: bool,
        escape: Escape,
    },
    Number(Number),
    Literal {
        word: &'static [u8],
        matched: usize,
    },
    /// After the top-level object: whitespace only.
    End,
    /// No more rewriting: everything passes untouched.
    GaveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// `\u` with this many hex digits to go.
    Hex(u8),
}

/// The part of a number read last (RFC 8259's grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Number {
    /// A number may end here.
    fn complete(self) -> bool {
        matches!(
            self,
            Number::Zero | Number::Int | Number::Frac | Number::ExpDigits
        )
    }
}

/// Where a string is in a UTF-8 sequence: continuation bytes still due, and the range of the
/// next one (narrower after some lead bytes, against overlongs and surrogates).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Utf8 {
    due: u8,
    low: u8,
    high: u8,
}

impl Utf8 {
    /// False when `byte` cannot come next in valid UTF-8.
    fn push(&mut self, byte: u8) -> bool {
        if self.due > 0 {
            if !(self.low..=self.high).contains(&byte) {
                return false;
            }
            *self = Utf8 {
                due: self.due - 1,
                low: 0x80,
                high: 0xbf,
            };
            return true;
        }
        let (due, low, high) = match byte {
            0..=0x7f => return true,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        *self = Utf8 { due, low, high };
        true
    }
}

/// The chunk being fed: its bytes before `copied` are out (or held) already.
struct Chunk<'a> {
    bytes: &'a [u8],
    copied: usize,
}

impl StreamRewrite {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rewrites `chunk`, the body's next bytes, for `new_model`: appends to `out` every byte
    /// that can no longer change, and holds the rest (see the module comment).
    pub fn feed(&mut self, chunk: &[u8], new_model: &str, out: &mut Vec<u8>) {
        let mut chunk = Chunk {
            bytes: chunk,
            copied: 0,
        };
        let mut at = 0;
        while at < chunk.bytes.len() && self.state != State::GaveUp {
            match self.step(&mut chunk, at, new_model, out) {
                Ok(next) => at = next,
                Err(skip) => self.give_up(out, skip),
            }
        }
        let rest = chunk.bytes.get(chunk.copied..).unwrap_or_default();
        if self.hold == Hold::Nothing {
            out.extend_from_slice(rest);
        } else {
            self.held.extend_from_slice(rest);
            self.bound_held(out);
        }
        self.fed += chunk.bytes.len();
    }

    /// The body ended: appends to `out` what is still held (a body cut short inside a key or
    /// a `model` value: it goes untouched).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.state {
            State::End | State::GaveUp => {}
            _ => self.give_up(out, not_json(self.fed, "unexpected end of input")),
        }
        out.append(&mut self.held);
        self.hold = Hold::Nothing;
    }

    /// How many top-level `model` values were replaced so far.
    pub fn rewritten(&self) -> usize {
        self.rewritten
    }

    /// Why the rest of the body passes untouched, once it does; after [`Self::finish`], a
    /// valid body without `model` says [`Skip::NoModel`].
    pub fn skipped(&self) -> Option<Skip> {
        match (&self.skipped, self.state) {
            (Some(skip), _) => Some(skip.clone()),
            (None, State::End) if self.rewritten == 0 => Some(Skip::NoModel),
            (None, _) => None,
        }
    }

    /// Bytes held back from the output until more of the body comes.
    pub fn held_bytes(&self) -> usize {
        self.held.len()
    }

    /// Scans the byte at `at`; returns where to go on (past it, past a run of string bytes, or
    /// `at` itself when a number ended just before it).
    fn step(
        &mut self,
        chunk: &mut Chunk<'_>,
        at: usize,
        new_model: &str,
        out: &mut Vec<u8>,
    ) -> Result<usize, Skip> {
        let Some(&byte) = chunk.bytes.get(at) else {
            return Ok(at);
        };
        let offset = self.fed + at;
        match self.state {
            State::Str { key, escape } => {
                return self.string(chunk, at, key, escape, new_model, out)
            }
            State::Number(number) => return self.number(chunk, at, number, new_model, out),
            State::Literal { word, matched } => {
                if word.get(matched) != Some(&byte) {
                    return Err(not_json(offset, "invalid literal"));
                }
                if matched + 1 == word.len() {
                    self.value_done(chunk, at + 1, new_model, out)?;
                } else {
                    self.state = State::Literal {
                        word,
                        matched: matched + 1,
                    };
                }
                return Ok(at + 1);
            }
            State::GaveUp => return Ok(chunk.bytes.len()),
            _ => {}
        }
        if let b' ' | b'\t' | b'\n' | b'\r' = byte {
            return Ok(at + 1);
        }
        match (self.state, byte) {
            (State::Start, b'{') => {
                self.stack.push(true, offset)?;
                self.state = State::ObjectFirst;
            }
            (State::Start, _) => return Err(Skip::NotAnObject),
            (State::ArrayFirst, b']') | (State::After, b']') if !self.in_object() => {
                self.stack.pop();
                self.value_done(chunk, at + 1, new_model, out)?;
            }
            (State::ObjectFirst, b'}') | (State::After, b'}') if self.in_object() => {
                self.stack.pop();
                self.value_done(chunk, at + 1, new_model, out)?;
            }
            (State::Value | State::ArrayFirst, _) => self.value(chunk, at, offset, out)?,
            (State::ObjectFirst | State::Key, b'"') => {
                if self.stack.depth == 1 {
                    self.start_hold(chunk, at, Hold::Key, out);
                }
                self.state = State::Str {
                    key: true,
                    escape: Escape::None,
                };
            }
            (State::ObjectFirst | State::Key, _) => {
                return Err(not_json(offset, "expected a string key"))
            }
            (State::Colon, b':') => self.state = State::Value,
            (State::Colon, _) => return Err(not_json(offset, "expected ':'")),
            (State::After, b',') if self.in_object() => self.state = State::Key,
            (State::After, b',') => self.state = State::Value,
            (State::After, _) if self.in_object() => {
                return Err(not_json(offset, "expected ',' or '}'"))
            }
            (State::After, _) => return Err(not_json(offset, "expected ',' or ']'")),
            (State::End, _) => {
                return Err(not_json(offset, "trailing characters after the JSON value"))
            }
            (State::Str { .. } | State::Number(_) | State::Literal { .. } | State::GaveUp, _) => {}
        }
        Ok(at + 1)
    }

    fn in_object(&self) -> bool {
        self.stack.top_is_object()
    }

    /// A value starts at `at`.
    fn value(
        &mut self,
        chunk: &mut Chunk<'_>,
        at: usize,
        offset: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Skip> {
        if std::mem::take(&mut self.model_value_next) && self.stack.depth == 1 {
            self.start_hold(chunk, at, Hold::ModelValue, out);
        }
        self.state = match chunk.bytes.get(at) {
            Some(b'{') => {
                self.stack.push(true, offset)?;
                State::ObjectFirst
            }
            Some(b'[') => {
                self.stack.push(false, offset)?;
                State::ArrayFirst
            }
            Some(b'"') => State::Str {
                key: false,
                escape: Escape::None,
            },
            Some(b't') => State::Literal {
                word: b"true",
                matched: 1,
            },
            Some(b'f') => State::Literal {
                word: b"false",
                matched: 1,
            },
            Some(b'n') => State::Literal {
                word: b"null",
                matched: 1,
            },
            Some(b'-') => State::Number(Number::Minus),
            Some(b'0') => State::Number(Number::Zero),
            Some(b'1'..=b'9') => State::Number(Number::Int),
            _ => return Err(not_json(offset, "expected a value")),
        };
        Ok(())
    }

    /// In a string, at `at`: one escape byte, the closing quote, or a run of plain bytes.
    fn string(
        &mut self,
        chunk: &mut Chunk<'_>,
        at: usize,
        key: bool,
        escape: Escape,
        new_model: &str,
        out: &mut Vec<u8>,
    ) -> Result<usize, Skip> {
        let offset = self.fed + at;
        let byte = chunk.bytes.get(at).copied().unwrap_or_default();
        let plain = State::Str {
            key,
            escape: Escape::None,
        };
        match escape {
            Escape::Backslash => {
                self.state = match byte {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => plain,
                    b'u' => State::Str {
                        key,
                        escape: Escape::Hex(4),
                    },
                    _ => return Err(not_json(offset, "invalid escape")),
                };
                return Ok(at + 1);
            }
            Escape::Hex(due) => {
                if !byte.is_ascii_hexdigit() {
                    return Err(not_json(offset, "invalid \\u escape"));
                }
                self.state = match due {
                    0 | 1 => plain,
                    _ => State::Str {
                        key,
                        escape: Escape::Hex(due - 1),
                    },
                };
                return Ok(at + 1);
            }
            Escape::None => {}
        }
        if matches!(byte, b'"' | b'\\' | 0..=0x1f) && self.utf8.due > 0 {
            return Err(Skip::NotUtf8);
        }
        match byte {
            b'"' if key => {
                self.key_read(chunk, at, out);
                self.state = State::Colon;
            }
            b'"' => self.value_done(chunk, at + 1, new_model, out)?,
            b'\\' => {
                self.state = State::Str {
                    key,
                    escape: Escape::Backslash,
                }
            }
            0..=0x1f => return Err(not_json(offset, "control character in string")),
            _ if byte < 0x80 && self.utf8.due == 0 => {
                return Ok(find_ascii_run_end(chunk.bytes, at))
            }
            _ => {
                // UTF-8 sequences (or one begun in the last chunk), validated byte by byte up
                // to the next ASCII byte that is not inside one.
                let mut end = at;
                while let Some(&byte) = chunk.bytes.get(end) {
                    if byte < 0x80 && self.utf8.due == 0 {
                        break;
                    }
                    if !self.utf8.push(byte) {
                        return Err(Skip::NotUtf8);
                    }
                    end += 1;
                }
                return Ok(end);
            }
        }
        Ok(at + 1)
    }

    /// A key's closing quote is at `at`: a top-level one held in the window is `model` or not.
    fn key_read(&mut self, chunk: &mut Chunk<'_>, at: usize, out: &mut Vec<u8>) {
        if self.hold != Hold::Key {
            return;
        }
        let window = if self.held.is_empty() {
            chunk.bytes.get(chunk.copied..at).unwrap_or_default()
        } else {
            self.held
                .extend_from_slice(chunk.bytes.get(chunk.copied..at).unwrap_or_default());
            chunk.copied = at;
            &self.held
        };
        // The window starts with the key's opening quote.
        self.model_value_next = window.get(1..).is_some_and(|raw| key_equals(raw, b"model"));
        self.release_hold(out);
    }

    fn number(
        &mut self,
        chunk: &mut Chunk<'_>,
        at: usize,
        number: Number,
        new_model: &str,
        out: &mut Vec<u8>,
    ) -> Result<usize, Skip> {
        let offset = self.fed + at;
        let byte = chunk.bytes.get(at).copied().unwrap_or_default();
        let next = match (number, byte) {
            (Number::Zero, b'0'..=b'9') => return Err(not_json(offset, "leading zero in number")),
            (Number::Minus, b'0') => Number::Zero,
            (Number::Minus | Number::Int, b'0'..=b'9') => Number::Int,
            (Number::Zero | Number::Int, b'.') => Number::Dot,
            (Number::Dot | Number::Frac, b'0'..=b'9') => Number::Frac,
            (Number::Zero | Number::Int | Number::Frac, b'e' | b'E') => Number::Exp,
            (Number::Exp, b'+' | b'-') => Number::ExpSign,
            (Number::Exp | Number::ExpSign | Number::ExpDigits, b'0'..=b'9') => Number::ExpDigits,
            _ if number.complete() => {
                // The number ended before this byte, which is scanned again after it.
                self.value_done(chunk, at, new_model, out)?;
                return Ok(at);
            }
            _ => return Err(not_json(offset, "expected a digit")),
        };
        self.state = State::Number(next);
        Ok(at + 1)
    }

    /// A value ended just before `end`: if it was a top-level `model` value, it is replaced.
    fn value_done(
        &mut self,
        chunk: &mut Chunk<'_>,
        end: usize,
        new_model: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), Skip> {
        if self.stack.depth == 1 && self.hold == Hold::ModelValue {
            let held = self.held.len() + end.saturating_sub(chunk.copied);
            if held > MAX_HELD_MODEL_BYTES {
                return Err(Skip::ModelTooLong { bytes: held });
            }
            if self.rewritten == MAX_MODEL_MEMBERS {
                let count = self.rewritten + 1;
                return Err(Skip::TooManyModels { count });
            }
            self.held.clear();
            self.hold = Hold::Nothing;
            push_json_string(out, new_model);
            chunk.copied = end;
            self.rewritten += 1;
        }
        self.state = if self.stack.depth == 0 {
            State::End
        } else {
            State::After
        };
        Ok(())
    }

    /// The window starts at `at`: what comes before it goes out.
    fn start_hold(&mut self, chunk: &mut Chunk<'_>, at: usize, hold: Hold, out: &mut Vec<u8>) {
        out.extend_from_slice(chunk.bytes.get(chunk.copied..at).unwrap_or_default());
        chunk.copied = at;
        self.hold = hold;
    }

    /// The window goes out as it is (its bytes still in the chunk go with the chunk's rest).
    fn release_hold(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.hold = Hold::Nothing;
    }

    /// At a chunk's end: a key too long to be `model` is let go; a `model` value too long to
    /// hold gives the rewrite up (as it would when it ends: the output is the same).
    fn bound_held(&mut self, out: &mut Vec<u8>) {
        match self.hold {
            Hold::Key if self.held.len() > 1 + MAX_MODEL_KEY_BYTES => self.release_hold(out),
            Hold::ModelValue if self.held.len() > MAX_HELD_MODEL_BYTES => {
                let bytes = self.held.len();
                self.give_up(out, Skip::ModelTooLong { bytes });
            }
            Hold::Nothing | Hold::Key | Hold::ModelValue => {}
        }
    }

    /// No more rewriting: what is held goes out untouched, and so does everything after it.
    fn give_up(&mut self, out: &mut Vec<u8>, skip: Skip) {
        self.release_hold(out);
        self.state = State::GaveUp;
        self.skipped.get_or_insert(skip);
    }
}
